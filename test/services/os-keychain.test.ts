/**
 * The OS keychain store against the shared store suite, on the real credential store: the
 * Secret Service on Linux (run under `dbus-run-session` with an unlocked gnome-keyring, as
 * .ci/run does). Each store uses its own service name, deleted afterwards, so the user's
 * "mcp-auth-engine" credentials are never touched. Without a reachable credential store the
 * tests are skipped, or fail when MCP_AUTH_ENGINE_REQUIRE_OS_KEYCHAIN=1.
 */
import { randomBytes } from "node:crypto"
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AsyncEntry, findCredentialsAsync } from "@napi-rs/keyring"
import { Effect, Either } from "effect"
import { afterAll, describe, expect, it } from "vitest"
import {
  chooseSessionStore,
  describeUnavailable,
  INDEX_ACCOUNT,
  makeOsKeychain,
  PROBE_ACCOUNT,
} from "../../src/services/os-keychain.js"
import { failureOf, runStoreSuite } from "./store-suite.js"

const services: string[] = []
const homes: string[] = []

/** Makes a fresh service name and home, both removed after the file's tests. */
const makeServiceAndHome = async () => {
  const service = `mcp-auth-engine-test-${randomBytes(6).toString("hex")}`
  const home = await mkdtemp(join(tmpdir(), "mcp-auth-keychain-"))
  services.push(service)
  homes.push(home)
  return { service, home }
}

const rawEntry = (service: string, account: string) =>
  new AsyncEntry(service, account, { linux: { store: "secret-service" } })

const probeTarget = await makeServiceAndHome()
const probe = await Effect.runPromise(
  Effect.either(makeOsKeychain({ home: probeTarget.home, service: probeTarget.service }).probe),
)
const unavailable = Either.isLeft(probe) ? describeUnavailable(probe.left) : undefined
if (unavailable !== undefined && process.env.MCP_AUTH_ENGINE_REQUIRE_OS_KEYCHAIN === "1") {
  throw new Error(`the OS keychain is required here but unavailable: ${unavailable}`)
}

afterAll(async () => {
  if (unavailable === undefined) {
    for (const service of services) {
      for (const credential of await findCredentialsAsync(service)) {
        await rawEntry(service, credential.account).deletePassword()
      }
    }
  }
  for (const home of homes) await rm(home, { recursive: true, force: true })
})

const title =
  unavailable === undefined ? "OS keychain store" : `OS keychain store (skipped: ${unavailable})`

describe.skipIf(unavailable !== undefined)(title, () => {
  runStoreSuite(
    async () => {
      const { service, home } = await makeServiceAndHome()
      return {
        store: makeOsKeychain({ home, service }),
        spec: { kind: "keychain", home, service },
      }
    },
    { crossProcess: true },
  )

  it("lists its keys in an index credential", async () => {
    const { service, home } = await makeServiceAndHome()
    const store = makeOsKeychain({ home, service })
    await Effect.runPromise(store.set("mcp-auth-engine:https://a.example/mcp", "one"))
    await Effect.runPromise(store.set("mcp-auth-engine:https://b.example/mcp", "two"))

    const index = JSON.parse((await rawEntry(service, INDEX_ACCOUNT).getPassword()) ?? "{}")
    expect(index).toEqual({
      version: 1,
      keys: ["mcp-auth-engine:https://a.example/mcp", "mcp-auth-engine:https://b.example/mcp"],
    })
    // A second store on the same service, as another process would open it, lists both keys.
    const other = makeOsKeychain({ home, service })
    expect([...(await Effect.runPromise(other.keys))].sort()).toEqual(index.keys)
    expect(await rawEntry(service, "mcp-auth-engine:https://a.example/mcp").getPassword()).toBe(
      "one",
    )
  })

  it("skips listed keys whose credential is gone", async () => {
    const { service, home } = await makeServiceAndHome()
    const store = makeOsKeychain({ home, service })
    await Effect.runPromise(store.set("kept", "1"))
    await Effect.runPromise(store.set("deleted elsewhere", "2"))
    await rawEntry(service, "deleted elsewhere").deletePassword()
    expect(await Effect.runPromise(store.keys)).toEqual(["kept"])
  })

  it("lists a key again after another store removed it", async () => {
    const { service, home } = await makeServiceAndHome()
    const first = makeOsKeychain({ home, service })
    const second = makeOsKeychain({ home, service })
    await Effect.runPromise(first.set("key", "1"))
    await Effect.runPromise(second.remove("key"))
    await Effect.runPromise(first.set("key", "2"))
    expect(await Effect.runPromise(second.keys)).toEqual(["key"])
  })

  it("rejects the reserved account names", async () => {
    const { service, home } = await makeServiceAndHome()
    const store = makeOsKeychain({ home, service })
    for (const key of [INDEX_ACCOUNT, PROBE_ACCOUNT]) {
      const error = failureOf(await Effect.runPromise(Effect.either(store.set(key, "x"))))
      expect(error.reason).toBe("write_failed")
    }
  })

  it("is chosen by the automatic store without a notice", async () => {
    const { service, home } = await makeServiceAndHome()
    const notices: string[] = []
    const store = await Effect.runPromise(
      chooseSessionStore(home, { service, announce: (line) => notices.push(line) }),
    )
    expect(store.name).toBe("keychain")
    expect(notices).toEqual([])
    expect(await rawEntry(service, PROBE_ACCOUNT).getPassword()).toBe("ok")
  })
})
