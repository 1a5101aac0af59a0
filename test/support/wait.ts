/**
 * Waiting helpers for tests: a deadline on a promise, and the rejection of a promise that is
 * expected to fail. Deadlines only turn a hang into a readable failure; no test asserts speed.
 */

/** The default deadline of a wait, well under the 30 s test timeout. */
export const WAIT_TIMEOUT_MS = 20_000

/**
 * Resolves like `promise`, or rejects after `timeoutMs` with a message naming `description`.
 * A function description is read when the deadline passes, so it can show the latest state.
 */
export const withDeadline = <A>(
  promise: Promise<A>,
  description: string | (() => string),
  timeoutMs: number = WAIT_TIMEOUT_MS,
): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const text = typeof description === "string" ? description : description()
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${text}`))
    }, timeoutMs)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** The fields of an engine error that tests check. */
export interface Rejection {
  readonly _tag?: unknown
  readonly reason?: unknown
  readonly message?: unknown
  readonly [field: string]: unknown
}

/** Returns what `promise` rejects with; fails the test when it resolves instead. */
export const rejectionOf = async (promise: Promise<unknown>): Promise<Rejection> => {
  try {
    await promise
  } catch (error) {
    return error as Rejection
  }
  throw new Error("expected the promise to reject, but it resolved")
}

/** Calls `condition` every 20 ms until it returns true; rejects after `timeoutMs`. */
export const pollUntil = async (
  condition: () => boolean | Promise<boolean>,
  description: string,
  timeoutMs: number = WAIT_TIMEOUT_MS,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${description}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
