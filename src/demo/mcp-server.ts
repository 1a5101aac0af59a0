/**
 * A bearer-protected MCP server for the demo, the integration tests and the benchmarks. It runs
 * the MCP TypeScript SDK's Streamable HTTP transport in stateless mode on an ephemeral loopback
 * port, serves OAuth 2.0 Protected Resource Metadata (RFC 9728) and checks access tokens against
 * a DemoAuthorizationServer in the same process.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AuthInfo } from "@modelcontextprotocol/sdk/server/auth/types.js"
import {
  type AccessTokenInfo,
  closeServer,
  type DemoAuthorizationServer,
  importDevDependency,
  listenOnLoopback,
  sendJson,
  validateAccessToken,
} from "./authorization-server.js"

export interface McpServerOptions {
  /** Authorization server whose access tokens this resource accepts. */
  readonly authorizationServer: DemoAuthorizationServer
  /** Value of the `scope` parameter in 401 challenges. By default the parameter is left out. */
  readonly challengeScope?: string
  /**
   * Scopes that every request needs. A valid token without one of them gets 403 with
   * `error="insufficient_scope"` (RFC 6750 §3.1). Default: none.
   */
  readonly requiredScopes?: readonly string[]
  /** `scopes_supported` of the resource metadata. Default: the authorization server's scopes. */
  readonly scopesSupported?: readonly string[]
}

/** Requests to `/mcp`, by the outcome of the bearer token check. */
export interface McpRequestLog {
  /** Requests rejected with 401 or 403 because of a missing, invalid or insufficient token. */
  unauthorized: number
  /** Requests whose token was accepted. */
  authorized: number
  reset(): void
}

export interface DemoMcpServer {
  /** The MCP endpoint and resource identifier, `http://127.0.0.1:PORT/mcp`. */
  readonly url: string
  /** `http://127.0.0.1:PORT/.well-known/oauth-protected-resource/mcp` */
  readonly resourceMetadataUrl: string
  readonly requests: McpRequestLog
  close(): Promise<void>
}

const MCP_PATH = "/mcp"
// RFC 9728 §3.1: the well-known segment goes between the host and the resource's path.
const RESOURCE_METADATA_PATH = `/.well-known/oauth-protected-resource${MCP_PATH}`

/**
 * Starts the MCP server on `http://127.0.0.1:<free port>/mcp`. It has two tools: `whoami`
 * returns the token's account, client and scope as JSON text, and `echo` returns its `text`
 * argument. Rejects with an explanatory error when the development dependency
 * @modelcontextprotocol/sdk or zod is not installed.
 */
export async function startMcpServer(options: McpServerOptions): Promise<DemoMcpServer> {
  const modules = await loadMcpModules()
  const authorizationServer = options.authorizationServer

  const server = createServer()
  const port = await listenOnLoopback(server)
  const origin = `http://127.0.0.1:${port}`
  const url = `${origin}${MCP_PATH}`
  const resourceMetadataUrl = `${origin}${RESOURCE_METADATA_PATH}`

  const resourceMetadata = {
    resource: url,
    authorization_servers: [authorizationServer.issuer],
    scopes_supported: [...(options.scopesSupported ?? authorizationServer.scopes)],
    bearer_methods_supported: ["header"],
  }

  const requests: McpRequestLog = {
    unauthorized: 0,
    authorized: 0,
    reset() {
      requests.unauthorized = 0
      requests.authorized = 0
    },
  }

  const sendChallenge = (res: ServerResponse, status: 401 | 403, params: ChallengeParams) => {
    requests.unauthorized++
    res.setHeader("www-authenticate", formatBearerChallenge({ ...params, resourceMetadataUrl }))
    sendJson(res, status, { error: params.error, error_description: params.description })
  }

  const handleMcpRequest = async (req: IncomingMessage, res: ServerResponse) => {
    const token = readBearerToken(req.headers.authorization)
    if (token === undefined) {
      sendChallenge(res, 401, {
        error: "invalid_token",
        description: "the request has no Bearer access token in the Authorization header",
        scope: options.challengeScope,
      })
      return
    }

    const tokenInfo = await validateAccessToken(authorizationServer, token, url)
    if (tokenInfo === undefined) {
      sendChallenge(res, 401, {
        error: "invalid_token",
        description: "the access token is unknown, expired, revoked or issued for another resource",
        scope: options.challengeScope,
      })
      return
    }

    const grantedScopes = new Set(tokenInfo.scope.split(" "))
    const requiredScopes = options.requiredScopes ?? []
    if (requiredScopes.some((scope) => !grantedScopes.has(scope))) {
      sendChallenge(res, 403, {
        error: "insufficient_scope",
        description: `the access token lacks a required scope (${requiredScopes.join(" ")})`,
        scope: requiredScopes.join(" "),
      })
      return
    }

    requests.authorized++
    if (req.method !== "POST") {
      // Stateless mode has no server-to-client stream (GET) and no session to delete (DELETE).
      res.setHeader("allow", "POST")
      sendJson(res, 405, { error: "method_not_allowed", error_description: "use POST" })
      return
    }
    await serveStateless(modules, req, res, token, tokenInfo)
  }

  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", origin).pathname
    if (path === RESOURCE_METADATA_PATH && req.method === "GET") {
      sendJson(res, 200, resourceMetadata)
      return
    }
    if (path !== MCP_PATH) {
      sendJson(res, 404, { error: "not_found", error_description: `no resource at ${path}` })
      return
    }
    handleMcpRequest(req, res).catch((error: unknown) => {
      const message = error instanceof Error ? error.message : String(error)
      console.error(`demo MCP server: ${req.method ?? ""} ${path} failed: ${message}`)
      sendJson(res, 500, {
        jsonrpc: "2.0",
        error: { code: -32603, message: `the MCP request failed: ${message}` },
        id: null,
      })
    })
  })

  return {
    url,
    resourceMetadataUrl,
    requests,
    close: () => closeServer(server),
  }
}

