/**
 * Diagrams generated from a machine definition: Mermaid `stateDiagram-v2` text and a JSON
 * description. Both read the `StateNode` tree that XState builds, so they show exactly the states,
 * transitions, guards, actions, delays and invoked actors the running engine uses.
 */
import { Runtime } from "effect"
import type { AnyStateMachine, AnyStateNode } from "xstate"
import { makeAuthMachine } from "./machine.js"
import type { AuthEnv } from "./steps.js"

/** The kind of trigger that fires a transition. */
export type TransitionKind =
  | "event"
  | "done"
  | "error"
  | "snapshot"
  | "after"
  | "always"
  | "stateDone"

/** One transition of the machine. States are named by their XState state node id. */
export interface TransitionDescription {
  readonly source: string
  /** Target state ids; empty for a transition that only runs actions and stays in `source`. */
  readonly targets: ReadonlyArray<string>
  /** The XState event type, such as `xstate.done.actor.discover`; empty for `always`. */
  readonly event: string
  readonly kind: TransitionKind
  /** The diagram label of the trigger: the event name, `done discover`, `after refreshDelay`. */
  readonly trigger: string
  readonly guard?: string | undefined
  /** Guard parameters given as a value; parameters computed from the event are not shown. */
  readonly guardParams?: unknown
  readonly actions: ReadonlyArray<string>
  /** The delay name, or the delay in milliseconds, of an `after` transition. */
  readonly delay?: string | number | undefined
  /** Whether a transition to its own source exits and re-enters it (restarting its actors). */
  readonly reenter: boolean
}

/** An actor a state invokes while it is active. */
export interface InvokeDescription {
  readonly id: string
  readonly src: string
}

/** One state node, root excluded. */
export interface StateDescription {
  readonly id: string
  readonly key: string
  readonly path: ReadonlyArray<string>
  readonly type: AnyStateNode["type"]
  /** The parent state id; the machine id for top-level states. */
  readonly parent: string
  /** The initial child state id of a compound state. */
  readonly initial?: string | undefined
  readonly invoke: ReadonlyArray<InvokeDescription>
  readonly entry: ReadonlyArray<string>
  readonly exit: ReadonlyArray<string>
  readonly tags: ReadonlyArray<string>
}

/** A whole machine; `guards`, `actions`, `delays` and `actors` list the names in use, sorted. */
export interface MachineDescription {
  readonly id: string
  readonly initial?: string | undefined
  readonly states: ReadonlyArray<StateDescription>
  readonly transitions: ReadonlyArray<TransitionDescription>
  readonly guards: ReadonlyArray<string>
  readonly actions: ReadonlyArray<string>
  readonly delays: ReadonlyArray<string>
  readonly actors: ReadonlyArray<string>
}

const INLINE = "inline"

const hasProperty = <K extends string>(value: unknown, key: K): value is Record<K, unknown> =>
  (typeof value === "object" || typeof value === "function") && value !== null && key in value

/** Names a guard: its `setup()` name, `and(a, b)` for combinators, `inline` for a function. */
const guardName = (guard: unknown): string => {
  if (typeof guard === "string") return guard
  if (typeof guard === "function") {
    // XState's and/or/not return functions named after themselves that keep their operands.
    if (hasProperty(guard, "guards") && Array.isArray(guard.guards)) {
      return `${guard.name}(${guard.guards.map(guardName).join(", ")})`
    }
    if (hasProperty(guard, "stateValue")) return `stateIn(${JSON.stringify(guard.stateValue)})`
    return INLINE
  }
  return hasProperty(guard, "type") ? String(guard.type) : INLINE
}

const staticGuardParams = (guard: unknown): unknown =>
  typeof guard === "object" && hasProperty(guard, "params") && typeof guard.params !== "function"
    ? guard.params
    : undefined

