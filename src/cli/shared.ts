/**
 * Pieces every command shares: the `--store` and `--json` options, the service layer they
 * select, the quiet logger, output helpers and the failure type that carries an exit code.
 */
import { stripVTControlCharacters } from "node:util"
import { Args, Options } from "@effect/cli"
import { Config, Console, Data, Effect, Layer, Logger, LogLevel } from "effect"
import { type BrowserOption, makeServiceLayer, type StoreName } from "../engine/layers.js"
import type { AuthEnv } from "../machine/steps.js"
import { defaultHome } from "../services/keychain.js"

/** Exit codes of the CLI. */
export const ExitCode = {
  ok: 0,
  /** Any failure without a more specific code. */
  failure: 1,
  /** Invalid command-line arguments or options. */
  usage: 2,
  /** `token` could not return a token without a new interactive sign-in. */
  signInRequired: 3,
  /** The process was stopped by SIGINT or SIGTERM. */
  interrupted: 130,
} as const

/** A command failure: `message` is printed as one line on stderr, then the process exits. */
export class CliFailure extends Data.TaggedError("CliFailure")<{
  readonly message: string
  readonly exitCode: number
}> {}

/** Collapses whitespace so a message always prints as exactly one line. */
export const oneLine = (text: string): string => text.replace(/\s+/g, " ").trim()

/** Writes one line to stdout. */
export const printLine = (text: string): Effect.Effect<void> =>
  Effect.sync(() => void process.stdout.write(`${text}\n`))

/** Writes one line to stderr. */
export const printErrorLine = (text: string): Effect.Effect<void> =>
  Effect.sync(() => void process.stderr.write(`${text}\n`))

/** Prints a value as indented JSON on stdout. */
export const printJson = (value: unknown): Effect.Effect<void> =>
  printLine(JSON.stringify(value, null, 2))

/** The values of `--store`. */
export type StoreChoice = StoreName

/** The environment variable that sets the store when `--store` is not given. */
export const STORE_ENV = "MCP_AUTH_ENGINE_STORE"

const STORE_CHOICES = ["auto", "keychain", "file", "memory"] as const

/** `--store`: where sessions are kept. */
export const storeOption = Options.choice("store", STORE_CHOICES).pipe(
  Options.withFallbackConfig(Config.literal(...STORE_CHOICES)(STORE_ENV)),
  Options.withDefault("auto" as const),
  Options.withDescription(
    "Session store: keychain (the OS keychain: macOS Keychain, Windows Credential Manager or " +
      "the Secret Service on Linux), file (one file per session, mode 0600, under " +
      "$MCP_AUTH_ENGINE_HOME/sessions, default $XDG_CONFIG_HOME/mcp-auth-engine or " +
      "~/.config/mcp-auth-engine), memory (discarded when the command ends) or auto (the OS " +
      `keychain when it works, else file, with a one-line notice on stderr). Default: $${STORE_ENV}, else auto.`,
  ),
)

/** `--json`: machine-readable output on stdout. */
export const jsonOption = Options.boolean("json").pipe(
  Options.withDescription("Print the result as JSON on stdout instead of text."),
)

/** The session store folder used by the file store; read when a command runs. */
export const storeHome = (): string => defaultHome()

/** The services an engine needs, for the store and browser a command selected. */
export const serviceLayer = (
  store: StoreChoice,
  browser: BrowserOption = "headless",
): Layer.Layer<AuthEnv> => makeServiceLayer({ store, browser, home: storeHome() })

const formatLogValue = (value: unknown): string =>
  typeof value === "string" ? value : (JSON.stringify(value) ?? String(value))

/** Log lines as `warning: message (key=value, …)` on stderr, below any spinner line. */
const stderrLogger = Logger.make(({ logLevel, message, annotations }) => {
  const text = Array.isArray(message)
    ? message.map(formatLogValue).join(" ")
    : formatLogValue(message)
  const details = [...annotations].map(([key, value]) => `${key}=${formatLogValue(value)}`)
  const suffix = details.length === 0 ? "" : ` (${details.join(", ")})`
  const clearSpinner = process.stderr.isTTY ? "\r\x1b[2K" : ""
  process.stderr.write(`${clearSpinner}${logLevel._tag.toLowerCase()}: ${text}${suffix}\n`)
})

/**
 * Keeps the engine's logs out of the way: warnings go to stderr, so stdout stays clean for
 * `token` and `--json`. Error entries are dropped because every engine error also reaches the
 * command as a typed failure, which is printed once as the command's error line.
 */
export const QuietLogging: Layer.Layer<never> = Layer.merge(
  Logger.replace(
    Logger.defaultLogger,
    Logger.filterLogLevel(stderrLogger, (level) => LogLevel.lessThan(level, LogLevel.Error)),
  ),
  Logger.minimumLogLevel(LogLevel.Warning),
)

/** The `<server-url>` argument. */
export const serverUrlArg = Args.text({ name: "server-url" }).pipe(
  Args.withDescription("URL of the MCP server (https:, or http: on a loopback host)."),
)

const useColor = (stream: NodeJS.WriteStream): boolean =>
  stream.isTTY === true && process.env.NO_COLOR === undefined

const withoutColor = (args: ReadonlyArray<unknown>): Array<unknown> =>
  args.map((arg) => (typeof arg === "string" ? stripVTControlCharacters(arg) : arg))

/**
 * Removes the colors from @effect/cli's help and error text when the output is not a terminal
 * or `NO_COLOR` is set; @effect/cli 0.77 always colors it.
 */
export const PlainTextWhenPiped: Layer.Layer<never> = Layer.unwrapEffect(
  Console.consoleWith((base) =>
    Effect.sync(() =>
      Console.setConsole({
        ...base,
        log: (...args: ReadonlyArray<unknown>) =>
          base.log(...(useColor(process.stdout) ? args : withoutColor(args))),
        error: (...args: ReadonlyArray<unknown>) =>
          base.error(...(useColor(process.stderr) ? args : withoutColor(args))),
      }),
    ),
  ),
)
