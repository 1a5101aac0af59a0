/**
 * The authorization request (OAuth 2.1 §4.1.1 with PKCE S256, `state` and the RFC 8707
 * `resource`) and the validation of the redirect back to the loopback callback, in the order
 * the MCP specification sets: `state`, then RFC 9207 `iss`, then `error`, then `code`.
 */
import { Effect, Either, Redacted } from "effect"
import * as oauth from "oauth4webapi"
import { AuthorizationError } from "../errors.js"
import type { AuthorizationServerMetadata } from "../schema/metadata.js"
import { isSafeEndpoint } from "./urls.js"

/** The per-attempt secrets and bindings a callback is checked against. */
export interface AuthorizationAttempt {
  readonly state: Redacted.Redacted<string>
  readonly codeVerifier: Redacted.Redacted<string>
  readonly codeChallenge: string
  /** The issuer recorded before redirecting, compared with the callback's `iss`. */
  readonly issuer: string
  readonly issRequired: boolean
  readonly clientId: string
  readonly redirectUri: string
  readonly resource: string
  readonly scope?: string | undefined
  /** Carries `state`, so it is redacted like the other per-attempt secrets. */
  readonly authorizationUrl: Redacted.Redacted<string>
}

/** Inputs of one authorization attempt. */
export interface AttemptInput {
  readonly authorizationServer: AuthorizationServerMetadata
  readonly clientId: string
  readonly redirectUri: string
  readonly resource: string
  readonly scope?: string | undefined
}

/**
 * Builds the authorization URL. Parameters already in `authorization_endpoint` are kept
 * (RFC 6749 §3.1); the caller's values replace same-named ones.
 */
export const buildAuthorizationUrl = (
  endpoint: string,
  params: Readonly<Record<string, string | undefined>>,
): string => {
  const url = new URL(endpoint)
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) url.searchParams.set(name, value)
  }
  return url.href
}

/** Creates a fresh attempt: PKCE pair, `state` and the authorization URL. */
export const createAttempt = (
  input: AttemptInput,
): Effect.Effect<AuthorizationAttempt, AuthorizationError> =>
  Effect.gen(function* () {
    const endpoint = input.authorizationServer.authorization_endpoint
    if (!isSafeEndpoint(endpoint)) {
      return yield* new AuthorizationError({
        reason: "insecure_endpoint",
        received: endpoint,
        detail: `"authorization_endpoint" must be an https: URL or a loopback http: URL`,
      })
    }
    const codeVerifier = oauth.generateRandomCodeVerifier()
    const codeChallenge = yield* Effect.promise(() =>
      oauth.calculatePKCECodeChallenge(codeVerifier),
    )
    const state = oauth.generateRandomState()
    const authorizationUrl = buildAuthorizationUrl(endpoint, {
      response_type: "code",
      client_id: input.clientId,
      redirect_uri: input.redirectUri,
      code_challenge: codeChallenge,
      code_challenge_method: "S256",
      state,
      scope: input.scope,
      resource: input.resource,
    })
    const attempt: AuthorizationAttempt = {
      state: Redacted.make(state),
      codeVerifier: Redacted.make(codeVerifier),
      codeChallenge,
      issuer: input.authorizationServer.issuer,
      issRequired:
        input.authorizationServer.authorization_response_iss_parameter_supported === true,
      clientId: input.clientId,
      redirectUri: input.redirectUri,
      resource: input.resource,
      scope: input.scope,
      authorizationUrl: Redacted.make(authorizationUrl),
    }
    return attempt
  })

/** The parts of a callback the engine needs after validation. */
export interface ValidCallback {
  readonly code: Redacted.Redacted<string>
  readonly params: URLSearchParams
}

/** Compares two strings in time independent of where they first differ. */
const sameSecret = (a: string, b: string): boolean => {
  if (a.length !== b.length) return false
  let difference = 0
  for (let i = 0; i < a.length; i++) difference |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return difference === 0
}

/** Tells whether a callback carries this attempt's `state`; other requests are strays. */
export const callbackMatchesState = (
  params: URLSearchParams,
  attempt: Pick<AuthorizationAttempt, "state">,
): boolean => {
  const state = params.get("state")
  return state !== null && sameSecret(state, Redacted.value(attempt.state))
}

/**
 * Validates a callback: `state` first, then `iss` by exact string equality (RFC 9207, no URL
 * normalisation), and only then `error` or `code`. An `error` behind a wrong `iss` is not read.
 */
export const validateCallback = (
  params: URLSearchParams,
  attempt: AuthorizationAttempt,
): Either.Either<ValidCallback, AuthorizationError> => {
  if (!callbackMatchesState(params, attempt)) {
    return Either.left(
      new AuthorizationError({ reason: "state_mismatch", detail: `"state" does not match` }),
    )
  }
  const iss = params.get("iss")
  if (iss === null && attempt.issRequired) {
    return Either.left(
      new AuthorizationError({
        reason: "iss_missing",
        expected: attempt.issuer,
        detail: `the server advertises "iss" in authorization responses but sent none`,
      }),
    )
  }
  if (iss !== null && iss !== attempt.issuer) {
    return Either.left(
      new AuthorizationError({
        reason: "iss_mismatch",
        expected: attempt.issuer,
        received: iss,
        detail: `"iss" is not the issuer the request was sent to`,
      }),
    )
  }
  const error = params.get("error")
  if (error !== null) {
    return Either.left(
      new AuthorizationError({
        reason: error === "access_denied" ? "access_denied" : "error_response",
        error,
        errorDescription: params.get("error_description") ?? undefined,
      }),
    )
  }
  const code = params.get("code")
  if (code === null || code === "") {
    return Either.left(
      new AuthorizationError({ reason: "missing_code", detail: `the callback has no "code"` }),
    )
  }
  return Either.right({ code: Redacted.make(code), params })
}
