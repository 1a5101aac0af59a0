/**
 * Loading and saving the persisted session and client registration records through the
 * `Keychain` service. A session write never replaces a record of a higher generation, so a slow
 * writer cannot undo a newer refresh.
 */
import { Effect, Either } from "effect"
import { KeychainError } from "../errors.js"
import {
  type ClientRegistration,
  decodeRegistration,
  decodeSession,
  encodeRegistration,
  encodeSession,
  REGISTRATION_VERSION,
  SESSION_VERSION,
  type Session,
  storedVersionOf,
} from "../schema/session.js"
import { Keychain } from "../services/keychain.js"
import { parseUrl } from "./urls.js"

/** Store keys of sessions are this prefix followed by the canonical server URL. */
export const SESSION_KEY_PREFIX = "mcp-auth-engine:"
/** Store keys of client registrations are this prefix followed by `<issuer>|<redirect URI>`. */
export const REGISTRATION_KEY_PREFIX = "mcp-auth-engine-client:"

/** The store key of a server: its URL as parsed (scheme and host lowercased), query included. */
export const sessionKey = (serverUrl: string): string =>
  `${SESSION_KEY_PREFIX}${parseUrl(serverUrl)?.href ?? serverUrl}`

/** The server URLs of every session in the store, sorted. */
export const storedSessionUrls: Effect.Effect<
  ReadonlyArray<string>,
  KeychainError,
  Keychain
> = Effect.map(Keychain, (keychain) => keychain.keys).pipe(
  Effect.flatten,
  Effect.map((keys) =>
    keys
      .filter((key) => key.startsWith(SESSION_KEY_PREFIX))
      .map((key) => key.slice(SESSION_KEY_PREFIX.length))
      .sort(),
  ),
)

const corruptDetail = (serverUrl: string, text: string): string => {
  const version = storedVersionOf(text)
  if (version !== undefined && version > SESSION_VERSION) {
    return `the stored session for ${serverUrl} is a version ${version} record, written by a newer mcp-auth-engine; upgrade, or sign out to replace it`
  }
  return `the stored session for ${serverUrl} is not a valid session record (versions 0 to ${SESSION_VERSION}); sign out to replace it`
}

/**
 * Reads the stored session of a server, migrating an older record version in memory (the next
 * write stores the current version). A record that does not decode is left in place.
 */
export const loadSession = (
  serverUrl: string,
): Effect.Effect<Session | undefined, KeychainError, Keychain> =>
  Effect.gen(function* () {
    const keychain = yield* Keychain
    const text = yield* keychain.get(sessionKey(serverUrl))
    if (text === undefined) return undefined
    const decoded = decodeSession(text)
    if (Either.isLeft(decoded)) {
      return yield* new KeychainError({
        reason: "corrupt",
        store: keychain.name,
        detail: corruptDetail(serverUrl, text),
      })
    }
    return decoded.right
  })

/**
 * Writes a session with the next generation number and returns what was written. When the
 * store already contains a newer generation, that record wins and is returned instead.
 */
export const saveSession = (session: Session): Effect.Effect<Session, KeychainError, Keychain> =>
  Effect.gen(function* () {
    const keychain = yield* Keychain
    const key = sessionKey(session.serverUrl)
    const currentText = yield* keychain.get(key)
    const current =
      currentText === undefined ? undefined : Either.getOrUndefined(decodeSession(currentText))
    if (current !== undefined && current.generation > session.generation) {
      yield* Effect.logWarning("a newer session is already stored; keeping it").pipe(
        Effect.annotateLogs({ serverUrl: session.serverUrl }),
      )
      return current
    }
    const next: Session = {
      ...session,
      generation: Math.max(session.generation, current?.generation ?? 0) + 1,
    }
    const text = yield* Effect.try({
      try: () => encodeSession(next),
      catch: (cause) =>
        new KeychainError({
          reason: "write_failed",
          store: keychain.name,
          detail: "the session does not match the session record format",
          cause,
        }),
    })
    yield* keychain.set(key, text)
    return next
  })

/** Deletes the stored session of a server. */
export const removeSession = (serverUrl: string): Effect.Effect<void, KeychainError, Keychain> =>
  Effect.flatMap(Keychain, (keychain) => keychain.remove(sessionKey(serverUrl)))

/**
 * Deletes the stored session of a server unless the store contains a newer generation than
 * `generation`: tokens another writer stored meanwhile are not the ones that were rejected.
 */
export const removeSessionIfNotNewer = (
  serverUrl: string,
  generation: number,
): Effect.Effect<void, KeychainError, Keychain> =>
  Effect.gen(function* () {
    const keychain = yield* Keychain
    const text = yield* keychain.get(sessionKey(serverUrl))
    if (text === undefined) return
    const stored = Either.getOrUndefined(decodeSession(text))
    if (stored !== undefined && stored.generation > generation) return
    yield* keychain.remove(sessionKey(serverUrl))
  })

/** The store key of the client registered at `issuer` for `redirectUri` (empty without one). */
export const registrationKey = (issuer: string, redirectUri: string | undefined): string =>
  `${REGISTRATION_KEY_PREFIX}${issuer}|${redirectUri ?? ""}`

/**
 * Reads the stored client registration for an issuer and redirect URI. A record that does not
 * decode, or that belongs to another issuer or redirect URI, counts as absent.
 */
export const loadRegistration = (
  issuer: string,
  redirectUri: string | undefined,
): Effect.Effect<ClientRegistration | undefined, KeychainError, Keychain> =>
  Effect.gen(function* () {
    const keychain = yield* Keychain
    const text = yield* keychain.get(registrationKey(issuer, redirectUri))
    if (text === undefined) return undefined
    const decoded = Either.getOrUndefined(decodeRegistration(text))
    const registration = decoded?.registration
    if (
      registration === undefined ||
      registration.issuer !== issuer ||
      registration.redirectUri !== redirectUri
    ) {
      yield* Effect.logWarning("ignoring a stored client registration that does not fit").pipe(
        Effect.annotateLogs({ issuer, redirectUri: redirectUri ?? "" }),
      )
      return undefined
    }
    return registration
  })

/** Stores a client registration under its issuer and redirect URI. */
export const saveRegistration = (
  registration: ClientRegistration,
): Effect.Effect<void, KeychainError, Keychain> =>
  Effect.gen(function* () {
    const keychain = yield* Keychain
    const text = yield* Effect.try({
      try: () =>
        encodeRegistration({
          version: REGISTRATION_VERSION,
          registration,
          storedAt: Date.now(),
        }),
      catch: (cause) =>
        new KeychainError({
          reason: "write_failed",
          store: keychain.name,
          detail: "the client registration does not match the registration record format",
          cause,
        }),
    })
    yield* keychain.set(registrationKey(registration.issuer, registration.redirectUri), text)
  })

/** Deletes the stored client registration for an issuer and redirect URI. */
export const removeRegistration = (
  issuer: string,
  redirectUri: string | undefined,
): Effect.Effect<void, KeychainError, Keychain> =>
  Effect.flatMap(Keychain, (keychain) => keychain.remove(registrationKey(issuer, redirectUri)))
