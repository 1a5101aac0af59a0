/**
 * Discovery documents: RFC 9728 protected resource metadata and RFC 8414 / OpenID Connect
 * Discovery authorization server metadata. Unknown members are kept out of the decoded value
 * and ignored, as both RFCs require.
 */
import { Schema } from "effect"

const StringArray = Schema.Array(Schema.String)

/** RFC 9728 §2 protected resource metadata (the members the engine reads). */
export const ProtectedResourceMetadata = Schema.Struct({
  resource: Schema.String,
  authorization_servers: Schema.optional(StringArray),
  scopes_supported: Schema.optional(StringArray),
  bearer_methods_supported: Schema.optional(StringArray),
  resource_name: Schema.optional(Schema.String),
})
export type ProtectedResourceMetadata = typeof ProtectedResourceMetadata.Type

/** RFC 8414 §2 authorization server metadata (the members the engine reads). */
export const AuthorizationServerMetadata = Schema.Struct({
  issuer: Schema.String,
  authorization_endpoint: Schema.String,
  token_endpoint: Schema.String,
  registration_endpoint: Schema.optional(Schema.String),
  revocation_endpoint: Schema.optional(Schema.String),
  scopes_supported: Schema.optional(StringArray),
  response_types_supported: Schema.optional(StringArray),
  grant_types_supported: Schema.optional(StringArray),
  token_endpoint_auth_methods_supported: Schema.optional(StringArray),
  code_challenge_methods_supported: Schema.optional(StringArray),
  authorization_response_iss_parameter_supported: Schema.optional(Schema.Boolean),
  client_id_metadata_document_supported: Schema.optional(Schema.Boolean),
  dpop_signing_alg_values_supported: Schema.optional(StringArray),
})
export type AuthorizationServerMetadata = typeof AuthorizationServerMetadata.Type

/** Decodes an unknown JSON value as protected resource metadata. */
export const decodeProtectedResourceMetadata = Schema.decodeUnknownEither(ProtectedResourceMetadata)

/** Decodes an unknown JSON value as authorization server metadata. */
export const decodeAuthorizationServerMetadata = Schema.decodeUnknownEither(
  AuthorizationServerMetadata,
)
