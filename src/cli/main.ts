/**
 * The `mcp-auth-engine` command-line interface. Exit codes: 0 success, 1 failure, 2 invalid
 * arguments, 3 sign-in required (`token`), 130 interrupted. A failed command prints one line on
 * stderr without a stack trace. Invalid arguments print @effect/cli's own message instead.
 */
import { readFileSync } from "node:fs"
import { Command, ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit } from "effect"
import { demoCommand } from "./demo.js"
import { diagramCommand } from "./diagram.js"
import { inspectCommand } from "./inspect.js"
import { loginCommand } from "./login.js"
import { logoutCommand } from "./logout.js"
import {
  CliFailure,
  ExitCode,
  oneLine,
  PlainTextWhenPiped,
  printErrorLine,
  QuietLogging,
} from "./shared.js"
import { statusCommand } from "./status.js"
import { tokenCommand } from "./token.js"

// src/cli/main.ts and dist/cli/main.js are both two folders below package.json.
const packageJson = JSON.parse(
  readFileSync(new URL("../../package.json", import.meta.url), "utf8"),
) as { readonly version: string }

const rootCommand = Command.make("mcp-auth-engine").pipe(
  Command.withDescription(
    "Sign in to remote MCP servers with OAuth 2.1 and hand out their access tokens.",
  ),
  Command.withSubcommands([
    loginCommand,
    tokenCommand,
    statusCommand,
    logoutCommand,
    diagramCommand,
    demoCommand,
    inspectCommand,
  ]),
)

const cli = Command.run(rootCommand, {
  name: "mcp-auth-engine",
  version: packageJson.version,
})

/** Runs the CLI and returns the process exit code; failures are printed here as one line. */
const program: Effect.Effect<number> = Effect.suspend(() => cli(process.argv)).pipe(
  Effect.as(ExitCode.ok as number),
  Effect.catchAll((error) => {
    if (error instanceof CliFailure) {
      return printErrorLine(`error: ${error.message}`).pipe(Effect.as(error.exitCode))
    }
    // @effect/cli has already printed the help text or the validation message.
    if (ValidationError.isValidationError(error)) return Effect.succeed(ExitCode.usage as number)
    return printErrorLine(`error: ${oneLine(String(error))}`).pipe(Effect.as(ExitCode.failure))
  }),
  Effect.catchAllDefect((defect) =>
    printErrorLine(
      `internal error: ${oneLine(defect instanceof Error ? defect.message : String(defect))}`,
    ).pipe(Effect.as(ExitCode.failure as number)),
  ),
  Effect.provide(NodeContext.layer),
  Effect.provide(QuietLogging),
  Effect.provide(PlainTextWhenPiped),
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  disablePrettyLogger: true,
  teardown: (exit, onExit) => {
    // The program's value is its exit code; teardown is generic, so check its type.
    if (Exit.isSuccess(exit)) onExit(typeof exit.value === "number" ? exit.value : ExitCode.ok)
    else onExit(Cause.isInterruptedOnly(exit.cause) ? ExitCode.interrupted : ExitCode.failure)
  },
})
