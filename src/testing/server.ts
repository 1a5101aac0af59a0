/**
 * A scripted authorization server and protected resource on one loopback port, for hosts'
 * tests. It serves RFC 9728 protected resource metadata, RFC 8414 authorization server metadata,
 * Dynamic Client Registration, an authorization endpoint that answers at once with a redirect
 * (no page, so the headless user agent completes it), a token endpoint with PKCE, refresh and
 * revocation, and a resource that checks bearer tokens. A test scripts the outcomes: approve or
 * deny sign-ins, ask for more scope (a 403 step-up), or reject refreshes with `invalid_grant`.
 */
import { createHash, randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import type { ScriptedClock } from "./clock.js"

/** Options of {@link startScriptedServer}. */
export interface ScriptedServerOptions {
  /** Scopes advertised by the resource. Default: `["mcp:tools"]`. */
  readonly scopes?: ReadonlyArray<string> | undefined
  /** Access token lifetime in seconds. Default: 3600. */
  readonly accessTokenTtlSeconds?: number | undefined
  /**
   * The clock the engine under test uses. Token lifetimes are then measured on it: the engine
   * computes expiry from the system time, so the server adds the clock's offset to `expires_in`.
   */
  readonly clock?: ScriptedClock | undefined
}

/** Requests the server received, by endpoint. */
export interface ScriptedRequestLog {
  registration: number
  authorization: number
  /** Token requests by `grant_type`, failed ones included. */
  readonly token: Record<string, number>
  revocation: number
  /** Requests to the protected resource, by response status. */
  readonly resource: Record<number, number>
}

/** What the resource returns for a request with a valid token. */
export interface ResourceResponse {
  readonly clientId: string
  readonly scope: string
}

/** A running scripted server. */
export interface ScriptedServer {
  /** `http://127.0.0.1:PORT`, the issuer identifier. */
  readonly issuer: string
  /** The protected resource, `http://127.0.0.1:PORT/mcp`: the server URL to give an engine. */
  readonly mcpUrl: string
  readonly requests: ScriptedRequestLog
  /** Authorization requests redirect back with a code (the default). */
  approve(): void
  /** Authorization requests redirect back with `error=access_denied`. */
  deny(): void
  /**
   * Makes the resource answer 403 `insufficient_scope` to tokens that lack `scope`, asking for
   * the token's scope plus `scope`; undefined turns the requirement off.
   */
  requireScope(scope: string | undefined): void
  /** Makes every refresh request fail with `invalid_grant`, as after a revoked grant; false undoes it. */
  rejectRefresh(reject?: boolean): void
  close(): Promise<void>
}

interface IssuedCode {
  readonly clientId: string
  readonly redirectUri: string
  readonly codeChallenge: string
  readonly scope: string
  readonly resource: string | undefined
}

interface IssuedToken {
  readonly clientId: string
  readonly scope: string
  readonly expiresAt: number
}

const token = () => randomBytes(24).toString("base64url")

const sendJson = (response: ServerResponse, status: number, body: unknown) => {
  response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" })
  response.end(JSON.stringify(body))
}

const readBody = async (request: IncomingMessage): Promise<string> => {
  const chunks: Buffer[] = []
  for await (const chunk of request) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString("utf8")
}

const scopeSet = (scope: string | null | undefined): Set<string> =>
  new Set((scope ?? "").split(" ").filter((item) => item !== ""))

/** Starts the server on a free 127.0.0.1 port. Call `close()` when the test ends. */
export const startScriptedServer = async (
  options: ScriptedServerOptions = {},
): Promise<ScriptedServer> => {
  const scopes = [...(options.scopes ?? ["mcp:tools"])]
  const ttlSeconds = options.accessTokenTtlSeconds ?? 3600
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const mcpUrl = `${issuer}/mcp`
  const resourceMetadataUrl = `${issuer}/.well-known/oauth-protected-resource/mcp`

  const requests: ScriptedRequestLog = {
    registration: 0,
    authorization: 0,
    token: {},
    revocation: 0,
    resource: {},
  }
  let consent: "approve" | "deny" = "approve"
  let requiredScope: string | undefined
  let refreshRejected = false
  const clients = new Map<string, ReadonlyArray<string>>()
  const codes = new Map<string, IssuedCode>()
  const accessTokens = new Map<string, IssuedToken>()
  const refreshTokens = new Map<string, { clientId: string; scope: string }>()

  const now = () => options.clock?.now() ?? Date.now()

  const issueTokens = (clientId: string, scope: string) => {
    const accessToken = token()
    const refreshToken = token()
    accessTokens.set(accessToken, { clientId, scope, expiresAt: now() + ttlSeconds * 1000 })
    refreshTokens.set(refreshToken, { clientId, scope })
    const offsetSeconds = Math.round((options.clock?.offset ?? 0) / 1000)
    return {
      access_token: accessToken,
      token_type: "Bearer",
      expires_in: ttlSeconds + offsetSeconds,
      refresh_token: refreshToken,
      scope,
    }
  }

  const tokenError = (response: ServerResponse, error: string, description: string) =>
    sendJson(response, 400, { error, error_description: description })

  const authorize = (url: URL, response: ServerResponse) => {
    requests.authorization++
    const params = url.searchParams
    const clientId = params.get("client_id") ?? ""
    const redirectUri = params.get("redirect_uri") ?? ""
    if (!clients.get(clientId)?.includes(redirectUri)) {
      sendJson(response, 400, { error: "invalid_request", error_description: "unknown client" })
      return
    }
    const target = new URL(redirectUri)
    target.searchParams.set("state", params.get("state") ?? "")
    target.searchParams.set("iss", issuer)
    if (consent === "deny") {
      target.searchParams.set("error", "access_denied")
    } else {
      const code = token()
      codes.set(code, {
        clientId,
        redirectUri,
        codeChallenge: params.get("code_challenge") ?? "",
        scope: params.get("scope") ?? scopes.join(" "),
        resource: params.get("resource") ?? undefined,
      })
      target.searchParams.set("code", code)
    }
    response.writeHead(302, { location: target.href, "cache-control": "no-store" })
    response.end()
  }

  const exchangeCode = (body: URLSearchParams, response: ServerResponse) => {
    const code = codes.get(body.get("code") ?? "")
    codes.delete(body.get("code") ?? "")
    const verifier = body.get("code_verifier") ?? ""
    const challenge = createHash("sha256").update(verifier).digest("base64url")
    if (
      code === undefined ||
      code.clientId !== body.get("client_id") ||
      code.redirectUri !== body.get("redirect_uri") ||
      code.codeChallenge !== challenge
    ) {
      tokenError(response, "invalid_grant", "the code, client, redirect URI or verifier is wrong")
      return
    }
    sendJson(response, 200, issueTokens(code.clientId, code.scope))
  }

  const refresh = (body: URLSearchParams, response: ServerResponse) => {
    const presented = body.get("refresh_token") ?? ""
    const grant = refreshTokens.get(presented)
    if (refreshRejected || grant === undefined || grant.clientId !== body.get("client_id")) {
      tokenError(response, "invalid_grant", "the refresh token is not valid")
      return
    }
    // Refresh tokens rotate: the presented one is spent.
    refreshTokens.delete(presented)
    sendJson(response, 200, issueTokens(grant.clientId, grant.scope))
  }

  const resource = (request: IncomingMessage, response: ServerResponse) => {
    const respond = (status: number, headers: Record<string, string>, body: unknown) => {
      requests.resource[status] = (requests.resource[status] ?? 0) + 1
      response.writeHead(status, { "content-type": "application/json", ...headers })
      response.end(JSON.stringify(body))
    }
    const header = request.headers.authorization ?? ""
    const presented = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : ""
    const issued = accessTokens.get(presented)
    if (issued === undefined || issued.expiresAt <= now()) {
      respond(
        401,
        { "www-authenticate": `Bearer resource_metadata="${resourceMetadataUrl}"` },
        { error: "invalid_token" },
      )
      return
    }
    const granted = scopeSet(issued.scope)
    if (requiredScope !== undefined && !granted.has(requiredScope)) {
      const wanted = [...granted, requiredScope].join(" ")
      respond(
        403,
        {
          "www-authenticate": `Bearer error="insufficient_scope", scope="${wanted}", resource_metadata="${resourceMetadataUrl}"`,
        },
        { error: "insufficient_scope" },
      )
      return
    }
    const body: ResourceResponse = { clientId: issued.clientId, scope: issued.scope }
    respond(200, {}, body)
  }

  const route = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? "/", issuer)
    const key = `${request.method ?? "GET"} ${url.pathname}`
    switch (key) {
      case "GET /.well-known/oauth-protected-resource/mcp":
        return sendJson(response, 200, {
          resource: mcpUrl,
          authorization_servers: [issuer],
          scopes_supported: scopes,
        })
      case "GET /.well-known/oauth-authorization-server":
        return sendJson(response, 200, {
          issuer,
          authorization_endpoint: `${issuer}/authorize`,
          token_endpoint: `${issuer}/token`,
          registration_endpoint: `${issuer}/register`,
          revocation_endpoint: `${issuer}/revoke`,
          scopes_supported: scopes,
          response_types_supported: ["code"],
          grant_types_supported: ["authorization_code", "refresh_token"],
          token_endpoint_auth_methods_supported: ["none"],
          code_challenge_methods_supported: ["S256"],
          authorization_response_iss_parameter_supported: true,
        })
      case "POST /register": {
        requests.registration++
        const metadata = JSON.parse(await readBody(request)) as { redirect_uris?: string[] }
        const clientId = `client-${clients.size + 1}`
        clients.set(clientId, metadata.redirect_uris ?? [])
        return sendJson(response, 201, {
          ...metadata,
          client_id: clientId,
          token_endpoint_auth_method: "none",
        })
      }
      case "GET /authorize":
        return authorize(url, response)
      case "POST /token": {
        const body = new URLSearchParams(await readBody(request))
        const grantType = body.get("grant_type") ?? "none"
        requests.token[grantType] = (requests.token[grantType] ?? 0) + 1
        if (grantType === "authorization_code") return exchangeCode(body, response)
        if (grantType === "refresh_token") return refresh(body, response)
        return tokenError(response, "unsupported_grant_type", `${grantType} is not supported`)
      }
      case "POST /revoke": {
        requests.revocation++
        const body = new URLSearchParams(await readBody(request))
        const presented = body.get("token") ?? ""
        accessTokens.delete(presented)
        refreshTokens.delete(presented)
        response.writeHead(200)
        response.end()
        return
      }
      case "GET /mcp":
      case "POST /mcp":
        return resource(request, response)
      default:
        return sendJson(response, 404, { error: "not_found" })
    }
  }

  server.on("request", (request: IncomingMessage, response: ServerResponse) => {
    route(request, response).catch(() => {
      if (!response.headersSent) sendJson(response, 500, { error: "server_error" })
      else response.end()
    })
  })

  return {
    issuer,
    mcpUrl,
    requests,
    approve: () => {
      consent = "approve"
    },
    deny: () => {
      consent = "deny"
    },
    requireScope: (scope) => {
      requiredScope = scope
    },
    rejectRefresh: (reject = true) => {
      refreshRejected = reject
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
