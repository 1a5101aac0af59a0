// The MCP conformance suite's client under test, built on the engine's public API.
//
// The harness runs `bin/conformance-client <serverUrl>` once per scenario and sets
// MCP_CONFORMANCE_SCENARIO, MCP_CONFORMANCE_PROTOCOL_VERSION and, for some scenarios,
// MCP_CONFORMANCE_CONTEXT (JSON with pre-registered client credentials). The client signs in
// through the engine's authenticated fetch, lists the server's tools, calls the first one with
// no arguments, and exits 0. Any failure exits 1 with one line on stderr.
import { Client } from "@modelcontextprotocol/sdk/client/index.js"
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js"
import { createAuthEngine } from "../dist/index.js"

/**
 * The client metadata document URL the suite expects as the CIMD `client_id`. The engine never
 * fetches it.
 */
const CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"
const DEFAULT_PROTOCOL_VERSION = "2025-11-25"
/** The protocol revision whose MCP wire is stateless: no `initialize`, metadata in `_meta`. */
const STATELESS_PROTOCOL_VERSION = "2026-07-28"
const CLIENT_INFO = { name: "mcp-auth-engine-conformance-client", version: "0.1.0" }
/**
 * How long the client may run. The harness (conformance 0.2.0-alpha.12) stops a client after
 * 30 s by default.
 */
const CLIENT_DEADLINE_MS = 25_000
/** How long the engine waits for the headless redirect to reach its callback listener. */
const CALLBACK_TIMEOUT_MS = 15_000

/** Reads MCP_CONFORMANCE_CONTEXT, returning an empty object when it is unset. */
function readContext() {
  const text = process.env.MCP_CONFORMANCE_CONTEXT
  if (text === undefined || text.trim() === "") return {}
  try {
    const value = JSON.parse(text)
    return typeof value === "object" && value !== null ? value : {}
  } catch {
    throw new Error("MCP_CONFORMANCE_CONTEXT is not valid JSON")
  }
}

/**
 * Builds the engine's client settings: the CIMD URL and whatever the context provisions, a
 * pre-registered client id with its secret or private key.
 */
function clientSettings(context) {
  const client = { clientMetadataUrl: CLIENT_METADATA_URL }
  if (typeof context.client_id === "string") client.clientId = context.client_id
  if (typeof context.client_secret === "string") client.clientSecret = context.client_secret
  if (typeof context.issuer === "string") client.issuer = context.issuer
  if (typeof context.private_key_pem === "string") {
    client.privateKeyPem = context.private_key_pem
    if (typeof context.signing_algorithm === "string") {
      client.privateKeyAlgorithm = context.signing_algorithm
    }
  }
  return client
}

/**
 * Chooses the grant from what the context provisions: an identity provider's ID token means
 * enterprise-managed authorization, a workload JWT the JWT bearer grant. Otherwise the engine
 * decides from the server's metadata (browser flow, or client credentials for a server that
 * offers only that grant).
 */
function grantSettings(context) {
  if (typeof context.idp_id_token === "string" && typeof context.idp_token_endpoint === "string") {
    return {
      type: "id_jag",
      identityProvider: {
        tokenEndpoint: context.idp_token_endpoint,
        clientId: typeof context.idp_client_id === "string" ? context.idp_client_id : "",
        subjectToken: context.idp_id_token,
      },
    }
  }
  if (typeof context.valid_jwt === "string") {
    return { type: "jwt_bearer", assertion: context.valid_jwt }
  }
  return undefined
}

/** Lists the tools and calls the first one over the SDK's stateful streamable HTTP client. */
async function runStateful(serverUrl, engine) {
  const transport = new StreamableHTTPClientTransport(new URL(serverUrl), {
    fetch: (url, init) => engine.fetch(url, init),
  })
  const client = new Client(CLIENT_INFO, { capabilities: {} })
  await client.connect(transport)
  try {
    const { tools } = await client.listTools()
    const tool = tools[0]
    if (tool === undefined) throw new Error("the server lists no tools")
    const result = await client.callTool({ name: tool.name, arguments: {} })
    if (result.isError === true) throw new Error(`tool "${tool.name}" returned an error result`)
  } finally {
    await client.close()
  }
}

