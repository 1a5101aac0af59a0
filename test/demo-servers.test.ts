/**
 * The demo servers driven by plain fetch, the way the engine drives them: Dynamic Client
 * Registration, an authorization request followed through its redirects with a cookie jar,
 * code and refresh token grants, and MCP calls with the resulting bearer token.
 */
import {
  calculatePKCECodeChallenge,
  generateRandomCodeVerifier,
  generateRandomState,
} from "oauth4webapi"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { importDevDependency } from "../src/demo/authorization-server.js"
import {
  type DemoAuthorizationServer,
  type DemoMcpServer,
  startAuthorizationServer,
  startMcpServer,
} from "../src/demo/servers.js"

// Nothing listens here: the user agent stops at the first redirect to this URI.
const REDIRECT_URI = "http://127.0.0.1:9/callback"
const MAX_REDIRECTS = 10

interface AuthorizationServerMetadata {
  issuer: string
  authorization_endpoint: string
  token_endpoint: string
  registration_endpoint: string
  revocation_endpoint: string
  introspection_endpoint: string
  code_challenge_methods_supported: string[]
  scopes_supported: string[]
  authorization_response_iss_parameter_supported: boolean
}

interface TokenResponse {
  access_token: string
  refresh_token: string
  token_type: string
  expires_in: number
  scope: string
}

let authorizationServer: DemoAuthorizationServer
let mcpServer: DemoMcpServer
let metadata: AuthorizationServerMetadata

beforeAll(async () => {
  authorizationServer = await startAuthorizationServer()
  mcpServer = await startMcpServer({ authorizationServer })
  const response = await fetch(
    `${authorizationServer.issuer}/.well-known/oauth-authorization-server`,
  )
  metadata = (await response.json()) as AuthorizationServerMetadata
})

afterAll(async () => {
  await mcpServer?.close()
  await authorizationServer?.close()
})

/** Cookies by name, the way a minimal user agent keeps them: no paths, no domains. */
class CookieJar {
  readonly #cookies = new Map<string, string>()

  store(response: Response): void {
    for (const setCookie of response.headers.getSetCookie()) {
      const [pair = "", ...attributes] = setCookie.split(";")
      const separator = pair.indexOf("=")
      const name = pair.slice(0, separator).trim()
      const value = pair.slice(separator + 1).trim()
      const expired = attributes.some((attribute) => {
        const [key = "", attributeValue = ""] = attribute.trim().split("=")
        if (key.toLowerCase() === "max-age") return Number(attributeValue) <= 0
        if (key.toLowerCase() === "expires") return Date.parse(attributeValue) <= Date.now()
        return false
      })
      if (expired || value === "") {
        this.#cookies.delete(name)
      } else {
        this.#cookies.set(name, value)
      }
    }
  }

  header(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; ")
  }
}

async function registerPublicClient(): Promise<string> {
  const response = await fetch(metadata.registration_endpoint, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      application_type: "native",
      client_name: "demo-servers test",
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "none",
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
    }),
  })
  const body = (await response.json()) as { client_id?: string; error_description?: string }
  expect(response.status, body.error_description).toBe(201)
  expect(body.client_id).toBeTypeOf("string")
  return body.client_id ?? ""
}

interface AuthorizationResult {
  /** Query of the redirect to REDIRECT_URI. */
  readonly callback: URLSearchParams
  readonly state: string
  readonly codeVerifier: string
}

/**
 * Sends an authorization request with PKCE S256, a resource and a state, then follows every
 * redirect on the authorization server's origin with a cookie jar until one leads to
 * REDIRECT_URI.
 */
