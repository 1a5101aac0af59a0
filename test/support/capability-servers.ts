/**
 * Loopback servers for the capability tests: an OAuth authorization server, an MCP resource
 * server and an enterprise identity provider. Each checks what it receives the way a real
 * server does. It parses forms, checks PKCE, client authentication and DPoP proofs, and
 * verifies JWTs with `jose`. It also records what it saw, so a test asserts on the servers'
 * records rather than on the engine's own view.
 */
import { createHash, randomUUID } from "node:crypto"
import { HttpClient, HttpClientError } from "@effect/platform"
import { Effect, Layer, Logger, LogLevel } from "effect"
import {
  type CryptoKey,
  calculateJwkThumbprint,
  decodeJwt,
  decodeProtectedHeader,
  EmbeddedJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  jwtVerify,
  type ProtectedHeaderParameters,
  SignJWT,
} from "jose"
import { onTestFinished } from "vitest"
import {
  type AuthEnv,
  type Browser,
  CallbackServerLive,
  HttpLive,
  Keychain,
  makeMemoryKeychain,
} from "../../src/index.js"
import {
  type CaseResponse,
  type CaseServer,
  type RecordedRequest,
  startCaseServer,
} from "./case-server.js"

/** RFC 7523 §2.2 client assertion type. */
export const CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
/** RFC 7523 §2.1 grant type. */
export const JWT_BEARER_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
/** RFC 8693 grant type. */
export const TOKEN_EXCHANGE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
/** The token type of an identity assertion JWT authorization grant (ID-JAG). */
export const ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
/** The RFC 8693 token type of an OpenID Connect ID token. */
export const ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
/** The JWT `typ` of an ID-JAG. */
export const ID_JAG_JWT_TYPE = "oauth-id-jag+jwt"

/** Asymmetric JWS algorithms accepted in DPoP proofs; `none` and HMAC are never accepted. */
const ASYMMETRIC_ALGORITHMS = ["ES256", "ES384", "ES512", "RS256", "PS256", "EdDSA"]
/** How far a proof's `iat` may be from the server's clock, in seconds. */
const PROOF_IAT_WINDOW_SECONDS = 60
/** The maximum client assertion lifetime (`exp` minus now) the server accepts, in seconds. */
const MAX_CLIENT_ASSERTION_SECONDS = 300

// ---------------------------------------------------------------------------------------------
// Responses and small parsers

const json = (
  status: number,
  body: object,
  headers: Record<string, string> = {},
): CaseResponse => ({
  status,
  headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  body,
})

const oauthError = (
  status: number,
  error: string,
  description: string,
  headers: Record<string, string> = {},
): CaseResponse => json(status, { error, error_description: description }, headers)

