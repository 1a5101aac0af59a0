/**
 * A host process for the multi-process session tests, started with `fork` and driven over IPC.
 * It loads the library's public API first and reports `ready`, so the parent can release many
 * workers at the same moment. Each `token` message builds an engine on the file store in the
 * given home, requests a token without a browser, stops the engine, then calls the MCP server
 * with the token. Tokens never leave the process: the parent gets a digest and the HTTP status.
 */
import { createHash } from "node:crypto"
import { createAuthEngine } from "../../src/index.js"

/** What the parent sends. */
export type WorkerRequest =
  | {
      readonly type: "token"
      readonly serverUrl: string
      readonly home: string
      /** Whether the engine may sign in (through the headless user agent) when it must. */
      readonly interactive?: boolean | undefined
    }
  | { readonly type: "exit" }

/** What the worker sends back. */
export type WorkerMessage =
  | { readonly type: "ready" }
  /** Sent as soon as the token is known, before the MCP server is called. */
  | { readonly type: "token-obtained" }
  | {
      readonly type: "result"
      readonly ok: true
      /** The first 16 hex digits of the token's SHA-256, to compare tokens between workers. */
      readonly tokenDigest: string
      readonly mcpStatus: number
    }
  | {
      readonly type: "result"
      readonly ok: false
      readonly errorTag: string
      readonly errorReason: string
      readonly message: string
    }

const send = (message: WorkerMessage) => process.send?.(message)

const callWhoami = (url: string, token: string) =>
  fetch(url, {
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

const obtainToken = async (serverUrl: string, home: string, interactive: boolean) => {
  const engine = await createAuthEngine({
    serverUrl,
    store: "file",
    home,
    browser: "headless",
    callbackPort: 0,
    logLevel: "None",
  })
  try {
    const token = await engine.getAccessToken({ interactive })
    send({ type: "token-obtained" })
    return token
  } finally {
    // Stopped before the MCP call, so no scheduled refresh of a short-lived token can start.
    await engine.dispose()
  }
}

const handleToken = async (serverUrl: string, home: string, interactive: boolean) => {
  try {
    const token = await obtainToken(serverUrl, home, interactive)
    const response = await callWhoami(serverUrl, token)
    await response.arrayBuffer()
    send({
      type: "result",
      ok: true,
      tokenDigest: createHash("sha256").update(token).digest("hex").slice(0, 16),
      mcpStatus: response.status,
    })
  } catch (error) {
    const fields = (error ?? {}) as { _tag?: unknown; reason?: unknown; message?: unknown }
    send({
      type: "result",
      ok: false,
      errorTag: String(fields._tag ?? "unknown"),
      errorReason: String(fields.reason ?? "unknown"),
      message: String(fields.message ?? error),
    })
  }
}

process.on("message", (request: WorkerRequest) => {
  if (request.type === "exit") process.exit(0)
  if (request.type === "token") {
    void handleToken(request.serverUrl, request.home, request.interactive === true)
  }
})
send({ type: "ready" })
