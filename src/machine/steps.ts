/**
 * The Effect run by each actor of the statechart. Each joins protocol steps with services and
 * persists what must survive a crash before the machine moves on.
 */
import type { HttpClient } from "@effect/platform"
import { Effect, Either, Redacted } from "effect"
import { AuthorizationError, DiscoveryError, type TokenError } from "../errors.js"
import {
  type AuthorizationAttempt,
  createAttempt,
  validateCallback,
} from "../protocol/authorization.js"
import { currentAuthorizationServer, type Discovery, issuerMatches } from "../protocol/discovery.js"
import { type DpopKey, DpopNonces, generateDpopKey } from "../protocol/dpop.js"
import {
  clientCredentialsGrant,
  type GrantConfig,
  idJagGrant,
  jwtBearerGrant,
} from "../protocol/grants.js"
import { type ClientConfig, register } from "../protocol/registration.js"
import {
  loadRegistration,
  loadSession,
  removeRegistration,
  removeSession,
  removeSessionIfNotNewer,
  saveRegistration,
  saveSession,
  sessionKey,
} from "../protocol/session.js"
import {
  type ClientPrivateKey,
  type DpopBinding,
  exchangeCode,
  refreshTokens,
  revokeTokens,
} from "../protocol/token.js"
import { type ClientRegistration, SESSION_VERSION, type Session } from "../schema/session.js"
import { Browser } from "../services/browser.js"
import { CallbackServer } from "../services/callback-server.js"
import { Keychain, lockKey } from "../services/keychain.js"

/** Every service the machine's actors need. */
export type AuthEnv = HttpClient.HttpClient | Keychain | Browser | CallbackServer

/** Events the callback listener actor sends to the machine. */
export type ListenerEvent =
  | { readonly type: "LISTENING"; readonly redirectUri: string }
  | { readonly type: "CALLBACK"; readonly params: Redacted.Redacted<URLSearchParams> }

/** Binds the loopback listener and reports callbacks until the machine leaves `authorizing`. */
export const runCallbackListener = (options: {
  /** False for grants without a browser: nothing is bound. */
  readonly enabled: boolean
  readonly preferredPort: number
  readonly sendBack: (event: ListenerEvent) => void
  readonly onReceive: (
    listener: (event: { type: string; attempt?: AuthorizationAttempt }) => void,
  ) => void
}) =>
  Effect.gen(function* () {
    if (!options.enabled) return
    const server = yield* CallbackServer
    const listener = yield* server.listen({
      preferredPort: options.preferredPort,
      onCallback: (params) => options.sendBack({ type: "CALLBACK", params: Redacted.make(params) }),
    })
    options.onReceive((event) => {
      if (event.type === "EXPECT") listener.expect(event.attempt)
    })
    yield* Effect.logDebug("callback listener ready").pipe(
      Effect.annotateLogs({ port: listener.port }),
    )
    options.sendBack({ type: "LISTENING", redirectUri: listener.redirectUri })
  })

/** Inputs of the authorize actor. */
export interface AuthorizeInput {
  readonly discovery: Discovery
  readonly registration: ClientRegistration
  readonly redirectUri: string
  readonly scope: string | undefined
}

/** Events the authorize actor sends to the machine. */
export type AuthorizeEvent = {
  readonly type: "AUTHORIZATION_STARTED"
  readonly attempt: AuthorizationAttempt
}

/**
 * Creates the attempt, hands it to the machine (which arms the listener with its `state`), then
 * opens the user agent. An unsafe authorization endpoint fails before anything is launched.
 */
export const runAuthorize = (input: AuthorizeInput, sendBack: (event: AuthorizeEvent) => void) =>
  Effect.gen(function* () {
    const attempt = yield* createAttempt({
      authorizationServer: input.discovery.authorizationServer,
      clientId: input.registration.clientId,
      redirectUri: input.redirectUri,
      resource: input.discovery.resource,
      scope: input.scope,
    })
    sendBack({ type: "AUTHORIZATION_STARTED", attempt })
    const browser = yield* Browser
    yield* Effect.logInfo("opening the authorization URL").pipe(
      Effect.annotateLogs({
        userAgent: browser.name,
        authorizationServer: new URL(input.discovery.authorizationServer.authorization_endpoint)
          .origin,
      }),
    )
    yield* browser.open(Redacted.value(attempt.authorizationUrl), attempt.redirectUri)
  })

