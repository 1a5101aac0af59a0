/**
 * No secret of a real run reaches what a host may print or ship: Effect log output, XState
 * inspection events, machine snapshots, host statuses and thrown errors. Two lifecycle runs
 * against oidc-provider sign in, refresh, lose the grant, get denied once, sign in again and
 * log out. A third run stores the error of a refresh whose connection dropped. The secrets are
 * read from the run itself (session, attempt and callback in the machine context, and the
 * callback URL the test user agent reached), then searched for in every captured text.
 */
import { inspect } from "node:util"
import { Effect, Layer, Logger, LogLevel, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import type { InspectionEvent } from "xstate"
import {
  type AuthContext,
  type AuthEngineConfig,
  type ClientConfig,
  makeMemoryKeychain,
} from "../../src/index.js"
import { makeFollowingBrowser, makeRecordingBrowser } from "../support/browsers.js"
import { callWhoami, type DemoServers, startDemoServers, whoamiRequest } from "../support/demo.js"
import { makeTestLayer, startEffectEngine } from "../support/effect-engine.js"
import { startLoopbackAuthorizationServer } from "../support/loopback-authorization-server.js"
import { containsInOrder, StatusRecorder } from "../support/status.js"

/** Texts a host could log or ship, by where they came from. */
interface Captured {
  readonly logs: string[]
  readonly inspection: string[]
  readonly snapshots: string[]
  readonly statuses: string[]
  readonly errors: string[]
}

type SecretKind =
  | "access token"
  | "refresh token"
  | "authorization code"
  | "PKCE verifier"
  | "state"
  | "client secret"
  | "client credentials in Basic form"

/** Secret values seen during a run, by kind. */
class Secrets {
  readonly byKind = new Map<SecretKind, Set<string>>()

  add(kind: SecretKind, value: string | undefined): void {
    if (value === undefined || value === "") return
    const values = this.byKind.get(kind) ?? new Set<string>()
    values.add(value)
    this.byKind.set(kind, values)
  }

  count(kind: SecretKind): number {
    return this.byKind.get(kind)?.size ?? 0
  }

  /** Reads every secret in a machine context. */
  addFromContext(context: AuthContext): void {
    const tokens = context.session?.tokens
    if (tokens !== undefined) {
      this.add("access token", Redacted.value(tokens.accessToken))
      if (tokens.refreshToken !== undefined) {
        this.add("refresh token", Redacted.value(tokens.refreshToken))
      }
    }
    if (context.attempt !== undefined) {
      this.add("state", Redacted.value(context.attempt.state))
      this.add("PKCE verifier", Redacted.value(context.attempt.codeVerifier))
    }
    if (context.callbackParams !== undefined) {
      this.add(
        "authorization code",
        Redacted.value(context.callbackParams).get("code") ?? undefined,
      )
    }
  }
}

/** Lists every place a secret occurs in `texts`, with the secret masked in the excerpt. */
const findLeaks = (texts: ReadonlyArray<string>, secrets: Secrets): string[] => {
  const leaks: string[] = []
  for (const [kind, values] of secrets.byKind) {
    for (const value of values) {
      texts.forEach((text, index) => {
        const at = text.indexOf(value)
        if (at === -1) return
        const excerpt = text
          .slice(Math.max(0, at - 60), at + value.length + 60)
          .replaceAll(value, `<${kind}>`)
        leaks.push(`${kind} in entry ${index}: ...${excerpt}...`)
      })
    }
  }
  return leaks
}

const describeError = (error: unknown): string[] => [
  JSON.stringify(error),
  String(error),
  error instanceof Error ? error.message : "",
  inspect(error, { depth: null }),
]

/** Captures every Effect log entry in three renderings: logfmt, JSON and `util.inspect`. */
const capturingLogger = (logs: string[]) =>
  Logger.replace(
    Logger.defaultLogger,
    Logger.make((options) => {
      logs.push(Logger.logfmtLogger.log(options))
      logs.push(Logger.jsonLogger.log(options))
      logs.push(inspect(Logger.structuredLogger.log(options), { depth: null }))
    }),
  )

const captureInspection = (captured: Captured, secrets: Secrets) => (event: InspectionEvent) => {
  captured.inspection.push(JSON.stringify(event))
  if (event.type === "@xstate.event") {
    captured.inspection.push(inspect(event.event, { depth: null }))
  }
  if (event.type === "@xstate.snapshot") {
    const snapshot = event.snapshot as {
      context?: unknown
      input?: unknown
      output?: unknown
      error?: unknown
    }
    captured.inspection.push(
      inspect(
        {
          context: snapshot.context,
          input: snapshot.input,
          output: snapshot.output,
          error: snapshot.error,
        },
        { depth: null },
      ),
    )
    // Only the machine's own snapshots carry an AuthContext; child actors have none.
    if (isAuthContext(snapshot.context)) secrets.addFromContext(snapshot.context)
  }
}

const isAuthContext = (value: unknown): value is AuthContext =>
  typeof value === "object" && value !== null && "input" in value && "registrations" in value

/** What one lifecycle run leaves for the assertions. */
interface LifecycleRun {
  readonly captured: Captured
  readonly secrets: Secrets
  readonly errorTags: ReadonlyArray<unknown>
  readonly tokensDiffer: boolean
  readonly refreshedCallStatus: number
  readonly revocations: number
}

/**
 * Runs sign-in, an MCP call, a refresh, a lost grant, a denied sign-in, a second sign-in and
 * logout while capturing every text a host could print.
 */
const runLifecycle = async (
  { authorizationServer, mcpServer }: DemoServers,
  client: ClientConfig | undefined,
): Promise<LifecycleRun> => {
  const captured: Captured = { logs: [], inspection: [], snapshots: [], statuses: [], errors: [] }
  const secrets = new Secrets()
  const errorTags: unknown[] = []
  const browser = makeFollowingBrowser()
  const layer = Layer.merge(
    makeTestLayer(browser.layer, makeMemoryKeychain(), LogLevel.All),
    capturingLogger(captured.logs),
  )
  const config: AuthEngineConfig = {
    serverUrl: mcpServer.url,
    callbackPort: 0,
    client,
    inspect: captureInspection(captured, secrets),
  }
  const { service, run } = await startEffectEngine(config, layer)

  const recordSnapshot = () => {
    const snapshot = service.actor.getSnapshot()
    captured.snapshots.push(JSON.stringify(snapshot))
    captured.snapshots.push(inspect(snapshot.context, { depth: null }))
    secrets.addFromContext(snapshot.context)
  }
  recordSnapshot()
  const subscription = service.actor.subscribe(recordSnapshot)
  const unsubscribeStatus = service.subscribe((status) => {
    captured.statuses.push(JSON.stringify(status))
  })
  const recorder = new StatusRecorder(service, Effect.runSync(service.status))
  const runExpectingFailure = async (effect: Effect.Effect<unknown, unknown>) => {
    try {
      await run(effect)
      errorTags.push("no error")
    } catch (error) {
      errorTags.push((error as { _tag?: unknown })._tag)
      captured.errors.push(...describeError(error))
    }
  }

  // Sign in, call the MCP server through the engine, and refresh once.
  await run(service.authenticate)
  const signedIn = Redacted.value(await run(service.getAccessToken()))
  const firstCall = await run(service.fetch(mcpServer.url, whoamiRequest()))
  await firstCall.arrayBuffer()
  service.actor.send({ type: "REFRESH" })
  const refreshed = Redacted.value(await run(service.getAccessToken()))
  const refreshedCall = await callWhoami(mcpServer.url, refreshed)
  await refreshedCall.arrayBuffer()

  // Lose the grant, fail a non-interactive request, then be denied once.
  await authorizationServer.revokeAllGrants()
  service.actor.send({ type: "REFRESH" })
  await recorder.waitForState("authRequired")
  await runExpectingFailure(service.getAccessToken({ interactive: false }))
  authorizationServer.setConsent("deny")
  await runExpectingFailure(service.authenticate)
  authorizationServer.setConsent("approve")

  // Sign in again, log out, and fail a non-interactive request.
  await run(service.authenticate)
  await run(service.logout)
  await runExpectingFailure(service.getAccessToken({ interactive: false }))

  subscription.unsubscribe()
  unsubscribeStatus()
  for (const url of browser.callbackUrls) {
    const params = new URL(url).searchParams
    secrets.add("authorization code", params.get("code") ?? undefined)
    secrets.add("state", params.get("state") ?? undefined)
  }
  return {
    captured,
    secrets,
    errorTags,
    tokensDiffer: signedIn !== refreshed,
    refreshedCallStatus: refreshedCall.status,
    revocations: authorizationServer.requests.revocation,
  }
}

/** Registers a confidential client at oidc-provider, as an administrator would beforehand. */
const registerConfidentialClient = async (issuer: string) => {
  const response = await fetch(`${issuer}/reg`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      application_type: "native",
      client_name: "confidential test client",
      // oidc-provider 9 ignores the port of a native client's loopback redirect URI.
      redirect_uris: ["http://127.0.0.1/callback"],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    }),
  })
  expect(response.status).toBe(201)
  return (await response.json()) as { client_id: string; client_secret: string }
}

