/**
 * The `mcp-auth-engine/testing` entry point, used as a host's test suite would use it. A scripted
 * server, a clock moved by hand and the headless user agent drive an engine through sign-in, a
 * scheduled refresh, a step-up and a refresh rejected with `invalid_grant`. No test waits for
 * real time to pass, because the refresh fires when the test advances the clock.
 */
import { describe, expect, it, onTestFinished } from "vitest"
import {
  createTestEngine,
  type ResourceResponse,
  ScriptedClock,
  type ScriptedServerOptions,
  startScriptedServer,
} from "../../src/testing/index.js"
import { containsInOrder, StatusRecorder } from "../support/status.js"
import { rejectionOf } from "../support/wait.js"

const HOUR_SECONDS = 3600

/** Starts a scripted server and an engine for its resource, both on one scripted clock. */
const setUp = async (options: ScriptedServerOptions = {}) => {
  const clock = new ScriptedClock()
  const server = await startScriptedServer({
    clock,
    accessTokenTtlSeconds: HOUR_SECONDS,
    ...options,
  })
  onTestFinished(() => server.close())
  const engine = await createTestEngine({ serverUrl: server.mcpUrl, clock })
  onTestFinished(() => engine.dispose())
  const recorder = new StatusRecorder(engine, engine.status())
  return { clock, server, engine, recorder }
}

const callResource = async (
  engine: Awaited<ReturnType<typeof createTestEngine>>,
  url: string,
): Promise<{ status: number; body: ResourceResponse }> => {
  const response = await engine.fetch(url, { method: "POST", body: "{}" })
  return { status: response.status, body: (await response.json()) as ResourceResponse }
}

describe("testing entry point", () => {
  it("signs in on the resource's 401", async () => {
    const { server, engine } = await setUp()

    const result = await callResource(engine, server.mcpUrl)

    expect(result.status).toBe(200)
    expect(result.body.scope).toBe("mcp:tools")
    expect(engine.status().state).toBe("authenticated")
    expect(engine.status().view.kind).toBe("authenticated")
    expect(server.requests.registration).toBe(1)
    expect(server.requests.token.authorization_code).toBe(1)
    expect(server.requests.resource[401]).toBe(1)
  })

  it("refreshes when the clock reaches the refresh time", async () => {
    const { clock, server, engine, recorder } = await setUp()
    await engine.authenticate()
    const before = await engine.getAccessToken()
    const expiresAt = engine.status().expiresAt!

    const mark = recorder.mark()
    // The only timer of an authenticated engine is its scheduled refresh.
    expect(clock.pendingTimers).toBe(1)
    expect(clock.runNextTimer()).toBe(true)
    await recorder.waitFor("the refresh to finish", () =>
      containsInOrder(recorder.statesSince(mark), ["refreshing", "authenticated"]),
    )
    const after = await engine.getAccessToken()

    expect(after).not.toBe(before)
    expect(server.requests.token.refresh_token).toBe(1)
    expect(engine.status().expiresAt).toBeGreaterThan(expiresAt)
    expect((await callResource(engine, server.mcpUrl)).status).toBe(200)
  })

  it("steps up when the resource asks for more scope", async () => {
    const { server, engine } = await setUp()
    await engine.authenticate()
    server.requireScope("mcp:admin")

    const result = await callResource(engine, server.mcpUrl)

    expect(result.status).toBe(200)
    expect(result.body.scope.split(" ").sort()).toEqual(["mcp:admin", "mcp:tools"])
    expect(server.requests.resource[403]).toBe(1)
    expect(server.requests.authorization).toBe(2)
  })

  it("requires sign-in after invalid_grant", async () => {
    const { clock, server, engine, recorder } = await setUp()
    await engine.authenticate()
    server.rejectRefresh()

    clock.runNextTimer()
    await recorder.waitForState("authRequired")
    const rejection = await rejectionOf(engine.getAccessToken({ interactive: false }))

    expect(server.requests.token.refresh_token).toBe(1)
    expect(engine.status().error?.reason).toBe("invalid_grant")
    expect(engine.status().view.kind).toBe("signInRequired")
    expect(engine.status().view.actions).toEqual(["authenticate", "logout"])
    expect(rejection._tag).toBe("SignInRequired")
  })

  it("fails a denied sign-in", async () => {
    const { server, engine } = await setUp()
    server.deny()

    const rejection = await rejectionOf(engine.authenticate())

    expect(rejection._tag).toBe("AuthorizationError")
    expect(rejection.reason).toBe("access_denied")
    expect(engine.status().view.kind).toBe("failed")
    expect(engine.status().view.actions).toEqual(["retry", "logout"])
  })
})