async function authorize(
  clientId: string,
  resource: string = mcpServer.url,
): Promise<AuthorizationResult> {
  const codeVerifier = generateRandomCodeVerifier()
  const state = generateRandomState()
  const authorizationUrl = new URL(metadata.authorization_endpoint)
  authorizationUrl.search = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    scope: "mcp:tools",
    resource,
    state,
    code_challenge: await calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: "S256",
  }).toString()

  const jar = new CookieJar()
  let url = authorizationUrl
  for (let redirects = 0; redirects < MAX_REDIRECTS; redirects++) {
    const response = await fetch(url, { redirect: "manual", headers: { cookie: jar.header() } })
    jar.store(response)
    const location = response.headers.get("location")
    if (response.status < 300 || response.status >= 400 || location === null) {
      throw new Error(
        `expected a redirect from ${url.href}, got ${response.status}: ${await response.text()}`,
      )
    }
    await response.body?.cancel()

    const next = new URL(location, url)
    if (next.href.startsWith(REDIRECT_URI)) {
      return { callback: next.searchParams, state, codeVerifier }
    }
    if (next.origin !== authorizationServer.issuer) {
      throw new Error(`redirect left the authorization server for ${next.origin}`)
    }
    url = next
  }
  throw new Error(`no redirect to ${REDIRECT_URI} within ${MAX_REDIRECTS} redirects`)
}

async function requestToken(
  parameters: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(metadata.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(parameters),
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

/** Registers a client and runs the whole approved flow up to the token response. */
async function signIn(
  resource: string = mcpServer.url,
): Promise<{ clientId: string; tokens: TokenResponse }> {
  const clientId = await registerPublicClient()
  const { callback, codeVerifier } = await authorize(clientId, resource)
  const code = callback.get("code")
  expect(code, callback.toString()).toBeTypeOf("string")

  const { status, body } = await requestToken({
    grant_type: "authorization_code",
    client_id: clientId,
    code: code ?? "",
    redirect_uri: REDIRECT_URI,
    code_verifier: codeVerifier,
    resource,
  })
  expect(status, JSON.stringify(body)).toBe(200)
  return { clientId, tokens: body as unknown as TokenResponse }
}

function refresh(clientId: string, refreshToken: string) {
  return requestToken({
    grant_type: "refresh_token",
    client_id: clientId,
    refresh_token: refreshToken,
  })
}

async function callTool(
  accessToken: string | undefined,
  name: string,
  toolArguments: Record<string, unknown> = {},
): Promise<Response> {
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  }
  if (accessToken !== undefined) {
    headers.authorization = `Bearer ${accessToken}`
  }
  return fetch(mcpServer.url, {
    method: "POST",
    headers,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: { name, arguments: toolArguments },
    }),
  })
}

async function toolText(response: Response): Promise<string> {
  const body = (await response.json()) as {
    result?: { content?: Array<{ type: string; text?: string }> }
    error?: unknown
  }
  expect(body.error).toBeUndefined()
  return body.result?.content?.[0]?.text ?? ""
}

