/**
 * The sign-in lifecycle as an XState v5 statechart. The machine holds no I/O: every step is an
 * Effect run as an actor, and leaving a state interrupts the step it started. Actions, guards,
 * actors and delays are all named in `setup()`, so inspectors and diagrams show their names.
 */
import { Effect, Redacted, type Runtime } from "effect"
import { and, assign, sendTo, setup } from "xstate"
import {
  type AuthError,
  AuthorizationError,
  isAuthError,
  SignInRequired,
  TokenError,
  UnexpectedError,
} from "../errors.js"
import type { AuthorizationAttempt } from "../protocol/authorization.js"
import { validateCallback } from "../protocol/authorization.js"
import { type Discovery, discover } from "../protocol/discovery.js"
import { chooseGrant, type GrantConfig } from "../protocol/grants.js"
import type { ClientConfig } from "../protocol/registration.js"
import { selectScope, unionScopes, withOfflineAccess } from "../protocol/scope.js"
import type { ClientRegistration, Session } from "../schema/session.js"
import { fromEffect, fromScopedEffect } from "./effect-actors.js"
import {
  type AuthEnv,
  type AuthorizeInput,
  type DpopSession,
  type ExchangeInput,
  type ListenerEvent,
  loadSession,
  makeDpopSession,
  type RefreshInput,
  runAuthorize,
  runCallbackListener,
  runExchange,
  runLogout,
  runRefresh,
  runRegister,
  runSignInLock,
  type SignInLockEvent,
  type SignInLockInput,
} from "./steps.js"

/** How long before expiry a refresh starts. A minute covers clock skew and slow networks. */
export const REFRESH_SKEW_MS = 60_000
/** How long the engine waits for the browser to come back before giving up on a sign-in. */
export const DEFAULT_CALLBACK_TIMEOUT_MS = 5 * 60_000
/** Authorization attempts allowed for one step-up scope before the engine stops asking. */
export const MAX_STEP_UP_ATTEMPTS = 3
/**
 * How long to wait before trying a refresh again after a transient failure (network, 5xx)
 * while the current token still works, so an unreachable server is not asked in a loop.
 */
export const REFRESH_RETRY_DELAY_MS = 30_000
/**
 * How much longer than the callback timeout a sign-in waits for another process's sign-in of
 * the same session to finish: that sign-in ends by its own timeout first.
 */
export const SIGN_IN_LOCK_MARGIN_MS = 60_000
/** The maximum delay a Node timer accepts, because longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647

/** Static settings of one machine. */
export interface MachineInput {
  readonly serverUrl: string
  readonly client: ClientConfig
  /** A scope the host always requests; overrides challenge and metadata scopes. */
  readonly scope?: string | undefined
  readonly protocolVersion: string
  readonly callbackPort: number
  readonly callbackTimeoutMs: number
  /** The grant that obtains tokens: the browser flow unless set. */
  readonly grant: GrantConfig
  /** The DPoP (RFC 9449) policy: proofs when the server's challenge uses the DPoP scheme, always, or never. */
  readonly dpop: "auto" | "always" | "never"
}

/** The parameters of a `WWW-Authenticate` challenge that the engine acts on. */
export interface ChallengeInfo {
  /** The challenge's auth-scheme, `Bearer` or `DPoP`. */
  readonly scheme?: string | undefined
  readonly resourceMetadataUrl?: string | undefined
  readonly scope?: string | undefined
}

