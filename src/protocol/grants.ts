/**
 * Grants that need no browser: client credentials (OAuth 2.1 §4.2), the JWT bearer grant
 * (RFC 7523 §2.1) for workload identity, and enterprise-managed authorization, where an
 * identity provider exchanges an ID token for an identity assertion JWT grant (ID-JAG, RFC 8693
 * token exchange) that the MCP authorization server then accepts as a JWT bearer assertion.
 */
import type { HttpClient } from "@effect/platform"
import { Effect, Either, Redacted, Schema } from "effect"
import * as oauth from "oauth4webapi"
import { type GrantKind, TokenError } from "../errors.js"
import type { AuthorizationServerMetadata } from "../schema/metadata.js"
import type { ClientRegistration, TokenSet } from "../schema/session.js"
import { makeFetch } from "../services/http.js"
import {
  type ClientPrivateKey,
  clientAuthentication,
  type DpopBinding,
  decodeTokenResponse,
  send,
} from "./token.js"
import { isLoopbackHost, isSafeEndpoint, parseUrl } from "./urls.js"

/** RFC 7523 grant type for a JWT used as an authorization grant. */
export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
/** RFC 8693 grant type for token exchange. */
export const TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
/** The token type of an identity assertion JWT authorization grant. */
export const ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
/** The token type of an OpenID Connect ID token. */
export const ID_TOKEN_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"

/** The grant that obtains tokens: with the user in a browser, or without anyone. */
export type GrantConfig =
  | { readonly type: "authorization_code" }
  | { readonly type: "client_credentials" }
  | {
      readonly type: "jwt_bearer"
      /** A JWT whose `aud` is the authorization server, from the workload's identity provider. */
      readonly assertion: Redacted.Redacted<string>
    }
  | {
      readonly type: "id_jag"
      readonly identityProvider: IdentityProviderConfig
    }

/** The enterprise identity provider that issues ID-JAGs. */
export interface IdentityProviderConfig {
  readonly tokenEndpoint: string
  readonly clientId: string
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** The user's ID token (or another subject token) issued by that provider. */
  readonly subjectToken: Redacted.Redacted<string>
  readonly subjectTokenType?: string | undefined
}

/** The grant types, by name, as hosts and the status stream show them. */
export type GrantType = GrantConfig["type"]

/** Inputs shared by the non-interactive grants. */
export interface GrantInput {
  readonly authorizationServer: AuthorizationServerMetadata
  readonly registration: ClientRegistration
  readonly privateKey?: ClientPrivateKey | undefined
  readonly resource: string
  readonly scope?: string | undefined
  readonly dpop?: DpopBinding | undefined
}

const allowInsecure = (endpoint: string): boolean => {
  const url = parseUrl(endpoint)
  return url !== undefined && url.protocol === "http:" && isLoopbackHost(url.hostname)
}

const parametersOf = (input: GrantInput, extra: Record<string, string>) => {
  const parameters: Record<string, string> = { ...extra, resource: input.resource }
  if (input.scope !== undefined) parameters.scope = input.scope
  return parameters
}

const grantRequest = (
  input: GrantInput,
  grant: GrantKind,
  grantType: string,
  extra: Record<string, string>,
) =>
  Effect.gen(function* () {
    const endpoint = input.authorizationServer.token_endpoint
    const response = yield* send(grant, endpoint, input.dpop, (fetch, headers) =>
      oauth.genericTokenEndpointRequest(
        input.authorizationServer as unknown as oauth.AuthorizationServer,
        { client_id: input.registration.clientId },
        clientAuthentication(input.registration, input.privateKey),
        grantType,
        parametersOf(input, extra),
        {
          headers,
          [oauth.customFetch]: fetch,
          [oauth.allowInsecureRequests]: allowInsecure(endpoint),
        },
      ),
    )
    return yield* decodeTokenResponse(response, {
      grant,
      endpoint,
      requestedScope: input.scope,
      now: Date.now(),
    })
  })

/** Runs the client credentials grant with the client's own credentials. */
export const clientCredentialsGrant = (
  input: GrantInput,
): Effect.Effect<TokenSet, TokenError, HttpClient.HttpClient> =>
  grantRequest(input, "client_credentials", "client_credentials", {}).pipe(
    Effect.withSpan("mcp-auth.client-credentials"),
  )

/** Runs the JWT bearer grant with an assertion. Errors are returned, never retried. */
export const jwtBearerGrant = (
  input: GrantInput & { readonly assertion: Redacted.Redacted<string> },
): Effect.Effect<TokenSet, TokenError, HttpClient.HttpClient> =>
  grantRequest(input, "jwt_bearer", JWT_BEARER_GRANT, {
    assertion: Redacted.value(input.assertion),
  }).pipe(Effect.withSpan("mcp-auth.jwt-bearer"))

