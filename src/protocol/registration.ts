/**
 * Client identity at one authorization server, in the order the MCP specification gives:
 * pre-registered credentials, then a Client ID Metadata Document when the server supports it,
 * then RFC 7591 Dynamic Client Registration.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Effect, Either, Redacted, Schema } from "effect"
import { RegistrationError } from "../errors.js"
import type { AuthorizationServerMetadata } from "../schema/metadata.js"
import {
  OAuthErrorResponse,
  RegistrationResponse,
  type TokenEndpointAuthMethod,
} from "../schema/oauth.js"
import type { ClientRegistration } from "../schema/session.js"
import { issuerMatches } from "./discovery.js"
import type { ClientPrivateKey } from "./token.js"

/** The host's client identity settings. Every field is optional. */
export interface ClientConfig {
  /** A client id registered in advance. */
  readonly clientId?: string | undefined
  readonly clientSecret?: Redacted.Redacted<string> | undefined
  /** The issuer the pre-registered credentials belong to; they are never sent to another. */
  readonly issuer?: string | undefined
  /** Forces a token endpoint authentication method for pre-registered credentials. */
  readonly tokenEndpointAuthMethod?: TokenEndpointAuthMethod | undefined
  /** An https URL serving this client's metadata document, used as its `client_id`. */
  readonly clientMetadataUrl?: string | undefined
  /** `client_name` sent with Dynamic Client Registration. */
  readonly clientName?: string | undefined
  /** A private key for `private_key_jwt` client authentication of a pre-registered client. */
  readonly privateKey?: ClientPrivateKey | undefined
}

/** Inputs of one registration step. */
export interface RegistrationInput {
  readonly authorizationServer: AuthorizationServerMetadata
  /** The loopback redirect URI; absent for grants without a browser. */
  readonly redirectUri: string | undefined
  readonly client: ClientConfig
  /** A registration from an earlier sign-in, reused when it still fits. */
  readonly cached?: ClientRegistration | undefined
  /** Whether the grant involves a browser; other grants need a pre-registered client. */
  readonly interactive?: boolean | undefined
}

/** Default `client_name` for Dynamic Client Registration. */
export const DEFAULT_CLIENT_NAME = "mcp-auth-engine"

const supportsMethod = (metadata: AuthorizationServerMetadata, method: string): boolean =>
  // RFC 8414 §2: an absent list means client_secret_basic only.
  (metadata.token_endpoint_auth_methods_supported ?? ["client_secret_basic"]).includes(method)

/**
 * Chooses how a client with or without a secret authenticates at the token endpoint, from
 * what the server supports: Basic before post when there is a secret, `none` without one.
 */
export const chooseAuthMethod = (
  metadata: AuthorizationServerMetadata,
  hasSecret: boolean,
): TokenEndpointAuthMethod => {
  if (!hasSecret) return "none"
  if (supportsMethod(metadata, "client_secret_basic")) return "client_secret_basic"
  if (supportsMethod(metadata, "client_secret_post")) return "client_secret_post"
  return "client_secret_basic"
}

const isReusable = (cached: ClientRegistration, input: RegistrationInput, nowSeconds: number) =>
  cached.issuer === input.authorizationServer.issuer &&
  cached.redirectUri === input.redirectUri &&
  (cached.clientSecretExpiresAt === undefined ||
    cached.clientSecretExpiresAt === 0 ||
    cached.clientSecretExpiresAt > nowSeconds)

const preRegistered = (input: RegistrationInput, clientId: string): ClientRegistration => {
  const { client, authorizationServer } = input
  return {
    issuer: authorizationServer.issuer,
    clientId,
    clientSecret: client.clientSecret,
    tokenEndpointAuthMethod:
      client.tokenEndpointAuthMethod ??
      (client.privateKey !== undefined
        ? "private_key_jwt"
        : chooseAuthMethod(authorizationServer, client.clientSecret !== undefined)),
    redirectUri: input.redirectUri,
    source: "pre-registered",
  }
}

/** Builds the RFC 7591 request body for a native (loopback redirect) client. */
export const makeRegistrationRequest = (input: RegistrationInput) => {
  const metadata = input.authorizationServer
  const authMethod: TokenEndpointAuthMethod = supportsMethod(metadata, "none")
    ? "none"
    : supportsMethod(metadata, "client_secret_basic")
      ? "client_secret_basic"
      : "client_secret_post"
  return {
    client_name: input.client.clientName ?? DEFAULT_CLIENT_NAME,
    redirect_uris: input.redirectUri === undefined ? [] : [input.redirectUri],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: authMethod,
    application_type: "native",
  }
}