/** The machine's context. Secrets in it are `Redacted`, so a snapshot can be logged. */
export interface AuthContext {
  readonly input: MachineInput
  readonly loaded: boolean
  /** The grant of the current or last sign-in, chosen once the server's metadata is known. */
  readonly grant: GrantConfig
  readonly challenge?: ChallengeInfo | undefined
  /** Scope for the next authorization, set by a step-up. */
  readonly stepUp?: { readonly scope: string; readonly attempts: number } | undefined
  readonly discovery?: Discovery | undefined
  /** When `discovery` was fetched, in milliseconds since the epoch. */
  readonly discoveredAt?: number | undefined
  /** Client registrations by issuer: one authorization server's client is never sent to another. */
  readonly registrations: Readonly<Record<string, ClientRegistration>>
  readonly redirectUri?: string | undefined
  readonly attempt?: AuthorizationAttempt | undefined
  /** The callback query, which contains the authorization code. */
  readonly callbackParams?: Redacted.Redacted<URLSearchParams> | undefined
  readonly session?: Session | undefined
  /**
   * The generation of the last session dropped from `session` (rejected by the server or
   * unusable), so the sign-in lock never takes that stored record back as a newer session.
   */
  readonly droppedGeneration?: number | undefined
  /** No refresh before this time (ms since the epoch), set after a transient failure. */
  readonly refreshRetryAt?: number | undefined
  readonly error?: AuthError | undefined
}

/** Events a host (through the engine) sends to the machine. */
export type HostEvent =
  | { readonly type: "AUTHENTICATE" }
  | { readonly type: "CANCEL" }
  | { readonly type: "LOGOUT" }
  | { readonly type: "RETRY" }
  | { readonly type: "REFRESH" }
  | { readonly type: "UNAUTHORIZED"; readonly challenge: ChallengeInfo }
  | { readonly type: "INSUFFICIENT_SCOPE"; readonly challenge: ChallengeInfo }

/** Every event the machine handles. */
export type AuthEvent =
  | HostEvent
  | ListenerEvent
  | { readonly type: "AUTHORIZATION_STARTED"; readonly attempt: AuthorizationAttempt }
  | { readonly type: "STEP_FAILED"; readonly error: unknown }
  | SignInLockEvent

const asAuthError = (error: unknown): AuthError =>
  isAuthError(error)
    ? error
    : new UnexpectedError({
        reason: "defect",
        // Only the error's class name: a library message could quote a request.
        detail: error instanceof Error ? error.name : typeof error,
        cause: error,
      })

/** Milliseconds until a session's refresh is due; `MAX_TIMER_MS` when its expiry is unknown. */
export const refreshDelay = (session: Session | undefined, now: number): number => {
  const expiresAt = session?.tokens.expiresAt
  if (expiresAt === undefined) return MAX_TIMER_MS
  // A short-lived token refreshes at half its lifetime rather than a full skew early.
  const lifetime = Math.max(0, expiresAt - session!.tokens.obtainedAt)
  const skew = Math.min(REFRESH_SKEW_MS, lifetime / 2)
  return Math.min(MAX_TIMER_MS, Math.max(0, expiresAt - skew - now))
}

/** Milliseconds until the next refresh, honouring a retry pause after a transient failure. */
const nextRefreshIn = (context: AuthContext, now: number): number =>
  Math.max(refreshDelay(context.session, now), (context.refreshRetryAt ?? 0) - now, 0)

const hasUsableToken = (session: Session | undefined, now: number): boolean =>
  session !== undefined &&
  (session.tokens.expiresAt === undefined || session.tokens.expiresAt > now)

/** Builds the machine; its actors run on `runtime`, which supplies the services. */
/** Tells whether the engine should bind tokens to its DPoP key. */
const wantsDpop = (context: AuthContext): boolean => {
  if (context.input.dpop !== "auto") return context.input.dpop === "always"
  return (
    context.challenge?.scheme?.toLowerCase() === "dpop" ||
    context.session?.tokens.tokenType === "DPoP"
  )
}

const hasClientCredentials = (client: ClientConfig): boolean =>
  client.clientSecret !== undefined || client.privateKey !== undefined

/**
 * How long a discovery is reused for the next sign-in of the same engine. An hour keeps a
 * re-authorization at two requests while metadata changes still reach the engine the same day.
 */
export const DISCOVERY_REUSE_MS = 60 * 60_000

/** Inputs of the discovery actor: a fresh discovery, or the previous one to reuse. */
interface DiscoverInput {
  readonly serverUrl: string
  readonly resourceMetadataUrl: string | undefined
  readonly protocolVersion: string
  readonly reuse: Discovery | undefined
}