/** Names an action: its `setup()` name, the type of a built-in action, `inline` otherwise. */
const actionName = (action: unknown): string => {
  if (typeof action === "string") return action
  // Built-in actions (assign, raise, sendTo…) are functions with `resolve` and their `type`.
  if (typeof action === "function") {
    return hasProperty(action, "resolve") && hasProperty(action, "type")
      ? String(action.type)
      : INLINE
  }
  return hasProperty(action, "type") ? String(action.type) : INLINE
}

/** Tells whether an action is a raise or cancel that XState adds to implement `after`. */
const isDelayBookkeeping = (action: unknown): boolean => {
  const id = hasProperty(action, "id")
    ? action.id
    : hasProperty(action, "sendId")
      ? action.sendId
      : undefined
  return typeof id === "string" && id.startsWith("xstate.after.")
}

const delayLabel = (delay: unknown): string | number =>
  typeof delay === "string" || typeof delay === "number" ? delay : INLINE

const triggerOf = (
  eventType: string,
  delays: ReadonlyMap<string, string | number>,
): { kind: TransitionKind; trigger: string; delay?: string | number } => {
  const delay = delays.get(eventType)
  if (delay !== undefined) {
    return {
      kind: "after",
      trigger: `after ${typeof delay === "number" ? `${delay}ms` : delay}`,
      delay,
    }
  }
  const prefixes: ReadonlyArray<[string, TransitionKind, string]> = [
    ["xstate.done.actor.", "done", "done"],
    ["xstate.error.actor.", "error", "error"],
    ["xstate.snapshot.", "snapshot", "snapshot"],
  ]
  for (const [prefix, kind, word] of prefixes) {
    if (eventType.startsWith(prefix)) {
      return { kind, trigger: `${word} ${eventType.slice(prefix.length)}` }
    }
  }
  if (eventType.startsWith("xstate.done.state.")) return { kind: "stateDone", trigger: "done" }
  return { kind: "event", trigger: eventType }
}

const describeTransition = (
  transition: AnyStateNode["transitions"] extends Map<string, Array<infer T>> ? T : never,
  delays: ReadonlyMap<string, string | number>,
): TransitionDescription => {
  const always = transition.eventType === ""
  const trigger = always
    ? { kind: "always" as const, trigger: "always" }
    : triggerOf(transition.eventType, delays)
  const guardParams = staticGuardParams(transition.guard)
  return {
    source: transition.source.id,
    targets: (transition.target ?? []).map((target: AnyStateNode) => target.id),
    event: transition.eventType,
    ...trigger,
    ...(transition.guard === undefined ? {} : { guard: guardName(transition.guard) }),
    ...(guardParams === undefined ? {} : { guardParams }),
    actions: transition.actions.map(actionName),
    reenter: transition.reenter,
  }
}

const childrenOf = (node: AnyStateNode): AnyStateNode[] => Object.values(node.states)

/** Describes every state and transition of a machine, in definition order (depth first). */
export const describeMachine = (machine: AnyStateMachine): MachineDescription => {
  const states: StateDescription[] = []
  const transitions: TransitionDescription[] = []

  const visit = (node: AnyStateNode) => {
    const delays = new Map<string, string | number>(
      node.after.map((transition) => [transition.eventType, delayLabel(transition.delay)]),
    )
    for (const list of node.transitions.values()) {
      for (const transition of list) transitions.push(describeTransition(transition, delays))
    }
    for (const transition of node.always ?? []) {
      transitions.push(describeTransition(transition, delays))
    }
    for (const child of childrenOf(node)) {
      const initial = child.type === "compound" ? child.initial.target[0]?.id : undefined
      states.push({
        id: child.id,
        key: child.key,
        path: child.path,
        type: child.type,
        parent: node.id,
        ...(initial === undefined ? {} : { initial }),
        invoke: child.invoke.map((invoke) => ({
          id: invoke.id,
          src: typeof invoke.src === "string" ? invoke.src : INLINE,
        })),
        entry: child.entry.filter((action) => !isDelayBookkeeping(action)).map(actionName),
        exit: child.exit.filter((action) => !isDelayBookkeeping(action)).map(actionName),
        tags: child.tags,
      })
      visit(child)
    }
  }
  visit(machine.root)

  const sortedUnique = (values: Iterable<string>) => [...new Set(values)].sort()
  const initial = machine.root.initial.target[0]?.id
  return {
    id: machine.root.id,
    ...(initial === undefined ? {} : { initial }),
    states,
    transitions,
    guards: sortedUnique(transitions.flatMap((t) => (t.guard === undefined ? [] : [t.guard]))),
    actions: sortedUnique([
      ...transitions.flatMap((t) => t.actions),
      ...states.flatMap((s) => [...s.entry, ...s.exit]),
    ]),
    delays: sortedUnique(
      transitions.flatMap((t) => (typeof t.delay === "string" ? [t.delay] : [])),
    ),
    actors: sortedUnique(states.flatMap((s) => s.invoke.map((invoke) => invoke.src))),
  }
}