const expectRunCompleted = (run: LifecycleRun) => {
  expect(run.tokensDiffer).toBe(true)
  expect(run.refreshedCallStatus).toBe(200)
  expect(run.revocations).toBe(2)
  expect(run.errorTags).toEqual(["SignInRequired", "AuthorizationError", "SignInRequired"])
  expect(run.secrets.count("access token")).toBe(3)
  expect(run.secrets.count("refresh token")).toBe(3)
  expect(run.secrets.count("authorization code")).toBe(2)
  expect(run.secrets.count("PKCE verifier")).toBe(3)
  expect(run.secrets.count("state")).toBe(3)
  expect(run.captured.logs.length).toBeGreaterThan(0)
  expect(run.captured.inspection.length).toBeGreaterThan(0)
  expect(run.captured.snapshots.length).toBeGreaterThan(0)
  expect(run.captured.statuses.length).toBeGreaterThan(0)
}

const expectNoLeaks = ({ captured, secrets }: LifecycleRun) => {
  expect(findLeaks(captured.logs, secrets)).toEqual([])
  expect(findLeaks(captured.inspection, secrets)).toEqual([])
  expect(findLeaks(captured.snapshots, secrets)).toEqual([])
  expect(findLeaks(captured.statuses, secrets)).toEqual([])
  expect(findLeaks(captured.errors, secrets)).toEqual([])
}

