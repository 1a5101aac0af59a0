/**
 * Whole sign-ins through the public engine (headless user agent, memory store, any free callback
 * port) against loopback servers that replay field failures: which URLs the engine requests,
 * which it must never request, and how a failed discovery ends.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import { type AuthEngineHandle, createAuthEngine } from "../../src/engine/promise.js"
import { isAuthError } from "../../src/errors.js"
import { type CaseServer, type RouteTable, startCaseServer } from "../support/case-server.js"

const servers: CaseServer[] = []
const engines: AuthEngineHandle[] = []

const serve = async (routes: RouteTable = {}): Promise<CaseServer> => {
  const server = await startCaseServer(routes)
  servers.push(server)
  return server
}

const startEngine = async (serverUrl: string, callbackPort = 0): Promise<AuthEngineHandle> => {
  const engine = await createAuthEngine({
    serverUrl,
    browser: "headless",
    store: "memory",
    callbackPort,
  })
  engines.push(engine)
  return engine
}

afterEach(async () => {
  await Promise.all(engines.splice(0).map((engine) => engine.dispose()))
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

/** Finds a loopback port that is free now, by binding port 0 and closing the socket. */
const findFreePort = async (): Promise<number> => {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs a promise expected to reject and returns the engine's typed error. */
const rejectionOf = async (promise: Promise<unknown>) => {
  try {
    await promise
  } catch (error) {
    if (isAuthError(error)) return error
    throw error
  }
  throw new Error("expected the sign-in to fail")
}

interface AuthorizationServerOptions {
  /** The folder every endpoint lives under, "" for the root. */
  readonly prefix?: string
  readonly tokenBody?: object
  /** Runs before the authorization endpoint redirects back, with the redirect URI. */
  readonly beforeRedirect?: (redirectUri: string) => Promise<void>
}

/**
 * Routes of an authorization server that approves every request at once: metadata, Dynamic
 * Client Registration issuing C1, an authorization endpoint redirecting with code CODE, and a
 * token endpoint.
 */
const authorizationServerRoutes = (options: AuthorizationServerOptions = {}): RouteTable => {
  const prefix = options.prefix ?? ""
  return {
    "GET /.well-known/oauth-authorization-server": {
      status: 200,
      body: {
        issuer: "{BASE}",
        authorization_endpoint: `{BASE}${prefix}/authorize`,
        token_endpoint: `{BASE}${prefix}/token`,
        registration_endpoint: `{BASE}${prefix}/register`,
        code_challenge_methods_supported: ["S256"],
        token_endpoint_auth_methods_supported: ["none"],
      },
    },
    [`POST ${prefix}/register`]: {
      status: 201,
      body: { client_id: "C1", token_endpoint_auth_method: "none" },
    },
    [`GET ${prefix}/authorize`]: async (request) => {
      const redirectUri = request.searchParams.get("redirect_uri") ?? ""
      await options.beforeRedirect?.(redirectUri)
      const location = new URL(redirectUri)
      location.searchParams.set("code", "CODE")
      location.searchParams.set("state", request.searchParams.get("state") ?? "")
      return { status: 302, headers: { location: location.href } }
    },
    [`POST ${prefix}/token`]: {
      status: 200,
      body: options.tokenBody ?? { access_token: "AT", token_type: "Bearer", expires_in: 3600 },
    },
  }
}

/** Builds an MCP endpoint that accepts `Bearer AT` and otherwise returns 401 with `challenge`. */
const mcpEndpoint =
  (challenge: string): RouteTable[string] =>
  (request) =>
    request.headers.authorization === "Bearer AT"
      ? { status: 200, body: { jsonrpc: "2.0", id: 1, result: {} } }
      : { status: 401, headers: { "www-authenticate": challenge } }

const registrationRequests = (...all: CaseServer[]) =>
  all.flatMap((server) => server.requestLines().filter((line) => line.endsWith("/register")))

describe("issuer mismatch through the engine", () => {
  it("fails before registration when the issuer drops the tenant path", async () => {
    const as = await serve(authorizationServerRoutes())
    as.setRoutes({
      "GET /.well-known/oauth-authorization-server/APPID": {
        status: 200,
        body: {
          issuer: "{BASE}",
          authorization_endpoint: "{BASE}/authorize",
          token_endpoint: "{BASE}/token",
          registration_endpoint: "{BASE}/register",
          code_challenge_methods_supported: ["S256"],
        },
      },
    })
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [`${as.origin}/APPID`] },
      },
    })
    const engine = await startEngine(rs.url("/mcp"))

    const error = await rejectionOf(engine.authenticate())

    expect(error._tag).toBe("DiscoveryError")
    expect(error).toMatchObject({ reason: "issuer_mismatch" })
    expect(error).toMatchObject({ expected: `${as.origin}/APPID` })
    expect(error).toMatchObject({ received: as.origin })
    expect(registrationRequests(as, rs)).toEqual([])
    expect(as.wasRequested("GET /authorize")).toBe(false)
    expect(engine.status().state).toBe("failed")
    expect(engine.status().error?.reason).toBe("issuer_mismatch")
  })

  it("fails before registration when the issuer is another host", async () => {
    const idp = await serve(authorizationServerRoutes())
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}"] },
      },
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: {
          issuer: idp.origin,
          authorization_endpoint: `${idp.origin}/authorize`,
          token_endpoint: `${idp.origin}/token`,
          registration_endpoint: `${idp.origin}/register`,
          code_challenge_methods_supported: ["S256"],
        },
      },
    })
    const engine = await startEngine(rs.url("/mcp"))

    const error = await rejectionOf(engine.authenticate())

    expect(error._tag).toBe("DiscoveryError")
    expect(error).toMatchObject({ reason: "issuer_mismatch" })
    expect(error).toMatchObject({ expected: rs.origin })
    expect(error).toMatchObject({ received: idp.origin })
    expect(registrationRequests(idp, rs)).toEqual([])
    expect(idp.requests).toHaveLength(0)
  })
})

