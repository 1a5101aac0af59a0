/**
 * The Effect run by each actor of the statechart. Each joins protocol steps with services and
 * persists what must survive a crash before the machine moves on.
 */
import type { HttpClient } from "@effect/platform"
import { Effect, Either, Redacted } from "effect"
import { AuthorizationError, type KeychainError, type TokenError } from "../errors.js"
import {
  type AuthorizationAttempt,
  createAttempt,
  validateCallback,
} from "../protocol/authorization.js"
import type { Discovery } from "../protocol/discovery.js"
import type { ClientConfig } from "../protocol/registration.js"
import { loadSession, removeSession, saveSession } from "../protocol/session.js"
import { exchangeCode, refreshTokens, revokeTokens } from "../protocol/token.js"
import { type ClientRegistration, SESSION_VERSION, type Session } from "../schema/session.js"
import { Browser } from "../services/browser.js"
import { CallbackServer } from "../services/callback-server.js"
import type { Keychain } from "../services/keychain.js"

/** Every service the machine's actors need. */
export type AuthEnv = HttpClient.HttpClient | Keychain | Browser | CallbackServer

/** Events the callback listener actor sends to the machine. */
export type ListenerEvent =
  | { readonly type: "LISTENING"; readonly redirectUri: string }
  | { readonly type: "CALLBACK"; readonly params: Redacted.Redacted<URLSearchParams> }

/** Binds the loopback listener and reports callbacks until the machine leaves `authorizing`. */
export const runCallbackListener = (options: {
  readonly preferredPort: number
  readonly sendBack: (event: ListenerEvent) => void
  readonly onReceive: (
    listener: (event: { type: string; attempt?: AuthorizationAttempt }) => void,
  ) => void
}) =>
  Effect.gen(function* () {
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
      redirectUri: input.registration.redirectUri,
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

/** Inputs of the code exchange. */
export interface ExchangeInput {
  readonly discovery: Discovery
  readonly registration: ClientRegistration
  readonly attempt: AuthorizationAttempt
  readonly params: Redacted.Redacted<URLSearchParams>
}

/** Validates the callback, exchanges the code, and persists the new session before returning it. */
export const runExchange = (input: ExchangeInput) =>
  Effect.gen(function* () {
    const callback = yield* Either.mapLeft(
      validateCallback(Redacted.value(input.params), input.attempt),
      (error): AuthorizationError | TokenError | KeychainError => error,
    )
    const tokens = yield* exchangeCode({
      authorizationServer: input.discovery.authorizationServer,
      registration: input.registration,
      attempt: input.attempt,
      callback,
    })
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

/**
 * Refreshes the session's tokens and persists them before they are handed out. On
 * `invalid_grant` the stored tokens are deleted, because the grant is gone.
 */
export const runRefresh = (session: Session) =>
  Effect.gen(function* () {
    const tokens = yield* refreshTokens({
      authorizationServer: session.authorizationServer,
      registration: session.client,
      resource: session.resource,
      tokens: session.tokens,
    }).pipe(
      Effect.tapError((error) =>
        error.reason === "invalid_grant"
          ? removeSession(session.serverUrl).pipe(Effect.orElseSucceed(() => undefined))
          : Effect.void,
      ),
    )
    return yield* saveSession({ ...session, tokens })
  })

/** Revokes the session's tokens where the server allows it, then deletes the stored session. */
export const runLogout = (input: {
  readonly serverUrl: string
  readonly session: Session | undefined
}) =>
  Effect.gen(function* () {
    // Delete first: a crash during revocation must not leave usable tokens on disk.
    yield* removeSession(input.serverUrl)
    if (input.session !== undefined) {
      yield* revokeTokens({
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
  readonly redirectUri: string
  readonly client: ClientConfig
  readonly cached: ClientRegistration | undefined
}

export { loadSession }

/** Raised when the machine asks for a step whose inputs are missing: a bug, not a server fault. */
export const missingInput = (what: string) =>
  new AuthorizationError({ reason: "cancelled", detail: `internal: ${what} is missing` })
