/**
 * Records every status an engine reports through `subscribe`, so tests can assert the order of
 * lifecycle states and wait for a state change without fixed sleeps.
 */
import { onTestFinished } from "vitest"
import type { EngineState, EngineStatus } from "../../src/index.js"
import { WAIT_TIMEOUT_MS, withDeadline } from "./wait.js"

/** The part of an engine the recorder reads, from the Promise facade or the Effect service. */
export interface StatusSource {
  readonly subscribe: (listener: (status: EngineStatus) => void) => () => void
}

interface Waiter {
  readonly condition: () => boolean
  readonly resolve: () => void
}

/** Lists the states of `statuses` without consecutive repeats: idle, idle, authRequired gives two. */
export const distinctStates = (statuses: ReadonlyArray<EngineStatus>): EngineState[] => {
  const states: EngineState[] = []
  for (const status of statuses) {
    if (states.at(-1) !== status.state) states.push(status.state)
  }
  return states
}

/** Tells whether `states` contains `sequence` in order, other states allowed in between. */
export const containsInOrder = (
  states: ReadonlyArray<EngineState>,
  sequence: ReadonlyArray<EngineState>,
): boolean => {
  let next = 0
  for (const state of states) {
    if (state === sequence[next]) next++
    if (next === sequence.length) return true
  }
  return sequence.length === 0
}

/** A status log of one engine, subscribed until the current test finishes. */
export class StatusRecorder {
  readonly statuses: EngineStatus[] = []
  readonly #waiters = new Set<Waiter>()
  readonly #unsubscribe: () => void

  constructor(source: StatusSource, initial: EngineStatus) {
    this.statuses.push(initial)
    this.#unsubscribe = source.subscribe((status) => {
      this.statuses.push(status)
      for (const waiter of [...this.#waiters]) {
        if (waiter.condition()) {
          this.#waiters.delete(waiter)
          waiter.resolve()
        }
      }
    })
    onTestFinished(() => this.#unsubscribe())
  }

  /** The latest status. */
  get latest(): EngineStatus {
    return this.statuses.at(-1)!
  }

  /** Returns the current end of the log, a start position for {@link statesSince}. */
  mark(): number {
    return this.statuses.length
  }

  /** Distinct states recorded from `mark` on. */
  statesSince(mark = 0): EngineState[] {
    return distinctStates(this.statuses.slice(mark))
  }

  /** Resolves once `condition` holds, checking it now and after every status change. */
  waitFor(
    description: string,
    condition: () => boolean,
    timeoutMs: number = WAIT_TIMEOUT_MS,
  ): Promise<void> {
    if (condition()) return Promise.resolve()
    const reached = new Promise<void>((resolve) => {
      this.#waiters.add({ condition, resolve })
    })
    return withDeadline(
      reached,
      () => `${description} (states so far: ${this.statesSince().join(", ")})`,
      timeoutMs,
    )
  }

  /** Resolves once the latest status is in `state`. */
  waitForState(state: EngineState, timeoutMs: number = WAIT_TIMEOUT_MS): Promise<void> {
    return this.waitFor(`state ${state}`, () => this.latest.state === state, timeoutMs)
  }
}
