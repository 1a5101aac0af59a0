/**
 * The CLI as a user runs it: each case starts `node --import tsx src/cli/main.ts` as a child
 * process against the demo servers running in this process, with sessions in a temporary
 * `MCP_AUTH_ENGINE_HOME`.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type DemoAuthorizationServer,
  type DemoMcpServer,
  startAuthorizationServer,
  startMcpServer,
} from "../src/demo/servers.js"

const ROOT = fileURLToPath(new URL("..", import.meta.url))
const MAIN = join(ROOT, "src", "cli", "main.ts")
const DIAGRAM_MODULE = join(ROOT, "src", "machine", "diagram.ts")
const COMMAND_TIMEOUT_MS = 30_000

interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

let home: string
let authorizationServer: DemoAuthorizationServer
let mcpServer: DemoMcpServer

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), "mcp-auth-engine-cli-"))
  authorizationServer = await startAuthorizationServer()
  mcpServer = await startMcpServer({ authorizationServer })
})

afterAll(async () => {
  await mcpServer?.close()
  await authorizationServer?.close()
  if (home !== undefined) await rm(home, { recursive: true, force: true })
})

/** Starts the CLI with `args`; `MCP_AUTH_ENGINE_HOME` points at the temporary home. */
const startCli = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}): ChildProcess =>
  spawn(process.execPath, ["--import", "tsx", MAIN, ...args], {
    cwd: ROOT,
    // The file store keeps the tests out of the developer's OS keychain.
    env: {
      ...process.env,
      NO_COLOR: "1",
      MCP_AUTH_ENGINE_HOME: home,
      MCP_AUTH_ENGINE_STORE: "file",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  })

/** Collects a started CLI's output and waits for it to exit, killing it after a timeout. */
const finish = (child: ChildProcess, timeoutMs = COMMAND_TIMEOUT_MS): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    let stdout = ""
    let stderr = ""
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
    })
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`the CLI did not exit within ${timeoutMs} ms; stderr: ${stderr}`))
    }, timeoutMs)
    child.once("error", reject)
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })

const runCli = (args: ReadonlyArray<string>, env?: NodeJS.ProcessEnv, timeoutMs?: number) =>
  finish(startCli(args, env), timeoutMs)

const lines = (text: string): string[] => text.split("\n").filter((line) => line.trim() !== "")

const callWhoami = (token: string) =>
  fetch(mcpServer.url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name: "whoami", arguments: {} },
    }),
  })