/** Renders the machine description as pretty-printed JSON. */
export const renderJson = (machine: AnyStateMachine): string =>
  `${JSON.stringify(describeMachine(machine), null, 2)}\n`

// Words the Mermaid state diagram lexer reads as keywords at the start of a statement.
const MERMAID_KEYWORDS = new Set([
  "default",
  "state",
  "note",
  "class",
  "classdef",
  "scale",
  "direction",
  "acctitle",
  "accdescr",
  "end",
])

/**
 * Gives every state a Mermaid id: its key when that is a plain identifier used once, otherwise
 * its path joined with `_` (numbered if that still collides). Mermaid ids are global, and an id
 * may not contain `-`, `:` or spaces.
 */
const assignMermaidIds = (states: ReadonlyArray<StateDescription>): Map<string, string> => {
  const sanitize = (text: string) => text.replace(/[^A-Za-z0-9_]/g, "_")
  const keyCounts = new Map<string, number>()
  for (const state of states) keyCounts.set(state.key, (keyCounts.get(state.key) ?? 0) + 1)
  const ids = new Map<string, string>()
  const used = new Set<string>()
  for (const state of states) {
    const plain =
      /^[A-Za-z_][A-Za-z0-9_]*$/.test(state.key) &&
      keyCounts.get(state.key) === 1 &&
      !MERMAID_KEYWORDS.has(state.key.toLowerCase())
    let id = plain ? state.key : `s_${sanitize(state.path.join("_"))}`
    for (let n = 2; used.has(id); n++) id = `${id}_${n}`
    used.add(id)
    ids.set(state.id, id)
  }
  return ids
}

/**
 * Removes what the Mermaid lexer would misread inside a label: `:` and `;` end it, `#` and `%%`
 * start comments.
 */