/** Inputs of the token step: a code exchange, or a grant without a browser. */
export type ExchangeInput =
  | {
      readonly kind: "authorization_code"
      readonly discovery: Discovery
      readonly registration: ClientRegistration
      readonly attempt: AuthorizationAttempt
      readonly params: Redacted.Redacted<URLSearchParams>
      readonly privateKey: ClientPrivateKey | undefined
      readonly dpop: boolean
    }
  | {
      readonly kind: "grant"
      readonly discovery: Discovery
      readonly registration: ClientRegistration
      readonly grant: Exclude<GrantConfig, { readonly type: "authorization_code" }>
      readonly privateKey: ClientPrivateKey | undefined
      readonly scope: string | undefined
      readonly dpop: boolean
    }

/** The engine's DPoP key (made on first use) and the nonces servers handed out. */
export interface DpopSession {
  readonly nonces: DpopNonces
  readonly binding: () => Promise<DpopBinding>
}

/** Creates a DPoP session whose key pair is generated on first use. */
export const makeDpopSession = (): DpopSession => {
  let key: Promise<DpopKey> | undefined
  const nonces = new DpopNonces()
  return {
    nonces,
    binding: async () => {
      key ??= generateDpopKey()
      return { key: await key, nonces }
    },
  }
}

const dpopBinding = (wanted: boolean, session: DpopSession) =>
  wanted ? Effect.promise(() => session.binding()) : Effect.succeed(undefined)

const obtainTokens = (input: ExchangeInput, dpop: DpopBinding | undefined) =>
  Effect.gen(function* () {
    const authorizationServer = input.discovery.authorizationServer
    if (input.kind === "authorization_code") {
      const callback = yield* Either.mapLeft(
        validateCallback(Redacted.value(input.params), input.attempt),
        (error): AuthorizationError | TokenError => error,
      )
      return yield* exchangeCode({
        authorizationServer,
        registration: input.registration,
        attempt: input.attempt,
        callback,
        privateKey: input.privateKey,
        dpop,
      })
    }
    const grantInput = {
      authorizationServer,
      registration: input.registration,
      privateKey: input.privateKey,
      resource: input.discovery.resource,
      scope: input.scope,
      dpop,
    }
    switch (input.grant.type) {
      case "client_credentials":
        return yield* clientCredentialsGrant(grantInput)
      case "jwt_bearer":
        return yield* jwtBearerGrant({ ...grantInput, assertion: input.grant.assertion })
      case "id_jag":
        return yield* idJagGrant({ ...grantInput, identityProvider: input.grant.identityProvider })
    }
  })

/** Obtains tokens for the chosen grant and persists the new session before returning it. */
export const runExchange = (input: ExchangeInput, dpopSession: DpopSession) =>
  Effect.gen(function* () {
    const dpop = yield* dpopBinding(input.dpop, dpopSession)
    const tokens = yield* obtainTokens(input, dpop).pipe(
      Effect.tapError((error) =>
        isInvalidClient(error) ? forgetRegistration(input.registration) : Effect.void,
      ),
    )
    const previous = yield* loadSession(input.discovery.serverUrl).pipe(
      Effect.orElseSucceed(() => undefined),
    )
    const session: Session = {
      version: SESSION_VERSION,
      serverUrl: input.discovery.serverUrl,
      resource: input.discovery.resource,
      authorizationServer: input.discovery.authorizationServer,
      client: input.registration,
      tokens,
      generation: previous?.generation ?? 0,
    }
    return yield* saveSession(session)
  })

/** Inputs of a refresh. */
export interface RefreshInput {
  readonly session: Session
  readonly dpop: boolean
  /** `resource_metadata` of the 401 that asked for this refresh, read again before refreshing. */
  readonly resourceMetadataUrl?: string | undefined
  readonly protocolVersion: string
  readonly privateKey: ClientPrivateKey | undefined
}

/**
 * Fails with `authorization_server_changed` when the resource metadata now names another
 * authorization server: refreshing at the old one would only get tokens the server rejects.
 */