describe("mcp-auth-engine CLI", { timeout: 2 * COMMAND_TIMEOUT_MS }, () => {
  it("prints the package version", async () => {
    const packageJson = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as {
      version: string
    }
    const result = await runCli(["--version"])
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toBe(packageJson.version)
  })

  it("lists every command in --help", async () => {
    const result = await runCli(["--help"])
    expect(result.code).toBe(0)
    for (const command of ["login", "token", "status", "logout", "diagram", "demo"]) {
      expect(result.stdout).toContain(`- ${command}`)
    }
    expect(result.stdout).not.toContain("\x1b[")
  })

  it("token without a session exits 3", async () => {
    const result = await runCli(["token", mcpServer.url])
    expect(result.code).toBe(3)
    expect(result.stdout).toBe("")
    expect(lines(result.stderr)).toEqual([
      `error: sign-in required for ${mcpServer.url}: run mcp-auth-engine login ${mcpServer.url}`,
    ])
  })

  describe("session lifecycle", () => {
    let loginOutput: string
    let token: string

    it("login --json signs in headless", async () => {
      const result = await runCli(["login", mcpServer.url, "--browser", "headless", "--json"])
      expect(result.stderr).not.toContain("error:")
      expect(result.code).toBe(0)
      loginOutput = result.stdout
      const summary = JSON.parse(result.stdout) as Record<string, unknown>
      expect(Object.keys(summary).sort()).toEqual(
        ["authorizationServer", "expiresAt", "scope", "serverUrl", "state"].sort(),
      )
      expect(summary.state).toBe("authenticated")
      expect(summary.serverUrl).toBe(mcpServer.url)
      expect(summary.authorizationServer).toBe(authorizationServer.issuer)
      expect(summary.scope).toBe("mcp:tools")
      expect(Date.parse(String(summary.expiresAt))).toBeGreaterThan(Date.now())
    })

    it("token prints a token the server accepts", async () => {
      const result = await runCli(["token", mcpServer.url])
      expect(result.stderr).toBe("")
      expect(result.code).toBe(0)
      expect(lines(result.stdout)).toHaveLength(1)
      token = result.stdout.trim()
      const response = await callWhoami(token)
      expect(response.status).toBe(200)
      const body = (await response.json()) as { result: { content: Array<{ text: string }> } }
      expect(body.result.content[0]?.text).toContain('"sub":"demo-user"')
    })

    it("login output holds no token", () => {
      expect(token.length).toBeGreaterThan(0)
      expect(loginOutput).not.toContain(token)
    })

    it("status --json lists the session", async () => {
      const result = await runCli(["status", "--json"])
      expect(result.code).toBe(0)
      expect(result.stdout).not.toContain(token)
      const sessions = JSON.parse(result.stdout) as Array<Record<string, unknown>>
      expect(sessions).toHaveLength(1)
      expect(sessions[0]).toMatchObject({
        serverUrl: mcpServer.url,
        signedIn: true,
        issuer: authorizationServer.issuer,
        scope: "mcp:tools",
        expired: false,
        refreshable: true,
      })
    })

    it("status <url> shows one session as text", async () => {
      const result = await runCli(["status", mcpServer.url])
      expect(result.code).toBe(0)
      expect(result.stdout).not.toContain(token)
      expect(result.stdout).toContain(mcpServer.url)
      expect(result.stdout).toContain(`issuer:  ${authorizationServer.issuer}`)
      expect(result.stdout).toMatch(/expires: in \d+ s \(refresh token stored\)/)
    })

    it("logout then token exits 3", async () => {
      const logout = await runCli(["logout", mcpServer.url])
      expect(logout.stderr).toBe("")
      expect(logout.code).toBe(0)
      expect(logout.stdout.trim()).toBe(`Signed out of ${mcpServer.url}.`)

      const revoked = await callWhoami(token)
      expect(revoked.status).toBe(401)

      const result = await runCli(["token", mcpServer.url])
      expect(result.code).toBe(3)
      expect(result.stdout).toBe("")
      expect(lines(result.stderr)).toEqual([
        `error: sign-in required for ${mcpServer.url}: run mcp-auth-engine login ${mcpServer.url}`,
      ])
    })

    it("logout without a session exits 0", async () => {
      const result = await runCli(["logout", mcpServer.url])
      expect(result.code).toBe(0)
      expect(result.stdout.trim()).toBe(`No stored session for ${mcpServer.url}.`)
    })
  })

  it("token after a rejected refresh exits 3", async () => {
    const shortLived = await startAuthorizationServer({ accessTokenTtlSeconds: 2 })
    const shortLivedMcp = await startMcpServer({ authorizationServer: shortLived })
    try {
      const url = shortLivedMcp.url
      const login = await runCli(["login", url, "--browser", "headless"])
      expect(login.code).toBe(0)

      await shortLived.revokeAllGrants()
      await new Promise((resolve) => setTimeout(resolve, 2_500))
      const result = await runCli(["token", url])
      expect(result.code).toBe(3)
      expect(result.stdout).toBe("")
      const stderrLines = lines(result.stderr)
      expect(stderrLines).toHaveLength(1)
      expect(stderrLines[0]).toMatch(
        `error: sign-in required for ${url}: run mcp-auth-engine login ${url} (`,
      )
      expect(stderrLines[0]).toContain("invalid_grant")
    } finally {
      await shortLivedMcp.close()
      await shortLived.close()
    }
  })

  it("login against a closed port fails in one line", async () => {
    const result = await runCli(["login", "http://127.0.0.1:1/mcp", "--browser", "headless"])
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    const errorLines = lines(result.stderr).filter((line) => line.startsWith("error:"))
    expect(errorLines).toHaveLength(1)
    expect(errorLines[0]).toContain("discovery failed")
    expect(lines(result.stderr).at(-1)).toBe(errorLines[0])
    expect(result.stderr).not.toMatch(/^\s+at /m)
  })

  it("login rejects --browser command without a program", async () => {
    const result = await runCli(["login", mcpServer.url, "--browser", "command"])
    expect(result.code).toBe(2)
    expect(lines(result.stderr)).toEqual([
      "error: --browser command needs --browser-command <program>",
    ])
  })

  it("login --browser command runs the program without a shell", async () => {
    // Spaces, `;` and `$(...)` in the path would break a shell command line.
    const folder = join(home, "browser $(touch injected); x")
    await mkdir(folder, { recursive: true })
    const program = join(folder, "record-argv.mjs")
    const record = join(home, "argv.json")
    await writeFile(
      program,
      [
        "#!/usr/bin/env node",
        'import { writeFileSync } from "node:fs"',
        `writeFileSync(${JSON.stringify(record)}, JSON.stringify({ argv: process.argv, ppid: process.ppid }))`,
        "",
      ].join("\n"),
    )
    await chmod(program, 0o755)

    const child = startCli([
      "login",
      mcpServer.url,
      "--browser",
      "command",
      "--browser-command",
      program,
      "--store",
      "memory",
      "--callback-port",
      "0",
    ])
    const done = finish(child)
    const deadline = Date.now() + COMMAND_TIMEOUT_MS
    while (!existsSync(record) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    // The program does not complete the sign-in, so stop the waiting CLI the way Ctrl-C would.
    child.kill("SIGINT")
    const result = await done

    const recorded = JSON.parse(await readFile(record, "utf8")) as {
      argv: string[]
      ppid: number
    }
    expect(recorded.argv).toHaveLength(3)
    expect(recorded.argv[1]).toBe(program)
    const url = new URL(recorded.argv[2] ?? "")
    expect(url.origin).toBe(authorizationServer.issuer)
    expect(url.searchParams.get("response_type")).toBe("code")
    expect(url.searchParams.get("code_challenge_method")).toBe("S256")
    expect(recorded.ppid).toBe(child.pid)
    expect(existsSync(join(folder, "injected"))).toBe(false)
    expect(existsSync(join(ROOT, "injected"))).toBe(false)
    expect(result.code).toBe(130)
  })

  it.skipIf(!existsSync(DIAGRAM_MODULE))("diagram prints Mermaid", async () => {
    const result = await runCli(["diagram", "--format", "mermaid"])
    expect(result.code).toBe(0)
    expect(result.stdout.startsWith("stateDiagram-v2")).toBe(true)
  })

  it("demo runs to the end", { timeout: 70_000 }, async () => {
    const started = Date.now()
    const result = await runCli(["demo"], {}, 60_000)
    expect(result.stderr).toBe("")
    expect(result.code).toBe(0)
    expect(Date.now() - started).toBeLessThan(60_000)
    expect(result.stdout).toContain("→ authenticated")
    expect(result.stdout).toContain("→ refreshing")
    expect(result.stdout).toContain("Demo finished")
  })
})
