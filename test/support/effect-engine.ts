/**
 * An engine built through the Effect API (`makeAuthEngine`) on a layer the test chooses, run
 * from Promise-based tests. Failures reject with the engine's typed error, as in the facade.
 */
import { Cause, Effect, Exit, Layer, Logger, LogLevel, ManagedRuntime, Option, Scope } from "effect"
import { onTestFinished } from "vitest"
import {
  type AuthEngineConfig,
  type AuthEngineService,
  type AuthEnv,
  type Browser,
  CallbackServerLive,
  HttpLive,
  Keychain,
  type KeychainService,
  makeAuthEngine,
  makeMemoryKeychain,
} from "../../src/index.js"

/** An engine and the runtime that runs its effects. */
export interface EffectEngine {
  readonly service: AuthEngineService
  /** Runs `effect`; rejects with its typed failure, or with the defect when it died. */
  run<A, E>(effect: Effect.Effect<A, E>): Promise<A>
  dispose(): Promise<void>
}

/**
 * The engine's services with a test browser and `keychain` (a fresh memory store if absent).
 * By default only warnings and errors are logged, so expected state changes stay out of the
 * test output.
 */
export const makeTestLayer = (
  browser: Layer.Layer<Browser>,
  keychain: KeychainService = makeMemoryKeychain(),
  logLevel: LogLevel.LogLevel = LogLevel.Warning,
): Layer.Layer<AuthEnv> =>
  Layer.mergeAll(
    HttpLive,
    Layer.succeed(Keychain, keychain),
    browser,
    CallbackServerLive,
    Logger.minimumLogLevel(logLevel),
  )

const unwrap = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  throw Option.getOrElse(Cause.failureOption(exit.cause), () => Cause.squash(exit.cause))
}

/**
 * Builds an engine with `makeAuthEngine` on `layer` (which may add loggers or log levels).
 * It is disposed when the current test finishes.
 */
export const startEffectEngine = async (
  config: AuthEngineConfig,
  layer: Layer.Layer<AuthEnv>,
): Promise<EffectEngine> => {
  const runtime = ManagedRuntime.make(layer)
  const scope = Effect.runSync(Scope.make())
  let disposed = false
  const dispose = async () => {
    if (disposed) return
    disposed = true
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await runtime.dispose()
  }
  onTestFinished(dispose)
  const service = unwrap(
    await runtime.runPromiseExit(
      makeAuthEngine(config).pipe(Effect.provideService(Scope.Scope, scope)),
    ),
  )
  return {
    service,
    run: async (effect) => unwrap(await runtime.runPromiseExit(effect)),
    dispose,
  }
}
