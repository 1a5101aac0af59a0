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
export const SESSION_VERSION = 1 as const

const sessionFields = {
  serverUrl: Schema.String,
  /** The `resource` value sent on authorize, token and refresh requests, byte for byte. */
  resource: Schema.optional(Schema.String),
  authorizationServer: AuthorizationServerMetadata,
  client: ClientRegistration,
  tokens: TokenSet,
}

/** One signed-in session for one MCP server. */
export const Session = Schema.Struct({
  version: Schema.Literal(SESSION_VERSION),
  ...sessionFields,
  /** Increases with every write, so a writer can tell a newer record from an older one. */
  generation: Schema.Number,
})
export type Session = typeof Session.Type

/** The version 0 record: the same fields without `generation`. */
export const SessionV0 = Schema.Struct({ version: Schema.Literal(0), ...sessionFields })
export type SessionV0 = typeof SessionV0.Type

/** Reads a version 0 record as a current one whose generation is 0; writes always use version 1. */
const SessionFromV0 = Schema.transform(SessionV0, Schema.typeSchema(Session), {
  strict: true,
  decode: (legacy) => ({ ...legacy, version: SESSION_VERSION, generation: 0 }),
  encode: ({ generation: _generation, ...current }) => ({ ...current, version: 0 as const }),
})

/** Every record version a store may hold, decoded to the current one. */
const StoredSession = Schema.Union(Session, SessionFromV0)

/** Encodes a session to the JSON text kept in a store, always as the current version. */
export const encodeSession = (session: Session): string =>
  JSON.stringify(Schema.encodeSync(Session)(session))

/** Decodes the JSON text kept in a store, migrating older record versions. */
export const decodeSession = Schema.decodeUnknownEither(Schema.parseJson(StoredSession))

/** Reads the `version` field of a stored record; undefined unless the text is JSON with a numeric one. */
export const storedVersionOf = (text: string): number | undefined => {
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" &&
      value !== null &&
      "version" in value &&
      typeof value.version === "number"
      ? value.version
      : undefined
  } catch {
    return undefined
  }
}

/** Current version of the persisted client registration record. */
export const REGISTRATION_VERSION = 1

/**
 * A client registration kept apart from the sessions, so it outlives a rejected refresh token,
 * a sign-out and a restart, and the next sign-in at the same issuer and redirect URI reuses it.
 */
export const StoredRegistration = Schema.Struct({
  version: Schema.Literal(REGISTRATION_VERSION),
  registration: ClientRegistration,
  /** When the client was stored, in milliseconds since the epoch. */
  storedAt: Schema.Number,
})
export type StoredRegistration = typeof StoredRegistration.Type

/** Encodes a registration record to the JSON text kept in a store. */
export const encodeRegistration = (record: StoredRegistration): string =>
  JSON.stringify(Schema.encodeSync(StoredRegistration)(record))

/** Decodes the JSON text of a registration record. */
export const decodeRegistration = Schema.decodeUnknownEither(Schema.parseJson(StoredRegistration))
