/**
 * Token endpoint requests: the authorization code exchange, the refresh grant and RFC 7009
 * revocation. `oauth4webapi` builds and sends the requests; the engine decodes responses with
 * its own schema because real servers send `expires_in` as a string and omit fields that
 * `oauth4webapi`'s processors require.
 */

import { randomUUID } from "node:crypto"
import type { HttpClient } from "@effect/platform"
import { Duration, Effect, Either, Redacted, Schedule, Schema } from "effect"
import { importPKCS8, SignJWT } from "jose"
import * as oauth from "oauth4webapi"
import { type GrantKind, TokenError } from "../errors.js"
import type { AuthorizationServerMetadata } from "../schema/metadata.js"
import { OAuthErrorResponse, TokenResponse } from "../schema/oauth.js"
import type { ClientRegistration, TokenSet } from "../schema/session.js"
import { type FetchFunction, makeFetch } from "../services/http.js"
import type { AuthorizationAttempt, ValidCallback } from "./authorization.js"
import { createDpopProof, type DpopKey, type DpopNonces } from "./dpop.js"
import { isLoopbackHost, parseUrl } from "./urls.js"

/**
 * HTTP Basic client authentication with the raw `client_id:client_secret` pair. RFC 6749
 * §2.3.1 form-encodes both first, but many servers do not decode them, so raw is the default.
 */
const clientSecretBasicRaw =
  (secret: string): oauth.ClientAuth =>
  (_as, client, _body, headers) => {
    const credentials = Buffer.from(`${client.client_id}:${secret}`).toString("base64")
    headers.set("authorization", `Basic ${credentials}`)
  }

/** A private key for `private_key_jwt` client authentication (RFC 7523 §2.2). */
export interface ClientPrivateKey {
  /** A PKCS#8 PEM private key. */
  readonly pem: Redacted.Redacted<string>
  /** The JWS algorithm of the key, such as "ES256" or "RS256". */
  readonly algorithm: string
  readonly keyId?: string | undefined
}

/** How long a client assertion stays valid; short, because it is sent at once. */
const CLIENT_ASSERTION_LIFETIME = "60s"

/**
 * `private_key_jwt` client authentication: a JWT with `iss` and `sub` set to the client id and
 * `aud` set to the authorization server's issuer, signed by the client's key with `jose`.
 */
const privateKeyJwt =
  (key: ClientPrivateKey): oauth.ClientAuth =>
  async (as, client, body) => {
    const privateKey = await importPKCS8(Redacted.value(key.pem), key.algorithm)
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: key.algorithm, ...(key.keyId ? { kid: key.keyId } : {}) })
      .setIssuer(client.client_id)
      .setSubject(client.client_id)
      .setAudience(as.issuer)
      .setIssuedAt()
      .setExpirationTime(CLIENT_ASSERTION_LIFETIME)
      .setJti(randomUUID())
      .sign(privateKey)
    body.set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    body.set("client_assertion", assertion)
  }

/** The `oauth4webapi` client authentication for a registration. */
export const clientAuthentication = (
  registration: ClientRegistration,
  privateKey?: ClientPrivateKey | undefined,
): oauth.ClientAuth => {
  const secret =
    registration.clientSecret === undefined ? "" : Redacted.value(registration.clientSecret)
  switch (registration.tokenEndpointAuthMethod) {
    case "client_secret_basic":
      return clientSecretBasicRaw(secret)
    case "client_secret_post":
      return oauth.ClientSecretPost(secret)
    case "none":
      return oauth.None()
    case "private_key_jwt":
      if (privateKey === undefined) {
        throw new TypeError("private_key_jwt needs the client's private key")
      }
      return privateKeyJwt(privateKey)
  }
}

const toAuthorizationServer = (metadata: AuthorizationServerMetadata): oauth.AuthorizationServer =>
  metadata as unknown as oauth.AuthorizationServer

const isLoopbackEndpoint = (endpoint: string): boolean => {
  const url = parseUrl(endpoint)
  return url !== undefined && url.protocol === "http:" && isLoopbackHost(url.hostname)
}

const requestOptions = (
  fetch: FetchFunction,
  endpoint: string,
  resource: string | undefined,
  headers: Record<string, string> = {},
) => ({
  headers,
  [oauth.customFetch]: fetch,
  // `oauth4webapi` rejects http: unless this flag is set, and the engine sets it for loopback hosts only.
  [oauth.allowInsecureRequests]: isLoopbackEndpoint(endpoint),
  additionalParameters: resource === undefined ? {} : { resource },
})

