/**
 * `demo`: runs the self-contained demo (loopback authorization server, MCP server, sign-in,
 * scheduled refresh, sign-out). The demo servers use development dependencies, so the demo
 * module is loaded only when this command runs. With `--inspect`, a live view of the
 * statechart follows the run and stays up for `--inspect-hold` seconds after it.
 */
import { Command, Options } from "@effect/cli"
import { Effect, Option } from "effect"
import { acquireLiveView, holdLiveView } from "../inspect/effect.js"
import type { LiveView } from "../inspect/server.js"
import { inspectHoldOption, inspectOption, inspectPortOption } from "./login.js"
import { CliFailure, ExitCode, oneLine, printErrorLine } from "./shared.js"

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

const toCliFailure = (error: { readonly message: string }) =>
  new CliFailure({ message: `demo: ${oneLine(error.message)}`, exitCode: ExitCode.failure })

/** Runs the demo, followed by the live view when one is given. */
const runWithView = (
  options: { browser: "headless" | "system"; accessTokenTtlSeconds: number },
  view: LiveView | undefined,
) =>
  Effect.promise(() => import("../demo/run.js")).pipe(
    Effect.flatMap(({ runDemo }) =>
      runDemo({
        ...options,
        onEngineStarted: view === undefined ? undefined : (engine) => void view.attach(engine),
      }),
    ),
    Effect.mapError(toCliFailure),
  )

/** The `demo` command. */
export const demoCommand = Command.make(
  "demo",
  {
    browser: browserOption,
    accessTokenTtl: accessTokenTtlOption,
    inspect: inspectOption,
    inspectPort: inspectPortOption,
    inspectHold: inspectHoldOption(5),
  },
  ({ browser, accessTokenTtl, inspect, inspectPort, inspectHold }) => {
    const options = { browser, accessTokenTtlSeconds: accessTokenTtl }
    if (!inspect) return runWithView(options, undefined)
    return Effect.gen(function* () {
      const view = yield* acquireLiveView({
        port: Option.getOrElse(inspectPort, () => 0),
        title: "mcp-auth-engine demo",
      }).pipe(Effect.mapError(toCliFailure))
      yield* printErrorLine(`Live view: ${view.url}`)
      const exit = yield* Effect.exit(runWithView(options, view))
      // Held after the run rather than in a finalizer, so Enter or Ctrl-C can end the wait.
      if (inspectHold > 0) {
        yield* printErrorLine(
          `Live view stays up for ${inspectHold} s at ${view.url} (press Enter to stop)`,
        )
        yield* holdLiveView(inspectHold)
      }
      return yield* exit
    }).pipe(Effect.scoped)
  },
).pipe(
  Command.withDescription(
    "Run a local demo: sign in to a loopback MCP server, call a tool, refresh, sign out.",
  ),
)
