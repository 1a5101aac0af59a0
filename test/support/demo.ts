/**
 * The demo servers (oidc-provider and the MCP SDK server) and engines built on them, each
 * closed when the current test finishes, plus helpers to call the MCP `whoami` tool.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { expect, onTestFinished } from "vitest"
import {
  type AuthorizationServerOptions,
  type DemoAuthorizationServer,
  type DemoMcpServer,
  startAuthorizationServer,
  startMcpServer,
} from "../../src/demo/servers.js"
import {
  type AuthEngineHandle,
  type CreateAuthEngineOptions,
  createAuthEngine,
  type KeychainService,
} from "../../src/index.js"
import { StatusRecorder } from "./status.js"

/** An authorization server and an MCP server that accepts its tokens. */
export interface DemoServers {
  readonly authorizationServer: DemoAuthorizationServer
  readonly mcpServer: DemoMcpServer
}

/** Starts both demo servers on loopback ports; they close when the current test finishes. */
export const startDemoServers = async (
  options: AuthorizationServerOptions = {},
): Promise<DemoServers> => {
  const authorizationServer = await startAuthorizationServer(options)
  onTestFinished(() => authorizationServer.close())
  const mcpServer = await startMcpServer({ authorizationServer })
  onTestFinished(() => mcpServer.close())
  return { authorizationServer, mcpServer }
}

/** An engine on the Promise facade with a recorder of its statuses. */
export interface TestEngine {
  readonly handle: AuthEngineHandle
  readonly recorder: StatusRecorder
}

/**
 * Creates an engine for `serverUrl` with the headless user agent and any free callback port.
 * It is disposed when the current test finishes; disposing it earlier is allowed.
 */
export const startEngine = async (
  serverUrl: string,
  options: Omit<CreateAuthEngineOptions, "serverUrl"> = {},
): Promise<TestEngine> => {
  const handle = await createAuthEngine({
    serverUrl,
    store: "memory",
    browser: "headless",
    callbackPort: 0,
    ...options,
  })
  let disposed = false
  const dispose = handle.dispose
  const disposeOnce = async () => {
    if (disposed) return
    disposed = true
    await dispose()
  }
  onTestFinished(disposeOnce)
  const recorder = new StatusRecorder(handle, handle.status())
  return { handle: { ...handle, dispose: disposeOnce }, recorder }
}

/** Creates an empty temporary folder, deleted when the current test finishes. */
export const makeTemporaryDirectory = async (): Promise<string> => {
  const directory = await mkdtemp(join(tmpdir(), "mcp-auth-engine-test-"))
  onTestFinished(() => rm(directory, { recursive: true, force: true }))
  return directory
}

/** The fields of a stored session record that tests read; secrets are plain strings there. */
export interface StoredSession {
  readonly serverUrl: string
  readonly generation: number
  readonly authorizationServer: { readonly token_endpoint: string }
  readonly client: { readonly clientId: string }
  readonly tokens: { readonly accessToken: string; readonly refreshToken?: string }
}

/** The store keys of session records; client registration records have another prefix. */
export const storedSessionKeys = async (keychain: KeychainService): Promise<string[]> =>
  (await Effect.runPromise(keychain.keys)).filter((key) => key.startsWith("mcp-auth-engine:"))

/** Reads the only session record in `keychain`; fails the test when there is not exactly one. */
export const readStoredSession = async (keychain: KeychainService): Promise<StoredSession> => {
  const keys = await storedSessionKeys(keychain)
  expect(keys).toHaveLength(1)
  const text = await Effect.runPromise(keychain.get(keys[0]!))
  expect(text).toBeTypeOf("string")
  return JSON.parse(text!) as StoredSession
}

/** A JSON-RPC `tools/call` of `whoami`, a body that can be sent again. */
export const whoamiRequest = (): RequestInit => ({
  method: "POST",
  headers: {
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

/** Calls `whoami` at `url` with plain fetch, with `accessToken` as the bearer token if given. */
export const callWhoami = (url: string, accessToken?: string): Promise<Response> => {
  const request = whoamiRequest()
  const headers = new Headers(request.headers)
  if (accessToken !== undefined) headers.set("authorization", `Bearer ${accessToken}`)
  return fetch(url, { ...request, headers })
}

/** What `whoami` returns: the token's account, client and scope. */
export interface Whoami {
  readonly sub?: string
  readonly client_id?: string
  readonly scope?: string
}

/** Reads the `whoami` result from a JSON-RPC response. */
export const readWhoami = async (response: Response): Promise<Whoami> => {
  const body = (await response.json()) as {
    result?: { content?: Array<{ text?: string }> }
  }
  return JSON.parse(body.result?.content?.[0]?.text ?? "{}") as Whoami
}
