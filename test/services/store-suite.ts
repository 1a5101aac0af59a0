/**
 * One behaviour suite for every session store: key-value operations, session and registration
 * records through the store, the generation check, corrupt and older records, and the lock. A
 * store that locks across processes also runs the lock tests against a real second process.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { fileURLToPath } from "node:url"
import { Effect, Either, Fiber, Layer, Redacted } from "effect"
import { describe, expect, it, onTestFinished } from "vitest"
import {
  loadRegistration,
  loadSession,
  registrationKey,
  removeSessionIfNotNewer,
  saveRegistration,
  saveSession,
  sessionKey,
} from "../../src/protocol/session.js"
import type { ClientRegistration, Session } from "../../src/schema/session.js"
import { Keychain, type KeychainService, lockKey } from "../../src/services/keychain.js"
import type { StoreSpec } from "./hold-lock.js"

const SERVER_URL = "http://127.0.0.1:9/mcp?tenant=a"
const ISSUER = "http://127.0.0.1:8"
const REDIRECT_URI = "http://127.0.0.1:33418/callback"
const HOLD_LOCK = fileURLToPath(new URL("./hold-lock.ts", import.meta.url))

/** A store under test, and how a child process opens the same store (for cross-process locks). */
export interface StoreUnderTest {
  readonly store: KeychainService
  readonly spec?: StoreSpec | undefined
}

export const client = (clientId = "client-1"): ClientRegistration => ({
  issuer: ISSUER,
  clientId,
  clientSecret: Redacted.make("client-secret-1"),
  tokenEndpointAuthMethod: "client_secret_basic",
  redirectUri: REDIRECT_URI,
  source: "dynamic",
})

export const session = (generation: number, accessToken = "access-1"): Session => ({
  version: 1,
  serverUrl: SERVER_URL,
  resource: SERVER_URL,
  authorizationServer: {
    issuer: ISSUER,
    authorization_endpoint: `${ISSUER}/authorize`,
    token_endpoint: `${ISSUER}/token`,
  },
  client: client(),
  tokens: {
    accessToken: Redacted.make(accessToken),
    tokenType: "Bearer",
    refreshToken: Redacted.make("refresh-1"),
    expiresAt: 1_900_000_000_000,
    scope: "mcp:tools",
    obtainedAt: 1_800_000_000_000,
  },
  generation,
})

/** The JSON of a version 0 record: the version 1 fields without `generation`. */
const legacyRecord = (): string =>
  JSON.stringify({
    version: 0,
    serverUrl: SERVER_URL,
    resource: SERVER_URL,
    authorizationServer: {
      issuer: ISSUER,
      authorization_endpoint: `${ISSUER}/authorize`,
      token_endpoint: `${ISSUER}/token`,
    },
    client: {
      issuer: ISSUER,
      clientId: "legacy-client",
      tokenEndpointAuthMethod: "none",
      redirectUri: REDIRECT_URI,
      source: "dynamic",
    },
    tokens: {
      accessToken: "legacy-access",
      tokenType: "Bearer",
      refreshToken: "legacy-refresh",
      expiresAt: 1_900_000_000_000,
      obtainedAt: 1_800_000_000_000,
    },
  })

/** Returns the failure of `result`, failing the test when it succeeded. */
export const failureOf = <A, E>(result: Either.Either<A, E>): E => {
  if (Either.isRight(result)) throw new Error("expected a failure, but the operation succeeded")
  return result.left
}

const run = <A, E>(store: KeychainService, effect: Effect.Effect<A, E, Keychain>) =>
  Effect.runPromise(Effect.provide(effect, Layer.succeed(Keychain, store)))

const runEither = <A, E>(store: KeychainService, effect: Effect.Effect<A, E, Keychain>) =>
  run(store, Effect.either(effect))

/** Starts a process holding the store's lock on `key`; resolves once it holds it. */
const startLockHolder = async (spec: StoreSpec, key: string): Promise<ChildProcess> => {
  const child = spawn(process.execPath, ["--import", "tsx", HOLD_LOCK, JSON.stringify(spec), key], {
    stdio: ["pipe", "pipe", "pipe"],
  })
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  })
  let stderr = ""
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk
  })
  await new Promise<void>((resolve, reject) => {
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      if (chunk.includes("locked")) resolve()
    })
    child.once("exit", (code) => reject(new Error(`lock holder exited with ${code}: ${stderr}`)))
  })
  return child
}

