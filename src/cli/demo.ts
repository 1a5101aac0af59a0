/**
 * `demo`: runs the self-contained demo (loopback authorization server, MCP server, sign-in,
 * scheduled refresh, sign-out). The demo servers use development dependencies, so the demo
 * module is loaded only when this command runs.
 */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { CliFailure, ExitCode, oneLine } from "./shared.js"

/** Kept equal to `DEFAULT_DEMO_ACCESS_TOKEN_TTL_SECONDS`, which lives in the lazily loaded module. */
const DEFAULT_TTL_SECONDS = 8

const browserOption = Options.choice("browser", ["headless", "system"]).pipe(
  Options.withDefault("headless" as const),
  Options.withDescription(
    "User agent for the authorization page: headless (follows redirects, no window) or " +
      "system (opens your default browser). Default: headless.",
  ),
)

const accessTokenTtlOption = Options.integer("access-token-ttl").pipe(
  Options.withPseudoName("seconds"),
  Options.withDefault(DEFAULT_TTL_SECONDS),
  Options.withDescription(
    "Lifetime of the demo's access tokens, in seconds (at least 2). Default: 8. The engine " +
      "refreshes a token that lives under 2 min at half its lifetime.",
  ),
)

/** The `demo` command. */
export const demoCommand = Command.make(
  "demo",
  { browser: browserOption, accessTokenTtl: accessTokenTtlOption },
  ({ browser, accessTokenTtl }) =>
    Effect.promise(() => import("../demo/run.js")).pipe(
      Effect.flatMap(({ runDemo }) => runDemo({ browser, accessTokenTtlSeconds: accessTokenTtl })),
      Effect.mapError(
        (error) =>
          new CliFailure({
            message: `demo: ${oneLine(error.message)}`,
            exitCode: ExitCode.failure,
          }),
      ),
    ),
).pipe(
  Command.withDescription(
    "Run a local demo: sign in to a loopback MCP server, call a tool, refresh, sign out.",
  ),
)
