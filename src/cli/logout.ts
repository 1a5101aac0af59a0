/**
 * `logout <server-url>` and `logout --all`: for each session, deletes it from the store, then
 * revokes its refresh token and access token where the authorization server allows it (RFC
 * 7009). Succeeds also when there was no session. Client registrations stay stored, so the next
 * sign-in reuses them.
 */
import { Args, Command, Options } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import { KeychainError } from "../errors.js"
import { runLogout } from "../machine/steps.js"
import { loadSession, sessionKey, storedSessionUrls } from "../protocol/session.js"
import { Keychain, lockKey } from "../services/keychain.js"
import { toCliFailure } from "./login.js"
import {
  CliFailure,
  ExitCode,
  oneLine,
  printLine,
  type StoreChoice,
  serviceLayer,
  storeOption,
} from "./shared.js"

/**
 * How long logout waits for another process's refresh or sign-in of the same session. A sign-in
 * holds the lock until the user finishes in the browser, so logout gives up sooner.
 */
const LOGOUT_LOCK_TIMEOUT_MS = 15_000

/**
 * Signs out of one server under the session's lock, so a refresh running in another process
 * cannot store tokens again after the delete. Returns whether a record was stored. A record that
 * does not decode is deleted without revocation.
 */
const logoutOne = (serverUrl: string) =>
  Effect.scoped(
    Effect.gen(function* () {
      const keychain = yield* Keychain
      yield* lockKey(keychain, sessionKey(serverUrl), LOGOUT_LOCK_TIMEOUT_MS).pipe(
        Effect.mapError(
          (error) =>
            new KeychainError({
              reason: error.reason,
              store: error.store,
              cause: error.cause,
              detail: `${error.detail ?? ""}; another mcp-auth-engine process may be signing in to ${serverUrl}, try again when it ends`,
            }),
        ),
      )
      const stored = (yield* keychain.get(sessionKey(serverUrl))) !== undefined
      const session = yield* Effect.either(loadSession(serverUrl))
      yield* runLogout({
        serverUrl,
        session: Either.getOrUndefined(session),
        privateKey: undefined,
      })
      return stored
    }),
  )

const runLogoutCommand = (input: {
  readonly serverUrl: Option.Option<string>
  readonly all: boolean
  readonly store: StoreChoice
}) =>
  Effect.gen(function* () {
    if (input.all && Option.isSome(input.serverUrl)) {
      return yield* new CliFailure({
        message: "give either <server-url> or --all, not both",
        exitCode: ExitCode.usage,
      })
    }
    if (Option.isSome(input.serverUrl)) {
      const serverUrl = input.serverUrl.value
      const stored = yield* logoutOne(serverUrl).pipe(Effect.mapError(toCliFailure))
      yield* printLine(
        stored ? `Signed out of ${serverUrl}.` : `No stored session for ${serverUrl}.`,
      )
      return
    }
    if (!input.all) {
      return yield* new CliFailure({
        message: "missing <server-url>; give the server to sign out of, or --all for every session",
        exitCode: ExitCode.usage,
      })
    }

    const urls = yield* storedSessionUrls.pipe(Effect.mapError(toCliFailure))
    if (urls.length === 0) {
      yield* printLine("No stored sessions.")
      return
    }
    // Every session is attempted; the first failure is reported after the others ran.
    const failures: string[] = []
    for (const serverUrl of urls) {
      const result = yield* Effect.either(logoutOne(serverUrl))
      if (Either.isRight(result)) {
        yield* printLine(`Signed out of ${serverUrl}.`)
      } else {
        failures.push(`${serverUrl}: ${oneLine(result.left.message)}`)
      }
    }
    if (failures.length > 0) {
      return yield* new CliFailure({
        message: `could not sign out of ${failures.length} of ${urls.length} sessions: ${failures.join("; ")}`,
        exitCode: ExitCode.failure,
      })
    }
  }).pipe(Effect.provide(serviceLayer(input.store)))

/** The `logout` command. */
export const logoutCommand = Command.make(
  "logout",
  {
    serverUrl: Args.text({ name: "server-url" }).pipe(
      Args.withDescription("URL of the MCP server to sign out of."),
      Args.optional,
    ),
    all: Options.boolean("all").pipe(
      Options.withDescription("Sign out of every session in the store."),
    ),
    store: storeOption,
  },
  runLogoutCommand,
).pipe(
  Command.withDescription(
    "Delete the stored session of an MCP server (or of every server with --all) and revoke its " +
      "tokens; succeeds when there is none.",
  ),
)