const mermaidText = (text: string): string =>
  text
    .replace(/[:;#%\r\n]/g, " ")
    .replace(/\s+/g, " ")
    .trim()

const labelOf = (transition: TransitionDescription): string => {
  let label = transition.trigger
  if (transition.guard !== undefined) label += ` [${transition.guard}]`
  if (transition.actions.length > 0) label += ` / ${transition.actions.join(", ")}`
  if (transition.reenter) label += " (reenter)"
  return mermaidText(label)
}

/**
 * The state whose block holds an edge: the deepest proper ancestor shared by both ends. An edge
 * drawn inside a composite block pulls its states into that block, so an edge that leaves a
 * compound state must be drawn outside it.
 */
const containerOf = (
  source: StateDescription,
  target: StateDescription,
  byPath: ReadonlyMap<string, StateDescription>,
  rootId: string,
): string => {
  let depth = 0
  const limit = Math.min(source.path.length, target.path.length) - 1
  while (depth < limit && source.path[depth] === target.path[depth]) depth++
  if (depth === 0) return rootId
  return byPath.get(source.path.slice(0, depth).join("."))?.id ?? rootId
}

/**
 * Renders a machine as Mermaid `stateDiagram-v2` text. Compound states are `state x { … }` blocks
 * that declare their children. Edges leaving a block are drawn at the level that contains both
 * ends. Labels read `trigger [guard] / action, action`. A transition without a target is drawn as
 * a loop on its state, and `(reenter)` marks a loop that exits and re-enters the state.
 * Throws when the machine root itself has transitions, which a state diagram cannot draw.
 */
export const renderMermaid = (machine: AnyStateMachine): string => {
  const description = describeMachine(machine)
  const rootId = description.id
  const rootTransitions = description.transitions.filter((t) => t.source === rootId)
  if (rootTransitions.length > 0) {
    const events = rootTransitions.map((t) => t.trigger).join(", ")
    throw new Error(
      `renderMermaid: transitions on the machine root (${events}) have no state to start from; define them on a state`,
    )
  }

  const ids = assignMermaidIds(description.states)
  const statesById = new Map(description.states.map((state) => [state.id, state]))
  const byPath = new Map(description.states.map((state) => [state.path.join("."), state]))
  const edgesByContainer = new Map<string, string[]>()
  for (const transition of description.transitions) {
    const source = statesById.get(transition.source)!
    const targets = transition.targets.length === 0 ? [transition.source] : transition.targets
    for (const targetId of targets) {
      const target = statesById.get(targetId)!
      const container = containerOf(source, target, byPath, rootId)
      const line = `${ids.get(source.id)} --> ${ids.get(target.id)} : ${labelOf(transition)}`
      edgesByContainer.set(container, [...(edgesByContainer.get(container) ?? []), line])
    }
  }

  const lines = ["stateDiagram-v2"]
  const renderBlock = (parentId: string, initial: string | undefined, indent: string) => {
    if (initial !== undefined) lines.push(`${indent}[*] --> ${ids.get(initial)}`)
    const children = description.states.filter((state) => state.parent === parentId)
    const parentIsParallel = statesById.get(parentId)?.type === "parallel"
    children.forEach((state, index) => {
      // Regions of a parallel state are separated by `--`.
      if (parentIsParallel && index > 0) lines.push(`${indent}--`)
      const id = ids.get(state.id)!
      const declaration = id === state.key ? id : `"${mermaidText(state.key)}" as ${id}`
      if (state.type === "compound" || state.type === "parallel") {
        lines.push(`${indent}state ${declaration} {`)
        renderBlock(state.id, state.initial, `${indent}  `)
        lines.push(`${indent}}`)
        return
      }
      lines.push(id === state.key ? `${indent}${id}` : `${indent}state ${declaration}`)
      // Mermaid drops the box of a composite state that has a description (an open bug in
      // Mermaid's state diagrams), so only leaf states get one.
      if (state.invoke.length > 0) {
        const invoked = state.invoke.map((invoke) => invoke.id).join(", ")
        lines.push(`${indent}${id} : ${mermaidText(`invoke ${invoked}`)}`)
      }
      if (state.type === "final") lines.push(`${indent}${id} --> [*]`)
    })
    for (const edge of edgesByContainer.get(parentId) ?? []) lines.push(`${indent}${edge}`)
  }
  renderBlock(rootId, description.initial, "  ")
  return `${lines.join("\n")}\n`
}

/**
 * Builds the engine's statechart for rendering only. `makeAuthMachine` needs a runtime for its
 * actors, but rendering reads the definition and never starts an actor, so the default runtime
 * (which lacks the engine's services) is never asked for one.
 */
const authMachineForRendering = () =>
  makeAuthMachine(Runtime.defaultRuntime as Runtime.Runtime<AuthEnv>)

/** Renders the engine's own statechart as Mermaid text. */
export const renderAuthMachineMermaid = (): string => renderMermaid(authMachineForRendering())

/** Renders the engine's own statechart as JSON. */
export const renderAuthMachineJson = (): string => renderJson(authMachineForRendering())
