/**
 * The OS keychain store where no credential store is reachable: the session bus address points
 * at a socket that does not exist, so every operation fails as on a headless Linux machine
 * without D-Bus. @napi-rs/keyring keeps its D-Bus connection for the life of the process, which
 * is why these tests have a file (and so a vitest worker process) of their own.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { afterAll, describe, expect, it, vi } from "vitest"
import { makeStoreLayer } from "../../src/engine/layers.js"
import { loadSession } from "../../src/protocol/session.js"
import { Keychain } from "../../src/services/keychain.js"
import { chooseSessionStore, makeOsKeychain } from "../../src/services/os-keychain.js"
import { failureOf } from "./store-suite.js"

process.env.DBUS_SESSION_BUS_ADDRESS = "unix:path=/nonexistent/mcp-auth-engine-test-bus"

const home = await mkdtemp(join(tmpdir(), "mcp-auth-fallback-"))
afterAll(() => rm(home, { recursive: true, force: true }))

const NOTICE =
  /^OS keychain unavailable \(.+\); storing sessions in .+\/sessions \(file mode 0600\)$/

describe.skipIf(process.platform !== "linux")("OS keychain without a session bus", () => {
  it("fails every operation as unavailable", async () => {
    const store = makeOsKeychain({ home, service: "mcp-auth-engine-test-unreachable" })
    for (const operation of [store.get("k"), store.set("k", "v"), store.remove("k"), store.keys]) {
      const error = failureOf(await Effect.runPromise(Effect.either(operation)))
      expect(error._tag).toBe("KeychainError")
      expect(error.reason).toBe("unavailable")
      expect(error.message).toContain("Secret Service")
    }
  })

  it("falls back to the file store with a notice", async () => {
    const notices: string[] = []
    const store = await Effect.runPromise(
      chooseSessionStore(home, { announce: (line) => notices.push(line) }),
    )
    expect(store.name).toBe("file")
    expect(store.location).toBe(join(home, "sessions"))
    expect(notices).toHaveLength(1)
    expect(notices[0]).toMatch(NOTICE)
    expect(notices[0]).toContain("Failed to connect to socket")
  })

  it("writes the notice to stderr once per process", async () => {
    const written: string[] = []
    const spy = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => {
      written.push(String(chunk))
      return true
    })
    try {
      await Effect.runPromise(chooseSessionStore(home))
      await Effect.runPromise(chooseSessionStore(home))
    } finally {
      spy.mockRestore()
    }
    expect(written).toHaveLength(1)
    expect(written[0]?.endsWith("\n")).toBe(true)
    expect(written[0]?.trimEnd()).toMatch(NOTICE)
  })

  it("fails loads when the keychain store is required", async () => {
    const error = failureOf(
      await Effect.runPromise(
        Effect.either(
          Effect.provide(loadSession("https://mcp.example/"), makeStoreLayer("keychain", home)),
        ),
      ),
    )
    expect(error.reason).toBe("unavailable")
  })

  it("stores sessions in files when the automatic store falls back", async () => {
    const store = await Effect.runPromise(Effect.provide(Keychain, makeStoreLayer("auto", home)))
    expect(store.name).toBe("file")
  })
})
