/**
 * The file store against the shared store suite, plus what only files show: permissions, atomic
 * replacement, and a file whose recorded key does not match its name.
 */
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { once } from "node:events"
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { describe, expect, it, onTestFinished } from "vitest"
import { makeFileKeychain } from "../../src/services/keychain.js"
import { failureOf, runStoreSuite } from "./store-suite.js"

const makeDirectory = async (): Promise<string> => {
  const directory = await mkdtemp(join(tmpdir(), "mcp-auth-store-"))
  onTestFinished(() => rm(directory, { recursive: true, force: true }))
  return directory
}

describe("file store", () => {
  runStoreSuite(
    async () => {
      const directory = join(await makeDirectory(), "sessions")
      return { store: makeFileKeychain(directory), spec: { kind: "file", directory } }
    },
    { crossProcess: true },
  )

  it("writes files readable by the owner only", async () => {
    const directory = join(await makeDirectory(), "sessions")
    const store = makeFileKeychain(directory)
    await Effect.runPromise(store.set("key", "value"))
    const [file] = await readdir(directory)
    expect(file).toMatch(/^[0-9a-f]{32}\.json$/)
    expect((await stat(join(directory, file!))).mode & 0o777).toBe(0o600)
    expect((await stat(directory)).mode & 0o777).toBe(0o700)
  })

  it("leaves no temporary files after writes", async () => {
    const directory = await makeDirectory()
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

  it("deletes temporary files of dead writers", async () => {
    const directory = await makeDirectory()
    const store = makeFileKeychain(directory)
    await Effect.runPromise(store.set("key", "value"))
    const [file] = await readdir(directory)
    const exited = spawn(process.execPath, ["-e", ""])
    await once(exited, "exit")
    const abandoned = `${file}.${exited.pid}.0123456789ab.tmp`
    const inProgress = `${file}.${process.pid}.0123456789ab.tmp`
    await writeFile(join(directory, abandoned), "{}")
    await writeFile(join(directory, inProgress), "{}")

    await Effect.runPromise(store.set("key", "value 2"))

    expect((await readdir(directory)).sort()).toEqual([file, inProgress].sort())
  })

  it("breaks an old lock file without an owner", async () => {
    const directory = await makeDirectory()
    const store = makeFileKeychain(directory)
    const lockFile = join(
      directory,
      `${createHash("sha256").update("key").digest("hex").slice(0, 32)}.lock`,
    )
    await writeFile(lockFile, "")

    // A fresh lock file without an owner may still be in the making, so it is respected.
    const blocked = failureOf(
      await Effect.runPromise(Effect.either(Effect.scoped(store.lock!("key", 200)))),
    )
    expect(blocked.message).toContain("timed out")

    const old = new Date(Date.now() - 60_000)
    await utimes(lockFile, old, old)
    await Effect.runPromise(Effect.scoped(store.lock!("key", 10_000)))
  })

  it("ignores a file whose key differs from its name", async () => {
    const directory = await makeDirectory()
    const store = makeFileKeychain(directory)
    await Effect.runPromise(store.set("key", "value"))
    const [file] = await readdir(directory)
    await writeFile(join(directory, file!), JSON.stringify({ key: "other", value: "x" }))
    expect(await Effect.runPromise(store.get("key"))).toBeUndefined()
  })
})
