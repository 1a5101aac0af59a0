/**
 * Row 7: heap per idle engine restored from a store, and the time until all are ready. Each
 * variant runs in a child process (bench/restore-child.ts) with `--expose-gc`.
 */
import { execFile } from "node:child_process"
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { type BenchContext, progress, type Row } from "./context.js"
import { kb, ms, ratio } from "./stats.js"

const run = promisify(execFile)

/** Heap per engine that the target allows, in bytes. */
const HEAP_TARGET_BYTES = 50 * 1024
/** The maximum run time of one child process, in milliseconds. */
const CHILD_TIMEOUT_MS = 180_000

interface ChildResult {
  readonly heapPerEngineBytes: number
  readonly readyMs: number
  readonly count: number
}

async function runChild(
  variant: "facade" | "effect" | "sdk",
  sessionFile: string,
  keyPrefix: string,
): Promise<ChildResult> {
  const childPath = fileURLToPath(new URL("./restore-child.ts", import.meta.url))
  const { stdout } = await run(
    process.execPath,
    ["--expose-gc", "--import", "tsx", childPath, variant, sessionFile, keyPrefix],
    { timeout: CHILD_TIMEOUT_MS, cwd: fileURLToPath(new URL("..", import.meta.url)) },
  )
  const line = stdout.trim().split("\n").at(-1) ?? ""
  return JSON.parse(line) as ChildResult
}

/**
 * Writes the signed-in session to the temporary folder and runs the three variants: engines
 * through the Promise facade (one runtime each), engines through `makeAuthEngine` on one
 * shared runtime, and the SDK's per-server objects.
 */
export async function measureRestore(
  context: BenchContext,
  storedSession: { readonly key: string; readonly value: string },
  serverUrl: string,
): Promise<Row> {
  // The store key is a fixed prefix followed by the server URL.
  if (!storedSession.key.endsWith(serverUrl)) {
    throw new Error(`the store key ${storedSession.key} does not end with ${serverUrl}`)
  }
  const keyPrefix = storedSession.key.slice(0, storedSession.key.length - serverUrl.length)
  const sessionFile = join(context.tmp, "session.json")
  await writeFile(sessionFile, storedSession.value, { mode: 0o600 })

  progress("restore: Promise facade engines")
  const facade = await runChild("facade", sessionFile, keyPrefix)
  progress("restore: Effect engines on one runtime")
  const effect = await runChild("effect", sessionFile, keyPrefix)
  progress("restore: SDK providers and transports")
  const sdk = await runChild("sdk", sessionFile, keyPrefix)

  const verdict = (result: ChildResult) =>
    result.heapPerEngineBytes < HEAP_TARGET_BYTES ? "met" : "missed"
  const count = facade.count.toLocaleString("en")
  return {
    measure: `${count} engines restored from a store: heap per engine, time until all are ready`,
    engine: `\`createAuthEngine\` (a runtime each): ${kb(facade.heapPerEngineBytes)}, ${ms(facade.readyMs)}, ${verdict(facade)}; \`makeAuthEngine\` on one runtime: ${kb(effect.heapPerEngineBytes)}, ${ms(effect.readyMs)}, ${verdict(effect)}`,
    sdk: `no store; compared: an in-memory provider holding the tokens plus a \`StreamableHTTPClientTransport\` per server: ${kb(sdk.heapPerEngineBytes)}, ${ms(sdk.readyMs)}`,
    ratio: `${ratio(effect.heapPerEngineBytes, sdk.heapPerEngineBytes)} heap (one runtime)`,
  }
}
