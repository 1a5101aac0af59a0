/**
 * Helpers of the multi-process session tests. They start token worker processes (see
 * token-worker.ts), alone or from a pool that starts some ahead, run the CLI, and sign in from
 * this process on the file store. Others read the stored session directly, or ask the
 * authorization server whether it still accepts a refresh token.
 */
import { type ChildProcess, fork, spawn } from "node:child_process"
import { once } from "node:events"
import { createServer } from "node:net"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Layer, Redacted } from "effect"
import { onTestFinished } from "vitest"
import { loadSession, sessionKey } from "../../src/protocol/session.js"
import { encodeSession, type Session } from "../../src/schema/session.js"
import { Keychain, makeFileKeychain } from "../../src/services/keychain.js"
import { startEngine } from "../support/demo.js"
import type { WorkerMessage, WorkerRequest } from "./token-worker.js"

const WORKER = fileURLToPath(new URL("./token-worker.ts", import.meta.url))
const ROOT = fileURLToPath(new URL("../..", import.meta.url))
const CLI_MAIN = join(ROOT, "src", "cli", "main.ts")

/** The outcome of one CLI run. */
export interface CliResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the CLI from source in a new process, with `home` as its engine home. */
export const runCli = (args: ReadonlyArray<string>, home: string): Promise<CliResult> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", CLI_MAIN, ...args], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1", MCP_AUTH_ENGINE_HOME: home },
      stdio: ["ignore", "pipe", "pipe"],
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk
    })
    child.once("error", reject)
    child.once("close", (code) => resolve({ code, stdout, stderr }))
  })

/** The final message of a worker's token request. */
export type WorkerResult = Extract<WorkerMessage, { type: "result" }>

/** One pending token request of a worker. */
export interface TokenRequest {
  /** Resolves when the worker has a token, before it calls the MCP server. */
  readonly obtained: Promise<void>
  /** Resolves with the outcome; rejects when the worker exits first. */
  readonly result: Promise<WorkerResult>
}

/** A started worker process whose public API is loaded. */
export class TokenWorker {
  readonly #child: ChildProcess
  readonly #exited: Promise<void>
  #stderr = ""

  private constructor(child: ChildProcess) {
    this.#child = child
    this.#exited = once(child, "exit").then(() => undefined)
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
      this.#stderr += chunk
    })
    onTestFinished(() => this.kill())
  }

  /** Starts a worker and resolves once it reports `ready`. */
  static async start(): Promise<TokenWorker> {
    const child = fork(WORKER, [], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    })
    const worker = new TokenWorker(child)
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: WorkerMessage) => {
        if (message.type !== "ready") return
        child.off("message", onMessage)
        resolve()
      }
      child.on("message", onMessage)
      worker.#exited.then(() =>
        reject(new Error(`token worker exited before it was ready: ${worker.#stderr}`)),
      )
    })
    return worker
  }

  get pid(): number {
    return this.#child.pid ?? -1
  }

  /**
   * Asks the worker for a token of `serverUrl` from the file store in `home`; with
   * `interactive`, the worker signs in through the headless user agent when it must.
   */
  requestToken(serverUrl: string, home: string, interactive = false): TokenRequest {
    let onObtained: () => void = () => {}
    const obtained = new Promise<void>((resolve) => {
      onObtained = resolve
    })
    const result = new Promise<WorkerResult>((resolve, reject) => {
      const onMessage = (message: WorkerMessage) => {
        if (message.type === "token-obtained") onObtained()
        if (message.type !== "result") return
        this.#child.off("message", onMessage)
        resolve(message)
      }
      this.#child.on("message", onMessage)
      this.#exited.then(() =>
        reject(new Error(`token worker ${this.pid} exited without a result: ${this.#stderr}`)),
      )
    })
    // A rejection no test awaits (the worker was killed on purpose) is not an error.
    result.catch(() => undefined)
    const request: WorkerRequest = { type: "token", serverUrl, home, interactive }
    this.#child.send(request)
    return { obtained, result }
  }

  /** Kills the worker with SIGKILL and waits until it is reaped, so its pid is free. */
  async kill(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGKILL")
    }
    await this.#exited
  }

  /** Asks the worker to exit and waits for it. */
  async stop(): Promise<void> {
    if (this.#child.connected) this.#child.send({ type: "exit" } satisfies WorkerRequest)
    await this.#exited
  }
}

