/**
 * Engines for the benchmark, built on the public Effect API (`makeAuthEngine` with a layer of
 * the exported services), so the HTTP client can go through the delay proxy and the time spent
 * in the headless user agent can be measured.
 */
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Exit, Layer, Logger, LogLevel, ManagedRuntime, Scope } from "effect"
import {
  type AuthEngineConfig,
  type AuthEngineService,
  type AuthEnv,
  Browser,
  BrowserHeadless,
  CallbackServerLive,
  HttpLive,
  Keychain,
  type KeychainService,
  makeAuthEngine,
} from "../src/index.js"
import { connectThroughProxy, type DelayProxy } from "./proxy.js"

/** Milliseconds spent inside the user agent, summed over every time it was opened. */
export interface UserAgentTimer {
  ms: number
}

/** The engine's headless user agent, with the time spent in it added to `timer`. */
export const timedHeadlessBrowser = (timer: UserAgentTimer): Layer.Layer<Browser> =>
  Layer.effect(
    Browser,
    Effect.map(Browser, (inner) => ({
      name: "headless (timed)",
      open: (url: string, redirectUri: string) =>
        Effect.suspend(() => {
          const start = performance.now()
          return inner.open(url, redirectUri).pipe(
            Effect.ensuring(
              Effect.sync(() => {
                timer.ms += performance.now() - start
              }),
            ),
          )
        }),
    })),
  ).pipe(Layer.provide(BrowserHeadless))

/**
 * The engine's HTTP client (`node:http`, one agent per layer, as `HttpLive`) with its
 * connections to `hosts` opened at the proxy.
 */
export const proxiedHttp = (proxy: DelayProxy, hosts: ReadonlySet<string>) =>
  NodeHttpClient.layerWithoutAgent.pipe(
    Layer.provide(
      Layer.scoped(
        NodeHttpClient.HttpAgent,
        Effect.tap(NodeHttpClient.makeAgent(), (agent) =>
          Effect.sync(() => connectThroughProxy(agent.http, proxy, hosts)),
        ),
      ),
    ),
  )

/** Every service an engine needs: the given store and user agent, and `http` or `HttpLive`. */
export const engineLayer = (options: {
  readonly store: KeychainService
  readonly browser: Layer.Layer<Browser>
  readonly http?: ReturnType<typeof proxiedHttp> | undefined
}): Layer.Layer<AuthEnv> =>
  Layer.mergeAll(
    options.http ?? HttpLive,
    Layer.succeed(Keychain, options.store),
    options.browser,
    CallbackServerLive,
  )

/** An engine with its own runtime, which logs warnings and errors to stderr. */
export interface BenchEngine {
  readonly service: AuthEngineService
  run<A, E>(effect: Effect.Effect<A, E>): Promise<A>
  dispose(): Promise<void>
}

/** Starts an engine on a runtime built from `layer` and waits until its store has been read. */
export async function startBenchEngine(
  config: AuthEngineConfig,
  layer: Layer.Layer<AuthEnv>,
): Promise<BenchEngine> {
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(
      layer,
      Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger)),
      Logger.minimumLogLevel(LogLevel.Warning),
    ),
  )
  const scope = Effect.runSync(Scope.make())
  const service = await runtime.runPromise(
    makeAuthEngine(config).pipe(Effect.provideService(Scope.Scope, scope)),
  )
  await new Promise<void>((resolve) => {
    const unsubscribe = service.subscribe((status) => {
      if (status.loaded) {
        unsubscribe()
        resolve()
      }
    })
    if (Effect.runSync(service.status).loaded) {
      unsubscribe()
      resolve()
    }
  })
  return {
    service,
    run: (effect) => runtime.runPromise(effect),
    dispose: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await runtime.dispose()
    },
  }
}
