/**
 * Loading and saving the persisted session through the `Keychain` service. A write never
 * replaces a record of a higher generation, so a slow writer cannot undo a newer refresh.
 */
import { Effect, Either } from "effect"
import { KeychainError } from "../errors.js"
import { decodeSession, encodeSession, type Session } from "../schema/session.js"
import { Keychain } from "../services/keychain.js"
import { parseUrl } from "./urls.js"

/** The store key of a server: its URL as parsed (scheme and host lowercased), query included. */
export const sessionKey = (serverUrl: string): string =>
  `mcp-auth-engine:${parseUrl(serverUrl)?.href ?? serverUrl}`

/** Reads the stored session of a server; a record that does not decode is left in place. */
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
        detail: `the stored session for ${serverUrl} is not a version ${1} session record; sign out to replace it`,
      })
    }
    return decoded.right
  })

/**
 * Writes a session with the next generation number and returns what was written. When the
 * store already holds a newer generation, that record wins and is returned instead.
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