const checkAuthorizationServer = (input: RefreshInput) =>
  Effect.gen(function* () {
    if (input.resourceMetadataUrl === undefined) return
    const issuer = yield* currentAuthorizationServer({
      serverUrl: input.session.serverUrl,
      resourceMetadataUrl: input.resourceMetadataUrl,
      protocolVersion: input.protocolVersion,
    })
    const previous = input.session.authorizationServer.issuer
    if (issuer !== undefined && !issuerMatches(previous, issuer)) {
      return yield* new DiscoveryError({
        reason: "authorization_server_changed",
        expected: previous,
        received: issuer,
        detail: "the protected resource metadata names a new authorization server",
      })
    }
  })

/** How long a refresh waits for another process's refresh of the same session. */
export const REFRESH_LOCK_TIMEOUT_MS = 60_000

/** Tells whether a stored session's access token can still be handed out. */
const isFresh = (session: Session, now: number): boolean =>
  session.tokens.expiresAt === undefined || session.tokens.expiresAt > now

/**
 * Refreshes under the session's lock. The lock owner first reads the store again: when
 * another process (or engine) refreshed meanwhile, its fresh tokens are used and no request is
 * sent, so a rotating refresh token is never spent twice.
 */
export const runRefresh = (input: RefreshInput, dpopSession: DpopSession) =>
  Effect.scoped(
    Effect.gen(function* () {
      const keychain = yield* Keychain
      yield* lockKey(keychain, sessionKey(input.session.serverUrl), REFRESH_LOCK_TIMEOUT_MS)
      const stored = yield* loadSession(input.session.serverUrl).pipe(
        Effect.orElseSucceed(() => undefined),
      )
      if (
        stored !== undefined &&
        stored.generation > input.session.generation &&
        stored.client.issuer === input.session.client.issuer &&
        isFresh(stored, Date.now())
      ) {
        yield* Effect.logInfo("reusing a session refreshed by another process").pipe(
          Effect.annotateLogs({ serverUrl: stored.serverUrl, generation: stored.generation }),
        )
        return stored
      }
      // A newer record carries the newest refresh token; an older one is never used.
      const session =
        stored !== undefined && stored.generation > input.session.generation
          ? stored
          : input.session
      return yield* refreshUnlocked({ ...input, session }, dpopSession)
    }),
  )

/** Inputs of a sign-in lock. */
export interface SignInLockInput {
  readonly serverUrl: string
  /** The generation of the session the engine holds, if any. */
  readonly generation: number | undefined
  readonly timeoutMs: number
}

/** Events the sign-in lock actor sends to the machine. */
export type SignInLockEvent =
  | { readonly type: "LOCKED" }
  | { readonly type: "SESSION_FOUND"; readonly session: Session }

/**
 * Holds the session's lock for a whole sign-in, so only one process opens a browser for a
 * server. Once held, the store is read again: a usable session newer than the engine's own
 * (another process signed in meanwhile) is reported instead of signing in again.
 */
export const runSignInLock = (input: SignInLockInput, sendBack: (event: SignInLockEvent) => void) =>
  Effect.gen(function* () {
    const keychain = yield* Keychain
    yield* lockKey(keychain, sessionKey(input.serverUrl), input.timeoutMs)
    const stored = yield* loadSession(input.serverUrl).pipe(Effect.orElseSucceed(() => undefined))
    if (
      stored !== undefined &&
      stored.generation > (input.generation ?? 0) &&
      isFresh(stored, Date.now())
    ) {
      sendBack({ type: "SESSION_FOUND", session: stored })
      return
    }
    sendBack({ type: "LOCKED" })
  })

/**
 * Refreshes the session's tokens and persists them before they are handed out. A rejected
 * grant or client is cleared from the store (see `forgetRejectedGrant`).
 */
const refreshUnlocked = (input: RefreshInput, dpopSession: DpopSession) =>
  Effect.gen(function* () {
    const session = input.session
    yield* checkAuthorizationServer(input)
    const dpop = yield* dpopBinding(input.dpop, dpopSession)
    const tokens = yield* refreshTokens({
      dpop,
      privateKey: input.privateKey,
      authorizationServer: session.authorizationServer,
      registration: session.client,
      resource: session.resource,
      tokens: session.tokens,
    }).pipe(Effect.tapError((error) => forgetRejectedGrant(session, error.reason)))
    return yield* saveSession({ ...session, tokens })
  })

