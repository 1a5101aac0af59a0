/**
 * `diagram`: prints the engine's statechart as Mermaid or as JSON. The machine is built but no
 * actor is started, so no service is used.
 */
import { Command, Options } from "@effect/cli"
import { Effect } from "effect"
import { makeAuthMachine } from "../machine/machine.js"
import type { AuthEnv } from "../machine/steps.js"
import { printLine, serviceLayer } from "./shared.js"

const formatOption = Options.choice("format", ["mermaid", "json"]).pipe(
  Options.withDefault("mermaid" as const),
  Options.withDescription(
    "Output format: mermaid (a stateDiagram-v2 block) or json (the machine definition). " +
      "Default: mermaid.",
  ),
)

/** The `diagram` command. */
export const diagramCommand = Command.make("diagram", { format: formatOption }, ({ format }) =>
  Effect.gen(function* () {
    // Loaded on use, so the other commands start without the diagram renderer.
    const { renderJson, renderMermaid } = yield* Effect.promise(
      () => import("../machine/diagram.js"),
    )
    const runtime = yield* Effect.runtime<AuthEnv>()
    const machine = makeAuthMachine(runtime)
    const text = format === "mermaid" ? renderMermaid(machine) : renderJson(machine)
    yield* printLine(text.trimEnd())
  }).pipe(Effect.provide(serviceLayer("memory", "headless"))),
).pipe(Command.withDescription("Print the sign-in lifecycle statechart."))