const TokenExchangeResponse = Schema.Struct({
  access_token: Schema.String.pipe(Schema.minLength(1)),
  issued_token_type: Schema.optional(Schema.String),
})

/**
 * Asks the identity provider for an ID-JAG for this authorization server and resource, by
 * RFC 8693 token exchange with the user's ID token.
 */
export const requestIdJag = (input: {
  readonly identityProvider: IdentityProviderConfig
  readonly audience: string
  readonly resource: string
  readonly scope?: string | undefined
}): Effect.Effect<Redacted.Redacted<string>, TokenError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const idp = input.identityProvider
    const endpoint = idp.tokenEndpoint
    if (!isSafeEndpoint(endpoint)) {
      return yield* new TokenError({
        reason: "invalid_response",
        grant: "token_exchange",
        endpoint: endpoint.slice(0, 200),
        detail:
          "the identity provider's token endpoint must be an https: URL or a loopback http: URL",
      })
    }
    const fetch = yield* makeFetch
    const body = new URLSearchParams({
      grant_type: TOKEN_EXCHANGE_GRANT,
      requested_token_type: ID_JAG_TOKEN_TYPE,
      subject_token: Redacted.value(idp.subjectToken),
      subject_token_type: idp.subjectTokenType ?? ID_TOKEN_TOKEN_TYPE,
      audience: input.audience,
      resource: input.resource,
      client_id: idp.clientId,
    })
    if (input.scope !== undefined) body.set("scope", input.scope)
    if (idp.clientSecret !== undefined) body.set("client_secret", Redacted.value(idp.clientSecret))
    const response = yield* Effect.tryPromise({
      try: async (signal) => {
        const result = await fetch(endpoint, {
          method: "POST",
          headers: {
            "content-type": "application/x-www-form-urlencoded",
            accept: "application/json",
          },
          body,
          signal,
        })
        return { status: result.status, body: await result.text() }
      },
      catch: (cause) =>
        new TokenError({ reason: "network", grant: "token_exchange", endpoint, cause }),
    })
    if (response.status !== 200) {
      // Reuse the token response decoder for its OAuth error mapping.
      const failed = decodeTokenResponse(response, {
        grant: "token_exchange",
        endpoint,
        requestedScope: undefined,
        now: Date.now(),
      })
      if (Either.isLeft(failed)) return yield* failed.left
    }
    const decoded = Either.flatMap(
      Either.try(() => JSON.parse(response.body) as unknown),
      (value) => Schema.decodeUnknownEither(TokenExchangeResponse)(value),
    )
    if (Either.isLeft(decoded)) {
      return yield* new TokenError({
        reason: "invalid_response",
        grant: "token_exchange",
        endpoint,
        status: response.status,
        detail: `the token exchange response lacks "access_token"`,
      })
    }
    const issued = decoded.right.issued_token_type
    if (issued !== undefined && issued !== ID_JAG_TOKEN_TYPE) {
      return yield* new TokenError({
        reason: "invalid_response",
        grant: "token_exchange",
        endpoint,
        detail: `"issued_token_type" is "${issued}", not an ID-JAG`,
      })
    }
    return Redacted.make(decoded.right.access_token)
  }).pipe(Effect.withSpan("mcp-auth.token-exchange"))

/** Exchanges the ID token for an ID-JAG, then the ID-JAG for an access token. */
export const idJagGrant = (
  input: GrantInput & { readonly identityProvider: IdentityProviderConfig },
): Effect.Effect<TokenSet, TokenError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const assertion = yield* requestIdJag({
      identityProvider: input.identityProvider,
      audience: input.authorizationServer.issuer,
      resource: input.resource,
      scope: input.scope,
    })
    return yield* jwtBearerGrant({ ...input, assertion })
  })

/**
 * Chooses the grant for a sign-in. An explicit non-interactive grant wins. Otherwise a client
 * with pre-registered credentials uses client credentials when the server's metadata lists
 * `client_credentials` but not `authorization_code`; everything else signs in with the browser.
 */
export const chooseGrant = (
  configured: GrantConfig,
  metadata: AuthorizationServerMetadata,
  client: { readonly clientId?: string | undefined; readonly hasCredentials: boolean },
): GrantConfig => {
  if (configured.type !== "authorization_code") return configured
  const supported = metadata.grant_types_supported
  if (
    supported !== undefined &&
    !supported.includes("authorization_code") &&
    supported.includes("client_credentials") &&
    client.clientId !== undefined &&
    client.hasCredentials
  ) {
    return { type: "client_credentials" }
  }
  return configured
}
