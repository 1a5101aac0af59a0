/**
 * The demo behind `npm start` and `mcp-auth-engine demo`: a loopback authorization server and
 * MCP server, and one engine that signs in on the MCP server's 401, calls a tool, lives through
 * a scheduled refresh, calls the tool again and signs out. Every step prints one line.
 */
import { Data, Deferred, Duration, Effect, Exit } from "effect"
import { type AuthEngineService, makeAuthEngine } from "../engine/engine.js"
import { makeServiceLayer } from "../engine/layers.js"
import type { EngineStatus } from "../engine/status.js"
import type { AuthError } from "../errors.js"
import {
  type DemoAuthorizationServer,
  type DemoMcpServer,
  startAuthorizationServer,
  startMcpServer,
} from "./servers.js"

/** The access token lifetime of the demo unless the caller sets another, in seconds. */
export const DEFAULT_DEMO_ACCESS_TOKEN_TTL_SECONDS = 8

/** Settings of one demo run. */
export interface DemoOptions {
  /** The user agent for the authorization page; the demo server approves without a form. */
  readonly browser?: "headless" | "system" | undefined
  /** Lifetime of the access tokens the demo authorization server issues, in seconds. */
  readonly accessTokenTtlSeconds?: number | undefined
  /** Receives each output line (without a newline). Default: stdout. */
  readonly print?: ((line: string) => void) | undefined
  /** Called once the engine exists, before it is used; the live view attaches here. */
  readonly onEngineStarted?: ((engine: AuthEngineService) => void) | undefined
}

/** A demo step failed. */
export class DemoError extends Data.TaggedError("DemoError")<{
  readonly step: string
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `${this.step} failed: ${this.detail}`
  }
}

const errorText = (cause: unknown): string =>
  cause instanceof Error ? cause.message : String(cause)

/** A JSON-RPC `tools/call` of the demo server's `whoami` tool. */
const whoamiRequest = (id: number): RequestInit => ({
  method: "POST",
  headers: {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  },
  body: JSON.stringify({
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name: "whoami", arguments: {} },
  }),
})

interface ToolCallResponse {
  readonly result?: { readonly content?: ReadonlyArray<{ readonly text?: string }> }
  readonly error?: { readonly message?: string }
}

/** Calls `whoami` through the engine's authenticated fetch and returns the tool's text. */
const callWhoami = (engine: AuthEngineService, mcpUrl: string, id: number) =>
  Effect.gen(function* () {
    const step = `tools/call whoami (request ${id})`
    const response = yield* engine
      .fetch(mcpUrl, whoamiRequest(id))
      .pipe(
        Effect.mapError(
          (error: AuthError) => new DemoError({ step, detail: error.message, cause: error }),
        ),
      )
    const body = yield* Effect.tryPromise({
      try: () => response.json() as Promise<ToolCallResponse>,
      catch: (cause) =>
        new DemoError({ step, detail: `status ${response.status}, body is not JSON`, cause }),
    })
    if (!response.ok || body.error !== undefined) {
      return yield* new DemoError({
        step,
        detail: `status ${response.status}: ${body.error?.message ?? "no JSON-RPC result"}`,
      })
    }
    return body.result?.content?.[0]?.text ?? "(no text content)"
  })

const acquireAuthorizationServer = (accessTokenTtlSeconds: number) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startAuthorizationServer({ accessTokenTtlSeconds }),
      catch: (cause) =>
        new DemoError({ step: "starting the authorization server", detail: errorText(cause) }),
    }),
    (server: DemoAuthorizationServer) => Effect.promise(() => server.close()),
  )

const acquireMcpServer = (authorizationServer: DemoAuthorizationServer) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startMcpServer({ authorizationServer }),
      catch: (cause) =>
        new DemoError({ step: "starting the MCP server", detail: errorText(cause) }),
    }),
    (server: DemoMcpServer) => Effect.promise(() => server.close()),
  )

/**
 * Runs the demo. It fails with a `DemoError` naming the step; the servers are stopped in
 * every case.
 */
