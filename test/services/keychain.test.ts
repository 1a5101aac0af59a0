import { mkdtemp, readdir, readFile, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Either, Layer, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { loadSession, saveSession, sessionKey } from "../../src/protocol/session.js"
import type { Session } from "../../src/schema/session.js"
import {
  Keychain,
  type KeychainService,
  makeFileKeychain,
  makeMemoryKeychain,
} from "../../src/services/keychain.js"

const session = (generation: number, accessToken = "access-1"): Session => ({
  version: 1,
  serverUrl: "http://127.0.0.1:9/mcp",
  resource: "http://127.0.0.1:9/mcp",
  authorizationServer: {
    issuer: "http://127.0.0.1:8",
    authorization_endpoint: "http://127.0.0.1:8/authorize",
    token_endpoint: "http://127.0.0.1:8/token",
  },
  client: {
    issuer: "http://127.0.0.1:8",
    clientId: "client-1",
    clientSecret: Redacted.make("client-secret-1"),
    tokenEndpointAuthMethod: "client_secret_basic",
    redirectUri: "http://127.0.0.1:33418/callback",
    source: "dynamic",
  },
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

const run = <A, E>(store: KeychainService, effect: Effect.Effect<A, E, Keychain>) =>
  Effect.runPromise(Effect.provide(effect, Layer.succeed(Keychain, store)))

const stores: ReadonlyArray<[string, () => Promise<KeychainService>]> = [
  ["memory", async () => makeMemoryKeychain()],
  ["file", async () => makeFileKeychain(await mkdtemp(join(tmpdir(), "mcp-auth-store-")))],
]

describe.each(stores)("%s store", (_name, makeStore) => {
  it("returns undefined for a missing key", async () => {
    const store = await makeStore()
    expect(await Effect.runPromise(store.get("absent"))).toBeUndefined()
  })

  it("stores, lists and removes values", async () => {
    const store = await makeStore()
    await Effect.runPromise(store.set("a", "one"))
    await Effect.runPromise(store.set("b", "two"))
    await Effect.runPromise(store.set("a", "three"))
    expect(await Effect.runPromise(store.get("a"))).toBe("three")
    expect([...(await Effect.runPromise(store.keys))].sort()).toEqual(["a", "b"])
    await Effect.runPromise(store.remove("a"))
    expect(await Effect.runPromise(store.get("a"))).toBeUndefined()
    expect(await Effect.runPromise(store.keys)).toEqual(["b"])
  })

  it("round-trips a session with its secrets", async () => {
    const store = await makeStore()
    const written = await run(store, saveSession(session(0)))
    const read = await run(store, loadSession(written.serverUrl))
    expect(read?.generation).toBe(1)
    expect(read && Redacted.value(read.tokens.accessToken)).toBe("access-1")
    expect(read?.client.clientSecret && Redacted.value(read.client.clientSecret)).toBe(
      "client-secret-1",
    )
  })

  it("keeps a newer generation over an older write", async () => {
    const store = await makeStore()
    await run(store, saveSession(session(5, "newer")))
    const result = await run(store, saveSession(session(2, "older")))
    expect(Redacted.value(result.tokens.accessToken)).toBe("newer")
    const read = await run(store, loadSession(result.serverUrl))
    expect(read && Redacted.value(read.tokens.accessToken)).toBe("newer")
    expect(read?.generation).toBe(6)
  })

  it("reports a corrupt record and leaves it in place", async () => {
    const store = await makeStore()
    const key = sessionKey("http://127.0.0.1:9/mcp")
    await Effect.runPromise(store.set(key, '{"version":99}'))
    const result = await run(store, Effect.either(loadSession("http://127.0.0.1:9/mcp")))
    expect(Either.isLeft(result) && result.left._tag).toBe("KeychainError")
    expect(Either.isLeft(result) && result.left.reason).toBe("corrupt")
    expect(await Effect.runPromise(store.get(key))).toBe('{"version":99}')
  })
})

describe("file store", () => {
  it("writes files readable by the owner only", async () => {
    const directory = join(await mkdtemp(join(tmpdir(), "mcp-auth-store-")), "sessions")
    const store = makeFileKeychain(directory)
    await Effect.runPromise(store.set("key", "value"))
    const [file] = await readdir(directory)
    expect(file).toMatch(/^[0-9a-f]{32}\.json$/)
    expect((await stat(join(directory, file!))).mode & 0o777).toBe(0o600)
    expect((await stat(directory)).mode & 0o777).toBe(0o700)
  })

  it("leaves no temporary files after writes", async () => {
    const directory = await mkdtemp(join(tmpdir(), "mcp-auth-store-"))
    const store = makeFileKeychain(directory)
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => Effect.runPromise(store.set("key", `value-${i}`))),
    )
    const files = await readdir(directory)
    expect(files).toHaveLength(1)
    expect(JSON.parse(await readFile(join(directory, files[0]!), "utf8")).value).toMatch(
      /^value-\d+$/,
    )
  })

  it("ignores a file whose key differs from its name", async () => {
    const directory = await mkdtemp(join(tmpdir(), "mcp-auth-store-"))
    const store = makeFileKeychain(directory)
    await Effect.runPromise(store.set("key", "value"))
    const [file] = await readdir(directory)
    await writeFile(join(directory, file!), JSON.stringify({ key: "other", value: "x" }))
    expect(await Effect.runPromise(store.get("key"))).toBeUndefined()
  })
})