/**
 * Registers the suite for one store. `makeStore` returns an empty store each time it is
 * called, so the tests do not see each other's keys. `crossProcess` stores also run the lock
 * tests against a second process, which opens the store from the returned `spec`.
 */
export const runStoreSuite = (
  makeStore: () => Promise<StoreUnderTest>,
  options: { readonly crossProcess: boolean },
) => {
  describe("key-value operations", () => {
    it("returns undefined for a missing key", async () => {
      const { store } = await makeStore()
      expect(await Effect.runPromise(store.get("absent"))).toBeUndefined()
    })

    it("stores, lists and removes values", async () => {
      const { store } = await makeStore()
      await Effect.runPromise(store.set("a", "one"))
      await Effect.runPromise(store.set("b", "two"))
      await Effect.runPromise(store.set("a", "three"))
      expect(await Effect.runPromise(store.get("a"))).toBe("three")
      expect([...(await Effect.runPromise(store.keys))].sort()).toEqual(["a", "b"])
      await Effect.runPromise(store.remove("a"))
      expect(await Effect.runPromise(store.get("a"))).toBeUndefined()
      expect(await Effect.runPromise(store.keys)).toEqual(["b"])
    })

    it("removes a missing key without error", async () => {
      const { store } = await makeStore()
      await Effect.runPromise(store.remove("absent"))
      expect(await Effect.runPromise(store.keys)).toEqual([])
    })

    it("keeps long and non-ASCII values intact", async () => {
      const { store } = await makeStore()
      const value = `ключ ✓ ${"x".repeat(16_000)}`
      await Effect.runPromise(store.set(sessionKey(SERVER_URL), value))
      expect(await Effect.runPromise(store.get(sessionKey(SERVER_URL)))).toBe(value)
    })
  })

  describe("session records", () => {
    it("round-trips a session with its secrets", async () => {
      const { store } = await makeStore()
      const written = await run(store, saveSession(session(0)))
      const read = await run(store, loadSession(written.serverUrl))
      if (read === undefined) throw new Error("the session was not stored")
      expect(read.generation).toBe(1)
      expect(read.serverUrl).toBe(SERVER_URL)
      expect(Redacted.value(read.tokens.accessToken)).toBe("access-1")
      expect(read.tokens.refreshToken).toBeDefined()
      expect(Redacted.value(read.tokens.refreshToken!)).toBe("refresh-1")
      expect(read.client.clientSecret).toBeDefined()
      expect(Redacted.value(read.client.clientSecret!)).toBe("client-secret-1")
    })

    it("keeps a newer generation over an older write", async () => {
      const { store } = await makeStore()
      await run(store, saveSession(session(5, "newer")))
      const result = await run(store, saveSession(session(2, "older")))
      expect(Redacted.value(result.tokens.accessToken)).toBe("newer")
      const read = await run(store, loadSession(result.serverUrl))
      if (read === undefined) throw new Error("the session was not stored")
      expect(Redacted.value(read.tokens.accessToken)).toBe("newer")
      expect(read.generation).toBe(6)
    })

    it("keeps a newer session when asked to remove an older one", async () => {
      const { store } = await makeStore()
      await run(store, saveSession(session(5)))
      await run(store, removeSessionIfNotNewer(SERVER_URL, 3))
      expect((await run(store, loadSession(SERVER_URL)))?.generation).toBe(6)
      await run(store, removeSessionIfNotNewer(SERVER_URL, 6))
      expect(await run(store, loadSession(SERVER_URL))).toBeUndefined()
    })

    it("reports a corrupt record and leaves it in place", async () => {
      const { store } = await makeStore()
      const key = sessionKey(SERVER_URL)
      await Effect.runPromise(store.set(key, '{"version":1,"serverUrl":7}'))
      const error = failureOf(await runEither(store, loadSession(SERVER_URL)))
      expect(error._tag).toBe("KeychainError")
      expect(error.reason).toBe("corrupt")
      expect(error.message).toContain("sign out to replace it")
      expect(await Effect.runPromise(store.get(key))).toBe('{"version":1,"serverUrl":7}')
    })

    it("names a record written by a newer version", async () => {
      const { store } = await makeStore()
      await Effect.runPromise(store.set(sessionKey(SERVER_URL), '{"version":99}'))
      const error = failureOf(await runEither(store, loadSession(SERVER_URL)))
      expect(error.reason).toBe("corrupt")
      expect(error.message).toContain("version 99 record")
    })

    it("migrates a version 0 record on load", async () => {
      const { store } = await makeStore()
      await Effect.runPromise(store.set(sessionKey(SERVER_URL), legacyRecord()))
      const read = await run(store, loadSession(SERVER_URL))
      if (read === undefined) throw new Error("the version 0 record was not read")
      expect(read.version).toBe(1)
      expect(read.generation).toBe(0)
      expect(read.client.clientId).toBe("legacy-client")
      expect(Redacted.value(read.tokens.accessToken)).toBe("legacy-access")

      // The next write stores the current version.
      const written = await run(store, saveSession(read))
      const text = await Effect.runPromise(store.get(sessionKey(SERVER_URL)))
      expect(written.generation).toBe(1)
      expect(JSON.parse(text!)).toMatchObject({ version: 1, generation: 1 })
    })
  })

  describe("registration records", () => {
    it("round-trips a registration by issuer and redirect URI", async () => {
      const { store } = await makeStore()
      await run(store, saveRegistration(client("client-7")))
      const read = await run(store, loadRegistration(ISSUER, REDIRECT_URI))
      if (read === undefined) throw new Error("the registration was not stored")
      expect(read.clientId).toBe("client-7")
      expect(read.clientSecret).toBeDefined()
      expect(Redacted.value(read.clientSecret!)).toBe("client-secret-1")
      expect(await Effect.runPromise(store.keys)).toEqual([registrationKey(ISSUER, REDIRECT_URI)])
      expect(await run(store, loadRegistration(ISSUER, "http://127.0.0.1:1/callback"))).toBe(
        undefined,
      )
      expect(await run(store, loadRegistration("http://127.0.0.1:7", REDIRECT_URI))).toBe(undefined)
    })

    it("ignores a registration record that does not decode", async () => {
      const { store } = await makeStore()
      await Effect.runPromise(store.set(registrationKey(ISSUER, REDIRECT_URI), "{"))
      expect(await run(store, loadRegistration(ISSUER, REDIRECT_URI))).toBeUndefined()
    })
  })

  describe("lock", () => {
    it("serializes two holders of one key", async () => {
      const { store } = await makeStore()
      const events: string[] = []
      const holder = (name: string, hold: Effect.Effect<void>) =>
        Effect.scoped(
          Effect.gen(function* () {
            yield* lockKey(store, "shared", 10_000)
            events.push(`${name} acquired`)
            yield* hold
            events.push(`${name} releases`)
          }),
        )
      const program = Effect.gen(function* () {
        const first = yield* Effect.fork(holder("first", Effect.sleep("150 millis")))
        // The second holder starts while the first holds the lock.
        yield* Effect.sleep("20 millis")
        const second = yield* Effect.fork(holder("second", Effect.void))
        yield* Fiber.join(first)
        yield* Fiber.join(second)
      })
      await Effect.runPromise(program)
      expect(events).toEqual([
        "first acquired",
        "first releases",
        "second acquired",
        "second releases",
      ])
    })

    it("lets holders of different keys run together", async () => {
      const { store } = await makeStore()
      const program = Effect.scoped(
        Effect.gen(function* () {
          yield* lockKey(store, "one", 10_000)
          yield* lockKey(store, "two", 1_000)
        }),
      )
      await Effect.runPromise(program)
    })

    it.skipIf(!options.crossProcess)("times out while another process holds it", async () => {
      const { store, spec } = await makeStore()
      if (spec === undefined || store.lock === undefined) throw new Error("no cross-process lock")
      const child = await startLockHolder(spec, "shared")
      const blocked = failureOf(
        await Effect.runPromise(Effect.either(Effect.scoped(store.lock("shared", 300)))),
      )
      expect(blocked.reason).toBe("unavailable")
      expect(blocked.message).toContain("timed out")

      child.stdin?.write("release\n")
      await once(child, "exit")
      await Effect.runPromise(Effect.scoped(store.lock("shared", 10_000)))
    })

    it.skipIf(!options.crossProcess)("breaks a lock whose holder was killed", async () => {
      const { store, spec } = await makeStore()
      if (spec === undefined || store.lock === undefined) throw new Error("no cross-process lock")
      const child = await startLockHolder(spec, "shared")
      child.kill("SIGKILL")
      await once(child, "exit")
      // The lock file names a process that no longer exists, so it is broken at once.
      await Effect.runPromise(Effect.scoped(store.lock("shared", 10_000)))
    })
  })
}