describe("secrets", () => {
  it("stay out of logs, events, snapshots and errors", async () => {
    const servers = await startDemoServers({ accessTokenTtlSeconds: 600 })

    const run = await runLifecycle(servers, undefined)

    expectRunCompleted(run)
    expectNoLeaks(run)
  })

  it("keep a pre-registered client secret out", async () => {
    const servers = await startDemoServers({ accessTokenTtlSeconds: 600 })
    const issuer = servers.authorizationServer.issuer
    const registered = await registerConfidentialClient(issuer)

    const run = await runLifecycle(servers, {
      clientId: registered.client_id,
      clientSecret: Redacted.make(registered.client_secret),
      issuer,
    })
    run.secrets.add("client secret", registered.client_secret)
    run.secrets.add(
      "client credentials in Basic form",
      Buffer.from(`${registered.client_id}:${registered.client_secret}`).toString("base64"),
    )

    expectRunCompleted(run)
    // The only registration is the one above: the engine used the pre-registered client.
    expect(servers.authorizationServer.requests.registration).toBe(1)
    expectNoLeaks(run)
  })
})

describe("secrets after a network failure", () => {
  it("stay out of the stored refresh error", async () => {
    // The error keeps its cause chain, which contains the failed request with the refresh token.
    const server = await startLoopbackAuthorizationServer({ dropRefreshRequests: true })
    const browser = makeRecordingBrowser()
    const logs: string[] = []
    const layer = Layer.merge(
      makeTestLayer(browser.layer, makeMemoryKeychain(), LogLevel.All),
      capturingLogger(logs),
    )
    const { service, run } = await startEffectEngine(
      { serverUrl: server.mcpUrl, callbackPort: 0 },
      layer,
    )
    const recorder = new StatusRecorder(service, Effect.runSync(service.status))
    const signIn = run(service.authenticate)
    const call = await browser.nextCall()
    const state = new URL(call.authorizationUrl).searchParams.get("state") ?? ""
    const query = new URLSearchParams({ code: "loopback-code", state, iss: server.issuer })
    const callback = await fetch(`${call.redirectUri}?${query}`)
    await callback.arrayBuffer()
    await signIn
    const secrets = new Secrets()
    secrets.addFromContext(service.actor.getSnapshot().context)

    const mark = recorder.mark()
    service.actor.send({ type: "REFRESH" })
    await recorder.waitFor("the refresh to fail", () =>
      containsInOrder(recorder.statesSince(mark), ["refreshing", "authenticated"]),
    )
    const snapshot = service.actor.getSnapshot()
    const status = await run(service.status)
    const refreshRequests = server.requests.token.filter(
      (body) => body.get("grant_type") === "refresh_token",
    )
    const texts = [
      JSON.stringify(snapshot),
      inspect(snapshot.context, { depth: null }),
      JSON.stringify(status),
      ...describeError(snapshot.context.error),
    ]

    expect(status.error?.tag).toBe("TokenError")
    expect(status.error?.reason).toBe("network")
    expect(refreshRequests.length).toBeGreaterThan(1)
    expect(secrets.count("access token")).toBe(1)
    expect(secrets.count("refresh token")).toBe(1)
    expect(findLeaks(texts, secrets)).toEqual([])
    expect(findLeaks(logs, secrets)).toEqual([])
  })
})