const asAuthMethod = (value: string | undefined): TokenEndpointAuthMethod | undefined =>
  value === "none" || value === "client_secret_basic" || value === "client_secret_post"
    ? value
    : undefined

const registerDynamically = (
  input: RegistrationInput & { readonly redirectUri: string },
  endpoint: string,
) =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const body = makeRegistrationRequest(input)
    const request = HttpClientRequest.post(endpoint).pipe(
      HttpClientRequest.setHeader("accept", "application/json"),
      HttpClientRequest.bodyText(JSON.stringify(body), "application/json"),
    )
    const response = yield* client.execute(request).pipe(
      Effect.flatMap((r) => Effect.map(r.text, (text) => ({ status: r.status, text }))),
      Effect.scoped,
      Effect.mapError((cause) => new RegistrationError({ reason: "network", endpoint, cause })),
    )
    const json = Either.try(() => JSON.parse(response.text) as unknown)
    if (response.status !== 200 && response.status !== 201) {
      const oauthError = Either.flatMap(json, (value) =>
        Schema.decodeUnknownEither(OAuthErrorResponse)(value),
      )
      return yield* new RegistrationError({
        reason: "rejected",
        endpoint,
        status: response.status,
        error: Either.isRight(oauthError) ? oauthError.right.error : undefined,
        errorDescription: Either.isRight(oauthError)
          ? oauthError.right.error_description
          : undefined,
      })
    }
    const decoded = Either.flatMap(json, (value) =>
      Schema.decodeUnknownEither(RegistrationResponse)(value),
    )
    if (Either.isLeft(decoded)) {
      return yield* new RegistrationError({
        reason: "invalid_response",
        endpoint,
        status: response.status,
        detail: `the registration response lacks a string "client_id"`,
      })
    }
    const registered = decoded.right
    const secret =
      registered.client_secret === undefined ? undefined : Redacted.make(registered.client_secret)
    // RFC 7591 §3.2.1: the server's response takes precedence over the requested values.
    const authMethod =
      asAuthMethod(registered.token_endpoint_auth_method) ??
      (secret === undefined ? "none" : chooseAuthMethod(input.authorizationServer, true))
    const registration: ClientRegistration = {
      issuer: input.authorizationServer.issuer,
      clientId: registered.client_id,
      clientSecret: secret,
      clientSecretExpiresAt: registered.client_secret_expires_at,
      tokenEndpointAuthMethod: authMethod,
      redirectUri: input.redirectUri,
      source: "dynamic",
    }
    return registration
  })

/**
 * Obtains the client identity for this authorization server. Pre-registered credentials bound
 * to another issuer are refused rather than presented to the wrong server.
 */
export const register = (
  input: RegistrationInput,
): Effect.Effect<ClientRegistration, RegistrationError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const { client, authorizationServer } = input
    const nowSeconds = Math.floor(Date.now() / 1000)

    if (client.clientId !== undefined) {
      // The same one-trailing-slash tolerance as discovery's issuer check, so a configured
      // "https://idp.example/" still matches metadata that publishes "https://idp.example".
      if (
        client.issuer !== undefined &&
        !issuerMatches(client.issuer, authorizationServer.issuer)
      ) {
        return yield* new RegistrationError({
          reason: "wrong_issuer",
          detail: `the configured client belongs to "${client.issuer}", not "${authorizationServer.issuer}"`,
        })
      }
      return preRegistered(input, client.clientId)
    }

    if (input.interactive === false) {
      return yield* new RegistrationError({
        reason: "no_registration_method",
        detail: "grants without a browser need a pre-registered client id",
      })
    }

    const redirectUri = input.redirectUri
    if (redirectUri === undefined) {
      return yield* new RegistrationError({
        reason: "no_registration_method",
        detail: "registration needs the loopback redirect URI",
      })
    }

    if (input.cached !== undefined && isReusable(input.cached, input, nowSeconds)) {
      return input.cached
    }

    if (
      client.clientMetadataUrl !== undefined &&
      authorizationServer.client_id_metadata_document_supported === true
    ) {
      const registration: ClientRegistration = {
        issuer: authorizationServer.issuer,
        clientId: client.clientMetadataUrl,
        tokenEndpointAuthMethod: "none",
        redirectUri: input.redirectUri,
        source: "client-metadata-document",
      }
      return registration
    }

    if (authorizationServer.registration_endpoint !== undefined) {
      return yield* registerDynamically(
        { ...input, redirectUri },
        authorizationServer.registration_endpoint,
      )
    }

    return yield* new RegistrationError({
      reason: "no_registration_method",
      detail:
        "the server offers neither Dynamic Client Registration nor client metadata documents; configure a pre-registered client id",
    })
  }).pipe(Effect.withSpan("mcp-auth.register"))