describe("resource on another host through the engine", () => {
  it("fails without guessing a registration endpoint on the MCP origin", async () => {
    const as = await serve(authorizationServerRoutes())
    const other = await serve()
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: `${other.origin}/mcp`, authorization_servers: [as.origin] },
      },
      "POST /register": { status: 404, body: { error: "not_found" } },
    })
    const engine = await startEngine(rs.url("/mcp"))

    const error = await rejectionOf(engine.authenticate())

    expect(error._tag).toBe("DiscoveryError")
    expect(error).toMatchObject({ reason: "resource_mismatch" })
    expect(error.message).toContain(rs.url("/mcp"))
    expect(error.message).toContain(other.url("/mcp"))
    expect(registrationRequests(as, rs, other)).toEqual([])
    expect(as.requests).toHaveLength(0)
  })
})

describe("bounded discovery through the engine", () => {
  it("stops in failed when server metadata is missing", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}"] },
      },
    })
    const engine = await startEngine(rs.url("/mcp"))

    const error = await rejectionOf(engine.authenticate())
    const requestsAtFailure = rs.requests.length
    await delay(300)

    expect(error._tag).toBe("DiscoveryError")
    expect(error).toMatchObject({ reason: "metadata_not_found" })
    expect(engine.status().state).toBe("failed")
    expect(requestsAtFailure).toBe(4)
    expect(rs.requests).toHaveLength(requestsAtFailure)
  })

  it("stops in failed when no metadata exists at all", async () => {
    const rs = await serve()
    const engine = await startEngine(rs.url("/mcp"))

    const error = await rejectionOf(engine.authenticate())
    const requestsAtFailure = rs.requests.length
    await delay(300)

    // With no metadata the 2025-03-26 default endpoints are used, so the last step is the
    // registration request at the origin's /register.
    expect(error._tag).toBe("RegistrationError")
    expect(error).toMatchObject({ reason: "rejected" })
    expect(engine.status().state).toBe("failed")
    expect(rs.requestLines()).toEqual([
      "GET /.well-known/oauth-protected-resource/mcp",
      "GET /.well-known/oauth-protected-resource",
      "GET /.well-known/oauth-authorization-server",
      "POST /register",
    ])
    expect(rs.requests).toHaveLength(requestsAtFailure)
  })

  it("does not retry by itself after a failed getAccessToken", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}"] },
      },
    })
    const engine = await startEngine(rs.url("/mcp"))

    const error = await rejectionOf(engine.getAccessToken())
    const requestsAtFailure = rs.requests.length
    await delay(300)

    expect(error).toMatchObject({ reason: "metadata_not_found" })
    expect(rs.requests).toHaveLength(requestsAtFailure)
  })
})