interface ChallengeParams {
  readonly error: "invalid_token" | "insufficient_scope"
  readonly description: string
  readonly scope?: string | undefined
}

/** Formats an RFC 6750 Bearer challenge with the RFC 9728 `resource_metadata` parameter. */
function formatBearerChallenge(params: ChallengeParams & { resourceMetadataUrl: string }): string {
  const parts = [`error="${params.error}"`, `error_description="${params.description}"`]
  if (params.scope !== undefined) {
    parts.push(`scope="${params.scope}"`)
  }
  parts.push(`resource_metadata="${params.resourceMetadataUrl}"`)
  return `Bearer ${parts.join(", ")}`
}

/** Returns the token of an `Authorization: Bearer <token>` header, or undefined. */
function readBearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header ?? "")
  return match?.[1]
}

/**
 * Handles one MCP POST with a fresh McpServer and transport, as the SDK's stateless mode
 * requires. Both are closed when the response ends.
 */
async function serveStateless(
  modules: McpModules,
  req: IncomingMessage,
  res: ServerResponse,
  token: string,
  tokenInfo: AccessTokenInfo,
): Promise<void> {
  const { McpServer, StreamableHTTPServerTransport, z } = modules
  const mcp = new McpServer({ name: "mcp-auth-engine-demo", version: "0.1.0" })

  mcp.registerTool(
    "whoami",
    { description: "Returns the account, client and scope of the access token in use" },
    (extra) => {
      const auth = extra.authInfo
      const whoami = {
        sub: auth?.extra?.accountId,
        client_id: auth?.clientId,
        scope: auth?.scopes.join(" "),
        expires_at: auth?.expiresAt,
      }
      return { content: [{ type: "text", text: JSON.stringify(whoami) }] }
    },
  )
  mcp.registerTool(
    "echo",
    { description: "Returns the given text", inputSchema: { text: z.string() } },
    ({ text }) => ({ content: [{ type: "text", text }] }),
  )

  // Leaving sessionIdGenerator out selects stateless mode: no Mcp-Session-Id and no
  // initialize handshake needed before other requests.
  const transport = new StreamableHTTPServerTransport({ enableJsonResponse: true })
  res.on("close", () => {
    void transport.close()
    void mcp.close()
  })
  await mcp.connect(transport)

  const auth: AuthInfo = {
    token,
    clientId: tokenInfo.clientId,
    scopes: tokenInfo.scope === "" ? [] : tokenInfo.scope.split(" "),
    expiresAt: tokenInfo.expiresAt,
    resource: new URL(tokenInfo.resource),
    extra: { accountId: tokenInfo.accountId },
  }
  await transport.handleRequest(Object.assign(req, { auth }), res)
}

interface McpModules {
  readonly McpServer: typeof import("@modelcontextprotocol/sdk/server/mcp.js").McpServer
  readonly StreamableHTTPServerTransport: typeof import("@modelcontextprotocol/sdk/server/streamableHttp.js").StreamableHTTPServerTransport
  readonly z: typeof import("zod").z
}

async function loadMcpModules(): Promise<McpModules> {
  const sdk = "@modelcontextprotocol/sdk"
  const [{ McpServer }, { StreamableHTTPServerTransport }, { z }] = await Promise.all([
    importDevDependency(sdk, () => import("@modelcontextprotocol/sdk/server/mcp.js")),
    importDevDependency(sdk, () => import("@modelcontextprotocol/sdk/server/streamableHttp.js")),
    importDevDependency("zod", () => import("zod")),
  ])
  return { McpServer, StreamableHTTPServerTransport, z }
}
