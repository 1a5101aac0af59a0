/**
 * A child process for the store suite's lock tests: opens the store described by argv[2] (JSON),
 * takes the lock on argv[3], prints "locked" on stdout, and holds the lock until a line arrives
 * on stdin or the process is killed.
 *
 * Usage: node --import tsx test/services/hold-lock.ts '<store spec>' <key>
 */
import { createInterface } from "node:readline"
import { Effect } from "effect"
import type { KeychainService } from "../../src/services/keychain.js"
import { makeFileKeychain } from "../../src/services/keychain.js"
import { makeOsKeychain } from "../../src/services/os-keychain.js"

/** How another process opens the same store. */
export type StoreSpec =
  | { readonly kind: "file"; readonly directory: string }
  | { readonly kind: "keychain"; readonly home: string; readonly service: string }

/** Opens the store a spec describes. */
export const openStore = (spec: StoreSpec): KeychainService =>
  spec.kind === "file"
    ? makeFileKeychain(spec.directory)
    : makeOsKeychain({ home: spec.home, service: spec.service })

const main = async () => {
  const [specText, key] = process.argv.slice(2)
  if (specText === undefined || key === undefined) {
    throw new Error("usage: hold-lock.ts '<store spec>' <key>")
  }
  const store = openStore(JSON.parse(specText) as StoreSpec)
  if (store.lock === undefined) throw new Error(`the ${store.name} store has no lock`)
  const lock = store.lock
  const released = new Promise<void>((resolve) => {
    createInterface({ input: process.stdin }).once("line", () => resolve())
  })
  await Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        yield* lock(key, 10_000)
        process.stdout.write("locked\n")
        yield* Effect.promise(() => released)
      }),
    ),
  )
  process.exit(0)
}

if (process.argv[1]?.endsWith("hold-lock.ts")) {
  main().catch((error: unknown) => {
    process.stderr.write(`hold-lock failed: ${error instanceof Error ? error.message : error}\n`)
    process.exit(1)
  })
}
