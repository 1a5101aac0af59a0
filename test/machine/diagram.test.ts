/**
 * The generated diagrams: docs/statechart.md must hold the Mermaid text of the current machine,
 * and the Mermaid and JSON renderings must show every state, transition and named guard. The
 * expected states and transitions come from @xstate/graph, not from the renderer under test.
 */
import { readFileSync } from "node:fs"
import type { DirectedGraphNode } from "@xstate/graph"
import { toDirectedGraph } from "@xstate/graph"
import { Runtime } from "effect"
import { describe, expect, it } from "vitest"
import { type AnyStateMachine, and, createMachine, not, setup } from "xstate"
import { extractGenerated, mermaidFence, STATECHART_DOC } from "../../scripts/write-statechart.js"
import {
  type MachineDescription,
  renderAuthMachineJson,
  renderAuthMachineMermaid,
  renderJson,
  renderMermaid,
} from "../../src/machine/diagram.js"
import { makeAuthMachine } from "../../src/machine/machine.js"
import type { AuthEnv } from "../../src/machine/steps.js"

// Rendering never starts an actor, so the services the runtime lacks are never needed.
const authMachine = makeAuthMachine(Runtime.defaultRuntime as Runtime.Runtime<AuthEnv>)

type GraphEdge = DirectedGraphNode["edges"][number]

const graphNodes = (node: DirectedGraphNode): DirectedGraphNode[] => [
  node,
  ...node.children.flatMap(graphNodes),
]

/** Every state node except the root, as @xstate/graph lists them. */
const statesOf = (machine: AnyStateMachine) => graphNodes(toDirectedGraph(machine)).slice(1)

/** Every transition edge, including `always` edges, which @xstate/graph leaves out. */
const transitionCountOf = (machine: AnyStateMachine): number =>
  graphNodes(toDirectedGraph(machine)).reduce(
    (count, node) =>
      count +
      node.edges.length +
      (node.stateNode.always ?? []).reduce(
        (sum, transition) => sum + (transition.target?.length ?? 1),
        0,
      ),
    0,
  )

const guardNameOf = (edge: GraphEdge): string | undefined => {
  const guard: unknown = edge.transition.guard
  if (typeof guard === "string") return guard
  if (typeof guard === "object" && guard !== null && "type" in guard) return String(guard.type)
  return undefined
}

/** The `A --> B : label` lines, with the initial and final markers left out. */
const edgeLines = (mermaid: string): string[] =>
  mermaid
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line.includes(" --> ") && !line.startsWith("[*]") && !line.endsWith("[*]"))

const ID = "[^:\\s\\-{}\\[\\]]+"
const LINE_FORMS: ReadonlyArray<RegExp> = [
  /^stateDiagram-v2$/,
  new RegExp(`^state (${ID}|"[^"]+" as ${ID}) \\{$`),
  /^\}$/,
  /^--$/,
  new RegExp(`^state "[^"]+" as ${ID}$`),
  new RegExp(`^${ID}$`),
  new RegExp(`^${ID} : [^:;#\\n]+$`),
  new RegExp(`^\\[\\*\\] --> ${ID}$`),
  new RegExp(`^${ID} --> \\[\\*\\]$`),
  new RegExp(`^${ID} --> ${ID} : [^:;#\\n]+$`),
]

/**
 * Checks the statement forms the renderer emits against Mermaid's state diagram grammar and
 * returns the problems found. Each line must be one statement, and ids must not contain `-`, `:`
 * or spaces. Labels must not contain `:` or `;`, which end a label, or `#`, which starts a
 * comment. Blocks must be balanced, and every state must be declared exactly once.
 */