describe("demo authorization server", () => {
  it("advertises engine-relevant metadata", () => {
    expect(authorizationServer.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(metadata.issuer).toBe(authorizationServer.issuer)
    expect(metadata.code_challenge_methods_supported).toEqual(["S256"])
    expect(metadata.authorization_response_iss_parameter_supported).toBe(true)
    expect(metadata.scopes_supported).toContain("mcp:tools")
    expect(metadata.scopes_supported).toContain("offline_access")
    expect(metadata.registration_endpoint).toBe(`${authorizationServer.issuer}/reg`)
    expect(metadata.revocation_endpoint).toBeTypeOf("string")
    expect(metadata.introspection_endpoint).toBeTypeOf("string")
  })

  it("serves the same document as openid-configuration", async () => {
    const response = await fetch(`${authorizationServer.issuer}/.well-known/openid-configuration`)
    expect(await response.json()).toEqual(metadata)
  })

  it("completes an approved flow and counts it", async () => {
    authorizationServer.requests.reset()
    mcpServer.requests.reset()

    const clientId = await registerPublicClient()
    const { callback, state, codeVerifier } = await authorize(clientId)
    expect(callback.get("state")).toBe(state)
    expect(callback.get("iss")).toBe(authorizationServer.issuer)
    expect(callback.get("error")).toBeNull()
    const code = callback.get("code") ?? ""
    expect(code).not.toBe("")

    const { status, body } = await requestToken({
      grant_type: "authorization_code",
      client_id: clientId,
      code,
      redirect_uri: REDIRECT_URI,
      code_verifier: codeVerifier,
      resource: mcpServer.url,
    })
    expect(status, JSON.stringify(body)).toBe(200)
    expect(body.token_type).toBe("Bearer")
    expect(body.scope).toBe("mcp:tools")
    expect(body.expires_in).toBe(20)
    expect(body.access_token).toBeTypeOf("string")
    expect(body.refresh_token).toBeTypeOf("string")

    const response = await callTool(body.access_token as string, "whoami")
    expect(response.status).toBe(200)
    const whoami = JSON.parse(await toolText(response)) as Record<string, unknown>
    expect(whoami.sub).toBe("demo-user")
    expect(whoami.scope).toBe("mcp:tools")
    expect(whoami.client_id).toBe(clientId)

    expect(authorizationServer.requests.registration).toBe(1)
    expect(authorizationServer.requests.authorization).toBe(1)
    expect(authorizationServer.requests.token).toEqual({ authorization_code: 1 })
    expect(mcpServer.requests.authorized).toBe(1)
    expect(mcpServer.requests.unauthorized).toBe(0)
  })

  it("rejects a code exchange without the code verifier", async () => {
    const clientId = await registerPublicClient()
    const { callback } = await authorize(clientId)

    const { status, body } = await requestToken({
      grant_type: "authorization_code",
      client_id: clientId,
      code: callback.get("code") ?? "",
      redirect_uri: REDIRECT_URI,
      resource: mcpServer.url,
    })
    expect(status).toBe(400)
    expect(body.error).toBe("invalid_grant")
  })

  it("rotates the refresh token on every refresh", async () => {
    const { clientId, tokens } = await signIn()
    authorizationServer.requests.reset()

    const first = await refresh(clientId, tokens.refresh_token)
    expect(first.status, JSON.stringify(first.body)).toBe(200)
    expect(first.body.refresh_token).toBeTypeOf("string")
    expect(first.body.refresh_token).not.toBe(tokens.refresh_token)
    expect(first.body.access_token).not.toBe(tokens.access_token)
    expect(first.body.scope).toBe("mcp:tools")

    const whoami = await callTool(first.body.access_token as string, "whoami")
    expect(whoami.status).toBe(200)

    const reused = await refresh(clientId, tokens.refresh_token)
    expect(reused.status).toBe(400)
    expect(reused.body.error).toBe("invalid_grant")

    // oidc-provider treats the reuse of a rotated refresh token as theft and revokes the grant.
    const afterReuse = await refresh(clientId, first.body.refresh_token as string)
    expect(afterReuse.body.error).toBe("invalid_grant")

    expect(authorizationServer.requests.token).toEqual({ refresh_token: 3 })
  })

  it("redirects access_denied in deny mode", async () => {
    const clientId = await registerPublicClient()
    authorizationServer.setConsent("deny")
    try {
      const { callback, state } = await authorize(clientId)
      expect(callback.get("error")).toBe("access_denied")
      expect(callback.get("error_description")).toBe("the user denied access")
      expect(callback.get("state")).toBe(state)
      expect(callback.get("iss")).toBe(authorizationServer.issuer)
      expect(callback.get("code")).toBeNull()
    } finally {
      authorizationServer.setConsent("approve")
    }
  })

  it("invalidates refresh tokens in revokeAllGrants", async () => {
    const first = await signIn()
    const second = await signIn()

    await authorizationServer.revokeAllGrants()

    for (const { clientId, tokens } of [first, second]) {
      const refreshed = await refresh(clientId, tokens.refresh_token)
      expect(refreshed.status).toBe(400)
      expect(refreshed.body.error).toBe("invalid_grant")
      const response = await callTool(tokens.access_token, "whoami")
      expect(response.status).toBe(401)
    }

    // A new sign-in after the revocation works again.
    const third = await signIn()
    const refreshed = await refresh(third.clientId, third.tokens.refresh_token)
    expect(refreshed.status).toBe(200)
  })

  it("revokes and introspects a refresh token", async () => {
    const { clientId, tokens } = await signIn()
    authorizationServer.requests.reset()

    const introspection = await fetch(metadata.introspection_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: clientId, token: tokens.refresh_token }),
    })
    expect(introspection.status).toBe(200)
    expect(await introspection.json()).toMatchObject({ active: true, client_id: clientId })

    const revocation = await fetch(metadata.revocation_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        client_id: clientId,
        token: tokens.refresh_token,
        token_type_hint: "refresh_token",
      }),
    })
    expect(revocation.status).toBe(200)

    const refreshed = await refresh(clientId, tokens.refresh_token)
    expect(refreshed.body.error).toBe("invalid_grant")

    expect(authorizationServer.requests.introspection).toBe(1)
    expect(authorizationServer.requests.revocation).toBe(1)
    expect(authorizationServer.requests.token).toEqual({ refresh_token: 1 })
  })
})

