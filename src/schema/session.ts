/**
 * The persisted session: what the engine writes to the keychain after a sign-in or a refresh.
 * Secrets are `Redacted` in memory and unwrapped only by the encoder that writes the store.
 */
import { Schema } from "effect"
import { AuthorizationServerMetadata } from "./metadata.js"
import { TokenEndpointAuthMethod } from "./oauth.js"

/** The client identity used with one authorization server. */
export const ClientRegistration = Schema.Struct({
  /** Issuer of the authorization server this client belongs to; never presented to another. */
  issuer: Schema.String,
  clientId: Schema.String,
  clientSecret: Schema.optional(Schema.Redacted(Schema.String)),
  clientSecretExpiresAt: Schema.optional(Schema.Number),
  tokenEndpointAuthMethod: TokenEndpointAuthMethod,
  /** The registered redirect URI; absent for grants without a browser. */
  redirectUri: Schema.optional(Schema.String),
  source: Schema.Literal("pre-registered", "client-metadata-document", "dynamic"),
})
export type ClientRegistration = typeof ClientRegistration.Type

/** Tokens from one grant. `expiresAt` is absolute, in milliseconds since the epoch. */
export const TokenSet = Schema.Struct({
  accessToken: Schema.Redacted(Schema.String),
  tokenType: Schema.String,
  refreshToken: Schema.optional(Schema.Redacted(Schema.String)),
  expiresAt: Schema.optional(Schema.Number),
  scope: Schema.optional(Schema.String),
  obtainedAt: Schema.Number,
})
export type TokenSet = typeof TokenSet.Type

/** Current version of the persisted session record. */
export const SESSION_VERSION = 1

/** One signed-in session for one MCP server. */
export const Session = Schema.Struct({
  version: Schema.Literal(SESSION_VERSION),
  serverUrl: Schema.String,
  /** The `resource` value sent on authorize, token and refresh requests, byte for byte. */
  resource: Schema.optional(Schema.String),
  authorizationServer: AuthorizationServerMetadata,
  client: ClientRegistration,
  tokens: TokenSet,
  /** Increases with every write, so a writer can tell a newer record from an older one. */
  generation: Schema.Number,
})
export type Session = typeof Session.Type

/** Encodes a session to the JSON text kept in a store. */
export const encodeSession = (session: Session): string =>
  JSON.stringify(Schema.encodeSync(Session)(session))

/** Decodes the JSON text kept in a store. */
export const decodeSession = Schema.decodeUnknownEither(Schema.parseJson(Session))