const mermaidProblems = (mermaid: string): string[] => {
  const problems: string[] = []
  const lines = mermaid.trimEnd().split("\n")
  if (lines[0] !== "stateDiagram-v2") problems.push(`first line is "${lines[0]}"`)
  let depth = 0
  const declared = new Map<string, number>()
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim()
    if (!LINE_FORMS.some((form) => form.test(line))) {
      problems.push(`line ${index + 1} has no Mermaid form: "${line}"`)
    }
    const block = /^state (?:"[^"]+" as )?(\S+) \{$/.exec(line)
    const plain = /^state "[^"]+" as (\S+)$/.exec(line) ?? new RegExp(`^(${ID})$`).exec(line)
    const id = block?.[1] ?? plain?.[1]
    if (id !== undefined && id !== "stateDiagram-v2" && id !== "}" && id !== "--") {
      declared.set(id, (declared.get(id) ?? 0) + 1)
    }
    if (line.endsWith("{")) depth++
    if (line === "}") depth--
    if (depth < 0) problems.push(`line ${index + 1} closes a block that is not open`)
  }
  if (depth !== 0) problems.push(`${depth} block(s) left open`)
  for (const [id, count] of declared) {
    if (count > 1) problems.push(`state ${id} is declared ${count} times`)
  }
  for (const line of edgeLines(mermaid)) {
    for (const end of line.split(" : ")[0]!.split(" --> ")) {
      if (!declared.has(end)) problems.push(`edge "${line}" uses undeclared state ${end}`)
    }
  }
  return problems
}

/** Returns the id of the block each declared state sits in ("" for the top level). */
const blockOfEachState = (mermaid: string): Map<string, string> => {
  const stack: string[] = [""]
  const blocks = new Map<string, string>()
  for (const raw of mermaid.split("\n").slice(1)) {
    const line = raw.trim()
    const block = /^state (?:"[^"]+" as )?(\S+) \{$/.exec(line)
    if (block) {
      blocks.set(block[1]!, stack.at(-1)!)
      stack.push(block[1]!)
      continue
    }
    if (line === "}") {
      stack.pop()
      continue
    }
    const plain = /^state "[^"]+" as (\S+)$/.exec(line) ?? new RegExp(`^(${ID})$`).exec(line)
    if (plain && line !== "--") blocks.set(plain[1]!, stack.at(-1)!)
  }
  return blocks
}

describe("docs/statechart.md", () => {
  it("holds the diagram of the current machine", () => {
    const document = readFileSync(STATECHART_DOC, "utf8")
    expect(
      extractGenerated(document),
      "docs/statechart.md is out of date; run `npm run docs:statechart`",
    ).toBe(mermaidFence(renderAuthMachineMermaid()))
  })
})