/** Keeps `size` workers starting ahead, so a test waits for a ready one, not for a start. */
export class WorkerPool {
  readonly #starting: Array<Promise<TokenWorker>> = []

  constructor(readonly size: number) {
    for (let i = 0; i < size; i++) this.#starting.push(TokenWorker.start())
  }

  /** Takes a ready worker and starts its replacement. */
  async take(): Promise<TokenWorker> {
    const next = this.#starting.shift() ?? TokenWorker.start()
    this.#starting.push(TokenWorker.start())
    return next
  }

  /** Stops the workers still waiting in the pool. */
  async close(): Promise<void> {
    const waiting = this.#starting.splice(0)
    await Promise.all(waiting.map(async (worker) => (await worker).stop()))
  }
}

/** A TCP port free on 127.0.0.1 right now, for a callback port that stays the same. */
export const findFreePort = async (): Promise<number> => {
  const server = createServer()
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const address = server.address()
  server.close()
  await once(server, "close")
  if (address === null || typeof address === "string") throw new Error("no TCP port was bound")
  return address.port
}

/** The file store of an engine home, as the engine opens it. */
export const fileStoreOf = (home: string) => makeFileKeychain(join(home, "sessions"))

const inStore = <A, E>(home: string, effect: Effect.Effect<A, E, Keychain>): Promise<A> =>
  Effect.runPromise(Effect.provide(effect, Layer.succeed(Keychain, fileStoreOf(home))))

/** Reads the session stored in `home`; rejects when its record does not decode. */
export const readSession = (home: string, serverUrl: string): Promise<Session | undefined> =>
  inStore(home, loadSession(serverUrl))

/**
 * Rewrites the stored session so its access token looks expired to the engine, keeping the
 * generation: the next engine refreshes at once, as after a long pause, without waiting for
 * the authorization server's lifetime to pass.
 */
export const expireStoredSession = async (home: string, serverUrl: string): Promise<Session> => {
  const stored = await readSession(home, serverUrl)
  if (stored === undefined) throw new Error(`no stored session for ${serverUrl}`)
  const now = Date.now()
  const expired: Session = {
    ...stored,
    tokens: { ...stored.tokens, obtainedAt: now - 120_000, expiresAt: now - 60_000 },
  }
  await Effect.runPromise(fileStoreOf(home).set(sessionKey(serverUrl), encodeSession(expired)))
  return expired
}

/** Signs in with an engine in this process on the file store in `home`, then stops it. */
export const signInHere = async (
  serverUrl: string,
  home: string,
  callbackPort: number,
): Promise<void> => {
  const { handle } = await startEngine(serverUrl, { store: "file", home, callbackPort })
  await handle.authenticate()
  await handle.dispose()
}

/**
 * Tells whether the authorization server still accepts `refreshToken` (RFC 7662
 * introspection by its own public client). oidc-provider reports a rotated-out refresh token
 * as inactive.
 */
export const isRefreshTokenActive = async (
  issuer: string,
  session: Session,
  refreshToken: Redacted.Redacted<string>,
): Promise<boolean> => {
  const metadata = (await (
    await fetch(`${issuer}/.well-known/oauth-authorization-server`)
  ).json()) as { introspection_endpoint?: string }
  if (metadata.introspection_endpoint === undefined) {
    throw new Error(`${issuer} advertises no introspection endpoint`)
  }
  const response = await fetch(metadata.introspection_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      client_id: session.client.clientId,
      token: Redacted.value(refreshToken),
      token_type_hint: "refresh_token",
    }),
  })
  const body = (await response.json()) as { active?: boolean; error?: string }
  if (response.status !== 200) {
    throw new Error(`introspection failed with ${response.status} ${body.error ?? ""}`)
  }
  return body.active === true
}
