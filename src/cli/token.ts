/**
 * `token <server-url>`: prints a valid access token on stdout and nothing else, refreshing the
 * stored session first when needed. It never opens a browser: when only a new sign-in would
 * help it exits with code 3.
 */
import { Command } from "@effect/cli"
import { Effect, Redacted } from "effect"
import { makeAuthEngine } from "../engine/engine.js"
import { type AuthError, ConfigError } from "../errors.js"
import {
  CliFailure,
  ExitCode,
  oneLine,
  printLine,
  serverUrlArg,
  serviceLayer,
  storeOption,
} from "./shared.js"

/** Builds the one-line failure of `token`: a usage error, or a request to run `login`. */
const tokenFailure = (serverUrl: string, error: AuthError): CliFailure => {
  if (error instanceof ConfigError) {
    return new CliFailure({ message: oneLine(error.message), exitCode: ExitCode.usage })
  }
  const advice = `sign-in required for ${serverUrl}: run mcp-auth-engine login ${serverUrl}`
  // A missing session needs no further detail. Other failures are appended without repeating
  // the "sign-in required" part of a SignInRequired message.
  let detail: string
  if (error._tag !== "SignInRequired") detail = ` (${oneLine(error.message)})`
  else if (error.detail !== undefined) detail = ` (${error.reason}: ${oneLine(error.detail)})`
  else detail = error.reason === "no_session" ? "" : ` (${error.reason})`
  return new CliFailure({ message: `${advice}${detail}`, exitCode: ExitCode.signInRequired })
}

/** The `token` command. */
export const tokenCommand = Command.make(
  "token",
  { serverUrl: serverUrlArg, store: storeOption },
  ({ serverUrl, store }) =>
    Effect.gen(function* () {
      const engine = yield* makeAuthEngine({ serverUrl })
      const token = yield* engine.getAccessToken({ interactive: false })
      // Printing the access token is this command's contract; nothing else goes to stdout.
      yield* printLine(Redacted.value(token))
    }).pipe(
      Effect.scoped,
      Effect.provide(serviceLayer(store)),
      Effect.mapError((error) => tokenFailure(serverUrl, error)),
    ),
).pipe(
  Command.withDescription(
    "Print a valid access token for an MCP server on stdout, refreshing it if needed; " +
      "exit code 3 when a new sign-in is required.",
  ),
)