const headerOf = (request: RecordedRequest, name: string): string | undefined => {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

const isForm = (request: RecordedRequest): boolean =>
  (headerOf(request, "content-type") ?? "").startsWith("application/x-www-form-urlencoded")

const isLoopbackHttpUrl = (value: unknown): boolean => {
  if (typeof value !== "string") return false
  try {
    const url = new URL(value)
    return (
      url.protocol === "http:" &&
      (url.hostname === "127.0.0.1" || url.hostname === "[::1]" || url.hostname === "localhost")
    )
  } catch {
    return false
  }
}

/** Decodes one part of an HTTP Basic credential, form-decoded as RFC 6749 §2.3.1 requires. */
const formDecode = (value: string): string => decodeURIComponent(value.replace(/\+/g, " "))

const sha256Base64Url = (value: string): string =>
  createHash("sha256").update(value).digest("base64url")

const splitScope = (scope: string | undefined): string[] =>
  scope === undefined ? [] : scope.split(" ").filter((token) => token !== "")

// ---------------------------------------------------------------------------------------------
// DPoP proofs (RFC 9449 §4.3)

/** A DPoP proof as a server verified it. */
export interface DpopProofRecord {
  readonly header: ProtectedHeaderParameters
  readonly payload: JWTPayload
  /** RFC 7638 thumbprint of the proof's public `jwk`. */
  readonly thumbprint: string
}

type ProofCheck =
  | { readonly ok: true; readonly proof: DpopProofRecord }
  | { readonly ok: false; readonly problem: string }

/**
 * Verifies a DPoP proof for one request: signature with the embedded public key, `typ`,
 * asymmetric `alg`, `htm`, `htu` without query, a recent `iat`, a `jti` never seen before, and
 * `ath` when an access token is presented. The nonce is checked by the caller.
 */
const verifyDpopProof = async (
  proof: string | undefined,
  expected: {
    readonly method: string
    readonly url: string
    readonly accessToken?: string | undefined
    readonly seenJtis: Set<string>
  },
): Promise<ProofCheck> => {
  if (proof === undefined || proof === "") return { ok: false, problem: "no DPoP header" }
  let header: ProtectedHeaderParameters
  try {
    header = decodeProtectedHeader(proof)
  } catch {
    return { ok: false, problem: "the DPoP header is not a JWS" }
  }
  if (header.typ !== "dpop+jwt") return { ok: false, problem: `typ is ${String(header.typ)}` }
  if (header.alg === undefined || !ASYMMETRIC_ALGORITHMS.includes(header.alg)) {
    return { ok: false, problem: `alg ${String(header.alg)} is not asymmetric` }
  }
  const jwk = header.jwk as JWK | undefined
  if (jwk === undefined || typeof jwk !== "object") return { ok: false, problem: "no jwk" }
  if ("d" in jwk) return { ok: false, problem: "the jwk contains a private key" }
  let payload: JWTPayload
  try {
    payload = (
      await jwtVerify(proof, EmbeddedJWK, { typ: "dpop+jwt", algorithms: ASYMMETRIC_ALGORITHMS })
    ).payload
  } catch (error) {
    return { ok: false, problem: `signature check failed: ${String(error)}` }
  }
  if (payload.htm !== expected.method) {
    return { ok: false, problem: `htm is ${String(payload.htm)}` }
  }
  if (payload.htu !== expected.url) return { ok: false, problem: `htu is ${String(payload.htu)}` }
  const now = Math.floor(Date.now() / 1000)
  if (typeof payload.iat !== "number" || Math.abs(now - payload.iat) > PROOF_IAT_WINDOW_SECONDS) {
    return { ok: false, problem: `iat ${String(payload.iat)} is not recent` }
  }
  if (typeof payload.jti !== "string" || payload.jti === "") {
    return { ok: false, problem: "no jti" }
  }
  if (expected.seenJtis.has(payload.jti)) return { ok: false, problem: "jti replayed" }
  expected.seenJtis.add(payload.jti)
  if (expected.accessToken !== undefined) {
    if (payload.ath !== sha256Base64Url(expected.accessToken)) {
      return { ok: false, problem: "ath does not match the access token" }
    }
  }
  return { ok: true, proof: { header, payload, thumbprint: await calculateJwkThumbprint(jwk) } }
}

// ---------------------------------------------------------------------------------------------
// Authorization server

/** Token endpoint client authentication methods (RFC 7591 §2). */
export type ClientAuthMethod =
  | "none"
  | "client_secret_basic"
  | "client_secret_post"
  | "private_key_jwt"

/** A client registered before the test starts. */
export interface PreRegisteredClient {
  readonly clientId: string
  readonly authMethod: ClientAuthMethod
  readonly secret?: string | undefined
  /** The public key that verifies `private_key_jwt` client assertions. */
  readonly publicKey?: CryptoKey | undefined
}

/** An issuer whose JWTs the jwt-bearer grant accepts as authorization grants. */
export interface TrustedAssertionIssuer {
  readonly issuer: string
  readonly publicKey: CryptoKey
  /** The JWT `typ` the assertions must carry, when set. */
  readonly type?: string | undefined
  /**
   * Whether the assertion's `client_id` claim must name the authenticated client, as an
   * ID-JAG's does.
   */
  readonly bindsClient?: boolean | undefined
}

/** Options of {@link startAuthorizationServer}. */
export interface AuthorizationServerOptions {
  /** A prefix of the client ids this server issues, so ids show their server in failures. */
  readonly name: string
  /** `scopes_supported`; omitted from the metadata when undefined. */
  readonly scopesSupported?: ReadonlyArray<string> | undefined
  /** RFC 9207 `authorization_response_iss_parameter_supported`; default true. */
  readonly issParameterSupported?: boolean | undefined
  /** `token_endpoint_auth_methods_supported`. */
  readonly authMethods?: ReadonlyArray<ClientAuthMethod> | undefined
  /** `grant_types_supported`. */
  readonly grantTypes?: ReadonlyArray<string> | undefined
  readonly clients?: ReadonlyArray<PreRegisteredClient> | undefined
  /** Whether token responses of code and refresh grants carry a refresh token. */
  readonly issueRefreshTokens?: boolean | undefined
  /** The scope granted for a requested one; by default exactly what was requested. */
  readonly grantScope?: ((requested: string | undefined) => string | undefined) | undefined
  /** Whether DPoP proofs at the token endpoint must carry this server's nonce. */
  readonly requireDpopNonce?: boolean | undefined
  /** A query added to the advertised `token_endpoint`, which a proof's `htu` must drop. */
  readonly tokenEndpointQuery?: string | undefined
  readonly trustedIssuers?: ReadonlyArray<TrustedAssertionIssuer> | undefined
}

/** One Dynamic Client Registration request. */
export interface RegistrationRecord {
  readonly body: Record<string, unknown>
  readonly clientId: string | undefined
  readonly status: number
}

/** One authorization request and the redirect the server returned, if any. */
export interface AuthorizationRecord {
  readonly params: URLSearchParams
  readonly status: number
  readonly location: string | undefined
  readonly problem: string | undefined
}

/** One token endpoint request. */
export interface TokenRequestRecord {
  readonly form: URLSearchParams
  readonly grantType: string | undefined
  /** The raw `Authorization` header. */
  readonly authorization: string | undefined
  /** The client id the request named, in Basic credentials, the form or a client assertion. */
  readonly claimedClientId: string | undefined
  /** The client and method, once authentication succeeded. */
  authenticated?: { readonly clientId: string; readonly method: ClientAuthMethod }
  clientAssertion?: { readonly header: ProtectedHeaderParameters; readonly payload: JWTPayload }
  /** The verified grant assertion of a jwt-bearer request. */
  grantAssertion?: JWTPayload
  dpop?: DpopProofRecord
  status: number
  error?: string
  errorDescription?: string
}

/** An access token this server issued. */
export interface IssuedToken {
  readonly issuer: string
  readonly clientId: string
  readonly grantType: string
  readonly scope: string | undefined
  readonly resource: string | undefined
  /** The DPoP key thumbprint the token is bound to (`cnf.jkt`). */
  readonly jkt: string | undefined
}

/** A running loopback authorization server. */
export interface CapabilityAuthorizationServer {
  readonly issuer: string
  /** The token endpoint as a proof's `htu` must name it: no query. */
  readonly tokenEndpoint: string
  readonly http: CaseServer
  readonly metadata: Readonly<Record<string, unknown>>
  readonly registrations: ReadonlyArray<RegistrationRecord>
  readonly authorizations: ReadonlyArray<AuthorizationRecord>
  readonly tokenRequests: ReadonlyArray<TokenRequestRecord>
  /** The nonce proofs must carry when `requireDpopNonce` is set. */
  readonly dpopNonce: string
  /** The record of an access token issued here, or undefined. */
  lookup(accessToken: string): IssuedToken | undefined
}

interface Client {
  readonly clientId: string
  readonly authMethod: ClientAuthMethod
  readonly secret: string | undefined
  readonly publicKey: CryptoKey | undefined
  readonly redirectUris: ReadonlyArray<string>
}

interface PendingCode {
  readonly clientId: string
  readonly redirectUri: string
  readonly codeChallenge: string
  readonly scope: string | undefined
  readonly resource: string | undefined
}

interface RefreshGrant {
  readonly clientId: string
  readonly scope: string | undefined
  readonly resource: string | undefined
}

/** Starts an authorization server on a free 127.0.0.1 port, closed when the test finishes. */
export const startAuthorizationServer = async (
  options: AuthorizationServerOptions,
): Promise<CapabilityAuthorizationServer> => {
  const http = await startCaseServer()
  onTestFinished(() => http.close())
  const issuer = http.origin
  const tokenEndpoint = `${issuer}/token`
  const authMethods = options.authMethods ?? ["none", "client_secret_basic", "private_key_jwt"]
  const clients = new Map<string, Client>()
  for (const client of options.clients ?? []) {
    clients.set(client.clientId, {
      clientId: client.clientId,
      authMethod: client.authMethod,
      secret: client.secret,
      publicKey: client.publicKey,
      redirectUris: [],
    })
  }
  const registrations: RegistrationRecord[] = []
  const authorizations: AuthorizationRecord[] = []
  const tokenRequests: TokenRequestRecord[] = []
  const codes = new Map<string, PendingCode>()
  const refreshTokens = new Map<string, RefreshGrant>()
  const issued = new Map<string, IssuedToken>()
  const seenProofJtis = new Set<string>()
  const seenAssertionJtis = new Set<string>()
  const dpopNonce = `as-nonce-${randomUUID()}`
  const grantScope = options.grantScope ?? ((requested: string | undefined) => requested)

  const metadata: Record<string, unknown> = {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint:
      options.tokenEndpointQuery === undefined
        ? tokenEndpoint
        : `${tokenEndpoint}?${options.tokenEndpointQuery}`,
    registration_endpoint: `${issuer}/register`,
    response_types_supported: ["code"],
    grant_types_supported: options.grantTypes ?? [
      "authorization_code",
      "refresh_token",
      "client_credentials",
      JWT_BEARER_GRANT_TYPE,
    ],
    token_endpoint_auth_methods_supported: authMethods,
    token_endpoint_auth_signing_alg_values_supported: ["ES256"],
    code_challenge_methods_supported: ["S256"],
    authorization_response_iss_parameter_supported: options.issParameterSupported ?? true,
    dpop_signing_alg_values_supported: ["ES256"],
  }
  if (options.scopesSupported !== undefined) metadata.scopes_supported = options.scopesSupported

  const register = (request: RecordedRequest): CaseResponse => {
    let body: Record<string, unknown>
    try {
      body = JSON.parse(request.body) as Record<string, unknown>
    } catch {
      registrations.push({ body: {}, clientId: undefined, status: 400 })
      return oauthError(400, "invalid_client_metadata", "the body is not JSON")
    }
    const redirectUris = body.redirect_uris
    if (
      !Array.isArray(redirectUris) ||
      redirectUris.length === 0 ||
      !redirectUris.every(isLoopbackHttpUrl)
    ) {
      registrations.push({ body, clientId: undefined, status: 400 })
      return oauthError(400, "invalid_redirect_uri", "redirect_uris must be loopback http URLs")
    }
    const method = (body.token_endpoint_auth_method ?? "client_secret_basic") as ClientAuthMethod
    if (!authMethods.includes(method) || method === "private_key_jwt") {
      registrations.push({ body, clientId: undefined, status: 400 })
      return oauthError(400, "invalid_client_metadata", `unsupported auth method ${method}`)
    }
    const clientId = `${options.name}-client-${randomUUID()}`
    const secret = method === "none" ? undefined : randomUUID()
    clients.set(clientId, {
      clientId,
      authMethod: method,
      secret,
      publicKey: undefined,
      redirectUris: redirectUris as string[],
    })
    registrations.push({ body, clientId, status: 201 })
    return json(201, {
      ...body,
      client_id: clientId,
      client_id_issued_at: Math.floor(Date.now() / 1000),
      token_endpoint_auth_method: method,
      ...(secret === undefined ? {} : { client_secret: secret, client_secret_expires_at: 0 }),
    })
  }

  const authorize = (request: RecordedRequest): CaseResponse => {
    const params = request.searchParams
    const reject = (problem: string): CaseResponse => {
      authorizations.push({ params, status: 400, location: undefined, problem })
      return { status: 400, headers: { "content-type": "text/plain" }, body: problem }
    }
    const client = clients.get(params.get("client_id") ?? "")
    if (client === undefined) return reject("unknown client_id")
    const redirectUri = params.get("redirect_uri") ?? ""
    if (!client.redirectUris.includes(redirectUri)) return reject("unregistered redirect_uri")
    if (params.get("response_type") !== "code") return reject("response_type is not code")
    if (params.get("code_challenge_method") !== "S256") return reject("PKCE method is not S256")
    const codeChallenge = params.get("code_challenge") ?? ""
    if (!/^[A-Za-z0-9_-]{43}$/.test(codeChallenge)) return reject("malformed code_challenge")
    const state = params.get("state")
    if (state === null || state === "") return reject("no state")
    const code = randomUUID()
    codes.set(code, {
      clientId: client.clientId,
      redirectUri,
      codeChallenge,
      scope: grantScope(params.get("scope") ?? undefined),
      resource: params.get("resource") ?? undefined,
    })
    const location = new URL(redirectUri)
    location.searchParams.set("code", code)
    location.searchParams.set("state", state)
    if (options.issParameterSupported ?? true) location.searchParams.set("iss", issuer)
    authorizations.push({ params, status: 302, location: location.href, problem: undefined })
    return { status: 302, headers: { location: location.href } }
  }

  /** Authenticates the client of a token request, or returns the reason it failed. */
  const authenticateClient = async (
    request: RecordedRequest,
    form: URLSearchParams,
    record: TokenRequestRecord,
  ): Promise<Client | string> => {
    const authorization = headerOf(request, "authorization")
    if (authorization?.startsWith("Basic ")) {
      const decoded = Buffer.from(authorization.slice(6), "base64").toString("utf8")
      const separator = decoded.indexOf(":")
      if (separator < 0) return "malformed Basic credentials"
      const clientId = formDecode(decoded.slice(0, separator))
      const secret = formDecode(decoded.slice(separator + 1))
      const client = clients.get(clientId)
      if (client?.authMethod !== "client_secret_basic" || client.secret !== secret) {
        return "Basic credentials do not match a client_secret_basic client"
      }
      record.authenticated = { clientId, method: "client_secret_basic" }
      return client
    }
    const assertion = form.get("client_assertion")
    if (assertion !== null) {
      if (form.get("client_assertion_type") !== CLIENT_ASSERTION_TYPE) {
        return "wrong client_assertion_type"
      }
      let claimed: string | undefined
      try {
        claimed = form.get("client_id") ?? decodeJwt(assertion).sub
      } catch {
        return "the client assertion is not a JWT"
      }
      const client = clients.get(claimed ?? "")
      if (client?.authMethod !== "private_key_jwt" || client.publicKey === undefined) {
        return "the client assertion names no private_key_jwt client"
      }
      try {
        const verified = await jwtVerify(assertion, client.publicKey, {
          issuer: client.clientId,
          subject: client.clientId,
          audience: issuer,
          requiredClaims: ["exp", "jti"],
        })
        record.clientAssertion = { header: verified.protectedHeader, payload: verified.payload }
        const { exp, jti } = verified.payload
        if (exp! - Math.floor(Date.now() / 1000) > MAX_CLIENT_ASSERTION_SECONDS) {
          return "the client assertion lives too long"
        }
        if (seenAssertionJtis.has(jti!)) return "the client assertion jti was replayed"
        seenAssertionJtis.add(jti!)
      } catch (error) {
        return `the client assertion is invalid: ${String(error)}`
      }
      record.authenticated = { clientId: client.clientId, method: "private_key_jwt" }
      return client
    }
    const clientId = form.get("client_id")
    const client = clients.get(clientId ?? "")
    if (client === undefined) return "no client authentication"
    const secret = form.get("client_secret")
    if (secret !== null) {
      if (client.authMethod !== "client_secret_post" || client.secret !== secret) {
        return "client_secret does not match a client_secret_post client"
      }
      record.authenticated = { clientId: client.clientId, method: "client_secret_post" }
      return client
    }
    if (client.authMethod !== "none") return "a confidential client sent no credentials"
    record.authenticated = { clientId: client.clientId, method: "none" }
    return client
  }

  const claimedClientIdOf = (request: RecordedRequest, form: URLSearchParams) => {
    const authorization = headerOf(request, "authorization")
    if (authorization?.startsWith("Basic ")) {
      const decoded = Buffer.from(authorization.slice(6), "base64").toString("utf8")
      return formDecode(decoded.split(":")[0] ?? "")
    }
    const assertion = form.get("client_assertion")
    if (form.get("client_id") === null && assertion !== null) {
      try {
        return decodeJwt(assertion).sub
      } catch {
        return undefined
      }
    }
    return form.get("client_id") ?? undefined
  }

  /** Verifies the `assertion` of a jwt-bearer grant against the trusted issuers. */
  const verifyGrantAssertion = async (
    assertion: string,
    client: Client,
  ): Promise<JWTPayload | string> => {
    let claimedIssuer: string | undefined
    try {
      claimedIssuer = decodeJwt(assertion).iss
    } catch {
      return "the assertion is not a JWT"
    }
    const trusted = options.trustedIssuers?.find((candidate) => candidate.issuer === claimedIssuer)
    if (trusted === undefined) return `untrusted assertion issuer ${String(claimedIssuer)}`
    try {
      const { payload } = await jwtVerify(assertion, trusted.publicKey, {
        issuer: trusted.issuer,
        audience: issuer,
        requiredClaims: ["sub", "exp"],
        ...(trusted.type === undefined ? {} : { typ: trusted.type }),
      })
      if (trusted.bindsClient === true && payload.client_id !== client.clientId) {
        return `the assertion was issued for client ${String(payload.client_id)}`
      }
      return payload
    } catch (error) {
      return `the assertion is invalid: ${String(error)}`
    }
  }

  const issueTokens = (
    record: TokenRequestRecord,
    grant: Omit<IssuedToken, "issuer" | "jkt">,
    withRefreshToken: boolean,
  ): CaseResponse => {
    const accessToken = `${options.name}-at-${randomUUID()}`
    const jkt = record.dpop?.thumbprint
    issued.set(accessToken, { ...grant, issuer, jkt })
    const body: Record<string, unknown> = {
      access_token: accessToken,
      token_type: jkt === undefined ? "Bearer" : "DPoP",
      expires_in: 3600,
    }
    if (grant.scope !== undefined) body.scope = grant.scope
    if (withRefreshToken) {
      const refreshToken = `${options.name}-rt-${randomUUID()}`
      refreshTokens.set(refreshToken, {
        clientId: grant.clientId,
        scope: grant.scope,
        resource: grant.resource,
      })
      body.refresh_token = refreshToken
    }
    record.status = 200
    return json(200, body)
  }

  const token = async (request: RecordedRequest): Promise<CaseResponse> => {
    const form = new URLSearchParams(isForm(request) ? request.body : "")
    const record: TokenRequestRecord = {
      form,
      grantType: form.get("grant_type") ?? undefined,
      authorization: headerOf(request, "authorization"),
      claimedClientId: claimedClientIdOf(request, form),
      status: 0,
    }
    tokenRequests.push(record)
    const fail = (
      status: number,
      error: string,
      description: string,
      headers: Record<string, string> = {},
    ) => {
      record.status = status
      record.error = error
      record.errorDescription = description
      return oauthError(status, error, description, headers)
    }
    if (!isForm(request)) return fail(400, "invalid_request", "the body is not a form")

    const proofHeader = headerOf(request, "dpop")
    if (proofHeader !== undefined) {
      const checked = await verifyDpopProof(proofHeader, {
        method: "POST",
        url: tokenEndpoint,
        seenJtis: seenProofJtis,
      })
      if (!checked.ok) return fail(400, "invalid_dpop_proof", checked.problem)
      record.dpop = checked.proof
      if (options.requireDpopNonce === true && checked.proof.payload.nonce !== dpopNonce) {
        return fail(400, "use_dpop_nonce", "the proof must carry the server nonce", {
          "dpop-nonce": dpopNonce,
        })
      }
    }

    const client = await authenticateClient(request, form, record)
    if (typeof client === "string") return fail(401, "invalid_client", client)
    const resource = form.get("resource") ?? undefined

    switch (record.grantType) {
      case "authorization_code": {
        const code = codes.get(form.get("code") ?? "")
        if (code === undefined) return fail(400, "invalid_grant", "unknown or used code")
        codes.delete(form.get("code") ?? "")
        if (code.clientId !== client.clientId) {
          return fail(400, "invalid_grant", "the code belongs to another client")
        }
        if (form.get("redirect_uri") !== code.redirectUri) {
          return fail(400, "invalid_grant", "redirect_uri differs from the authorization")
        }
        if (sha256Base64Url(form.get("code_verifier") ?? "") !== code.codeChallenge) {
          return fail(400, "invalid_grant", "code_verifier does not match code_challenge")
        }
        if (resource !== code.resource) {
          return fail(400, "invalid_target", "resource differs from the authorization")
        }
        return issueTokens(
          record,
          {
            clientId: client.clientId,
            grantType: "authorization_code",
            scope: code.scope,
            resource,
          },
          options.issueRefreshTokens === true,
        )
      }
      case "refresh_token": {
        const grant = refreshTokens.get(form.get("refresh_token") ?? "")
        if (grant === undefined || grant.clientId !== client.clientId) {
          return fail(400, "invalid_grant", "unknown refresh token")
        }
        refreshTokens.delete(form.get("refresh_token") ?? "")
        return issueTokens(
          record,
          {
            clientId: client.clientId,
            grantType: "refresh_token",
            scope: grant.scope,
            resource: grant.resource,
          },
          true,
        )
      }
      case "client_credentials": {
        if (client.authMethod === "none") {
          return fail(400, "unauthorized_client", "a public client cannot use client_credentials")
        }
        return issueTokens(
          record,
          {
            clientId: client.clientId,
            grantType: "client_credentials",
            scope: grantScope(form.get("scope") ?? undefined),
            resource,
          },
          false,
        )
      }
      case JWT_BEARER_GRANT_TYPE: {
        const assertion = await verifyGrantAssertion(form.get("assertion") ?? "", client)
        if (typeof assertion === "string") return fail(400, "invalid_grant", assertion)
        record.grantAssertion = assertion
        return issueTokens(
          record,
          {
            clientId: client.clientId,
            grantType: JWT_BEARER_GRANT_TYPE,
            scope: grantScope(form.get("scope") ?? undefined),
            resource,
          },
          false,
        )
      }
      default:
        return fail(400, "unsupported_grant_type", `grant_type ${String(record.grantType)}`)
    }
  }

  http.setRoutes({
    "GET /.well-known/oauth-authorization-server": json(200, metadata),
    "POST /register": register,
    "GET /authorize": authorize,
    "POST /token": token,
  })

  return {
    issuer,
    tokenEndpoint,
    http,
    metadata,
    registrations,
    authorizations,
    tokenRequests,
    dpopNonce,
    lookup: (accessToken) => issued.get(accessToken),
  }
}

// ---------------------------------------------------------------------------------------------
// MCP resource server

/** Options of {@link startResourceServer}. */
export interface ResourceServerOptions {
  /** The authorization server the metadata names first and whose tokens are accepted. */
  readonly authorizationServer: CapabilityAuthorizationServer
  /** `scopes_supported` of the protected resource metadata; omitted when undefined. */
  readonly scopesSupported?: ReadonlyArray<string> | undefined
  /** A scope every request needs; a token without it gets 403 `insufficient_scope`. */
  readonly requiredScope?: string | undefined
  /** The challenge scheme; "DPoP" also requires DPoP-bound tokens with a proof. */
  readonly scheme?: "Bearer" | "DPoP" | undefined
  /** Whether resource proofs must carry this server's own nonce (RFC 9449 §9). */
  readonly requireDpopNonce?: boolean | undefined
}

/** One request to the MCP endpoint and the server's response to it. */
export interface McpRequestRecord {
  readonly url: string
  readonly authorization: string | undefined
  readonly proof: DpopProofRecord | undefined
  /** The token's record at the issuing server, when the token was accepted as valid. */
  readonly token: IssuedToken | undefined
  readonly status: number
  readonly wwwAuthenticate: string | undefined
  readonly problem: string | undefined
}

/** A running MCP resource server. */
export interface CapabilityResourceServer {
  /** `http://127.0.0.1:PORT/mcp`, the MCP endpoint and the resource identifier. */
  readonly mcpUrl: string
  /** The RFC 9728 metadata URL that challenges name in `resource_metadata`. */
  readonly metadataUrl: string
  readonly http: CaseServer
  readonly requests: ReadonlyArray<McpRequestRecord>
  /** The nonce resource proofs must carry when `requireDpopNonce` is set. */
  readonly dpopNonce: string
  /** How many times the protected resource metadata was requested. */
  metadataRequestCount(): number
  /**
   * Names `next` in the metadata from now on and accepts only its tokens, so tokens of the
   * previous server get a 401 challenge.
   */
  moveTo(next: CapabilityAuthorizationServer): void
}

/** Starts an MCP resource server on a free 127.0.0.1 port, closed when the test finishes. */
export const startResourceServer = async (
  options: ResourceServerOptions,
): Promise<CapabilityResourceServer> => {
  const http = await startCaseServer()
  onTestFinished(() => http.close())
  const mcpUrl = `${http.origin}/mcp`
  const metadataPath = "/.well-known/oauth-protected-resource/mcp"
  const metadataUrl = `${http.origin}${metadataPath}`
  const scheme = options.scheme ?? "Bearer"
  const dpopNonce = `rs-nonce-${randomUUID()}`
  const seenJtis = new Set<string>()
  const requests: McpRequestRecord[] = []
  let current = options.authorizationServer

  const challenge = (params: Record<string, string> = {}): string => {
    const all: Record<string, string> = { ...params, resource_metadata: metadataUrl }
    if (scheme === "DPoP") all.algs = "ES256"
    const list = Object.entries(all).map(([name, value]) => `${name}="${value}"`)
    return `${scheme} ${list.join(", ")}`
  }

  const handle = async (request: RecordedRequest): Promise<CaseResponse> => {
    const authorization = headerOf(request, "authorization")
    const url = `${http.origin}${request.path}`
    let proof: DpopProofRecord | undefined
    let token: IssuedToken | undefined
    const answer = (
      status: number,
      problem: string | undefined,
      headers: Record<string, string> = {},
    ): CaseResponse => {
      requests.push({
        url: `${url}${request.query === "" ? "" : `?${request.query}`}`,
        authorization,
        proof,
        token,
        status,
        wwwAuthenticate: headers["www-authenticate"],
        problem,
      })
      if (status === 200) return json(200, { jsonrpc: "2.0", id: 1, result: {} })
      return { status, headers }
    }
    const unauthorized = (problem: string, params: Record<string, string> = {}) =>
      answer(401, problem, { "www-authenticate": challenge(params) })

    if (authorization === undefined) return unauthorized("no access token")
    const separator = authorization.indexOf(" ")
    const presentedScheme = authorization.slice(0, separator).toLowerCase()
    const accessToken = authorization.slice(separator + 1)
    token = current.lookup(accessToken)
    if (token === undefined) {
      return unauthorized("unknown token", { error: "invalid_token" })
    }
    if (token.jkt !== undefined || scheme === "DPoP") {
      if (presentedScheme !== "dpop" || token.jkt === undefined) {
        return unauthorized("a DPoP-bound token is required", { error: "invalid_token" })
      }
      const checked = await verifyDpopProof(headerOf(request, "dpop"), {
        method: request.method,
        url,
        accessToken,
        seenJtis,
      })
      if (!checked.ok) return unauthorized(checked.problem, { error: "invalid_dpop_proof" })
      proof = checked.proof
      if (proof.thumbprint !== token.jkt) {
        return unauthorized("the proof key is not the token's key", { error: "invalid_token" })
      }
      if (options.requireDpopNonce === true && proof.payload.nonce !== dpopNonce) {
        return answer(401, "no resource nonce", {
          "www-authenticate": challenge({
            error: "use_dpop_nonce",
            error_description: "Resource server requires nonce in DPoP proof",
          }),
          "dpop-nonce": dpopNonce,
        })
      }
    } else if (presentedScheme !== "bearer") {
      return unauthorized(`scheme ${presentedScheme}`, { error: "invalid_token" })
    }
    if (
      options.requiredScope !== undefined &&
      !splitScope(token.scope).includes(options.requiredScope)
    ) {
      return answer(403, "insufficient scope", {
        "www-authenticate": challenge({
          error: "insufficient_scope",
          scope: options.requiredScope,
        }),
      })
    }
    return answer(200, undefined)
  }

  const metadata = (): CaseResponse => {
    const body: Record<string, unknown> = {
      resource: mcpUrl,
      authorization_servers: [current.issuer],
      bearer_methods_supported: ["header"],
    }
    if (options.scopesSupported !== undefined) body.scopes_supported = options.scopesSupported
    if (scheme === "DPoP") {
      body.dpop_signing_alg_values_supported = ["ES256"]
      body.dpop_bound_access_tokens_required = true
    }
    return json(200, body)
  }

  http.setRoutes({ "POST /mcp": handle, [`GET ${metadataPath}`]: metadata })

  return {
    mcpUrl,
    metadataUrl,
    http,
    requests,
    dpopNonce,
    metadataRequestCount: () => http.requestsTo(`GET ${metadataPath}`).length,
    moveTo: (next) => {
      current = next
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Enterprise identity provider (ID-JAG issuer)

/** Options of {@link startIdentityProvider}. */
export interface IdentityProviderOptions {
  /** The MCP client's id at the identity provider. */
  readonly clientId: string
  readonly clientSecret: string
  /** The MCP client's id at the authorization server, written into each ID-JAG. */
  readonly resourceClientId: string
}

/** One token exchange request and the ID-JAG returned for it. */
export interface TokenExchangeRecord {
  readonly form: URLSearchParams
  readonly status: number
  readonly problem: string | undefined
  readonly idJag: string | undefined
}

/** A running identity provider that exchanges its ID tokens for ID-JAGs. */
export interface IdentityProvider {
  readonly issuer: string
  readonly tokenEndpoint: string
  readonly publicKey: CryptoKey
  readonly http: CaseServer
  readonly exchanges: ReadonlyArray<TokenExchangeRecord>
  /** Signs an ID token for `subject`, issued to this provider's client. */
  issueIdToken(subject: string): Promise<string>
}

/** Starts an identity provider on a free 127.0.0.1 port, closed when the test finishes. */
export const startIdentityProvider = async (
  options: IdentityProviderOptions,
): Promise<IdentityProvider> => {
  const http = await startCaseServer()
  onTestFinished(() => http.close())
  const issuer = http.origin
  const tokenEndpoint = `${issuer}/oauth2/token`
  const { privateKey, publicKey } = await generateKeyPair("ES256")
  const exchanges: TokenExchangeRecord[] = []

  const exchange = async (request: RecordedRequest): Promise<CaseResponse> => {
    const form = new URLSearchParams(isForm(request) ? request.body : "")
    const reject = (status: number, error: string, problem: string) => {
      exchanges.push({ form, status, problem, idJag: undefined })
      return oauthError(status, error, problem)
    }
    if (!isForm(request)) return reject(400, "invalid_request", "the body is not a form")
    if (
      form.get("client_id") !== options.clientId ||
      form.get("client_secret") !== options.clientSecret
    ) {
      return reject(401, "invalid_client", "unknown client or wrong secret")
    }
    if (form.get("grant_type") !== TOKEN_EXCHANGE_GRANT_TYPE) {
      return reject(400, "unsupported_grant_type", "only token exchange is supported")
    }
    if (form.get("requested_token_type") !== ID_JAG_TOKEN_TYPE) {
      return reject(400, "invalid_request", "requested_token_type must be the ID-JAG type")
    }
    if (form.get("subject_token_type") !== ID_TOKEN_TYPE) {
      return reject(400, "invalid_request", "subject_token_type must be an ID token")
    }
    const audience = form.get("audience")
    const resource = form.get("resource")
    if (audience === null || resource === null) {
      return reject(400, "invalid_request", "audience and resource are required")
    }
    let subject: string
    try {
      const { payload } = await jwtVerify(form.get("subject_token") ?? "", publicKey, {
        issuer,
        audience: options.clientId,
        requiredClaims: ["sub"],
      })
      subject = payload.sub!
    } catch (error) {
      return reject(400, "invalid_grant", `the subject token is invalid: ${String(error)}`)
    }
    const idJag = await new SignJWT({
      client_id: options.resourceClientId,
      resource,
      ...(form.get("scope") === null ? {} : { scope: form.get("scope") }),
    })
      .setProtectedHeader({ alg: "ES256", typ: ID_JAG_JWT_TYPE })
      .setIssuer(issuer)
      .setSubject(subject)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime("5m")
      .setJti(randomUUID())
      .sign(privateKey)
    exchanges.push({ form, status: 200, problem: undefined, idJag })
    return json(200, {
      access_token: idJag,
      issued_token_type: ID_JAG_TOKEN_TYPE,
      token_type: "N_A",
      expires_in: 300,
    })
  }

  http.setRoutes({ "POST /oauth2/token": exchange })

  return {
    issuer,
    tokenEndpoint,
    publicKey,
    http,
    exchanges,
    issueIdToken: (subject) =>
      new SignJWT({})
        .setProtectedHeader({ alg: "ES256", typ: "JWT" })
        .setIssuer(issuer)
        .setSubject(subject)
        .setAudience(options.clientId)
        .setIssuedAt()
        .setExpirationTime("5m")
        .sign(privateKey),
  }
}

// ---------------------------------------------------------------------------------------------
// Engine layer that refuses non-loopback requests

const isLoopbackUrl = (url: string): boolean => {
  try {
    const host = new URL(url).hostname
    return host === "127.0.0.1" || host === "[::1]" || host === "localhost"
  } catch {
    return false
  }
}

/** The engine's services with an HTTP client that fails every request off loopback. */
export interface LoopbackOnlyLayer {
  readonly layer: Layer.Layer<AuthEnv>
  /** URLs of requests the engine tried to send off loopback; each failed unsent. */
  readonly refusedUrls: ReadonlyArray<string>
}

/**
 * Builds the engine's services with `browser`, a memory store and an HTTP client that sends
 * only to loopback hosts. A request to any other host fails as a transport error and is
 * recorded, so a test can prove the engine never tried one.
 */
export const makeLoopbackOnlyLayer = (browser: Layer.Layer<Browser>): LoopbackOnlyLayer => {
  const refusedUrls: string[] = []
  const guardedHttp = Layer.effect(
    HttpClient.HttpClient,
    Effect.map(HttpClient.HttpClient, (client) =>
      HttpClient.transform(client, (response, request) => {
        if (isLoopbackUrl(request.url)) return response
        refusedUrls.push(request.url)
        return Effect.fail(
          new HttpClientError.RequestError({
            request,
            reason: "Transport",
            description: "the test layer sends requests to loopback hosts only",
          }),
        )
      }),
    ),
  ).pipe(Layer.provide(HttpLive))
  const layer = Layer.mergeAll(
    guardedHttp,
    Layer.succeed(Keychain, makeMemoryKeychain()),
    browser,
    CallbackServerLive,
    Logger.minimumLogLevel(LogLevel.Warning),
  )
  return { layer, refusedUrls }
}

/** A JSON-RPC `tools/list` request to an MCP endpoint; its body can be sent again. */
export const mcpRequest = (): RequestInit => ({
  method: "POST",
  headers: { "content-type": "application/json", accept: "application/json" },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
})

/** Tells whether any request `server` received carries `text` in its query, body or headers. */
export const requestsMention = (server: CaseServer, text: string): boolean =>
  server.requests.some(
    (request) =>
      request.query.includes(text) ||
      request.body.includes(text) ||
      Object.values(request.headers).some((value) => String(value).includes(text)),
  )
