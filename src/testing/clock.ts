/**
 * A clock a test moves by hand. The engine's statechart schedules its timers (the scheduled
 * refresh, the callback timeout) on it and reads the time from it, so a test reaches a refresh
 * without waiting for one.
 */
import type { EngineClock } from "../engine/engine.js"

interface Timer {
  readonly id: number
  readonly at: number
  readonly callback: (...args: unknown[]) => void
}

/**
 * The engine clock for tests. Its time is the system time plus every `advance` so far, so
 * timestamps still look real; its timers fire only inside `advance` and `runNextTimer`, never
 * on their own.
 */
export class ScriptedClock implements EngineClock {
  #offset = 0
  #nextId = 1
  readonly #timers = new Map<number, Timer>()

  /** Milliseconds since the epoch: the system time plus the total advanced. */
  now(): number {
    return Date.now() + this.#offset
  }

  /** How far this clock is ahead of the system clock, in milliseconds. */
  get offset(): number {
    return this.#offset
  }

  setTimeout(callback: (...args: unknown[]) => void, timeoutMs: number): number {
    const id = this.#nextId++
    this.#timers.set(id, { id, at: this.now() + Math.max(0, timeoutMs), callback })
    return id
  }

  clearTimeout(id: unknown): void {
    if (typeof id === "number") this.#timers.delete(id)
  }

  /** The number of timers waiting to fire. */
  get pendingTimers(): number {
    return this.#timers.size
  }

  /** Milliseconds until the earliest timer is due (0 when it is overdue); undefined if none. */
  nextTimerIn(): number | undefined {
    const next = this.#earliest()
    return next === undefined ? undefined : Math.max(0, next.at - this.now())
  }

  /**
   * Moves the clock forward by `ms` and fires, in order, every timer that is due by then,
   * including timers that those callbacks schedule within the same span.
   */
  advance(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`advance takes a duration of 0 or more milliseconds, got ${ms}`)
    }
    this.#offset += ms
    this.#fireDue()
  }

  /**
   * Moves the clock to the earliest pending timer and fires it (with any other timer due at
   * that time). Returns false when no timer is pending.
   */
  runNextTimer(): boolean {
    const wait = this.nextTimerIn()
    if (wait === undefined) return false
    this.advance(wait)
    return true
  }

  #earliest(): Timer | undefined {
    let earliest: Timer | undefined
    for (const timer of this.#timers.values()) {
      if (earliest === undefined || timer.at < earliest.at) earliest = timer
    }
    return earliest
  }

  #fireDue(): void {
    for (;;) {
      const next = this.#earliest()
      if (next === undefined || next.at > this.now()) return
      this.#timers.delete(next.id)
      next.callback()
    }
  }
}