/** Decodes a token endpoint response into a token set, or a typed error. */
export const decodeTokenResponse = (
  response: { readonly status: number; readonly body: string },
  context: {
    readonly grant: GrantKind
    readonly endpoint: string
    readonly requestedScope: string | undefined
    readonly previousRefreshToken?: Redacted.Redacted<string> | undefined
    readonly now: number
  },
): Either.Either<TokenSet, TokenError> => {
  const { grant, endpoint } = context
  const json = Either.try(() => JSON.parse(response.body) as unknown)
  if (response.status !== 200) {
    const oauthError = Either.flatMap(json, (value) =>
      Schema.decodeUnknownEither(OAuthErrorResponse)(value),
    )
    if (Either.isLeft(oauthError)) {
      return Either.left(
        new TokenError({ reason: "http_status", grant, endpoint, status: response.status }),
      )
    }
    const error = oauthError.right.error
    return Either.left(
      new TokenError({
        reason:
          error === "invalid_grant"
            ? "invalid_grant"
            : error === "invalid_client" || error === "unauthorized_client"
              ? "invalid_client"
              : "oauth_error",
        grant,
        endpoint,
        status: response.status,
        error,
        errorDescription: oauthError.right.error_description,
      }),
    )
  }
  const decoded = Either.flatMap(json, (value) => Schema.decodeUnknownEither(TokenResponse)(value))
  if (Either.isLeft(decoded)) {
    return Either.left(
      new TokenError({
        reason: "invalid_response",
        grant,
        endpoint,
        status: response.status,
        detail: `the token response lacks "access_token" or "token_type"`,
      }),
    )
  }
  const body = decoded.right
  const tokenType = body.token_type.toLowerCase()
  if (tokenType !== "bearer" && tokenType !== "dpop") {
    return Either.left(
      new TokenError({
        reason: "invalid_response",
        grant,
        endpoint,
        detail: `unsupported "token_type" "${body.token_type}"`,
      }),
    )
  }
  const tokens: TokenSet = {
    accessToken: Redacted.make(body.access_token),
    tokenType: tokenType === "dpop" ? "DPoP" : "Bearer",
    // No new refresh token means the old one stays valid (OAuth 2.1 §4.3.2).
    refreshToken:
      body.refresh_token === undefined
        ? context.previousRefreshToken
        : Redacted.make(body.refresh_token),
    // `expires_in: 0` is an already expired token; a missing or malformed one is unknown.
    expiresAt: body.expires_in === undefined ? undefined : context.now + body.expires_in * 1000,
    scope: body.scope ?? context.requestedScope,
    obtainedAt: context.now,
  }
  return Either.right(tokens)
}

/** A DPoP key and the nonces servers gave it, used to sign proofs for token requests. */
export interface DpopBinding {
  readonly key: DpopKey
  readonly nonces: DpopNonces
}

/** A token endpoint response, read whole. */
export interface EndpointResponse {
  readonly status: number
  readonly body: string
}

const isNonceChallenge = (response: EndpointResponse): boolean => {
  if (response.status !== 400 && response.status !== 401) return false
  try {
    return (JSON.parse(response.body) as { error?: unknown }).error === "use_dpop_nonce"
  } catch {
    return false
  }
}

/**
 * Sends one token endpoint request. With DPoP, each try carries a fresh proof, and a
 * `use_dpop_nonce` response that brings a new nonce is retried once with it (RFC 9449 §8).
 */
export const send = (
  grant: GrantKind,
  endpoint: string,
  dpop: DpopBinding | undefined,
  request: (fetch: FetchFunction, headers: Record<string, string>) => Promise<Response>,
) =>
  Effect.gen(function* () {
    const fetch = yield* makeFetch
    const once =
      (signal: AbortSignal) => async (): Promise<EndpointResponse & { nonce: boolean }> => {
        const abortable: FetchFunction = (url, init) => fetch(url, { ...init, signal })
        const headers: Record<string, string> = {}
        if (dpop !== undefined) {
          headers.dpop = await createDpopProof({
            key: dpop.key,
            method: "POST",
            url: endpoint,
            nonce: dpop.nonces.get(endpoint),
          })
        }
        const result = await request(abortable, headers)
        const nonce = dpop?.nonces.remember(endpoint, result.headers) ?? false
        return { status: result.status, body: await result.text(), nonce }
      }
    return yield* Effect.tryPromise({
      try: async (signal) => {
        const first = await once(signal)()
        if (dpop === undefined || !first.nonce || !isNonceChallenge(first)) return first
        return once(signal)()
      },
      catch: (cause) => new TokenError({ reason: "network", grant, endpoint, cause }),
    })
  })

/** Inputs of the authorization code exchange. */
export interface ExchangeInput {
  readonly authorizationServer: AuthorizationServerMetadata
  readonly registration: ClientRegistration
  readonly attempt: AuthorizationAttempt
  readonly callback: ValidCallback
  readonly privateKey?: ClientPrivateKey | undefined
  readonly dpop?: DpopBinding | undefined
}