export const runDemo = (options: DemoOptions = {}): Effect.Effect<void, DemoError> => {
  const browser = options.browser ?? "headless"
  const ttlSeconds = options.accessTokenTtlSeconds ?? DEFAULT_DEMO_ACCESS_TOKEN_TTL_SECONDS
  const print = options.print ?? ((line: string) => void process.stdout.write(`${line}\n`))
  const startedAt = performance.now()
  const log = (text: string) =>
    Effect.sync(() => {
      const seconds = (performance.now() - startedAt) / 1000
      print(`+${seconds.toFixed(2)}s  ${text}`)
    })

  const demo = Effect.gen(function* () {
    if (!Number.isFinite(ttlSeconds) || ttlSeconds < 2) {
      return yield* new DemoError({
        step: "checking options",
        detail: `the access token lifetime must be at least 2 seconds, got ${ttlSeconds}`,
      })
    }

    yield* log(`Starting the authorization server (access tokens valid ${ttlSeconds} s)`)
    const authorizationServer = yield* acquireAuthorizationServer(ttlSeconds)
    yield* log(`Authorization server listening at ${authorizationServer.issuer}`)
    const mcpServer = yield* acquireMcpServer(authorizationServer)
    yield* log(`MCP server listening at ${mcpServer.url}`)

    const engine = yield* makeAuthEngine({ serverUrl: mcpServer.url, callbackPort: 0 }).pipe(
      Effect.mapError(
        (error) => new DemoError({ step: "creating the engine", detail: error.message }),
      ),
    )
    yield* log(`Engine started for ${mcpServer.url} (memory store, ${browser} browser)`)
    options.onEngineStarted?.(engine)

    // The refresh the demo waits for: completed on the first refreshing → authenticated step.
    const refreshed = yield* Deferred.make<EngineStatus, DemoError>()
    let lastState: string = (yield* engine.status).state
    yield* log(`→ ${lastState}`)
    const unsubscribe = engine.subscribe((status) => {
      if (status.state === lastState) return
      const previous = lastState
      lastState = status.state
      Effect.runSync(log(`→ ${status.state}${describeTransition(status)}`))
      if (previous === "refreshing") {
        const outcome =
          status.state === "authenticated"
            ? Exit.succeed(status)
            : Exit.fail(
                new DemoError({
                  step: "the scheduled refresh",
                  detail: status.error?.message ?? `the engine went to ${status.state}`,
                }),
              )
        Deferred.unsafeDone(refreshed, outcome)
      }
    })
    yield* Effect.addFinalizer(() => Effect.sync(unsubscribe))

    yield* log("Calling the whoami tool without a token; the server's 401 starts the sign-in")
    yield* log(`whoami returned ${yield* callWhoami(engine, mcpServer.url, 1)}`)

    const status = yield* engine.status
    const refreshInSeconds =
      status.expiresAt === undefined ? undefined : (status.expiresAt - Date.now()) / 2000
    yield* log(
      refreshInSeconds === undefined
        ? "Waiting for the scheduled refresh"
        : `Waiting for the scheduled refresh (due at half the token lifetime, in about ${refreshInSeconds.toFixed(1)} s)`,
    )
    const timeout = Duration.seconds(ttlSeconds + 15)
    yield* Deferred.await(refreshed).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new DemoError({
            step: "the scheduled refresh",
            detail: `no refresh within ${Duration.format(timeout)}`,
          }),
      }),
    )

    yield* log("Calling whoami again with the refreshed access token")
    yield* log(`whoami returned ${yield* callWhoami(engine, mcpServer.url, 2)}`)

    yield* log("Signing out: revoking the tokens and deleting the session")
    yield* engine.logout
    yield* log("Stopping the engine and both servers")
  })

  return demo.pipe(
    Effect.scoped,
    Effect.provide(makeServiceLayer({ store: "memory", browser })),
    Effect.zipRight(log("Demo finished")),
  )
}

/** Extra detail printed after a state name. */
const describeTransition = (status: EngineStatus): string => {
  switch (status.state) {
    case "registering":
    case "awaitingCallback":
      return status.authorizationServer === undefined
        ? ""
        : ` (authorization server ${status.authorizationServer})`
    case "authenticated": {
      const expiresIn =
        status.expiresAt === undefined
          ? "unknown"
          : `${Math.round((status.expiresAt - Date.now()) / 1000)} s`
      return ` (scope ${status.scope ?? "none"}, access token expires in ${expiresIn})`
    }
    case "failed":
      return status.error === undefined ? "" : ` (${status.error.message})`
    default:
      return ""
  }
}
