/**
 * The fan-out between XState's single `inspect` callback and any number of observers of the
 * redacted stream. Events are mapped and redacted once, and only while someone observes.
 */
import type { AnyActorRef, AnyEventObject, InspectionEvent } from "xstate"
import {
  describeActor,
  describeSnapshot,
  type EngineInspectionEvent,
  type InspectionObserver,
  toEngineInspectionEvent,
} from "./events.js"

/** Options of {@link makeInspectionHub}. */
export interface InspectionHubOptions {
  /** Also receives every raw XState inspection event (the engine's `inspect` option). */
  readonly forward?: ((event: InspectionEvent) => void) | undefined
  /** Called when an observer throws; the observer stays subscribed. */
  readonly onObserverError?: ((error: unknown) => void) | undefined
}

/** Connects an actor's `inspect` option to many observers. */
export interface InspectionHub {
  /** The callback to give to `createActor` as `inspect`. */
  readonly inspect: (event: InspectionEvent) => void
  /**
   * Adds an observer. It first receives `replay(sequence)` (events describing the actors as
   * they are now), then every new event. Returns the function that removes it.
   */
  readonly subscribe: (
    observer: InspectionObserver,
    replay: () => ReadonlyArray<EngineInspectionEvent>,
  ) => () => void
  /** Numbers the next event; shared by live and replayed events. */
  readonly nextSequence: () => number
  /** The type of the event behind the root actor's latest snapshot, payload left out. */
  readonly lastRootEvent: () => AnyEventObject
}

/** Builds an {@link InspectionHub}. */
export const makeInspectionHub = (options: InspectionHubOptions = {}): InspectionHub => {
  const observers = new Set<InspectionObserver>()
  let sequence = 0
  const nextSequence = () => ++sequence
  let lastRootEventType = "xstate.init"

  const deliver = (observer: InspectionObserver, event: EngineInspectionEvent) => {
    try {
      observer(event)
    } catch (error) {
      options.onObserverError?.(error)
    }
  }

  const inspect = (raw: InspectionEvent) => {
    options.forward?.(raw)
    if (raw.type === "@xstate.snapshot" && raw.actorRef.sessionId === raw.rootId) {
      lastRootEventType = raw.event.type
    }
    if (observers.size === 0) return
    const event = toEngineInspectionEvent(raw, nextSequence(), Date.now())
    if (event === undefined) return
    for (const observer of [...observers]) deliver(observer, event)
  }

  const subscribe = (
    observer: InspectionObserver,
    replay: () => ReadonlyArray<EngineInspectionEvent>,
  ) => {
    for (const event of replay()) deliver(observer, event)
    observers.add(observer)
    return () => {
      observers.delete(observer)
    }
  }

  return {
    inspect,
    subscribe,
    nextSequence,
    lastRootEvent: () => ({ type: lastRootEventType }),
  }
}

/**
 * Describes a running actor as an inspection stream would have: an `actor` event for it and
 * each running child, then its current snapshot. `lastEvent` is the event that produced that
 * snapshot, as far as the caller knows it.
 */
export const describeRunningActor = (
  actor: AnyActorRef,
  lastEvent: AnyEventObject,
  nextSequence: () => number,
): ReadonlyArray<EngineInspectionEvent> => {
  const now = Date.now()
  const snapshot = actor.getSnapshot() as { children?: Record<string, unknown> }
  const children = Object.values(snapshot.children ?? {})
  return [
    { type: "actor", sequence: nextSequence(), at: now, actor: describeActor(actor) },
    ...children.map(
      (child): EngineInspectionEvent => ({
        type: "actor",
        sequence: nextSequence(),
        at: now,
        actor: describeActor(child),
      }),
    ),
    describeSnapshot(actor, snapshot, lastEvent, nextSequence(), now),
  ]
}