describe("demo MCP server", () => {
  it("serves protected resource metadata", async () => {
    const response = await fetch(mcpServer.resourceMetadataUrl)
    expect(response.status).toBe(200)
    expect(mcpServer.resourceMetadataUrl).toBe(
      mcpServer.url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp"),
    )
    expect(await response.json()).toEqual({
      resource: mcpServer.url,
      authorization_servers: [authorizationServer.issuer],
      scopes_supported: ["mcp:tools"],
      bearer_methods_supported: ["header"],
    })
  })

  it("challenges a request without a token", async () => {
    mcpServer.requests.reset()

    const response = await callTool(undefined, "whoami")
    expect(response.status).toBe(401)
    const challenge = response.headers.get("www-authenticate") ?? ""
    expect(challenge).toMatch(/^Bearer /)
    expect(challenge).toContain('error="invalid_token"')
    expect(challenge).toMatch(/error_description="[^"]+"/)
    expect(challenge).toContain(`resource_metadata="${mcpServer.resourceMetadataUrl}"`)
    expect(challenge).not.toContain("scope=")
    expect(mcpServer.requests.unauthorized).toBe(1)
    expect(mcpServer.requests.authorized).toBe(0)
  })

  it("challenges an unknown token", async () => {
    const response = await callTool("not-a-token", "whoami")
    expect(response.status).toBe(401)
    expect(response.headers.get("www-authenticate")).toContain('error="invalid_token"')
  })

  it("rejects a token issued for another resource", async () => {
    const other = await startMcpServer({ authorizationServer })
    try {
      const { tokens } = await signIn()
      const response = await fetch(other.url, {
        method: "POST",
        headers: {
          authorization: `Bearer ${tokens.access_token}`,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }),
      })
      expect(response.status).toBe(401)
    } finally {
      await other.close()
    }
  })

  it("adds the challenge scope when configured", async () => {
    const scoped = await startMcpServer({ authorizationServer, challengeScope: "mcp:tools" })
    try {
      const response = await fetch(scoped.url, { method: "POST" })
      expect(response.status).toBe(401)
      expect(response.headers.get("www-authenticate")).toContain('scope="mcp:tools"')
    } finally {
      await scoped.close()
    }
  })

  it("rejects missing required scopes with 403", async () => {
    const strict = await startMcpServer({ authorizationServer, requiredScopes: ["mcp:admin"] })
    try {
      const { tokens } = await signIn(strict.url)
      const response = await fetch(strict.url, {
        method: "POST",
        headers: { authorization: `Bearer ${tokens.access_token}` },
      })
      expect(response.status).toBe(403)
      const challenge = response.headers.get("www-authenticate") ?? ""
      expect(challenge).toContain('error="insufficient_scope"')
      expect(challenge).toContain('scope="mcp:admin"')
      expect(strict.requests.unauthorized).toBe(1)
    } finally {
      await strict.close()
    }
  })

  it("runs echo without an initialize request", async () => {
    const { tokens } = await signIn()
    const response = await callTool(tokens.access_token, "echo", { text: "hello" })
    expect(response.status).toBe(200)
    expect(await toolText(response)).toBe("hello")
  })
})

describe("importDevDependency", () => {
  it("names the missing package and the fix", async () => {
    const name = "mcp-auth-engine-missing-package"
    await expect(importDevDependency(name, () => import(name))).rejects.toThrow(
      `the demo needs the development dependency ${name}; run npm install`,
    )
  })

  it("passes other import errors through", async () => {
    const failure = new Error("syntax error in module")
    await expect(importDevDependency("zod", () => Promise.reject(failure))).rejects.toBe(failure)
  })
})
