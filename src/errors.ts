/**
 * Tagged errors, one class per lifecycle step. Each carries a `reason` literal that a host
 * can branch on, the endpoint or value involved, and never a raw response body or a secret.
 */
import { Data } from "effect"

/** The reason discovery (RFC 9728 protected resource metadata, RFC 8414 server metadata) failed. */
export type DiscoveryErrorReason =
  | "invalid_server_url"
  | "network"
  | "http_status"
  | "resource_mismatch"
  | "no_authorization_server"
  | "metadata_not_found"
  | "invalid_metadata"
  | "issuer_mismatch"
  | "pkce_not_supported"
  | "insecure_endpoint"
  | "authorization_server_changed"

/** Discovery failed before any registration or browser step. */
export class DiscoveryError extends Data.TaggedError("DiscoveryError")<{
  readonly reason: DiscoveryErrorReason
  readonly url?: string | undefined
  readonly status?: number | undefined
  readonly expected?: string | undefined
  readonly received?: string | undefined
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    const parts = [`discovery failed (${this.reason})`]
    if (this.detail) parts.push(this.detail)
    if (this.url) parts.push(`url ${this.url}`)
    if (this.status !== undefined) parts.push(`status ${this.status}`)
    if (this.expected !== undefined) parts.push(`expected "${this.expected}"`)
    if (this.received !== undefined) parts.push(`received "${this.received}"`)
    return parts.join(": ")
  }
}

/** The reason no client identity could be obtained. */
export type RegistrationErrorReason =
  | "no_registration_method"
  | "wrong_issuer"
  | "rejected"
  | "invalid_response"
  | "network"

/** The client could not be identified at the authorization server. */
export class RegistrationError extends Data.TaggedError("RegistrationError")<{
  readonly reason: RegistrationErrorReason
  readonly endpoint?: string | undefined
  readonly status?: number | undefined
  readonly error?: string | undefined
  readonly errorDescription?: string | undefined
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    const parts = [`client registration failed (${this.reason})`]
    if (this.detail) parts.push(this.detail)
    if (this.endpoint) parts.push(`endpoint ${this.endpoint}`)
    if (this.status !== undefined) parts.push(`status ${this.status}`)
    if (this.error) parts.push(`error "${this.error}"`)
    return parts.join(": ")
  }
}

/** The reason the authorization step (browser and redirect) failed. */
export type AuthorizationErrorReason =
  | "insecure_endpoint"
  | "browser_failed"
  | "callback_server_failed"
  | "timeout"
  | "state_mismatch"
  | "iss_missing"
  | "iss_mismatch"
  | "access_denied"
  | "error_response"
  | "missing_code"
  | "cancelled"

/** The authorization request or its redirect back to the loopback callback failed. */
export class AuthorizationError extends Data.TaggedError("AuthorizationError")<{
  readonly reason: AuthorizationErrorReason
  readonly url?: string | undefined
  readonly expected?: string | undefined
  readonly received?: string | undefined
  readonly error?: string | undefined
  readonly errorDescription?: string | undefined
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    const parts = [`authorization failed (${this.reason})`]
    if (this.detail) parts.push(this.detail)
    if (this.url) parts.push(`url ${this.url}`)
    if (this.error) parts.push(`error "${this.error}"`)
    if (this.expected !== undefined) parts.push(`expected "${this.expected}"`)
    if (this.received !== undefined) parts.push(`received "${this.received}"`)
    return parts.join(": ")
  }
}

/** The reason a request to the token endpoint failed. */
export type TokenErrorReason =
  | "invalid_grant"
  | "invalid_client"
  | "oauth_error"
  | "invalid_response"
  | "network"
  | "http_status"

/** The grant the token request was made for. */
export type GrantKind =
  | "authorization_code"
  | "refresh_token"
  | "client_credentials"
  | "jwt_bearer"
  | "token_exchange"
  | "revocation"

/** The token endpoint rejected a grant or returned an unusable response. */
export class TokenError extends Data.TaggedError("TokenError")<{
  readonly reason: TokenErrorReason
  readonly grant: GrantKind
  readonly endpoint: string
  readonly status?: number | undefined
  readonly error?: string | undefined
  readonly errorDescription?: string | undefined
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    const parts = [`${this.grant} grant failed (${this.reason})`, `endpoint ${this.endpoint}`]
    if (this.status !== undefined) parts.push(`status ${this.status}`)
    if (this.error) parts.push(`error "${this.error}"`)
    if (this.detail) parts.push(this.detail)
    return parts.join(": ")
  }
}

/** The reason the session store failed. */
export type KeychainErrorReason = "unavailable" | "read_failed" | "write_failed" | "corrupt"

/** The session store could not be read or written. */
export class KeychainError extends Data.TaggedError("KeychainError")<{
  readonly reason: KeychainErrorReason
  readonly store: string
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    return `session store "${this.store}" failed (${this.reason})${this.detail ? `: ${this.detail}` : ""}`
  }
}

/** The reason the engine cannot hand out a token without the user. */
export type SignInRequiredReason = "no_session" | "session_expired" | "cancelled" | "step_up_limit"

/** The user must sign in (again) before a token can be handed out. */
export class SignInRequired extends Data.TaggedError("SignInRequired")<{
  readonly reason: SignInRequiredReason
  readonly serverUrl: string
  readonly detail?: string | undefined
}> {
  override get message(): string {
    return `sign-in required for ${this.serverUrl} (${this.reason})${this.detail ? `: ${this.detail}` : ""}`
  }
}

/** A host passed options the engine cannot work with. */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly option: string
  readonly detail: string
}> {
  override get message(): string {
    return `invalid option "${this.option}": ${this.detail}`
  }
}

/** A failure the engine did not anticipate: a bug, reported as such rather than as a cancel. */
export class UnexpectedError extends Data.TaggedError("UnexpectedError")<{
  readonly reason: "defect"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `unexpected failure: ${this.detail}`
  }
}

/** Every error the engine's lifecycle can end in. */
export type AuthError =
  | DiscoveryError
  | RegistrationError
  | AuthorizationError
  | TokenError
  | KeychainError
  | SignInRequired
  | ConfigError
  | UnexpectedError

/** The `_tag` of every {@link AuthError}. */
export type AuthErrorTag = AuthError["_tag"]

const AUTH_ERROR_TAGS: ReadonlySet<string> = new Set<AuthErrorTag>([
  "DiscoveryError",
  "RegistrationError",
  "AuthorizationError",
  "TokenError",
  "KeychainError",
  "SignInRequired",
  "ConfigError",
  "UnexpectedError",
])

/** Tells whether a value is one of the engine's tagged errors. */
export const isAuthError = (value: unknown): value is AuthError =>
  typeof value === "object" &&
  value !== null &&
  "_tag" in value &&
  typeof value._tag === "string" &&
  AUTH_ERROR_TAGS.has(value._tag)
