/**
 * The live view as Effect resources, for commands that show one for the length of a run: it
 * closes with the scope, and a run can keep it up a little longer so a browser sees the end.
 */
import { Data, Duration, Effect } from "effect"
import { type LiveView, type LiveViewOptions, startLiveView } from "./server.js"

/** The live view could not be started. */
export class LiveViewError extends Data.TaggedError("LiveViewError")<{
  readonly port: number
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `cannot start the live view on 127.0.0.1 port ${this.port}: ${this.detail}`
  }
}

/** Starts a live view that closes when the scope closes. */
export const acquireLiveView = (options: LiveViewOptions = {}) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startLiveView(options),
      catch: (cause) =>
        new LiveViewError({
          port: options.port ?? 0,
          detail: cause instanceof Error ? cause.message : String(cause),
          cause,
        }),
    }),
    (view: LiveView) => Effect.promise(() => view.close()),
  )

/** Resolves when a line (Enter) arrives on `input`; never, when `input` is not a terminal. */
const waitForEnter = (input: NodeJS.ReadStream) =>
  input.isTTY !== true
    ? Effect.never
    : Effect.async<void>((resume) => {
        const onData = () => resume(Effect.void)
        input.once("data", onData)
        input.resume()
        return Effect.sync(() => {
          input.off("data", onData)
          // A paused stdin no longer keeps the process running.
          input.pause()
        })
      })

/**
 * Keeps running for `seconds`, or until Enter is pressed when `input` is a terminal, so a
 * browser watching the live view sees the end of a run. Returns at once for 0 seconds.
 */
export const holdLiveView = (seconds: number, input: NodeJS.ReadStream = process.stdin) =>
  seconds <= 0
    ? Effect.void
    : Effect.race(Effect.sleep(Duration.seconds(seconds)), waitForEnter(input))
