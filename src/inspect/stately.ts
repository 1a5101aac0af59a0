/**
 * Sends the engine's redacted inspection stream to an inspector made by `@statelyai/inspect`
 * (for example `createWebSocketInspector`). Giving such an inspector's `inspect` directly to
 * the engine's `inspect` option would send raw snapshots, tokens included; this adapter sends
 * only redacted events. The package is not a dependency: any object with these methods works.
 */
import type { InspectionObserver } from "./events.js"

/** A snapshot as `@statelyai/inspect` takes it. */
export interface StatelySnapshot {
  readonly status?: "active" | "done" | "error" | "stopped"
  readonly value?: unknown
  readonly context?: unknown
}

/** The methods of a `@statelyai/inspect` inspector this adapter calls, with session ids. */
export interface StatelyInspectorLike {
  actor(actor: string, snapshot?: StatelySnapshot, info?: { parentId?: string }): void
  event(target: string, event: { type: string }, info?: { source?: string }): void
  snapshot(actor: string, snapshot: StatelySnapshot, info?: { event?: { type: string } }): void
}

/** Builds an observer for `engine.inspect` that forwards every event to `inspector`. */
export const toStatelyObserver =
  (inspector: StatelyInspectorLike): InspectionObserver =>
  (event) => {
    switch (event.type) {
      case "actor":
        inspector.actor(
          event.actor.sessionId,
          { status: "active" },
          event.actor.parentSessionId === undefined
            ? {}
            : { parentId: event.actor.parentSessionId },
        )
        return
      case "event":
        inspector.event(
          event.actor.sessionId,
          event.event,
          event.source === undefined ? {} : { source: event.source.sessionId },
        )
        return
      case "snapshot":
        inspector.snapshot(
          event.actor.sessionId,
          event.machine
            ? { status: event.status, value: event.value, context: event.context }
            : { status: event.status },
          { event: event.event },
        )
        return
    }
  }