/**
 * Returns the previous discovery when it may be reused: recent, and no pending challenge names
 * resource metadata. Such a challenge means the metadata may have changed, so it is read again.
 */
const reusableDiscovery = (context: AuthContext, now: number): Discovery | undefined => {
  if (context.discovery === undefined || context.discoveredAt === undefined) return undefined
  if (now - context.discoveredAt > DISCOVERY_REUSE_MS) return undefined
  if (context.challenge?.resourceMetadataUrl !== undefined) return undefined
  return context.discovery
}

/** Chooses the scope of the next authorization: a step-up's union, else the selection strategy. */
const scopeFor = (context: AuthContext, discovery: Discovery): string | undefined => {
  const selected =
    context.stepUp?.scope ||
    selectScope({
      configured: context.input.scope,
      challenged: context.challenge?.scope,
      resourceScopes: discovery.resourceMetadata?.scopes_supported,
    })
  return context.grant.type === "authorization_code"
    ? withOfflineAccess(selected, discovery.authorizationServer.scopes_supported)
    : selected
}

const grantFor = (context: AuthContext, discovery: Discovery): GrantConfig =>
  chooseGrant(context.input.grant, discovery.authorizationServer, {
    clientId: context.input.client.clientId,
    hasCredentials: hasClientCredentials(context.input.client),
  })

/**
 * Builds the machine. Its actors run on `runtime`, which supplies the services; `dpop` holds
 * the engine's DPoP key and nonces. Guards and delays read the time from `now`, so a test clock
 * that also drives the actor's timers moves both together.
 */