describe("endpoints from metadata", () => {
  it("never requests /authorize or /token at the MCP origin", async () => {
    const as = await serve(authorizationServerRoutes({ prefix: "/oauth" }))
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [as.origin] },
      },
      "GET /authorize": { status: 404, body: { error: "not_found" } },
    })
    const engine = await startEngine(rs.url("/mcp"))

    const token = await engine.getAccessToken()

    expect(token).toBe("AT")
    expect(rs.wasRequested("GET /authorize")).toBe(false)
    expect(rs.wasRequested("POST /token")).toBe(false)
    expect(rs.wasRequested("POST /register")).toBe(false)
    expect(as.requestsTo("GET /oauth/authorize")).toHaveLength(1)
    expect(as.requestsTo("POST /oauth/token")).toHaveLength(1)
    expect(as.wasRequested("GET /authorize")).toBe(false)
  })
})

describe("resource parameter through the engine", () => {
  it("sends the published resource on authorize and token requests", async () => {
    const as = await serve(authorizationServerRoutes())
    const rs = await serve({
      "POST /mcp": mcpEndpoint(
        'Bearer resource_metadata="{BASE}/.well-known/oauth-protected-resource/mcp"',
      ),
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}", authorization_servers: [as.origin] },
      },
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [as.origin] },
      },
    })
    const engine = await startEngine(rs.url("/mcp"))

    const response = await engine.fetch(rs.url("/mcp"), { method: "POST", body: "{}" })
    await response.arrayBuffer()

    expect(response.status).toBe(200)
    expect(rs.wasRequested("GET /.well-known/oauth-protected-resource")).toBe(false)
    const [authorize] = as.requestsTo("GET /authorize")
    const [token] = as.requestsTo("POST /token")
    expect(authorize?.searchParams.get("resource")).toBe(rs.url("/mcp"))
    expect(new URLSearchParams(token?.body).get("resource")).toBe(rs.url("/mcp"))
  })

  it("adds no trailing slash to an origin resource", async () => {
    const as = await serve(authorizationServerRoutes())
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}", authorization_servers: [as.origin] },
      },
    })
    const engine = await startEngine(rs.origin)

    await engine.authenticate()

    const [authorize] = as.requestsTo("GET /authorize")
    const [token] = as.requestsTo("POST /token")
    expect(authorize?.searchParams.get("resource")).toBe(rs.origin)
    expect(new URLSearchParams(token?.body).get("resource")).toBe(rs.origin)
  })
})

describe("challenge without resource_metadata through the engine", () => {
  it("probes well-known URLs and signs in with origin metadata", async () => {
    const rs = await serve({
      ...authorizationServerRoutes(),
      "POST /v1/mcp": mcpEndpoint('Bearer error="invalid_request"'),
    })
    const engine = await startEngine(rs.url("/v1/mcp"))

    const response = await engine.fetch(rs.url("/v1/mcp"), { method: "POST", body: "{}" })
    await response.arrayBuffer()

    expect(response.status).toBe(200)
    expect(rs.requestLines().slice(0, 4)).toEqual([
      "POST /v1/mcp",
      "GET /.well-known/oauth-protected-resource/v1/mcp",
      "GET /.well-known/oauth-protected-resource",
      "GET /.well-known/oauth-authorization-server",
    ])
    const [authorize] = rs.requestsTo("GET /authorize")
    expect(authorize?.searchParams.get("resource")).toBe(rs.url("/v1/mcp"))
  })
})

describe("stray callbacks through the engine", () => {
  it("keeps the sign-in pending through strays and completes it", async () => {
    const strayStatuses: number[] = []
    const hitCallback = async (url: string) => {
      const response = await fetch(url)
      await response.arrayBuffer()
      strayStatuses.push(response.status)
    }
    const as = await serve(
      authorizationServerRoutes({
        beforeRedirect: async (redirectUri) => {
          await hitCallback(`${redirectUri}?code=ATTACKER&state=whatever`)
          await hitCallback(`${redirectUri}?error=access_denied`)
        },
      }),
    )
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [as.origin] },
      },
    })
    const engine = await startEngine(rs.url("/mcp"))

    const token = await engine.getAccessToken()

    expect(token).toBe("AT")
    expect(strayStatuses).toEqual([404, 404])
    expect(engine.status().state).toBe("authenticated")
    const tokenRequests = as.requestsTo("POST /token")
    expect(tokenRequests).toHaveLength(1)
    expect(new URLSearchParams(tokenRequests[0]?.body).get("code")).toBe("CODE")
  })
})