/** Exchanges the authorization code and PKCE verifier for tokens (OAuth 2.1 §4.1.3). */
export const exchangeCode = (
  input: ExchangeInput,
): Effect.Effect<TokenSet, TokenError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const { authorizationServer, registration, attempt, callback } = input
    const endpoint = authorizationServer.token_endpoint
    const as = toAuthorizationServer(authorizationServer)
    const client: oauth.Client = { client_id: registration.clientId }
    const branded = yield* Effect.try({
      // The engine has already checked `state` and `iss`; this second check also brands the
      // parameters, which `authorizationCodeGrantRequest` requires.
      try: () =>
        oauth.validateAuthResponse(as, client, callback.params, Redacted.value(attempt.state)),
      catch: (cause) =>
        new TokenError({
          reason: "invalid_response",
          grant: "authorization_code",
          endpoint,
          cause,
        }),
    })
    const response = yield* send("authorization_code", endpoint, input.dpop, (fetch, headers) =>
      oauth.authorizationCodeGrantRequest(
        as,
        client,
        clientAuthentication(registration, input.privateKey),
        branded,
        attempt.redirectUri,
        Redacted.value(attempt.codeVerifier),
        requestOptions(fetch, endpoint, attempt.resource, headers),
      ),
    )
    return yield* decodeTokenResponse(response, {
      grant: "authorization_code",
      endpoint,
      requestedScope: attempt.scope,
      now: Date.now(),
    })
  }).pipe(Effect.withSpan("mcp-auth.exchange"))

/** Inputs of a refresh. */
export interface RefreshInput {
  readonly authorizationServer: AuthorizationServerMetadata
  readonly registration: ClientRegistration
  readonly resource: string | undefined
  readonly tokens: TokenSet
  readonly privateKey?: ClientPrivateKey | undefined
  readonly dpop?: DpopBinding | undefined
}

/** Whether a token endpoint failure may pass if tried again: network errors, 408, 429, 5xx. */
export const isTransientTokenError = (error: TokenError): boolean =>
  error.reason === "network" ||
  (error.error === undefined &&
    error.status !== undefined &&
    (error.status === 408 || error.status === 429 || error.status >= 500)) ||
  error.error === "temporarily_unavailable" ||
  error.error === "server_error"

/** Backoff for transient refresh failures: 250 ms doubling, three retries (under 2 s in all). */
export const REFRESH_RETRY_SCHEDULE = Schedule.exponential(Duration.millis(250)).pipe(
  Schedule.intersect(Schedule.recurs(3)),
)

/**
 * Runs the refresh-token grant (OAuth 2.1 §4.3) with the same client authentication and
 * `resource` as the code exchange. Transient failures are retried with backoff; an OAuth error
 * such as `invalid_grant` is returned at once.
 */
export const refreshTokens = (
  input: RefreshInput,
): Effect.Effect<TokenSet, TokenError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const { authorizationServer, registration, tokens } = input
    const endpoint = authorizationServer.token_endpoint
    if (tokens.refreshToken === undefined) {
      return yield* new TokenError({
        reason: "invalid_grant",
        grant: "refresh_token",
        endpoint,
        detail: "the session holds no refresh token",
      })
    }
    const refreshToken = tokens.refreshToken
    const response = yield* send("refresh_token", endpoint, input.dpop, (fetch, headers) =>
      oauth.refreshTokenGrantRequest(
        toAuthorizationServer(authorizationServer),
        { client_id: registration.clientId },
        clientAuthentication(registration, input.privateKey),
        Redacted.value(refreshToken),
        requestOptions(fetch, endpoint, input.resource, headers),
      ),
    )
    return yield* decodeTokenResponse(response, {
      grant: "refresh_token",
      endpoint,
      requestedScope: tokens.scope,
      previousRefreshToken: refreshToken,
      now: Date.now(),
    })
  }).pipe(
    Effect.retry({ schedule: REFRESH_RETRY_SCHEDULE, while: isTransientTokenError }),
    Effect.withSpan("mcp-auth.refresh"),
  )

/**
 * Revokes the refresh token, then the access token (RFC 7009) when the server has a
 * `revocation_endpoint`. Failures are logged and ignored: local state is deleted regardless.
 */
export const revokeTokens = (
  input: RefreshInput,
): Effect.Effect<void, never, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const endpoint = input.authorizationServer.revocation_endpoint
    if (endpoint === undefined) return
    const tokens: ReadonlyArray<[string, Redacted.Redacted<string> | undefined]> = [
      ["refresh_token", input.tokens.refreshToken],
      ["access_token", input.tokens.accessToken],
    ]
    for (const [hint, token] of tokens) {
      if (token === undefined) continue
      yield* send("revocation", endpoint, undefined, (fetch) =>
        oauth.revocationRequest(
          toAuthorizationServer(input.authorizationServer),
          { client_id: input.registration.clientId },
          clientAuthentication(input.registration, input.privateKey),
          Redacted.value(token),
          {
            [oauth.customFetch]: fetch,
            [oauth.allowInsecureRequests]: isLoopbackEndpoint(endpoint),
            additionalParameters: { token_type_hint: hint },
          },
        ),
      ).pipe(
        Effect.tap((response) =>
          response.status === 200
            ? Effect.void
            : Effect.logWarning("token revocation refused").pipe(
                Effect.annotateLogs({ endpoint, status: response.status, hint }),
              ),
        ),
        Effect.catchAll((error) =>
          Effect.logWarning("token revocation failed").pipe(
            Effect.annotateLogs({ endpoint, reason: error.reason, hint }),
          ),
        ),
      )
    }
  })