export const makeAuthMachine = (
  runtime: Runtime.Runtime<AuthEnv>,
  dpop: DpopSession = makeDpopSession(),
  now: () => number = Date.now,
) =>
  setup({
    types: {
      context: {} as AuthContext,
      events: {} as AuthEvent,
      input: {} as MachineInput,
    },
    actors: {
      loadSession: fromEffect(runtime, (input: { serverUrl: string }) =>
        loadSession(input.serverUrl),
      ),
      discover: fromEffect(runtime, (input: DiscoverInput) =>
        input.reuse === undefined ? discover(input) : Effect.succeed(input.reuse),
      ),
      register: fromEffect(runtime, runRegister),
      callbackListener: fromScopedEffect(
        runtime,
        "STEP_FAILED",
        (api: {
          input: { preferredPort: number; enabled: boolean }
          sendBack: (event: ListenerEvent) => void
          onReceive: (
            listener: (event: { type: string; attempt?: AuthorizationAttempt }) => void,
          ) => void
        }) =>
          runCallbackListener({
            enabled: api.input.enabled,
            preferredPort: api.input.preferredPort,
            sendBack: api.sendBack,
            onReceive: api.onReceive,
          }),
      ),
      authorize: fromScopedEffect(
        runtime,
        "STEP_FAILED",
        (api: {
          input: AuthorizeInput
          sendBack: (event: {
            type: "AUTHORIZATION_STARTED"
            attempt: AuthorizationAttempt
          }) => void
        }) => runAuthorize(api.input, api.sendBack),
      ),
      signInLock: fromScopedEffect(
        runtime,
        "STEP_FAILED",
        (api: { input: SignInLockInput; sendBack: (event: SignInLockEvent) => void }) =>
          runSignInLock(api.input, api.sendBack),
      ),
      exchange: fromEffect(runtime, (input: ExchangeInput) => runExchange(input, dpop)),
      refresh: fromEffect(runtime, (input: RefreshInput) => runRefresh(input, dpop)),
      logout: fromEffect(runtime, runLogout),
    },
    actions: {
      markLoaded: assign({ loaded: true }),
      storeSession: assign(({ context }, params: { session: Session | undefined }) => ({
        session: params.session,
        loaded: true,
        error: undefined,
        refreshRetryAt: undefined,
        // A stored session brings its client, so a later sign-in at that issuer reuses it.
        registrations:
          params.session === undefined
            ? context.registrations
            : { ...context.registrations, [params.session.client.issuer]: params.session.client },
      })),
      storeExpiredTokenError: assign({
        error: ({ context }) =>
          new TokenError({
            reason: "invalid_response",
            grant: "refresh_token",
            endpoint: context.session?.authorizationServer.token_endpoint ?? "",
            detail: "the refreshed access token had already expired",
          }),
      }),
      storeChallenge: assign((_, params: { challenge: ChallengeInfo }) => ({
        challenge: params.challenge,
      })),
      storeStepUp: assign(({ context }, params: { challenge: ChallengeInfo }) => {
        // The new request keeps what was granted and adds what the server asked for.
        const scope =
          unionScopes(
            context.session?.tokens.scope ?? context.attempt?.scope,
            params.challenge.scope,
          ) ?? ""
        const attempts = context.stepUp?.scope === scope ? context.stepUp.attempts + 1 : 1
        return { challenge: params.challenge, stepUp: { scope, attempts } }
      }),
      storeRedirectUri: assign((_, params: { redirectUri: string }) => ({
        redirectUri: params.redirectUri,
      })),
      storeDiscovery: assign(({ context }, params: { discovery: Discovery }) => ({
        grant: grantFor(context, params.discovery),
        discovery: params.discovery,
        // A reused discovery keeps its original time, so reuse never outlives the window.
        discoveredAt: params.discovery === context.discovery ? context.discoveredAt : now(),
      })),
      storeRegistration: assign(({ context }, params: { registration: ClientRegistration }) => ({
        registrations: {
          ...context.registrations,
          [params.registration.issuer]: params.registration,
        },
      })),
      // After `invalid_client` the next sign-in registers anew instead of reusing this client.
      forgetRejectedClient: assign(
        ({ context }, params: { error: unknown; issuer: string | undefined }) => {
          const error = params.error
          const rejected =
            isAuthError(error) && error._tag === "TokenError" && error.reason === "invalid_client"
          if (!rejected || params.issuer === undefined) return {}
          const { [params.issuer]: _rejected, ...registrations } = context.registrations
          return { registrations }
        },
      ),
      storeAttempt: assign((_, params: { attempt: AuthorizationAttempt }) => ({
        attempt: params.attempt,
      })),
      armCallbackListener: sendTo("callbackListener", ({ context }) => ({
        type: "EXPECT",
        attempt: context.attempt,
      })),
      storeCallback: assign((_, params: { params: Redacted.Redacted<URLSearchParams> }) => ({
        callbackParams: params.params,
      })),
      storeError: assign((_, params: { error: unknown }) => ({ error: asAuthError(params.error) })),
      storeCallbackError: assign(
        ({ context }, params: { params: Redacted.Redacted<URLSearchParams> }) => {
          if (context.attempt === undefined) return {}
          const result = validateCallback(Redacted.value(params.params), context.attempt)
          return result._tag === "Left" ? { error: result.left } : {}
        },
      ),
      storeTimeoutError: assign({
        error: () =>
          new AuthorizationError({
            reason: "timeout",
            detail: "no redirect reached the callback in time",
          }),
      }),
      storeCancelled: assign({
        error: ({ context }) =>
          new SignInRequired({ reason: "cancelled", serverUrl: context.input.serverUrl }),
      }),
      storeStepUpLimit: assign({
        error: ({ context }) =>
          new SignInRequired({
            reason: "step_up_limit",
            serverUrl: context.input.serverUrl,
            detail: `the server asked for more scope ${MAX_STEP_UP_ATTEMPTS} times`,
          }),
      }),
      clearAttempt: assign({ attempt: undefined, callbackParams: undefined }),
      clearSession: assign(({ context }) => ({
        session: undefined,
        droppedGeneration: context.session?.generation ?? context.droppedGeneration,
      })),
      clearChallenge: assign({ challenge: undefined }),
      clearRedirectUri: assign({ redirectUri: undefined }),
      pauseRefresh: assign({
        refreshRetryAt: ({ context }) => {
          const current = now()
          const expiresAt = context.session?.tokens.expiresAt
          // Never pause past expiry: the last chance to refresh is just before it.
          return expiresAt === undefined
            ? current + REFRESH_RETRY_DELAY_MS
            : Math.min(current + REFRESH_RETRY_DELAY_MS, expiresAt - 1_000)
        },
      }),
      clearError: assign({ error: undefined }),
      resetAfterLogout: assign({
        session: undefined,
        challenge: undefined,
        stepUp: undefined,
        discovery: undefined,
        discoveredAt: undefined,
        attempt: undefined,
        callbackParams: undefined,
        error: undefined,
        loaded: false,
      }),
    },
    guards: {
      hasUsableSession: (_, params: { session: Session | undefined }) =>
        hasUsableToken(params.session, now()),
      hasRefreshableSession: (_, params: { session: Session | undefined }) =>
        params.session?.tokens.refreshToken !== undefined,
      canRefresh: ({ context }) => context.session?.tokens.refreshToken !== undefined,
      isRefreshDue: ({ context }) => nextRefreshIn(context, now()) === 0,
      hasUsableToken: ({ context }) => hasUsableToken(context.session, now()),
      isListening: ({ context }) => context.redirectUri !== undefined,
      isReadyToRegister: ({ context }, params: { discovery: Discovery }) =>
        context.redirectUri !== undefined ||
        grantFor(context, params.discovery).type !== "authorization_code",
      isNonInteractiveGrant: ({ context }) => context.grant.type !== "authorization_code",
      isCallbackRejected: ({ context }, params: { params: Redacted.Redacted<URLSearchParams> }) =>
        context.attempt === undefined ||
        validateCallback(Redacted.value(params.params), context.attempt)._tag === "Left",
      isStepUpLimitReached: ({ context }, params: { challenge: ChallengeInfo }) => {
        const scope =
          unionScopes(
            context.session?.tokens.scope ?? context.attempt?.scope,
            params.challenge.scope,
          ) ?? ""
        return context.stepUp?.scope === scope && context.stepUp.attempts >= MAX_STEP_UP_ATTEMPTS
      },
      errorIs: (
        _,
        params: { error: unknown; tag: AuthError["_tag"]; reasons?: ReadonlyArray<string> },
      ) => {
        const error = params.error
        if (!isAuthError(error) || error._tag !== params.tag) return false
        return (
          params.reasons === undefined ||
          ("reason" in error && params.reasons.includes(error.reason))
        )
      },
    },
    delays: {
      refreshDelay: ({ context }) => nextRefreshIn(context, now()),
      callbackTimeout: ({ context }) => context.input.callbackTimeoutMs,
    },
  }).createMachine({
    id: "mcpAuth",
    context: ({ input }) => ({ input, loaded: false, registrations: {}, grant: input.grant }),
    initial: "idle",
    states: {
      idle: {
        invoke: {
          id: "loadSession",
          src: "loadSession",
          input: ({ context }) => ({ serverUrl: context.input.serverUrl }),
          onDone: [
            {
              guard: {
                type: "hasUsableSession",
                params: ({ event }) => ({ session: event.output }),
              },
              target: "authenticated",
              actions: { type: "storeSession", params: ({ event }) => ({ session: event.output }) },
            },
            {
              guard: {
                type: "hasRefreshableSession",
                params: ({ event }) => ({ session: event.output }),
              },
              target: "refreshing",
              actions: { type: "storeSession", params: ({ event }) => ({ session: event.output }) },
            },
            { actions: "markLoaded" },
          ],
          onError: {
            target: "failed",
            actions: { type: "storeError", params: ({ event }) => ({ error: event.error }) },
          },
        },
        on: {
          AUTHENTICATE: { target: "authorizing", actions: "clearError" },
          // A stored session that is expired and cannot be refreshed still has to be deletable.
          LOGOUT: { target: "loggingOut" },
          UNAUTHORIZED: {
            target: "authRequired",
            actions: {
              type: "storeChallenge",
              params: ({ event }) => ({ challenge: event.challenge }),
            },
          },
        },
      },
      authRequired: {
        on: {
          AUTHENTICATE: { target: "authorizing", actions: "clearError" },
          UNAUTHORIZED: {
            actions: {
              type: "storeChallenge",
              params: ({ event }) => ({ challenge: event.challenge }),
            },
          },
          CANCEL: { actions: "storeCancelled" },
          LOGOUT: { target: "loggingOut" },
        },
      },
      authorizing: {
        entry: "clearRedirectUri",
        invoke: [
          {
            id: "callbackListener",
            src: "callbackListener",
            input: ({ context }) => ({
              preferredPort: context.input.callbackPort,
              // Grants without a browser never receive a redirect, so no port is opened for them.
              // NOTE: when the server's metadata turns the default browser grant into client
              // credentials, that choice comes after this listener started, so a port is bound
              // (and never used) until the sign-in ends.
              enabled: context.input.grant.type === "authorization_code",
            }),
          },
          {
            id: "signInLock",
            src: "signInLock",
            input: ({ context }): SignInLockInput => ({
              serverUrl: context.input.serverUrl,
              generation: context.session?.generation ?? context.droppedGeneration,
              timeoutMs: context.input.callbackTimeoutMs + SIGN_IN_LOCK_MARGIN_MS,
            }),
          },
        ],
        on: {
          LISTENING: {
            actions: {
              type: "storeRedirectUri",
              params: ({ event }) => ({ redirectUri: event.redirectUri }),
            },
          },
          STEP_FAILED: {
            target: "failed",
            actions: { type: "storeError", params: ({ event }) => ({ error: event.error }) },
          },
          CANCEL: { target: "authRequired", actions: ["storeCancelled", "clearAttempt"] },
          LOGOUT: { target: "loggingOut" },
        },
        initial: "waitingForLock",
        states: {
          waitingForLock: {
            on: {
              LOCKED: { target: "discovering" },
              SESSION_FOUND: {
                target: "#mcpAuth.authenticated",
                actions: {
                  type: "storeSession",
                  params: ({ event }) => ({ session: event.session }),
                },
              },
            },
          },
          discovering: {
            invoke: {
              id: "discover",
              src: "discover",
              input: ({ context }): DiscoverInput => ({
                serverUrl: context.input.serverUrl,
                resourceMetadataUrl: context.challenge?.resourceMetadataUrl,
                protocolVersion: context.input.protocolVersion,
                reuse: reusableDiscovery(context, now()),
              }),
              onDone: [
                {
                  guard: {
                    type: "isReadyToRegister",
                    params: ({ event }) => ({ discovery: event.output }),
                  },
                  target: "registering",
                  actions: {
                    type: "storeDiscovery",
                    params: ({ event }) => ({ discovery: event.output }),
                  },
                },
                {
                  target: "waitingForListener",
                  actions: {
                    type: "storeDiscovery",
                    params: ({ event }) => ({ discovery: event.output }),
                  },
                },
              ],
              onError: {
                target: "#mcpAuth.failed",
                actions: { type: "storeError", params: ({ event }) => ({ error: event.error }) },
              },
            },
          },
          waitingForListener: {
            always: { guard: "isListening", target: "registering" },
          },
          registering: {
            invoke: {
              id: "register",
              src: "register",
              input: ({ context }) => {
                const discovery = context.discovery!
                return {
                  discovery,
                  redirectUri: context.redirectUri,
                  client: context.input.client,
                  cached: context.registrations[discovery.authorizationServer.issuer],
                  interactive: context.grant.type === "authorization_code",
                }
              },
              onDone: [
                {
                  guard: "isNonInteractiveGrant",
                  target: "exchanging",
                  actions: {
                    type: "storeRegistration",
                    params: ({ event }) => ({ registration: event.output }),
                  },
                },
                {
                  target: "awaitingCallback",
                  actions: {
                    type: "storeRegistration",
                    params: ({ event }) => ({ registration: event.output }),
                  },
                },
              ],
              onError: {
                target: "#mcpAuth.failed",
                actions: { type: "storeError", params: ({ event }) => ({ error: event.error }) },
              },
            },
          },
          awaitingCallback: {
            invoke: {
              id: "authorize",
              src: "authorize",
              input: ({ context }) => {
                const discovery = context.discovery!
                return {
                  discovery,
                  registration: context.registrations[discovery.authorizationServer.issuer]!,
                  redirectUri: context.redirectUri!,
                  scope: scopeFor(context, discovery),
                }
              },
            },
            on: {
              AUTHORIZATION_STARTED: {
                actions: [
                  { type: "storeAttempt", params: ({ event }) => ({ attempt: event.attempt }) },
                  "armCallbackListener",
                ],
              },
              CALLBACK: [
                {
                  guard: {
                    type: "isCallbackRejected",
                    params: ({ event }) => ({ params: event.params }),
                  },
                  target: "#mcpAuth.failed",
                  actions: {
                    type: "storeCallbackError",
                    params: ({ event }) => ({ params: event.params }),
                  },
                },
                {
                  target: "exchanging",
                  actions: {
                    type: "storeCallback",
                    params: ({ event }) => ({ params: event.params }),
                  },
                },
              ],
            },
            after: {
              callbackTimeout: { target: "#mcpAuth.failed", actions: "storeTimeoutError" },
            },
          },
          exchanging: {
            invoke: {
              id: "exchange",
              src: "exchange",
              input: ({ context }): ExchangeInput => {
                const discovery = context.discovery!
                const registration = context.registrations[discovery.authorizationServer.issuer]!
                if (context.grant.type !== "authorization_code") {
                  return {
                    kind: "grant",
                    discovery,
                    registration,
                    grant: context.grant,
                    privateKey: context.input.client.privateKey,
                    scope: scopeFor(context, discovery),
                    dpop: wantsDpop(context),
                  }
                }
                return {
                  kind: "authorization_code",
                  discovery,
                  registration,
                  attempt: context.attempt!,
                  params: context.callbackParams!,
                  privateKey: context.input.client.privateKey,
                  dpop: wantsDpop(context),
                }
              },
              onDone: {
                target: "#mcpAuth.authenticated",
                actions: [
                  { type: "storeSession", params: ({ event }) => ({ session: event.output }) },
                  "clearAttempt",
                  // The sign-in resolved the challenge, so a later refresh must not act on it again.
                  "clearChallenge",
                ],
              },
              onError: {
                target: "#mcpAuth.failed",
                actions: [
                  { type: "storeError", params: ({ event }) => ({ error: event.error }) },
                  {
                    type: "forgetRejectedClient",
                    params: ({ context, event }) => ({
                      error: event.error,
                      issuer: context.discovery?.authorizationServer.issuer,
                    }),
                  },
                  "clearAttempt",
                ],
              },
            },
          },
        },
      },
      authenticated: {
        after: {
          refreshDelay: [
            { guard: and(["isRefreshDue", "canRefresh"]), target: "refreshing" },
            { guard: and(["isRefreshDue", "isNonInteractiveGrant"]), target: "authorizing" },
            { guard: "isRefreshDue", target: "authRequired", actions: "clearSession" },
            { target: "authenticated", reenter: true },
          ],
        },
        on: {
          REFRESH: [
            { guard: "canRefresh", target: "refreshing" },
            { guard: "isNonInteractiveGrant", target: "authorizing" },
            { target: "authRequired", actions: "clearSession" },
          ],
          UNAUTHORIZED: [
            {
              guard: "canRefresh",
              target: "refreshing",
              actions: {
                type: "storeChallenge",
                params: ({ event }) => ({ challenge: event.challenge }),
              },
            },
            {
              guard: "isNonInteractiveGrant",
              target: "authorizing",
              actions: {
                type: "storeChallenge",
                params: ({ event }) => ({ challenge: event.challenge }),
              },
            },
            {
              target: "authRequired",
              actions: [
                { type: "storeChallenge", params: ({ event }) => ({ challenge: event.challenge }) },
                "clearSession",
              ],
            },
          ],
          INSUFFICIENT_SCOPE: [
            {
              guard: {
                type: "isStepUpLimitReached",
                params: ({ event }) => ({ challenge: event.challenge }),
              },
              target: "failed",
              actions: "storeStepUpLimit",
            },
            {
              target: "authRequired",
              actions: {
                type: "storeStepUp",
                params: ({ event }) => ({ challenge: event.challenge }),
              },
            },
          ],
          AUTHENTICATE: { target: "authorizing" },
          LOGOUT: { target: "loggingOut" },
        },
      },
      refreshing: {
        invoke: {
          id: "refresh",
          src: "refresh",
          input: ({ context }): RefreshInput => ({
            session: context.session!,
            dpop: wantsDpop(context),
            resourceMetadataUrl: context.challenge?.resourceMetadataUrl,
            protocolVersion: context.input.protocolVersion,
            privateKey: context.input.client.privateKey,
          }),
          onDone: [
            {
              guard: {
                type: "hasUsableSession",
                params: ({ event }) => ({ session: event.output }),
              },
              target: "authenticated",
              actions: [
                { type: "storeSession", params: ({ event }) => ({ session: event.output }) },
                "clearChallenge",
              ],
            },
            {
              // Refreshing again at once would loop, so the engine fails and reports the error instead.
              target: "failed",
              actions: [
                { type: "storeSession", params: ({ event }) => ({ session: event.output }) },
                "storeExpiredTokenError",
              ],
            },
          ],
          onError: [
            {
              guard: {
                type: "errorIs",
                params: ({ event }) => ({
                  error: event.error,
                  tag: "DiscoveryError",
                  reasons: ["authorization_server_changed"],
                }),
              },
              // The challenge stays, so the next sign-in discovers the new server.
              target: "authRequired",
              actions: [
                { type: "storeError", params: ({ event }) => ({ error: event.error }) },
                "clearSession",
              ],
            },
            {
              guard: {
                type: "errorIs",
                params: ({ event }) => ({
                  error: event.error,
                  tag: "TokenError",
                  reasons: ["invalid_grant", "invalid_client"],
                }),
              },
              target: "authRequired",
              actions: [
                { type: "storeError", params: ({ event }) => ({ error: event.error }) },
                {
                  type: "forgetRejectedClient",
                  params: ({ context, event }) => ({
                    error: event.error,
                    issuer: context.session?.client.issuer,
                  }),
                },
                "clearSession",
              ],
            },
            {
              // A transient failure while the current token still works keeps the session.
              guard: "hasUsableToken",
              target: "authenticated",
              actions: [
                { type: "storeError", params: ({ event }) => ({ error: event.error }) },
                "pauseRefresh",
              ],
            },
            {
              target: "failed",
              actions: { type: "storeError", params: ({ event }) => ({ error: event.error }) },
            },
          ],
        },
        on: { LOGOUT: { target: "loggingOut" } },
      },
      failed: {
        on: {
          AUTHENTICATE: { target: "authorizing", actions: "clearError" },
          RETRY: { target: "authorizing", actions: "clearError" },
          UNAUTHORIZED: {
            target: "authRequired",
            actions: {
              type: "storeChallenge",
              params: ({ event }) => ({ challenge: event.challenge }),
            },
          },
          LOGOUT: { target: "loggingOut" },
        },
      },
      loggingOut: {
        invoke: {
          id: "logout",
          src: "logout",
          input: ({ context }) => ({
            serverUrl: context.input.serverUrl,
            session: context.session,
            privateKey: context.input.client.privateKey,
          }),
          onDone: { target: "idle", actions: "resetAfterLogout" },
          onError: { target: "idle", actions: "resetAfterLogout" },
        },
      },
    },
  })

/** The machine type. */
export type AuthMachine = ReturnType<typeof makeAuthMachine>
