/**
 * The `AuthEngine`: one statechart per MCP server, the `getAccessToken` single flight over it,
 * and an authenticated `fetch` that turns a server's 401 or 403 into a sign-in, a refresh or a
 * step-up, then retries the request once.
 */
import { Context, Effect, Layer, Redacted, Runtime, type Scope } from "effect"
import { type Actor, createActor, type InspectionEvent } from "xstate"
import { type AuthError, ConfigError, SignInRequired } from "../errors.js"
import type { InspectionObserver } from "../inspect/events.js"
import { describeRunningActor, makeInspectionHub } from "../inspect/hub.js"
import {
  type AuthContext,
  type AuthMachine,
  DEFAULT_CALLBACK_TIMEOUT_MS,
  type MachineInput,
  makeAuthMachine,
} from "../machine/machine.js"
import { type AuthEnv, makeDpopSession } from "../machine/steps.js"
import { classifyResponse, parseWwwAuthenticate } from "../protocol/challenge.js"
import { createDpopProof } from "../protocol/dpop.js"
import type { GrantConfig } from "../protocol/grants.js"
import type { ClientConfig } from "../protocol/registration.js"
import { isSafeEndpoint, parseUrl } from "../protocol/urls.js"
import { type EngineState, type EngineStatus, toEngineState, toEngineStatus } from "./status.js"

/** The MCP protocol version sent on discovery requests unless the host sets another. */
export const DEFAULT_PROTOCOL_VERSION = "2025-11-25"
/** The callback port tried first, so a registered redirect URI keeps matching across runs. */
export const DEFAULT_CALLBACK_PORT = 33418

/** Settings of one engine. */
export interface AuthEngineConfig {
  /** The MCP server URL, `https:` (or `http:` on a loopback host). */
  readonly serverUrl: string
  readonly client?: ClientConfig | undefined
  /** A scope always requested; by default the server's challenge or metadata decides. */
  readonly scope?: string | undefined
  readonly protocolVersion?: string | undefined
  /** The preferred loopback callback port; 0 picks any free port. */
  readonly callbackPort?: number | undefined
  readonly callbackTimeoutMs?: number | undefined
  /** The grant that obtains tokens; by default the browser flow (authorization code with PKCE). */
  readonly grant?: GrantConfig | undefined
  /**
   * When tokens are bound to a DPoP key (RFC 9449): "auto" (default) when the server's
   * challenge uses the DPoP scheme, "always", or "never".
   */
  readonly dpop?: "auto" | "always" | "never" | undefined
  /**
   * Receives XState's raw inspection events (actors, events, snapshots). They are not
   * redacted: a snapshot contains the tokens. Use {@link AuthEngineService.inspect} for a stream
   * that is safe to log or show.
   */
  readonly inspect?: ((event: InspectionEvent) => void) | undefined
  /**
   * The clock of the statechart's timers (scheduled refresh, callback timeout) and of its time
   * checks; the system clock unless set. Tests pass a clock they advance by hand.
   */
  readonly clock?: EngineClock | undefined
}

/**
 * A clock for the statechart: the timer functions XState schedules delayed events with, and
 * the current time. XState's `SimulatedClock` has this shape.
 */
export interface EngineClock {
  setTimeout(callback: (...args: unknown[]) => void, timeoutMs: number): unknown
  clearTimeout(id: unknown): void
  /** Milliseconds since the epoch. */
  now(): number
}

/** Options of a token request. */
export interface TokenOptions {
  /** Whether a sign-in may start (opening a browser); false fails with `SignInRequired`. */
  readonly interactive?: boolean | undefined
}

/** The engine as seen by a host. */
export interface AuthEngineService {
  readonly serverUrl: string
  /** A valid access token: waits for a running refresh or sign-in, starting one if needed. */
  readonly getAccessToken: (
    options?: TokenOptions,
  ) => Effect.Effect<Redacted.Redacted<string>, AuthError>
  /**
   * The access token when the engine is authenticated and the token has not expired, read
   * synchronously; undefined otherwise (then `getAccessToken` does the waiting).
   */
  readonly peekAccessToken: () => Redacted.Redacted<string> | undefined
  /** Runs an interactive sign-in now and waits until it ends. */
  readonly authenticate: Effect.Effect<void, AuthError>
  /** Stops a running sign-in. */
  readonly cancel: Effect.Effect<void>
  /** Revokes the session where the server allows it and deletes it locally. */
  readonly logout: Effect.Effect<void>
  /** The current status. */
  readonly status: Effect.Effect<EngineStatus>
  /** Calls `listener` on every status change; returns the unsubscribe function. */
  readonly subscribe: (listener: (status: EngineStatus) => void) => () => void
  /** `fetch` with the access token added; a 401 or 403 is handled once per request. */
  readonly fetch: (
    input: string | URL,
    init?: RequestInit,
    options?: TokenOptions,
  ) => Effect.Effect<Response, AuthError>
  /**
   * Calls `observer` with every inspection event (actors, events, snapshots), redacted: no
   * token, code, verifier, secret or `state` value reaches it. The observer first receives an
   * `actor` event for the statechart and each running step, then the current snapshot.
   * Returns the unsubscribe function.
   */
  readonly inspect: (observer: InspectionObserver) => () => void
  /** The running statechart, for inspection and tests. */
  readonly actor: Actor<AuthMachine>
}

