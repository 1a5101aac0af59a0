/**
 * `login <server-url>`: an interactive sign-in that stores the session, with progress on
 * stderr and an optional JSON summary (never tokens) on stdout. With `--inspect`, a live view
 * of the statechart follows the sign-in in a browser.
 */
import { Command, Options } from "@effect/cli"
import { Config, Effect, Option, type Redacted } from "effect"
import { makeAuthEngine } from "../engine/engine.js"
import type { BrowserOption } from "../engine/layers.js"
import { type AuthError, ConfigError } from "../errors.js"
import { acquireLiveView, holdLiveView } from "../inspect/effect.js"
import type { ClientConfig } from "../protocol/registration.js"
import { formatExpiry, makeProgressReporter } from "./progress.js"
import {
  CliFailure,
  ExitCode,
  jsonOption,
  oneLine,
  printErrorLine,
  printJson,
  printLine,
  serverUrlArg,
  serviceLayer,
  storeOption,
} from "./shared.js"

/** The environment variable the client secret is read from. */
export const CLIENT_SECRET_ENV = "MCP_AUTH_ENGINE_CLIENT_SECRET"

const browserOption = Options.choice("browser", ["system", "headless", "command"]).pipe(
  Options.optional,
  Options.withDescription(
    "User agent for the authorization page: system (default browser), headless (follows " +
      "redirects without a page, for servers that approve automatically) or command " +
      "(the program given by --browser-command). Default: system, or command when " +
      "--browser-command is set.",
  ),
)

const browserCommandOption = Options.text("browser-command").pipe(
  Options.withPseudoName("program"),
  Options.optional,
  Options.withDescription(
    "Program that opens the authorization URL, run without a shell with the URL as its " +
      "only argument. Implies --browser command.",
  ),
)

const scopeOption = Options.text("scope").pipe(
  Options.optional,
  Options.withDescription(
    "Space-separated scopes to request. Default: the scope from the server's challenge or " +
      "its protected resource metadata.",
  ),
)

const clientIdOption = Options.text("client-id").pipe(
  Options.optional,
  Options.withDescription(
    "Pre-registered OAuth client id. Default: register a client dynamically.",
  ),
)

const clientSecretOption = Options.redacted("client-secret").pipe(
  Options.withFallbackConfig(Config.redacted(CLIENT_SECRET_ENV)),
  Options.optional,
  Options.withDescription(
    `Client secret of the pre-registered client. Prefer the ${CLIENT_SECRET_ENV} ` +
      "environment variable: command lines are visible to other local users.",
  ),
)

const clientMetadataUrlOption = Options.text("client-metadata-url").pipe(
  Options.optional,
  Options.withDescription(
    "https: URL of a client metadata document to use as the client id instead of " +
      "registering a client.",
  ),
)

/** `--inspect`: serve the live view of the statechart for this run. */
export const inspectOption = Options.boolean("inspect").pipe(
  Options.withDescription(
    "Serve a live view of the statechart on 127.0.0.1 for this run and print its URL on stderr.",
  ),
)

/** `--inspect-port`: the live view's port. */
export const inspectPortOption = Options.integer("inspect-port").pipe(
  Options.withPseudoName("port"),
  Options.optional,
  Options.withDescription(
    "TCP port of the live view on 127.0.0.1 (0 = any free port). Default: any free port.",
  ),
)

/** `--inspect-hold`: how long the live view stays up after the run, with a given default. */
export const inspectHoldOption = (defaultSeconds: number) =>
  Options.integer("inspect-hold").pipe(
    Options.withPseudoName("seconds"),
    Options.withDefault(defaultSeconds),
    Options.withDescription(
      "Seconds the live view stays up after the run ends (Enter on a terminal stops it " +
        `earlier). Default: ${defaultSeconds}.`,
    ),
  )

const callbackPortOption = Options.integer("callback-port").pipe(
  Options.optional,
  Options.withDescription(
    "Preferred TCP port of the loopback redirect listener on 127.0.0.1 (0 = any free " +
      "port). Default: 33418, falling back to a free port when it is taken.",
  ),
)

/** Picks the browser layer option, rejecting contradictory flags. */
const resolveBrowser = (
  browser: Option.Option<"system" | "headless" | "command">,
  browserCommand: Option.Option<string>,
): Effect.Effect<BrowserOption, CliFailure> => {
  const choice = Option.getOrElse(browser, () =>
    Option.isSome(browserCommand) ? ("command" as const) : ("system" as const),
  )
  if (choice === "command") {
    if (Option.isNone(browserCommand) || browserCommand.value.trim() === "") {
      return new CliFailure({
        message: "--browser command needs --browser-command <program>",
        exitCode: ExitCode.usage,
      })
    }
    return Effect.succeed({ command: browserCommand.value, args: [] })
  }
  if (Option.isSome(browserCommand)) {
    return new CliFailure({
      message: `--browser-command is only used with --browser command, not --browser ${choice}`,
      exitCode: ExitCode.usage,
    })
  }
  return Effect.succeed(choice)
}

