/**
 * The client credentials grant with `client_secret_basic`: the engine authenticates with HTTP
 * Basic, sends `resource`, and signs in without a browser or a callback listener.
 */
import { Effect, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { makeRecordingBrowser } from "../support/browsers.js"
import {
  makeLoopbackOnlyLayer,
  mcpRequest,
  startAuthorizationServer,
  startResourceServer,
} from "../support/capability-servers.js"
import { startEffectEngine } from "../support/effect-engine.js"
import { StatusRecorder } from "../support/status.js"

const CLIENT_ID = "service-client"
const CLIENT_SECRET = "service-secret"

describe("client credentials with client_secret_basic", () => {
  it("signs in with Basic credentials and no browser", async () => {
    const as = await startAuthorizationServer({
      name: "as",
      authMethods: ["client_secret_basic"],
      clients: [{ clientId: CLIENT_ID, authMethod: "client_secret_basic", secret: CLIENT_SECRET }],
    })
    const rs = await startResourceServer({ authorizationServer: as })
    const browser = makeRecordingBrowser()
    const machineEvents: string[] = []
    const engine = await startEffectEngine(
      {
        serverUrl: rs.mcpUrl,
        callbackPort: 0,
        grant: { type: "client_credentials" },
        client: { clientId: CLIENT_ID, clientSecret: Redacted.make(CLIENT_SECRET) },
        inspect: (event) => {
          if (event.type === "@xstate.event") machineEvents.push(event.event.type)
        },
      },
      makeLoopbackOnlyLayer(browser.layer).layer,
    )
    const redirectUris: Array<string | undefined> = []
    const subscription = engine.service.actor.subscribe((snapshot) =>
      redirectUris.push(snapshot.context.redirectUri),
    )
    const recorder = new StatusRecorder(engine.service, Effect.runSync(engine.service.status))

    const response = await engine.run(engine.service.fetch(rs.mcpUrl, mcpRequest()))
    await response.arrayBuffer()
    subscription.unsubscribe()

    expect(response.status).toBe(200)
    expect(as.tokenRequests).toHaveLength(1)
    const request = as.tokenRequests[0]
    const basic = Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString("base64")
    expect(request?.authorization).toBe(`Basic ${basic}`)
    expect(request?.grantType).toBe("client_credentials")
    expect(request?.form.get("resource")).toBe(rs.mcpUrl)
    expect(request?.form.has("client_secret")).toBe(false)
    expect(request?.authenticated?.method).toBe("client_secret_basic")
    expect(request?.status).toBe(200)
    expect(browser.calls).toEqual([])
    expect(as.authorizations).toEqual([])
    expect(as.registrations).toEqual([])
    expect(machineEvents).not.toContain("LISTENING")
    expect(redirectUris.length).toBeGreaterThan(0)
    expect(redirectUris.every((uri) => uri === undefined)).toBe(true)
    const exchanging = recorder.statuses.filter((status) => status.state === "exchanging")
    expect(exchanging.length).toBeGreaterThan(0)
    expect(exchanging.map((status) => status.grant)).toEqual(
      exchanging.map(() => "client_credentials"),
    )
  })
})
