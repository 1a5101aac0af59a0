/**
 * `inspect <server-url>`: a `login` whose statechart is drawn live in a browser. The command
 * serves the live view on 127.0.0.1, prints its URL on stderr, signs in as `login` does, and
 * keeps the view up for `--hold` seconds afterwards (Enter on a terminal ends it earlier).
 */
import { Command, Options } from "@effect/cli"
import { Option } from "effect"
import { loginOptions, runLogin } from "./login.js"

const portOption = Options.integer("port").pipe(
  Options.optional,
  Options.withDescription(
    "TCP port of the live view on 127.0.0.1 (0 = any free port). Default: any free port.",
  ),
)

const holdOption = Options.integer("hold").pipe(
  Options.withPseudoName("seconds"),
  Options.withDefault(30),
  Options.withDescription(
    "Seconds the live view stays up after the sign-in ends (Enter on a terminal stops it " +
      "earlier). Default: 30.",
  ),
)

/** The `inspect` command. */
export const inspectCommand = Command.make(
  "inspect",
  { ...loginOptions, port: portOption, hold: holdOption },
  ({ port, hold, ...input }) =>
    runLogin(input, { port: Option.getOrElse(port, () => 0), holdSeconds: hold }),
).pipe(
  Command.withDescription(
    "Sign in to an MCP server like login, while a live view on 127.0.0.1 draws the statechart " +
      "and lists its events.",
  ),
)
