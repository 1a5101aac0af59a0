/**
 * OAuth messages: RFC 7591 client registration, RFC 6749 token and error responses.
 */
import { Schema } from "effect"

/** Token endpoint client authentication methods the engine can use (RFC 7591 §2). */
export const TokenEndpointAuthMethod = Schema.Literal(
  "none",
  "client_secret_basic",
  "client_secret_post",
  "private_key_jwt",
)
export type TokenEndpointAuthMethod = typeof TokenEndpointAuthMethod.Type

/** RFC 7591 §3.2.1 registration response. `client_secret_expires_at` stays optional because real servers omit it. */
export const RegistrationResponse = Schema.Struct({
  client_id: Schema.String,
  client_secret: Schema.optional(Schema.String),
  client_secret_expires_at: Schema.optional(Schema.Number),
  client_id_issued_at: Schema.optional(Schema.Number),
  token_endpoint_auth_method: Schema.optional(Schema.String),
  redirect_uris: Schema.optional(Schema.Array(Schema.String)),
})
export type RegistrationResponse = typeof RegistrationResponse.Type

/** A number, or a string holding only digits, as some servers send `expires_in`. */
const LenientSeconds = Schema.Union(
  Schema.Number,
  Schema.String.pipe(Schema.pattern(/^\d+$/)),
  Schema.Unknown,
).pipe(
  Schema.transform(Schema.UndefinedOr(Schema.Number), {
    strict: true,
    decode: (value) => {
      if (typeof value === "number" && Number.isFinite(value) && value >= 0) return value
      if (typeof value === "string" && /^\d+$/.test(value)) return Number(value)
      return undefined
    },
    encode: (value) => value,
  }),
)

/** RFC 6749 §5.1 successful token response. */
export const TokenResponse = Schema.Struct({
  access_token: Schema.String.pipe(Schema.minLength(1)),
  token_type: Schema.String,
  expires_in: Schema.optional(LenientSeconds),
  refresh_token: Schema.optional(Schema.String),
  scope: Schema.optional(Schema.String),
})
export type TokenResponse = typeof TokenResponse.Type

/** RFC 6749 §5.2 error response, also used by RFC 7591 and RFC 7009. */
export const OAuthErrorResponse = Schema.Struct({
  error: Schema.String,
  error_description: Schema.optional(Schema.String),
  error_uri: Schema.optional(Schema.String),
})
export type OAuthErrorResponse = typeof OAuthErrorResponse.Type