describe("client registration through the engine", () => {
  const protectedResource = async (as: CaseServer) =>
    serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [as.origin] },
      },
    })

  it("reuses the registration while the redirect URI is unchanged", async () => {
    const as = await serve(authorizationServerRoutes())
    const rs = await protectedResource(as)
    const engine = await startEngine(rs.url("/mcp"), await findFreePort())

    await engine.authenticate()
    await engine.authenticate()

    const redirectUris = as
      .requestsTo("GET /authorize")
      .map((request) => request.searchParams.get("redirect_uri"))
    expect(redirectUris).toHaveLength(2)
    expect(redirectUris[1]).toBe(redirectUris[0])
    expect(as.requestsTo("POST /register")).toHaveLength(1)
  })

  it("registers again when the callback port is taken", async () => {
    const as = await serve(authorizationServerRoutes())
    const rs = await protectedResource(as)
    const port = await findFreePort()
    const engine = await startEngine(rs.url("/mcp"), port)

    await engine.authenticate()
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve))
    try {
      await engine.authenticate()
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }

    const registered = as
      .requestsTo("POST /register")
      .map((request) => (JSON.parse(request.body) as { redirect_uris: string[] }).redirect_uris)
    const authorized = as
      .requestsTo("GET /authorize")
      .map((request) => request.searchParams.get("redirect_uri"))
    expect(authorized).toHaveLength(2)
    expect(authorized[1]).not.toBe(authorized[0])
    expect(registered).toEqual([[authorized[0]], [authorized[1]]])
  })
})

describe("pre-registered client through the engine", () => {
  // NOTE: fails today. The listener falls back to any free port when the configured one is
  // taken, even for a pre-registered client registered with that exact port. The authorization
  // server would then reject the request because the redirect URI does not match.
  it.fails("fails fast when the registered callback port is taken", async () => {
    const as = await serve(authorizationServerRoutes())
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [as.origin] },
      },
    })
    const port = await findFreePort()
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(port, "127.0.0.1", resolve))
    const engine = await createAuthEngine({
      serverUrl: rs.url("/mcp"),
      browser: "headless",
      store: "memory",
      callbackPort: port,
      client: { clientId: "C1", issuer: as.origin },
    })
    engines.push(engine)

    try {
      const error = await rejectionOf(engine.authenticate())

      expect(error).toMatchObject({ reason: "callback_server_failed" })
      expect(as.wasRequested("GET /authorize")).toBe(false)
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }
  })
})

describe("token lifetimes through the engine", () => {
  it("keeps a long-lived token that has no refresh token", async () => {
    const as = await serve(
      authorizationServerRoutes({
        tokenBody: { access_token: "AT", token_type: "Bearer", expires_in: 5_184_000 },
      }),
    )
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [as.origin] },
      },
    })
    const engine = await startEngine(rs.url("/mcp"))

    const first = await engine.getAccessToken()
    const second = await engine.getAccessToken({ interactive: false })

    expect(first).toBe("AT")
    expect(second).toBe("AT")
    expect(as.requestsTo("POST /token")).toHaveLength(1)
    expect(engine.status().state).toBe("authenticated")
    expect(engine.status().expiresAt).toBeGreaterThan(Date.now() + 5_000_000_000)
  })

  it("signs in once for a token issued already expired", async () => {
    const as = await serve(
      authorizationServerRoutes({
        tokenBody: { access_token: "AT", token_type: "Bearer", expires_in: 0 },
      }),
    )
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [as.origin] },
      },
    })
    const engine = await startEngine(rs.url("/mcp"))

    const error = await rejectionOf(engine.getAccessToken())
    await delay(300)

    expect(error._tag).toBe("SignInRequired")
    expect(error).toMatchObject({ reason: "session_expired" })
    expect(as.requestsTo("GET /authorize")).toHaveLength(1)
    expect(as.requestsTo("POST /token")).toHaveLength(1)
  })

  it("stops refreshing when each refresh returns an expired token", async () => {
    const as = await serve(
      authorizationServerRoutes({
        tokenBody: { access_token: "AT", token_type: "Bearer", expires_in: 0, refresh_token: "RT" },
      }),
    )
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [as.origin] },
      },
    })
    const engine = await startEngine(rs.url("/mcp"))

    const error = await rejectionOf(engine.getAccessToken())
    await delay(500)

    expect(error._tag).toBe("TokenError")
    expect("reason" in error && error.reason).toBe("invalid_response")
    expect(as.requestsTo("GET /authorize")).toHaveLength(1)
    expect(as.requestsTo("POST /token")).toHaveLength(2)
  })
})