/** The engine service tag. */
export class AuthEngine extends Context.Tag("mcp-auth-engine/AuthEngine")<
  AuthEngine,
  AuthEngineService
>() {}

const BUSY_STATES: ReadonlySet<EngineState> = new Set([
  "waitingForLock",
  "discovering",
  "registering",
  "awaitingCallback",
  "exchanging",
  "refreshing",
  "loggingOut",
])

const validateConfig = (config: AuthEngineConfig): Effect.Effect<MachineInput, ConfigError> => {
  const url = parseUrl(config.serverUrl)
  if (url === undefined || !isSafeEndpoint(config.serverUrl)) {
    return Effect.fail(
      new ConfigError({
        option: "serverUrl",
        detail: `"${config.serverUrl}" must be an https: URL or a loopback http: URL`,
      }),
    )
  }
  const port = config.callbackPort ?? DEFAULT_CALLBACK_PORT
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    return Effect.fail(
      new ConfigError({ option: "callbackPort", detail: `${port} is not a TCP port` }),
    )
  }
  const metadataUrl = config.client?.clientMetadataUrl
  if (
    metadataUrl !== undefined &&
    (parseUrl(metadataUrl)?.protocol !== "https:" || parseUrl(metadataUrl)?.pathname === "/")
  ) {
    return Effect.fail(
      new ConfigError({
        option: "clientMetadataUrl",
        detail: "a client metadata document URL is an https: URL with a path",
      }),
    )
  }
  return Effect.succeed({
    serverUrl:
      url.href === `${url.origin}/` && !config.serverUrl.endsWith("/")
        ? config.serverUrl
        : url.href,
    client: config.client ?? {},
    scope: config.scope,
    protocolVersion: config.protocolVersion ?? DEFAULT_PROTOCOL_VERSION,
    callbackPort: port,
    callbackTimeoutMs: config.callbackTimeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS,
    grant: config.grant ?? { type: "authorization_code" },
    dpop: config.dpop ?? "auto",
  })
}

type Snapshot = ReturnType<Actor<AuthMachine>["getSnapshot"]>

/** Waits until `predicate` holds for a snapshot, checking the current one first. */
const waitForSnapshot = (actor: Actor<AuthMachine>, predicate: (snapshot: Snapshot) => boolean) =>
  Effect.async<Snapshot>((resume) => {
    const current = actor.getSnapshot()
    if (predicate(current)) {
      resume(Effect.succeed(current))
      return
    }
    const subscription = actor.subscribe((snapshot) => {
      if (predicate(snapshot)) {
        subscription.unsubscribe()
        resume(Effect.succeed(snapshot))
      }
    })
    return Effect.sync(() => subscription.unsubscribe())
  })

const stateOf = (snapshot: Snapshot): EngineState => toEngineState(snapshot.value)

const usableToken = (context: AuthContext, now: number): Redacted.Redacted<string> | undefined => {
  const tokens = context.session?.tokens
  if (tokens === undefined) return undefined
  if (tokens.expiresAt !== undefined && tokens.expiresAt <= now) return undefined
  return tokens.accessToken
}

