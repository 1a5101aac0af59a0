/**
 * Row 8: `mcp-auth-engine token <url>` with a valid session in the file store, against a bare
 * `node -e 0`. The CLI runs from the compiled dist/. When the repository's dist/ is missing or
 * older than a source file, the sources are compiled into the temporary folder instead, so the
 * row always measures the current code and nothing in the repository is written.
 */
import { execFile } from "node:child_process"
import { copyFile, mkdir, readdir, stat, symlink } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { Effect } from "effect"
import { makeFileKeychain } from "../src/index.js"
import { type BenchContext, progress, type Row } from "./context.js"
import { median, ms, ratio } from "./stats.js"

const run = promisify(execFile)

/** Timed runs of each command, alternating, after one untimed run of each. */
const CLI_RUNS = 10
/** The CLI may take at most this many times as long as `node -e 0`. */
const CLI_TARGET_RATIO = 3
const COMMAND_TIMEOUT_MS = 30_000

const repositoryRoot = fileURLToPath(new URL("..", import.meta.url))

/** Returns the newest modification time of any file under `folder`, in milliseconds. */
async function newestModification(folder: string): Promise<number> {
  let newest = 0
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue
    const { mtimeMs } = await stat(join(entry.parentPath, entry.name))
    newest = Math.max(newest, mtimeMs)
  }
  return newest
}

/** Returns the path of a `bin/mcp-auth-engine.js` whose dist/ matches the current sources. */
async function findOrBuildCli(tmp: string): Promise<string> {
  const repositoryBin = join(repositoryRoot, "bin", "mcp-auth-engine.js")
  const builtAt = await stat(join(repositoryRoot, "dist", "cli", "main.js")).then(
    (info) => info.mtimeMs,
    () => 0,
  )
  if (builtAt > (await newestModification(join(repositoryRoot, "src")))) return repositoryBin

  progress("dist/ is missing or stale; compiling the CLI into the temporary folder")
  const packageRoot = join(tmp, "package")
  await mkdir(join(packageRoot, "bin"), { recursive: true })
  const compiler = join(repositoryRoot, "node_modules", "typescript", "bin", "tsc")
  const outDir = join(packageRoot, "dist")
  // tsc emits JavaScript even when the tree has type errors, and those do not affect this row.
  await run(
    process.execPath,
    [
      compiler,
      "-p",
      join(repositoryRoot, "tsconfig.build.json"),
      "--outDir",
      outDir,
      "--declaration",
      "false",
      "--sourceMap",
      "false",
    ],
    { timeout: 120_000 },
  ).catch((error: { readonly stdout?: unknown }) => {
    const firstError = String(error.stdout ?? "").split("\n")[0]
    progress(`tsc reported type errors; the emitted files are used. First error: ${firstError}`)
  })
  await stat(join(outDir, "cli", "main.js"))
  await copyFile(join(repositoryRoot, "package.json"), join(packageRoot, "package.json"))
  await copyFile(repositoryBin, join(packageRoot, "bin", "mcp-auth-engine.js"))
  await symlink(join(repositoryRoot, "node_modules"), join(packageRoot, "node_modules"), "dir")
  return join(packageRoot, "bin", "mcp-auth-engine.js")
}

/** Runs a command and returns its wall time in milliseconds and its stdout. */
async function timeCommand(args: ReadonlyArray<string>, env: NodeJS.ProcessEnv) {
  const start = performance.now()
  const { stdout } = await run(process.execPath, args, { env, timeout: COMMAND_TIMEOUT_MS })
  return { elapsedMs: performance.now() - start, stdout }
}

/** Measures row 8 with the engine's stored session copied into a file store in `tmp`. */
export async function measureCliToken(
  context: BenchContext,
  storedSession: { readonly key: string; readonly value: string },
): Promise<Row> {
  const bin = await findOrBuildCli(context.tmp)
  const home = join(context.tmp, "cli-home")
  await Effect.runPromise(
    makeFileKeychain(join(home, "sessions")).set(storedSession.key, storedSession.value),
  )
  const expectedToken = (JSON.parse(storedSession.value) as { tokens: { accessToken: string } })
    .tokens.accessToken
  const env = { ...process.env, MCP_AUTH_ENGINE_HOME: home }
  const cliArgs = [bin, "token", context.mcp.url]
  const bareArgs = ["-e", "0"]

  const cli: number[] = []
  const bare: number[] = []
  for (let i = -1; i < CLI_RUNS; i++) {
    const first = i % 2 === 0 ? cliArgs : bareArgs
    for (const args of [first, first === cliArgs ? bareArgs : cliArgs]) {
      const { elapsedMs, stdout } = await timeCommand(args, env)
      if (args === cliArgs && stdout.trim() !== expectedToken) {
        throw new Error(
          `the CLI printed ${stdout.length} characters on stdout, not the stored access token`,
        )
      }
      if (i >= 0) (args === cliArgs ? cli : bare).push(elapsedMs)
    }
  }
  const cliMs = median(cli)
  const bareMs = median(bare)
  const met = cliMs < CLI_TARGET_RATIO * bareMs
  return {
    measure: `CLI \`token\` with a valid stored session vs \`node -e 0\` (median of ${CLI_RUNS} runs each)`,
    engine: `${ms(cliMs)} vs ${ms(bareMs)}: ${ratio(cliMs, bareMs)} of bare Node; ${met ? "met" : "missed"}`,
    sdk: "no CLI; not compared",
    ratio: "n/a",
  }
}