describe("renderAuthMachineMermaid", () => {
  const mermaid = renderAuthMachineMermaid()

  it("is plausible Mermaid syntax", () => {
    expect(mermaidProblems(mermaid)).toEqual([])
  })

  it("declares every state in its parent's block", () => {
    const blocks = blockOfEachState(mermaid)
    for (const node of statesOf(authMachine)) {
      const parent = node.stateNode.parent
      const expectedBlock = parent === undefined || parent.parent === undefined ? "" : parent.key
      expect(blocks.get(node.stateNode.key), `state ${node.stateNode.key}`).toBe(expectedBlock)
    }
  })

  it("starts at idle and enters authorizing at waitingForLock", () => {
    const lines = mermaid.split("\n").map((line) => line.trim())
    expect(lines[1]).toBe("[*] --> idle")
    const block = lines.indexOf("state authorizing {")
    expect(lines[block + 1]).toBe("[*] --> waitingForLock")
  })

  it("draws every transition once", () => {
    expect(edgeLines(mermaid)).toHaveLength(transitionCountOf(authMachine))
  })

  it("labels every named guard used on a transition", () => {
    const guards = graphNodes(toDirectedGraph(authMachine))
      .flatMap((node) => node.edges)
      .map(guardNameOf)
      .filter((name) => name !== undefined)
    expect(guards.length).toBeGreaterThan(0)
    for (const guard of new Set(guards)) {
      expect(mermaid, `guard ${guard}`).toContain(`[${guard}]`)
    }
    expect(mermaid).toContain("always [isListening]")
  })

  it("names invoke results, delays and events", () => {
    expect(mermaid).toContain("discovering --> failed : error discover / storeError")
    expect(mermaid).toContain("registering --> awaitingCallback : done register")
    expect(mermaid).toMatch(/authenticated --> refreshing : after refreshDelay \[.*isRefreshDue/)
    expect(mermaid).toContain("authenticated --> authenticated : after refreshDelay (reenter)")
    expect(mermaid).toContain("awaitingCallback --> failed : after callbackTimeout")
    expect(mermaid).toContain("awaitingCallback --> exchanging : CALLBACK / storeCallback")
  })

  it("draws edges that leave authorizing outside its block", () => {
    const lines = mermaid.split("\n")
    const close = lines.findIndex((line, index) => index > 0 && line === "  }")
    const edge = lines.findIndex((line) => line.trim().startsWith("discovering --> failed"))
    expect(close).toBeGreaterThan(0)
    expect(edge).toBeGreaterThan(close)
  })

  it("is the same on every call", () => {
    expect(renderAuthMachineMermaid()).toBe(mermaid)
  })
})

describe("renderAuthMachineJson", () => {
  const description = JSON.parse(renderAuthMachineJson()) as MachineDescription

  it("lists every state with its invoked actors", () => {
    expect(description.states.map((state) => state.id)).toEqual(
      statesOf(authMachine).map((node) => node.id),
    )
    const authorizing = description.states.find((state) => state.key === "authorizing")
    expect(authorizing?.invoke).toEqual([
      { id: "callbackListener", src: "callbackListener" },
      { id: "signInLock", src: "signInLock" },
    ])
    expect(authorizing?.initial).toBe("mcpAuth.authorizing.waitingForLock")
  })

  it("lists every transition with guard, actions and delay", () => {
    expect(description.transitions).toHaveLength(transitionCountOf(authMachine))
    expect(description.transitions).toContainEqual({
      source: "mcpAuth.authorizing.awaitingCallback",
      targets: ["mcpAuth.failed"],
      event: "xstate.after.callbackTimeout.mcpAuth.authorizing.awaitingCallback",
      kind: "after",
      trigger: "after callbackTimeout",
      actions: ["storeTimeoutError"],
      delay: "callbackTimeout",
      reenter: false,
    })
    expect(description.delays).toEqual(["callbackTimeout", "refreshDelay"])
    expect(description.actions).not.toContain("xstate.cancel")
  })
})

describe("renderMermaid", () => {
  it("rejects transitions on the machine root", () => {
    const machine = createMachine({
      initial: "a",
      on: { RESET: ".a" },
      states: { a: {} },
    })
    expect(() => renderMermaid(machine)).toThrow(/machine root \(RESET\)/)
  })

  it("handles repeated keys, keywords, parallel regions and final states", () => {
    const machine = setup({
      guards: { ready: () => true },
      delays: { pause: 10 },
    }).createMachine({
      id: "sample",
      initial: "one",
      states: {
        one: {
          initial: "idle",
          states: { idle: { on: { GO: "busy" } }, busy: { after: { 500: "idle" } } },
          on: { NEXT: { guard: and(["ready", not("ready")]), target: "both" } },
        },
        both: {
          type: "parallel",
          states: {
            left: { initial: "idle", states: { idle: {} } },
            right: { initial: "end", states: { end: {} } },
          },
          after: { pause: "done" },
        },
        "has-dash": { on: { "evt:colon": { guard: () => true, target: "done" } } },
        done: { type: "final" },
      },
    })

    const mermaid = renderMermaid(machine)

    expect(mermaidProblems(mermaid)).toEqual([])
    expect(edgeLines(mermaid)).toHaveLength(transitionCountOf(machine))
    expect(mermaid).toContain('state "idle" as s_one_idle')
    expect(mermaid).toContain('state "end" as s_both_right_end')
    expect(mermaid).toContain("busy --> s_one_idle : after 500ms")
    expect(mermaid).toContain("one --> both : NEXT [and(ready, not(ready))]")
    expect(mermaid).toContain("both --> done : after pause")
    expect(mermaid).toContain("s_has_dash --> done : evt colon [inline]")
    expect(mermaid).toContain("done --> [*]")
    expect(mermaid).toMatch(/ {4}--\n/)
    expect(JSON.parse(renderJson(machine)).states).toHaveLength(statesOf(machine).length)
  })
})
