/**
 * Effects as XState actors. A promise actor runs an Effect to completion; a callback actor runs a
 * scoped Effect until its state is left. Leaving the invoking state interrupts the fiber, which
 * closes sockets, listeners and pending requests.
 */
import { Cause, Effect, Exit, Fiber, Option, Runtime, type Scope } from "effect"
import { type AnyEventObject, fromCallback, fromPromise } from "xstate"

/**
 * Wraps an Effect as a promise actor. A failure rejects with the typed error itself (not
 * Effect's FiberFailure wrapper), so guards can branch on `_tag`.
 */
export const fromEffect = <R, I, A, E>(
  runtime: Runtime.Runtime<R>,
  program: (input: I) => Effect.Effect<A, E, R>,
) =>
  fromPromise<A, I>(async ({ input, signal }) => {
    const exit = await Runtime.runPromiseExit(runtime)(program(input), { signal })
    if (Exit.isSuccess(exit)) return exit.value
    throw Option.getOrElse(Cause.failureOption(exit.cause), () => Cause.squash(exit.cause))
  })

/** What a scoped actor program receives: its input, a way to send events, and its inbox. */
export interface ScopedActorApi<I> {
  readonly input: I
  readonly sendBack: (event: AnyEventObject) => void
  readonly onReceive: (listener: (event: AnyEventObject) => void) => void
}

/**
 * Wraps a scoped Effect as a callback actor that lives as long as its state. A failure is sent
 * to the parent as `failureEvent` with the typed error in `error`.
 */
export const fromScopedEffect = <R, I>(
  runtime: Runtime.Runtime<R>,
  failureEvent: string,
  program: (api: ScopedActorApi<I>) => Effect.Effect<unknown, unknown, R | Scope.Scope>,
) =>
  fromCallback<AnyEventObject, I>(({ input, sendBack, receive }) => {
    const listeners: Array<(event: AnyEventObject) => void> = []
    receive((event) => {
      for (const listener of listeners) listener(event)
    })
    const api: ScopedActorApi<I> = {
      input,
      sendBack,
      onReceive: (listener) => void listeners.push(listener),
    }
    const fiber = Runtime.runFork(runtime)(
      Effect.scoped(Effect.zipRight(program(api), Effect.never)).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.void
            : Effect.sync(() =>
                sendBack({
                  type: failureEvent,
                  error: Option.getOrElse(Cause.failureOption(cause), () => Cause.squash(cause)),
                }),
              ),
        ),
      ),
    )
    return () => {
      Runtime.runFork(runtime)(Fiber.interrupt(fiber))
    }
  })
