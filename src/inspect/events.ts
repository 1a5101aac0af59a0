/**
 * The engine's inspection stream: XState's `@xstate.actor`, `@xstate.event` and
 * `@xstate.snapshot` inspection events mapped to a small JSON type, with every payload redacted.
 * Actions and microsteps are not forwarded.
 */
import type { AnyEventObject, InspectionEvent, StateValue } from "xstate"
import {
  type EngineState,
  type EngineStatus,
  toEngineState,
  toEngineStatus,
} from "../engine/status.js"
import type { AuthContext } from "../machine/machine.js"
import { type RedactedError, redactError, redactText, redactValue } from "./redact.js"

/** An actor of the engine's actor system: the statechart itself or one of its steps. */
export interface InspectedActor {
  /** XState's session id, unique within the engine's actor system, such as `x:3`. */
  readonly sessionId: string
  /** The invoke id of a step (`discover`, `refresh`…); the session id for the statechart. */
  readonly id: string
  /** The session id of the parent actor; absent for the statechart. */
  readonly parentSessionId?: string | undefined
}

/** An event object with its payload redacted; `type` is always kept. */
export interface InspectedEventObject {
  readonly type: string
  readonly [field: string]: unknown
}

/** A new actor: the statechart when the engine starts, a step when its state is entered. */
export interface ActorInspectionEvent {
  readonly type: "actor"
  readonly sequence: number
  /** Milliseconds since the epoch. */
  readonly at: number
  readonly actor: InspectedActor
}

/** An event delivered to an actor. */
export interface EventInspectionEvent {
  readonly type: "event"
  readonly sequence: number
  readonly at: number
  /** The receiving actor. */
  readonly actor: InspectedActor
  /** The sending actor; absent for events sent by the host or by a timer. */
  readonly source?: InspectedActor | undefined
  readonly event: InspectedEventObject
}

/** The state of an actor after it processed an event. */
export interface SnapshotInspectionEvent {
  readonly type: "snapshot"
  readonly sequence: number
  readonly at: number
  readonly actor: InspectedActor
  /** The event that led to this snapshot. */
  readonly event: InspectedEventObject
  /** XState's actor status. */
  readonly status: "active" | "done" | "error" | "stopped"
  /** Whether the snapshot is the statechart's (true) or a step's (false). */
  readonly machine: boolean
  /** The statechart's state value, such as `{ "authorizing": "discovering" }`. */
  readonly value?: StateValue | undefined
  /** The host-facing state of the statechart's snapshot. */
  readonly state?: EngineState | undefined
  /** The host status of the statechart's snapshot, as `subscribe` reports it. */
  readonly engine?: EngineStatus | undefined
  /** The statechart's context, redacted. */
  readonly context?: unknown
  /** The error of an actor whose status is `error`. */
  readonly error?: RedactedError | undefined
}

/** One redacted inspection event. */
export type EngineInspectionEvent =
  | ActorInspectionEvent
  | EventInspectionEvent
  | SnapshotInspectionEvent

/** Receives the engine's inspection events. */
export type InspectionObserver = (event: EngineInspectionEvent) => void

interface ActorLike {
  readonly sessionId: string
  readonly id?: unknown
  readonly _parent?: ActorLike | undefined
}

const isActorLike = (value: unknown): value is ActorLike =>
  typeof value === "object" &&
  value !== null &&
  "sessionId" in value &&
  typeof value.sessionId === "string"

/** Describes an actor reference by its ids. */
export const describeActor = (ref: unknown): InspectedActor => {
  if (!isActorLike(ref)) return { sessionId: "unknown", id: "unknown" }
  const parent = ref._parent
  return {
    sessionId: ref.sessionId,
    id: typeof ref.id === "string" ? ref.id : ref.sessionId,
    ...(parent === undefined ? {} : { parentSessionId: parent.sessionId }),
  }
}

/** Redacts an event object; its `type` stays readable. */
export const redactEvent = (event: AnyEventObject): InspectedEventObject => {
  const redacted = redactValue(event)
  const fields =
    typeof redacted === "object" && redacted !== null ? (redacted as Record<string, unknown>) : {}
  return { ...fields, type: String(event.type) }
}

const isAuthContext = (value: unknown): value is AuthContext =>
  typeof value === "object" && value !== null && "input" in value && "registrations" in value

interface SnapshotLike {
  readonly status?: unknown
  readonly value?: unknown
  readonly context?: unknown
  readonly error?: unknown
}

/** The host status with URL queries removed from its error message. */
const redactStatus = (status: EngineStatus): EngineStatus =>
  status.error === undefined
    ? status
    : { ...status, error: { ...status.error, message: redactText(status.error.message) } }

const snapshotStatus = (status: unknown): SnapshotInspectionEvent["status"] =>
  status === "done" || status === "error" || status === "stopped" ? status : "active"

/** Builds a snapshot event; only the statechart's snapshot carries value, context and status. */
export const describeSnapshot = (
  actor: unknown,
  snapshot: unknown,
  event: AnyEventObject,
  sequence: number,
  at: number,
): SnapshotInspectionEvent => {
  const value = (typeof snapshot === "object" && snapshot !== null ? snapshot : {}) as SnapshotLike
  const status = snapshotStatus(value.status)
  const base = {
    type: "snapshot" as const,
    sequence,
    at,
    actor: describeActor(actor),
    event: redactEvent(event),
    status,
    ...(status === "error" ? { error: redactError(value.error) } : {}),
  }
  if (!isAuthContext(value.context)) return { ...base, machine: false }
  return {
    ...base,
    machine: true,
    value: value.value as StateValue,
    state: toEngineState(value.value),
    engine: redactStatus(toEngineStatus(value.value, value.context)),
    context: redactValue(value.context),
  }
}

/**
 * Maps one XState inspection event to the engine's redacted form; returns undefined for the
 * kinds that are not forwarded (actions, microsteps, transitions).
 */
export const toEngineInspectionEvent = (
  event: InspectionEvent,
  sequence: number,
  at: number,
): EngineInspectionEvent | undefined => {
  switch (event.type) {
    case "@xstate.actor":
      return { type: "actor", sequence, at, actor: describeActor(event.actorRef) }
    case "@xstate.event":
      return {
        type: "event",
        sequence,
        at,
        actor: describeActor(event.actorRef),
        ...(event.sourceRef === undefined ? {} : { source: describeActor(event.sourceRef) }),
        event: redactEvent(event.event),
      }
    case "@xstate.snapshot":
      return describeSnapshot(event.actorRef, event.snapshot, event.event, sequence, at)
    default:
      return undefined
  }
}