/** Reads a JSON-RPC response from a JSON body or the first SSE event with a result or error. */
async function readJsonRpcResponse(response) {
  const text = await response.text()
  const contentType = response.headers.get("content-type") ?? ""
  if (!contentType.includes("text/event-stream")) return JSON.parse(text)
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block
      .split(/\r?\n/)
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trimStart())
      .join("\n")
    if (data === "") continue
    const message = JSON.parse(data)
    if ("result" in message || "error" in message) return message
  }
  throw new Error("the server's event stream ended without a JSON-RPC response")
}

/**
 * Lists the tools and calls the first one on the stateless wire, where every request carries
 * the protocol version in a header and in `params._meta`, and no `initialize` is sent.
 */
async function runStateless(serverUrl, engine, protocolVersion) {
  let nextId = 1
  const request = async (method, params = {}) => {
    const body = {
      jsonrpc: "2.0",
      id: nextId++,
      method,
      params: {
        ...params,
        _meta: {
          "io.modelcontextprotocol/protocolVersion": protocolVersion,
          "io.modelcontextprotocol/clientCapabilities": {},
        },
      },
    }
    const response = await engine.fetch(serverUrl, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": protocolVersion,
      },
      body: JSON.stringify(body),
    })
    if (!response.ok) {
      await response.body?.cancel()
      throw new Error(`${method} failed: HTTP ${response.status}`)
    }
    const message = await readJsonRpcResponse(response)
    if (message.error !== undefined) {
      throw new Error(
        `${method} failed: JSON-RPC error ${message.error.code} ${message.error.message}`,
      )
    }
    return message.result
  }

  const { tools } = await request("tools/list")
  const tool = tools?.[0]
  if (tool === undefined) throw new Error("the server lists no tools")
  const result = await request("tools/call", { name: tool.name, arguments: {} })
  if (result?.isError === true) throw new Error(`tool "${tool.name}" returned an error result`)
}

/** Runs the client against `serverUrl`. The promise rejects with the first failure. */
export async function runConformanceClient(serverUrl) {
  const protocolVersion = process.env.MCP_CONFORMANCE_PROTOCOL_VERSION || DEFAULT_PROTOCOL_VERSION
  const context = readContext()
  const engine = await createAuthEngine({
    serverUrl,
    store: "memory",
    browser: "headless",
    callbackPort: 0,
    callbackTimeoutMs: CALLBACK_TIMEOUT_MS,
    protocolVersion,
    client: clientSettings(context),
    grant: grantSettings(context),
  })
  try {
    if (protocolVersion === STATELESS_PROTOCOL_VERSION) {
      await runStateless(serverUrl, engine, protocolVersion)
    } else {
      await runStateful(serverUrl, engine)
    }
  } finally {
    await engine.dispose()
  }
}

/** Runs the program: exit 0 on success, 1 with one line on stderr on failure, 2 on bad usage. */
export async function main(argv) {
  const serverUrl = argv.at(-1)
  if (argv.length === 0 || serverUrl === undefined || !/^https?:\/\//.test(serverUrl)) {
    process.stderr.write("usage: conformance-client <mcp-server-url>\n")
    process.exit(2)
  }
  setTimeout(() => {
    process.stderr.write(`conformance-client: timed out after ${CLIENT_DEADLINE_MS} ms\n`)
    process.exit(1)
  }, CLIENT_DEADLINE_MS)
  try {
    await runConformanceClient(serverUrl)
    process.exit(0)
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    process.stderr.write(`conformance-client: ${message.split("\n")[0]}\n`)
    process.exit(1)
  }
}
