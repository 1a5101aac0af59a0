/**
 * A minimal OAuth authorization server and MCP resource on one loopback port, written for the
 * security tests. It serves protected resource metadata for `/mcp`, authorization server
 * metadata whose values a test can set (an unsafe `authorization_endpoint`, the RFC 9207 `iss`
 * flag), Dynamic Client Registration and a token endpoint. Its `/authorize` shows a page and
 * never redirects, so a test sends the callback requests itself.
 */
import { randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { onTestFinished } from "vitest"

/** Options of {@link startLoopbackAuthorizationServer}. */
export interface LoopbackAuthorizationServerOptions {
  /** The advertised `authorization_endpoint`; defaults to this server's `/authorize`. */
  readonly authorizationEndpoint?: string | undefined
  /** `authorization_response_iss_parameter_supported`; defaults to true. */
  readonly issParameterSupported?: boolean | undefined
  /** Closes the connection of every refresh request without a response, a network failure. */
  readonly dropRefreshRequests?: boolean | undefined
}

/** Requests the server received, by endpoint. */
export interface LoopbackRequestLog {
  registration: number
  authorization: number
  /** The form body of every token request. */
  readonly token: URLSearchParams[]
}

/** A running loopback authorization server. */
export interface LoopbackAuthorizationServer {
  /** `http://127.0.0.1:PORT`; also the issuer identifier. */
  readonly issuer: string
  /** The protected MCP resource, `http://127.0.0.1:PORT/mcp`. */
  readonly mcpUrl: string
  readonly requests: LoopbackRequestLog
  close(): Promise<void>
}

const CLIENT_ID = "loopback-client"

const sendJson = (response: ServerResponse, status: number, body: unknown) => {
  response.writeHead(status, {
    "content-type": "application/json",
    "cache-control": "no-store",
  })
  response.end(JSON.stringify(body))
}

const readBody = async (request: IncomingMessage): Promise<string> => {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString("utf8")
}

/** Starts the server on a free 127.0.0.1 port; it closes when the current test finishes. */
export const startLoopbackAuthorizationServer = async (
  options: LoopbackAuthorizationServerOptions = {},
): Promise<LoopbackAuthorizationServer> => {
  const requests: LoopbackRequestLog = { registration: 0, authorization: 0, token: [] }
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const mcpUrl = `${issuer}/mcp`

  const routes: Record<string, (request: IncomingMessage, response: ServerResponse) => unknown> = {
    "GET /.well-known/oauth-protected-resource/mcp": (_, response) =>
      sendJson(response, 200, {
        resource: mcpUrl,
        authorization_servers: [issuer],
        scopes_supported: ["mcp:tools"],
      }),
    "GET /.well-known/oauth-authorization-server": (_, response) =>
      sendJson(response, 200, {
        issuer,
        authorization_endpoint: options.authorizationEndpoint ?? `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        registration_endpoint: `${issuer}/register`,
        response_types_supported: ["code"],
        grant_types_supported: ["authorization_code", "refresh_token"],
        token_endpoint_auth_methods_supported: ["none"],
        code_challenge_methods_supported: ["S256"],
        authorization_response_iss_parameter_supported: options.issParameterSupported ?? true,
      }),
    "POST /register": async (request, response) => {
      requests.registration++
      const body = JSON.parse(await readBody(request)) as Record<string, unknown>
      sendJson(response, 201, { ...body, client_id: CLIENT_ID, token_endpoint_auth_method: "none" })
    },
    "GET /authorize": (_, response) => {
      requests.authorization++
      response.writeHead(200, { "content-type": "text/html" })
      response.end("<!doctype html><title>Sign in</title><p>Sign in here.</p>")
    },
    "POST /token": async (request, response) => {
      const body = new URLSearchParams(await readBody(request))
      requests.token.push(body)
      if (body.get("grant_type") === "refresh_token" && options.dropRefreshRequests === true) {
        request.socket.destroy()
        return
      }
      if (body.get("grant_type") !== "authorization_code" || body.get("client_id") !== CLIENT_ID) {
        sendJson(response, 400, { error: "invalid_grant" })
        return
      }
      sendJson(response, 200, {
        access_token: randomBytes(16).toString("hex"),
        token_type: "Bearer",
        expires_in: 3600,
        refresh_token: randomBytes(16).toString("hex"),
        scope: "mcp:tools",
      })
    },
  }

  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? "/", issuer).pathname
    const route = routes[`${request.method ?? "GET"} ${path}`]
    if (route === undefined) {
      sendJson(response, 404, { error: "not_found" })
      return
    }
    Promise.resolve(route(request, response)).catch((error: unknown) => {
      sendJson(response, 500, { error: "server_error", error_description: String(error) })
    })
  })

  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  onTestFinished(close)
  return { issuer, mcpUrl, requests, close }
}
