/**
 * Row 7, run in its own process with `--expose-gc`, so that the heap contains only what one
 * variant creates: `ENGINE_COUNT` engines (or SDK objects) restored from a store that contains
 * a valid session for each. Prints one JSON line: `{ heapPerEngineBytes, readyMs }`.
 *
 * Usage: node --expose-gc --import tsx bench/restore-child.ts <variant> <session-file>
 *   <key-prefix>, where variant is "facade", "effect" or "sdk".
 */
import { readFile } from "node:fs/promises"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import type { OAuthTokens } from "@modelcontextprotocol/sdk/shared/auth.js"
import { Effect, Layer, Logger, LogLevel, ManagedRuntime, Scope } from "effect"
import {
  type AuthEngineService,
  BrowserHeadless,
  CallbackServerLive,
  createAuthEngine,
  HttpLive,
  Keychain,
  type KeychainService,
  makeAuthEngine,
} from "../src/index.js"
import { MemoryOAuthProvider } from "./sdk-client.js"

export const ENGINE_COUNT = 1000
/** Engines created and kept before the baseline, so one-time allocations are not counted. */
const WARM_UP_COUNT = 10

type Variant = "facade" | "effect" | "sdk"

/** Builds a `KeychainService` over a map filled in advance. */
const makeFilledKeychain = (entries: Map<string, string>): KeychainService => ({
  name: "bench",
  get: (key) => Effect.sync(() => entries.get(key)),
  set: (key, value) => Effect.sync(() => void entries.set(key, value)),
  remove: (key) => Effect.sync(() => void entries.delete(key)),
  keys: Effect.sync(() => [...entries.keys()]),
})

const collectGarbage = (): void => {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error("global.gc is missing: run this file with node --expose-gc")
  for (let i = 0; i < 3; i++) gc()
}

/**
 * Resolves once the engine's state is "authenticated", and rejects when it settles in "failed"
 * or "authRequired" instead.
 */
const whenAuthenticated = (
  subscribe: AuthEngineService["subscribe"],
  currentState: () => string,
): Promise<void> =>
  new Promise((resolve, reject) => {
    const check = (state: string) => {
      if (state === "authenticated") {
        resolve()
        return true
      }
      if (state === "failed" || state === "authRequired") {
        reject(new Error(`a restored engine ended in state ${state}`))
        return true
      }
      return false
    }
    if (check(currentState())) return
    const unsubscribe = subscribe((status) => {
      if (check(status.state)) unsubscribe()
    })
  })

async function main(): Promise<void> {
  const [variantArg, sessionFile, keyPrefix] = process.argv.slice(2)
  if (
    (variantArg !== "facade" && variantArg !== "effect" && variantArg !== "sdk") ||
    sessionFile === undefined ||
    keyPrefix === undefined
  ) {
    throw new Error("usage: restore-child.ts facade|effect|sdk <session-file> <key-prefix>")
  }
  const variant: Variant = variantArg
  const session = JSON.parse(await readFile(sessionFile, "utf8")) as Record<string, unknown>
  const baseUrl = String(session.serverUrl)
  const urlOf = (i: number) => `${baseUrl}?tenant=${i}`

  // Every engine gets its own server URL and a copy of the session rewritten for it.
  const entries = new Map<string, string>()
  for (let i = 0; i < WARM_UP_COUNT + ENGINE_COUNT; i++) {
    entries.set(`${keyPrefix}${urlOf(i)}`, JSON.stringify({ ...session, serverUrl: urlOf(i) }))
  }
  const store = makeFilledKeychain(entries)
  const tokens = session.tokens as { accessToken: string; refreshToken?: string }

  const create = await makeCreator(variant, store, tokens)
  const keep: unknown[] = []
  for (let i = 0; i < WARM_UP_COUNT; i++) {
    const warmUp = await create(urlOf(i))
    await warmUp.ready
    keep.push(warmUp)
  }

  collectGarbage()
  const before = process.memoryUsage().heapUsed
  const startedAt = performance.now()
  const created = await Promise.all(
    Array.from({ length: ENGINE_COUNT }, (_, i) => create(urlOf(WARM_UP_COUNT + i))),
  )
  await Promise.all(created.map((instance) => instance.ready))
  const readyMs = performance.now() - startedAt
  collectGarbage()
  const heapPerEngineBytes = (process.memoryUsage().heapUsed - before) / ENGINE_COUNT
  // Reading both arrays here keeps every instance reachable until the heap has been read.
  const count = created.length + keep.length - WARM_UP_COUNT
  process.stdout.write(`${JSON.stringify({ heapPerEngineBytes, readyMs, count })}\n`)
  process.exit(0)
}

interface Created {
  readonly ready: Promise<void>
  readonly instance: unknown
}

/** Returns the function that creates one instance of `variant` for a server URL. */
async function makeCreator(
  variant: Variant,
  store: KeychainService,
  tokens: { accessToken: string; refreshToken?: string },
): Promise<(serverUrl: string) => Promise<Created>> {
  if (variant === "facade") {
    return async (serverUrl) => {
      const engine = await createAuthEngine({ serverUrl, store, browser: "headless" })
      return {
        instance: engine,
        ready: whenAuthenticated(engine.subscribe, () => engine.status().state),
      }
    }
  }
  if (variant === "effect") {
    // One runtime and one scope for all engines, as an Effect host would hold them.
    const runtime = ManagedRuntime.make(
      Layer.mergeAll(
        HttpLive,
        Layer.succeed(Keychain, store),
        BrowserHeadless,
        CallbackServerLive,
        Logger.minimumLogLevel(LogLevel.Warning),
      ),
    )
    // The scope stays open: the process exits right after the measurement.
    const scope = Effect.runSync(Scope.make())
    return async (serverUrl) => {
      const service = await runtime.runPromise(
        makeAuthEngine({ serverUrl }).pipe(Effect.provideService(Scope.Scope, scope)),
      )
      return {
        instance: service,
        ready: whenAuthenticated(service.subscribe, () => Effect.runSync(service.status).state),
      }
    }
  }
  // The SDK keeps no sessions: per server, a host keeps a provider with the tokens and a
  // transport that reads them.
  const oauthTokens: OAuthTokens = {
    access_token: tokens.accessToken,
    token_type: "Bearer",
    ...(tokens.refreshToken === undefined ? {} : { refresh_token: tokens.refreshToken }),
  }
  return async (serverUrl) => {
    const provider = new MemoryOAuthProvider("http://127.0.0.1:1/callback", undefined)
    provider.saveTokens({ ...oauthTokens })
    const transport = new StreamableHTTPClientTransport(new URL(serverUrl), {
      authProvider: provider,
    })
    return { instance: { provider, transport }, ready: Promise.resolve() }
  }
}

await main()