/** Turns an engine error into the command's one-line failure. */
export const toCliFailure = (error: AuthError | ConfigError): CliFailure =>
  new CliFailure({
    message: oneLine(error.message),
    exitCode: error instanceof ConfigError ? ExitCode.usage : ExitCode.failure,
  })

/** Settings of a run's live view: its port, and how long it stays up after the run. */
export interface LiveViewSettings {
  readonly port: number
  readonly holdSeconds: number
}

/** The parsed options of `login` (and of `inspect`, which adds the live view). */
export interface LoginInput {
  readonly serverUrl: string
  readonly browser: Option.Option<"system" | "headless" | "command">
  readonly browserCommand: Option.Option<string>
  readonly store: Parameters<typeof serviceLayer>[0]
  readonly scope: Option.Option<string>
  readonly clientId: Option.Option<string>
  readonly clientSecret: Option.Option<Redacted.Redacted<string>>
  readonly clientMetadataUrl: Option.Option<string>
  readonly callbackPort: Option.Option<number>
  readonly json: boolean
}

/** Runs a sign-in; with `liveView`, a live view follows it and its URL is printed on stderr. */
export const runLogin = (input: LoginInput, liveView?: LiveViewSettings) =>
  Effect.gen(function* () {
    const browser = yield* resolveBrowser(input.browser, input.browserCommand)
    const client: ClientConfig = {
      clientId: Option.getOrUndefined(input.clientId),
      clientSecret: Option.getOrUndefined(input.clientSecret),
      clientMetadataUrl: Option.getOrUndefined(input.clientMetadataUrl),
    }

    const signIn = Effect.gen(function* () {
      const view =
        liveView === undefined
          ? undefined
          : yield* acquireLiveView({ port: liveView.port, title: "mcp-auth-engine login" }).pipe(
              Effect.mapError(
                (error) => new CliFailure({ message: error.message, exitCode: ExitCode.failure }),
              ),
            )
      if (view !== undefined) yield* printErrorLine(`Live view: ${view.url}`)
      const engine = yield* makeAuthEngine({
        serverUrl: input.serverUrl,
        client,
        scope: Option.getOrUndefined(input.scope),
        callbackPort: Option.getOrUndefined(input.callbackPort),
      }).pipe(Effect.mapError(toCliFailure))
      if (view !== undefined) view.attach(engine)
      const reporter = makeProgressReporter()
      const unsubscribe = engine.subscribe(reporter.update)
      const signedIn = yield* Effect.exit(
        engine.authenticate.pipe(
          Effect.ensuring(
            Effect.sync(() => {
              unsubscribe()
              reporter.stop()
            }),
          ),
          Effect.mapError(toCliFailure),
        ),
      )
      // Held after the sign-in rather than in a finalizer, so Enter or Ctrl-C can end the wait.
      if (view !== undefined && liveView !== undefined && liveView.holdSeconds > 0) {
        yield* printErrorLine(
          `Live view stays up for ${liveView.holdSeconds} s at ${view.url} (press Enter to stop)`,
        )
        yield* holdLiveView(liveView.holdSeconds)
      }
      yield* signedIn
      return yield* engine.status
    }).pipe(Effect.scoped, Effect.provide(serviceLayer(input.store, browser)))

    const status = yield* signIn

    if (input.json) {
      yield* printJson({
        serverUrl: status.serverUrl,
        state: status.state,
        authorizationServer: status.authorizationServer ?? null,
        scope: status.scope ?? null,
        expiresAt: status.expiresAt === undefined ? null : new Date(status.expiresAt).toISOString(),
      })
      return
    }
    yield* printLine(`Signed in to ${status.serverUrl}`)
    yield* printLine(`  authorization server: ${status.authorizationServer ?? "unknown"}`)
    yield* printLine(`  scope: ${status.scope ?? "(none granted)"}`)
    yield* printLine(`  access token expires: ${formatExpiry(status.expiresAt, Date.now())}`)
  })

/** The arguments and options `login` and `inspect` share. */
export const loginOptions = {
  serverUrl: serverUrlArg,
  browser: browserOption,
  browserCommand: browserCommandOption,
  store: storeOption,
  scope: scopeOption,
  clientId: clientIdOption,
  clientSecret: clientSecretOption,
  clientMetadataUrl: clientMetadataUrlOption,
  callbackPort: callbackPortOption,
  json: jsonOption,
}

/** The `login` command. */
export const loginCommand = Command.make(
  "login",
  {
    ...loginOptions,
    inspect: inspectOption,
    inspectPort: inspectPortOption,
    inspectHold: inspectHoldOption(0),
  },
  ({ inspect, inspectPort, inspectHold, ...input }) =>
    runLogin(
      input,
      inspect
        ? { port: Option.getOrElse(inspectPort, () => 0), holdSeconds: inspectHold }
        : undefined,
    ),
).pipe(
  Command.withDescription(
    "Sign in to an MCP server through its OAuth authorization server and store the session.",
  ),
)
