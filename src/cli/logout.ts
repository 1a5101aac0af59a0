/**
 * `logout <server-url>`: revokes the stored tokens where the server allows it and deletes the
 * session. Succeeds also when there was no session.
 */
import { Command } from "@effect/cli"
import { Effect } from "effect"
import { makeAuthEngine } from "../engine/engine.js"
import { removeSession, sessionKey } from "../protocol/session.js"
import { Keychain } from "../services/keychain.js"
import { toCliFailure } from "./login.js"
import { printLine, serverUrlArg, serviceLayer, storeOption } from "./shared.js"

/** The `logout` command. */
export const logoutCommand = Command.make(
  "logout",
  { serverUrl: serverUrlArg, store: storeOption },
  ({ serverUrl, store }) =>
    Effect.gen(function* () {
      const keychain = yield* Keychain
      const stored = (yield* keychain.get(sessionKey(serverUrl))) !== undefined

      const engine = yield* makeAuthEngine({ serverUrl })
      // The engine ignores LOGOUT while it is still reading the store, so wait for that first.
      yield* Effect.async<void>((resume) => {
        const isLoaded = () => {
          const status = Effect.runSync(engine.status)
          return status.state !== "idle" || status.loaded
        }
        if (isLoaded()) return resume(Effect.void)
        const unsubscribe = engine.subscribe(() => {
          if (isLoaded()) {
            unsubscribe()
            resume(Effect.void)
          }
        })
        return Effect.sync(unsubscribe)
      })
      yield* engine.logout
      // The engine keeps an expired session without a refresh token out of its state, so its
      // logout does not reach that record: delete it here.
      yield* removeSession(serverUrl)

      yield* printLine(
        stored ? `Signed out of ${serverUrl}.` : `No stored session for ${serverUrl}.`,
      )
    }).pipe(Effect.scoped, Effect.provide(serviceLayer(store)), Effect.mapError(toCliFailure)),
).pipe(
  Command.withDescription(
    "Revoke and delete the stored session of an MCP server (succeeds when there is none).",
  ),
)