/** Builds an engine whose statechart stops when `scope` closes. */
export const makeAuthEngine = (
  config: AuthEngineConfig,
): Effect.Effect<AuthEngineService, ConfigError, AuthEnv | Scope.Scope> =>
  Effect.gen(function* () {
    const input = yield* validateConfig(config)
    const runtime = yield* Effect.runtime<AuthEnv>()
    const dpop = makeDpopSession()
    const clock = config.clock
    const now = clock === undefined ? Date.now : () => clock.now()
    const machine = makeAuthMachine(runtime, dpop, now)
    let observerFailureLogged = false
    const hub = makeInspectionHub({
      forward: config.inspect,
      onObserverError: (error) => {
        // One line per engine: an observer that throws usually throws on every event.
        if (observerFailureLogged) return
        observerFailureLogged = true
        Runtime.runSync(runtime)(
          Effect.logWarning("an inspection observer threw; later failures are not logged").pipe(
            Effect.annotateLogs({
              serverUrl: input.serverUrl,
              error: error instanceof Error ? error.name : typeof error,
            }),
          ),
        )
      },
    })
    const actor = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const created = createActor(machine, {
          input,
          inspect: hub.inspect,
          ...(clock === undefined ? {} : { clock }),
        })
        let lastState: EngineState | undefined
        created.subscribe({
          next: (snapshot) => {
            const state = stateOf(snapshot)
            if (state === lastState) return
            lastState = state
            const log =
              state === "failed"
                ? Effect.logError("state changed").pipe(
                    Effect.annotateLogs({ error: snapshot.context.error?.message }),
                  )
                : Effect.logInfo("state changed")
            Runtime.runSync(runtime)(
              log.pipe(Effect.annotateLogs({ state, serverUrl: input.serverUrl })),
            )
          },
          // Actor errors reach hosts through the snapshot's `error`; nothing to rethrow here.
          error: () => {},
        })
        return created.start()
      }),
      (started) => Effect.sync(() => started.stop()),
    )

    const peekAccessToken = (): Redacted.Redacted<string> | undefined => {
      const snapshot = actor.getSnapshot()
      return snapshot.value === "authenticated" ? usableToken(snapshot.context, now()) : undefined
    }

    const getAccessToken = (options: TokenOptions = {}) =>
      Effect.suspend(() => {
        // The common case, a held token, needs no fiber waiting on the statechart.
        const held = peekAccessToken()
        return held === undefined ? waitForAccessToken(options) : Effect.succeed(held)
      })

    const waitForAccessToken = (options: TokenOptions) =>
      Effect.gen(function* () {
        const interactive = options.interactive ?? true
        // A failure that predates this call is not its result, so the call may start afresh.
        let startedFromFailure = stateOf(actor.getSnapshot()) === "failed"
        // One call requests at most one refresh and one sign-in. A server that issues access
        // tokens already expired (`expires_in: 0`) would otherwise keep this loop signing in.
        let refreshRequested = false
        let signInStarted = false
        const noUsableToken = () =>
          new SignInRequired({
            reason: "session_expired",
            serverUrl: input.serverUrl,
            detail: "the authorization server returned an access token that is already expired",
          })
        for (;;) {
          const snapshot = yield* waitForSnapshot(actor, (s) => {
            const state = stateOf(s)
            return !BUSY_STATES.has(state) && !(state === "idle" && !s.context.loaded)
          })
          const state = stateOf(snapshot)
          const context = snapshot.context
          if (state === "authenticated") {
            const token = usableToken(context, now())
            if (token !== undefined) return token
            if (refreshRequested) return yield* noUsableToken()
            refreshRequested = true
            actor.send({ type: "REFRESH" })
            continue
          }
          if (state === "failed" && !startedFromFailure) {
            return yield* Effect.fail(
              context.error ??
                new SignInRequired({ reason: "no_session", serverUrl: input.serverUrl }),
            )
          }
          // Grants without a browser never need the user, so they may always start.
          const needsUser = context.grant.type === "authorization_code"
          if (!interactive && needsUser) {
            return yield* new SignInRequired({
              reason: state === "idle" ? "no_session" : "session_expired",
              serverUrl: input.serverUrl,
              detail: context.error?.message,
            })
          }
          if (
            state === "authRequired" &&
            context.error?._tag === "SignInRequired" &&
            context.error.reason === "cancelled"
          ) {
            return yield* Effect.fail(context.error)
          }
          if (signInStarted) return yield* noUsableToken()
          signInStarted = true
          startedFromFailure = false
          actor.send({ type: "AUTHENTICATE" })
          // Wait until the sign-in has left the state it started from.
          yield* waitForSnapshot(actor, (s) => stateOf(s) !== state)
        }
      })

    const authenticate = Effect.gen(function* () {
      actor.send({ type: "AUTHENTICATE" })
      const end = yield* waitForSnapshot(actor, (s) => {
        const state = stateOf(s)
        return state === "authenticated" || state === "failed" || state === "authRequired"
      })
      if (stateOf(end) !== "authenticated") {
        return yield* Effect.fail(
          end.context.error ??
            new SignInRequired({ reason: "cancelled", serverUrl: input.serverUrl }),
        )
      }
    })

    const logout = Effect.gen(function* () {
      // `idle` ignores LOGOUT, so a session still loading would be signed in afterwards.
      yield* waitForSnapshot(actor, (s) => stateOf(s) !== "idle" || s.context.loaded)
      actor.send({ type: "LOGOUT" })
      yield* waitForSnapshot(actor, (s) => stateOf(s) === "idle" && s.context.loaded)
    })

    /** Sends one request, with a DPoP proof when the token is DPoP-bound. */
    const sendOnce = async (
      url: string | URL,
      init: RequestInit,
      token: Redacted.Redacted<string> | undefined,
      tokenType: string,
    ): Promise<Response> => {
      const headers = new Headers(init.headers)
      const target = String(url)
      if (token !== undefined && tokenType === "DPoP") {
        const binding = await dpop.binding()
        headers.set("authorization", `DPoP ${Redacted.value(token)}`)
        headers.set(
          "dpop",
          await createDpopProof({
            key: binding.key,
            method: init.method ?? "GET",
            url: target,
            accessToken: Redacted.value(token),
            nonce: dpop.nonces.get(target),
          }),
        )
      } else if (token !== undefined) {
        headers.set("authorization", `${tokenType} ${Redacted.value(token)}`)
      }
      const response = await globalThis.fetch(url, { ...init, headers })
      dpop.nonces.remember(target, response.headers)
      return response
    }

    /** Sends a request. A DPoP `use_dpop_nonce` response with a new nonce is retried once. */
    const sendWithToken = (
      url: string | URL,
      init: RequestInit,
      token: Redacted.Redacted<string> | undefined,
      tokenType: string,
    ) =>
      Effect.tryPromise({
        try: async () => {
          const first = await sendOnce(url, init, token, tokenType)
          if (tokenType !== "DPoP" || first.status !== 401 || !first.headers.has("dpop-nonce")) {
            return first
          }
          const challenge = parseWwwAuthenticate(first.headers.get("www-authenticate") ?? "")
          if (!challenge.some((c) => c.params.error === "use_dpop_nonce")) return first
          await first.arrayBuffer().catch(() => undefined)
          return sendOnce(url, init, token, tokenType)
        },
        catch: (cause) => cause,
      }).pipe(Effect.orDie)

    const currentToken = Effect.gen(function* () {
      const snapshot = yield* waitForSnapshot(actor, (s) => {
        const state = stateOf(s)
        return (
          state !== "refreshing" &&
          state !== "exchanging" &&
          state !== "loggingOut" &&
          !(state === "idle" && !s.context.loaded)
        )
      })
      return stateOf(snapshot) === "authenticated"
        ? usableToken(snapshot.context, now())
        : undefined
    })

    const tokenTypeOf = () => actor.getSnapshot().context.session?.tokens.tokenType ?? "Bearer"

    const serverOrigin = new URL(input.serverUrl).origin

    const authenticatedFetch = (
      url: string | URL,
      init: RequestInit = {},
      options: TokenOptions = {},
    ) =>
      Effect.gen(function* () {
        // A token is only for its own server: requests elsewhere go out unchanged.
        if (parseUrl(String(url))?.origin !== serverOrigin) {
          return yield* sendWithToken(url, init, undefined, "Bearer")
        }
        const first = yield* sendWithToken(url, init, yield* currentToken, tokenTypeOf())
        const signal = classifyResponse(
          first.status,
          first.headers.get("www-authenticate") ? [first.headers.get("www-authenticate")!] : [],
        )
        if (signal === undefined) return first
        const challenge = {
          scheme: signal.scheme,
          resourceMetadataUrl: signal.resourceMetadataUrl,
          scope: signal.scope,
        }
        if (signal.kind === "unauthorized") {
          actor.send({ type: "UNAUTHORIZED", challenge })
        } else {
          actor.send({ type: "INSUFFICIENT_SCOPE", challenge })
          const after = actor.getSnapshot()
          if (stateOf(after) === "failed") return yield* Effect.fail(after.context.error!)
        }
        yield* Effect.promise(() => first.arrayBuffer().catch(() => undefined))
        const token = yield* getAccessToken(options)
        return yield* sendWithToken(url, init, token, tokenTypeOf())
      })

    const service: AuthEngineService = {
      serverUrl: input.serverUrl,
      getAccessToken,
      peekAccessToken,
      authenticate,
      cancel: Effect.sync(() => actor.send({ type: "CANCEL" })),
      logout,
      status: Effect.sync(() => {
        const snapshot = actor.getSnapshot()
        return toEngineStatus(snapshot.value, snapshot.context)
      }),
      subscribe: (listener) => {
        let last = ""
        const subscription = actor.subscribe((snapshot) => {
          const status = toEngineStatus(snapshot.value, snapshot.context)
          const key = JSON.stringify(status)
          if (key !== last) {
            last = key
            listener(status)
          }
        })
        return () => subscription.unsubscribe()
      },
      fetch: authenticatedFetch,
      inspect: (observer) =>
        hub.subscribe(observer, () =>
          describeRunningActor(actor, hub.lastRootEvent(), hub.nextSequence),
        ),
      actor,
    }
    return service
  })

/** A layer providing {@link AuthEngine} for one server. */
export const AuthEngineLayer = (
  config: AuthEngineConfig,
): Layer.Layer<AuthEngine, ConfigError, AuthEnv> => Layer.scoped(AuthEngine, makeAuthEngine(config))