/**
 * Clears what a rejected refresh showed to be dead. On `invalid_grant` only the tokens go: the
 * client registration is stored on its own first, so the next sign-in reuses it. On
 * `invalid_client` the registration goes too, so the next sign-in registers a new client.
 * Failures to write are ignored: the refresh error is what the machine acts on.
 */
const forgetRejectedGrant = (session: Session, reason: string) =>
  Effect.gen(function* () {
    if (reason !== "invalid_grant" && reason !== "invalid_client") return
    if (reason === "invalid_client") {
      yield* forgetRegistration(session.client)
    } else if (session.client.source === "dynamic") {
      const stored = yield* loadRegistration(session.client.issuer, session.client.redirectUri)
      if (stored?.clientId !== session.client.clientId) yield* saveRegistration(session.client)
    }
    yield* removeSessionIfNotNewer(session.serverUrl, session.generation)
  }).pipe(Effect.orElseSucceed(() => undefined))

const isInvalidClient = (error: { readonly _tag: string }): boolean =>
  error._tag === "TokenError" && "reason" in error && error.reason === "invalid_client"

/** Deletes the stored record of a dynamically registered client the server rejected. */
const forgetRegistration = (registration: ClientRegistration) =>
  registration.source === "dynamic"
    ? removeRegistration(registration.issuer, registration.redirectUri).pipe(
        Effect.tap(() =>
          Effect.logWarning(
            "the authorization server rejected the client; it is registered anew at the next sign-in",
          ).pipe(Effect.annotateLogs({ issuer: registration.issuer })),
        ),
        Effect.orElseSucceed(() => undefined),
      )
    : Effect.void

/** Revokes the session's tokens where the server allows it, then deletes the stored session. */
export const runLogout = (input: {
  readonly serverUrl: string
  readonly session: Session | undefined
  readonly privateKey: ClientPrivateKey | undefined
}) =>
  Effect.gen(function* () {
    // Delete first: a crash during revocation must not leave usable tokens on disk.
    yield* removeSession(input.serverUrl)
    if (input.session !== undefined) {
      yield* revokeTokens({
        privateKey: input.privateKey,
        authorizationServer: input.session.authorizationServer,
        registration: input.session.client,
        resource: input.session.resource,
        tokens: input.session.tokens,
      })
    }
  })

/** Inputs of the registration step. */
export interface RegisterInput {
  readonly discovery: Discovery
  readonly redirectUri: string | undefined
  readonly client: ClientConfig
  readonly cached: ClientRegistration | undefined
  readonly interactive: boolean
}

/**
 * Obtains the client identity for a sign-in. A dynamic registration stored by an earlier run for
 * the same issuer and redirect URI is reused unless the machine holds one for that redirect URI,
 * and a new one is stored, so a restart or a rejected refresh token does not register another
 * client.
 */
export const runRegister = (input: RegisterInput) =>
  Effect.gen(function* () {
    const issuer = input.discovery.authorizationServer.issuer
    const stored =
      input.client.clientId === undefined && input.interactive
        ? yield* loadRegistration(issuer, input.redirectUri).pipe(
            Effect.orElseSucceed(() => undefined),
          )
        : undefined
    const registration = yield* register({
      authorizationServer: input.discovery.authorizationServer,
      redirectUri: input.redirectUri,
      client: input.client,
      // The machine's registration wins when it fits this redirect URI; it may be newer.
      cached: input.cached?.redirectUri === input.redirectUri ? input.cached : stored,
      interactive: input.interactive,
    })
    if (registration.source === "dynamic" && registration.clientId !== stored?.clientId) {
      yield* saveRegistration(registration).pipe(
        Effect.catchAll((error) =>
          Effect.logWarning("cannot store the client registration").pipe(
            Effect.annotateLogs({ issuer, error: error.message }),
          ),
        ),
      )
    }
    return registration
  })

export { loadSession }

/** Creates the error for a step whose inputs are missing, which is a bug rather than a server fault. */
export const missingInput = (what: string) =>
  new AuthorizationError({ reason: "cancelled", detail: `internal: ${what} is missing` })
