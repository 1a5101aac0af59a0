/** The memory store against the shared store suite; its lock works within one process only. */
import { describe } from "vitest"
import { makeMemoryKeychain } from "../../src/services/keychain.js"
import { runStoreSuite } from "./store-suite.js"

describe("memory store", () => {
  runStoreSuite(async () => ({ store: makeMemoryKeychain() }), { crossProcess: false })
})
