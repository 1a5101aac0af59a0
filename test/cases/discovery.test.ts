/**
 * Discovery exchanges seen in the field, replayed on loopback servers: where protected resource
 * metadata and authorization server metadata are looked for, in what order, what counts as
 * "not found here", and which documents are rejected before any registration request.
 */
import type { HttpClient } from "@effect/platform"
import { Effect, Either, Redacted } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import type { DiscoveryError } from "../../src/errors.js"
import { createAttempt } from "../../src/protocol/authorization.js"
import { classifyResponse } from "../../src/protocol/challenge.js"
import { type Discovery, discover } from "../../src/protocol/discovery.js"
import { HttpLive } from "../../src/services/http.js"
import { type CaseServer, type RouteTable, startCaseServer } from "../support/case-server.js"

const PROTOCOL_VERSION = "2025-11-25"

const servers: CaseServer[] = []

const serve = async (routes: RouteTable = {}): Promise<CaseServer> => {
  const server = await startCaseServer(routes)
  servers.push(server)
  return server
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

const runEither = <A, E>(effect: Effect.Effect<A, E, HttpClient.HttpClient>) =>
  Effect.runPromise(Effect.either(Effect.provide(effect, HttpLive)))

const discoverFor = (serverUrl: string, resourceMetadataUrl?: string) =>
  runEither(discover({ serverUrl, resourceMetadataUrl, protocolVersion: PROTOCOL_VERSION }))

const expectDiscovery = (result: Either.Either<Discovery, DiscoveryError>): Discovery => {
  if (Either.isLeft(result)) throw new Error(`discovery failed: ${result.left.message}`)
  return result.right
}

const expectDiscoveryError = (result: Either.Either<Discovery, DiscoveryError>): DiscoveryError => {
  if (Either.isRight(result)) throw new Error(`discovery succeeded in ${result.right.mode} mode`)
  return result.left
}

/** Sends the unauthenticated MCP request and classifies the server's response. */
const challengeOf = async (url: string) => {
  const response = await fetch(url, { method: "POST", body: "{}" })
  await response.arrayBuffer()
  const header = response.headers.get("www-authenticate")
  return classifyResponse(response.status, header === null ? [] : [header])
}

/** Authorization server metadata with every endpoint under `base` and S256 PKCE. */
const serverMetadata = (issuer: string, base: string = issuer, extra: object = {}) => ({
  issuer,
  authorization_endpoint: `${base}/authorize`,
  token_endpoint: `${base}/token`,
  registration_endpoint: `${base}/register`,
  code_challenge_methods_supported: ["S256"],
  ...extra,
})

const HTML_PAGE: RouteTable[string] = {
  status: 200,
  headers: { "content-type": "text/html; charset=utf-8" },
  body: "<!DOCTYPE html><html><head><title>App</title></head><body><div id=root></div></body></html>",
}

const getLines = (server: CaseServer) =>
  server.requestLines().filter((line) => line.startsWith("GET "))

describe("root fallback after a path-inserted 404", () => {
  it("finds root resource metadata and root server metadata", async () => {
    const rs = await serve({
      "POST /mcp": { status: 401, headers: { "www-authenticate": 'Bearer realm="mcp"' } },
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}"] },
      },
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: serverMetadata("{BASE}"),
      },
    })

    const signal = await challengeOf(rs.url("/mcp"))
    expect(signal?.kind).toBe("unauthorized")
    expect(signal?.resourceMetadataUrl).toBeUndefined()

    const discovery = expectDiscovery(
      await discoverFor(rs.url("/mcp"), signal?.resourceMetadataUrl),
    )
    expect(discovery.mode).toBe("protected-resource-metadata")
    expect(discovery.resourceMetadataUrl).toBe(rs.url("/.well-known/oauth-protected-resource"))
    expect(discovery.resource).toBe(rs.url("/mcp"))
    expect(discovery.authorizationServer.issuer).toBe(rs.origin)
    expect(rs.requestLines()).toEqual([
      "POST /mcp",
      "GET /.well-known/oauth-protected-resource/mcp",
      "GET /.well-known/oauth-protected-resource",
      "GET /.well-known/oauth-authorization-server",
    ])
  })

  it("builds no path-based server metadata URL for a root issuer", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}"] },
      },
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: serverMetadata("{BASE}"),
      },
    })

    expectDiscovery(await discoverFor(rs.url("/mcp")))

    expect(rs.wasRequested("GET /.well-known/oauth-authorization-server/mcp")).toBe(false)
    expect(rs.wasRequested("GET /mcp/.well-known/oauth-authorization-server")).toBe(false)
  })

  it("fails with metadata_not_found after each candidate once", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}"] },
      },
    })

    const error = expectDiscoveryError(await discoverFor(rs.url("/mcp")))

    expect(error._tag).toBe("DiscoveryError")
    expect(error.reason).toBe("metadata_not_found")
    expect(error.expected).toBe(rs.origin)
    expect(getLines(rs)).toEqual([
      "GET /.well-known/oauth-protected-resource/mcp",
      "GET /.well-known/oauth-protected-resource",
      "GET /.well-known/oauth-authorization-server",
      "GET /.well-known/openid-configuration",
    ])
  })

  it("ends on a 5xx with http_status", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": { status: 503, body: "busy" },
    })

    const error = expectDiscoveryError(await discoverFor(rs.url("/mcp")))

    expect(error.reason).toBe("http_status")
    expect(error.status).toBe(503)
    expect(rs.requestLines()).toEqual(["GET /.well-known/oauth-protected-resource/mcp"])
  })
})

describe("challenge resource_metadata", () => {
  it("requests the challenge URL first", async () => {
    const as = await serve({
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: serverMetadata("{BASE}"),
      },
    })
    const rs = await serve({
      "POST /mcp": {
        status: 401,
        headers: {
          "www-authenticate":
            'Bearer resource_metadata="{BASE}/.well-known/oauth-protected-resource"',
        },
      },
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [as.origin] },
      },
    })

    const signal = await challengeOf(rs.url("/mcp"))
    expect(signal?.resourceMetadataUrl).toBe(rs.url("/.well-known/oauth-protected-resource"))

    const discovery = expectDiscovery(
      await discoverFor(rs.url("/mcp"), signal?.resourceMetadataUrl),
    )
    expect(discovery.authorizationServer.issuer).toBe(as.origin)
    expect(rs.requestLines()).toEqual(["POST /mcp", "GET /.well-known/oauth-protected-resource"])
  })

  it("falls back to path-inserted then root when the challenge URL is 404", async () => {
    const as = await serve({
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: serverMetadata("{BASE}"),
      },
    })
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [as.origin] },
      },
    })

    expectDiscovery(await discoverFor(rs.url("/mcp"), rs.url("/metadata/mcp")))

    expect(rs.requestLines()).toEqual([
      "GET /metadata/mcp",
      "GET /.well-known/oauth-protected-resource/mcp",
      "GET /.well-known/oauth-protected-resource",
    ])
  })

  it("never asks the MCP origin for server metadata when resource metadata exists", async () => {
    const as = await serve()
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [as.origin] },
      },
      // The MCP origin has metadata here, but it is not the authorization server.
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: serverMetadata("{BASE}"),
      },
    })

    const error = expectDiscoveryError(
      await discoverFor(rs.url("/mcp"), rs.url("/.well-known/oauth-protected-resource")),
    )

    expect(error.reason).toBe("metadata_not_found")
    expect(error.expected).toBe(as.origin)
    expect(rs.wasRequested("GET /.well-known/oauth-authorization-server")).toBe(false)
    expect(rs.wasRequested("GET /.well-known/openid-configuration")).toBe(false)
    expect(getLines(as)).toEqual([
      "GET /.well-known/oauth-authorization-server",
      "GET /.well-known/openid-configuration",
    ])
  })

  it("rejects a challenge URL that is not https or loopback", async () => {
    const rs = await serve()

    const error = expectDiscoveryError(
      await discoverFor(rs.url("/mcp"), "file:///etc/oauth-protected-resource"),
    )

    expect(error.reason).toBe("insecure_endpoint")
    expect(rs.requests).toHaveLength(0)
  })
})

describe("path-scoped metadata", () => {
  it("uses path-inserted URLs for resource and issuer", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/xmcp/mcp": {
        status: 200,
        body: { resource: "{BASE}/xmcp/mcp", authorization_servers: ["{BASE}/xmcp"] },
      },
      "GET /.well-known/oauth-authorization-server/xmcp": {
        status: 200,
        body: serverMetadata("{BASE}/xmcp"),
      },
    })

    const discovery = expectDiscovery(await discoverFor(rs.url("/xmcp/mcp")))

    expect(discovery.resource).toBe(rs.url("/xmcp/mcp"))
    expect(discovery.authorizationServer.issuer).toBe(rs.url("/xmcp"))
    expect(rs.requestLines()).toEqual([
      "GET /.well-known/oauth-protected-resource/xmcp/mcp",
      "GET /.well-known/oauth-authorization-server/xmcp",
    ])
    expect(rs.wasRequested("GET /.well-known/oauth-protected-resource")).toBe(false)
    expect(rs.wasRequested("GET /.well-known/oauth-authorization-server")).toBe(false)
  })

  it("takes endpoints from the path issuer's metadata", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/xmcp/mcp": {
        status: 200,
        body: { resource: "{BASE}/xmcp/mcp", authorization_servers: ["{BASE}/xmcp"] },
      },
      "GET /.well-known/oauth-authorization-server/xmcp": {
        status: 200,
        body: serverMetadata("{BASE}/xmcp"),
      },
    })

    const discovery = expectDiscovery(await discoverFor(rs.url("/xmcp/mcp")))
    const attempt = await Effect.runPromise(
      createAttempt({
        authorizationServer: discovery.authorizationServer,
        clientId: "C1",
        redirectUri: "http://127.0.0.1:3118/callback",
        resource: discovery.resource,
      }),
    )

    expect(discovery.authorizationServer.authorization_endpoint).toBe(rs.url("/xmcp/authorize"))
    expect(discovery.authorizationServer.token_endpoint).toBe(rs.url("/xmcp/token"))
    expect(discovery.authorizationServer.registration_endpoint).toBe(rs.url("/xmcp/register"))
    expect(new URL(Redacted.value(attempt.authorizationUrl)).pathname).toBe("/xmcp/authorize")
  })
})

describe("catch-all pages at well-known URLs", () => {
  it("skips an HTML catch-all page", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": HTML_PAGE,
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}/auth"] },
      },
      "GET /.well-known/oauth-authorization-server/auth": HTML_PAGE,
      "GET /.well-known/openid-configuration/auth": {
        status: 200,
        body: serverMetadata("{BASE}/auth"),
      },
    })

    const discovery = expectDiscovery(await discoverFor(rs.url("/mcp")))

    expect(discovery.resourceMetadataUrl).toBe(rs.url("/.well-known/oauth-protected-resource"))
    expect(discovery.authorizationServer.issuer).toBe(rs.url("/auth"))
    expect(rs.requestLines()).toEqual([
      "GET /.well-known/oauth-protected-resource/mcp",
      "GET /.well-known/oauth-protected-resource",
      "GET /.well-known/oauth-authorization-server/auth",
      "GET /.well-known/openid-configuration/auth",
    ])
  })

  it("skips a JSON body that is not metadata", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": { status: 200, body: { status: "ok" } },
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}"] },
      },
      "GET /.well-known/oauth-authorization-server": { status: 200, body: { status: "ok" } },
      "GET /.well-known/openid-configuration": { status: 200, body: serverMetadata("{BASE}") },
    })

    const discovery = expectDiscovery(await discoverFor(rs.url("/mcp")))

    expect(discovery.resourceMetadataUrl).toBe(rs.url("/.well-known/oauth-protected-resource"))
    expect(discovery.authorizationServer.issuer).toBe(rs.origin)
  })

  it("names each URL and content type when only pages were found", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}"] },
      },
      "GET /.well-known/oauth-authorization-server": HTML_PAGE,
      "GET /.well-known/openid-configuration": HTML_PAGE,
    })

    const error = expectDiscoveryError(await discoverFor(rs.url("/mcp")))

    expect(error.reason).toBe("metadata_not_found")
    expect(error.message).toContain(rs.url("/.well-known/oauth-authorization-server"))
    expect(error.message).toContain(rs.url("/.well-known/openid-configuration"))
    expect(error.message).toContain("text/html")
    expect(error.message).not.toMatch(/JSON|Unexpected token/)
  })

  it("reports metadata that is present but invalid everywhere", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { authorization_servers: ["{BASE}"] },
      },
    })

    const error = expectDiscoveryError(await discoverFor(rs.url("/mcp")))

    expect(error.reason).toBe("invalid_metadata")
    expect(error.url).toBe(rs.url("/.well-known/oauth-protected-resource/mcp"))
    expect(rs.wasRequested("GET /.well-known/oauth-authorization-server")).toBe(false)
  })
})

describe("servers without resource metadata", () => {
  it("uses the origin's server metadata and sends the server URL as resource", async () => {
    const rs = await serve({
      "POST /mcp": {
        status: 401,
        headers: { "www-authenticate": 'Bearer realm="OAuth", error="invalid_token"' },
      },
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: serverMetadata("{BASE}"),
      },
    })

    const signal = await challengeOf(rs.url("/mcp"))
    const discovery = expectDiscovery(
      await discoverFor(rs.url("/mcp"), signal?.resourceMetadataUrl),
    )
    const attempt = await Effect.runPromise(
      createAttempt({
        authorizationServer: discovery.authorizationServer,
        clientId: "C1",
        redirectUri: "http://127.0.0.1:3118/callback",
        resource: discovery.resource,
      }),
    )

    expect(discovery.mode).toBe("legacy-origin-metadata")
    expect(discovery.resourceMetadata).toBeUndefined()
    expect(discovery.resource).toBe(rs.url("/mcp"))
    expect(new URL(Redacted.value(attempt.authorizationUrl)).searchParams.get("resource")).toBe(
      rs.url("/mcp"),
    )
  })

  it("probes well-known URLs when the challenge has no resource_metadata", async () => {
    const rs = await serve({
      "POST /v1/mcp": {
        status: 401,
        headers: { "www-authenticate": 'Bearer error="invalid_request"' },
      },
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: serverMetadata("{BASE}"),
      },
    })

    const signal = await challengeOf(rs.url("/v1/mcp"))
    expect(signal?.resourceMetadataUrl).toBeUndefined()

    const discovery = expectDiscovery(
      await discoverFor(rs.url("/v1/mcp"), signal?.resourceMetadataUrl),
    )

    expect(discovery.mode).toBe("legacy-origin-metadata")
    expect(rs.requestLines()).toEqual([
      "POST /v1/mcp",
      "GET /.well-known/oauth-protected-resource/v1/mcp",
      "GET /.well-known/oauth-protected-resource",
      "GET /.well-known/oauth-authorization-server",
    ])
  })
})

describe("issuer checks", () => {
  it("rejects metadata whose issuer drops the tenant path", async () => {
    const as = await serve({
      "GET /.well-known/oauth-authorization-server/APPID": {
        status: 200,
        body: serverMetadata("{BASE}"),
      },
    })
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [`${as.origin}/APPID`] },
      },
    })

    const error = expectDiscoveryError(await discoverFor(rs.url("/mcp")))

    expect(error.reason).toBe("issuer_mismatch")
    expect(error.expected).toBe(`${as.origin}/APPID`)
    expect(error.received).toBe(as.origin)
    expect(error.url).toBe(as.url("/.well-known/oauth-authorization-server/APPID"))
  })

  it("rejects metadata whose issuer is another host", async () => {
    const idp = await serve()
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}"] },
      },
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: serverMetadata(idp.origin),
      },
    })

    const error = expectDiscoveryError(await discoverFor(rs.url("/mcp")))

    expect(error.reason).toBe("issuer_mismatch")
    expect(error.expected).toBe(rs.origin)
    expect(error.received).toBe(idp.origin)
    expect(idp.requests).toHaveLength(0)
  })

  it("tolerates one trailing slash and keeps the metadata issuer", async () => {
    const idp = await serve({
      "GET /.well-known/openid-configuration": { status: 200, body: serverMetadata("{BASE}") },
    })
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [`${idp.origin}/`] },
      },
    })

    const discovery = expectDiscovery(await discoverFor(rs.url("/mcp")))
    const attempt = await Effect.runPromise(
      createAttempt({
        authorizationServer: discovery.authorizationServer,
        clientId: "C1",
        redirectUri: "http://127.0.0.1:3118/callback",
        resource: discovery.resource,
      }),
    )

    expect(discovery.authorizationServer.issuer).toBe(idp.origin)
    expect(attempt.issuer).toBe(idp.origin)
    expect(getLines(idp)).toEqual([
      "GET /.well-known/oauth-authorization-server",
      "GET /.well-known/openid-configuration",
    ])
  })

  it("rejects an issuer that differs by more than a trailing slash", async () => {
    const idp = await serve()
    const otherSpelling = idp.origin.replace("127.0.0.1", "localhost")
    idp.setRoutes({
      "GET /.well-known/openid-configuration": {
        status: 200,
        body: serverMetadata(otherSpelling),
      },
    })
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [`${idp.origin}/`] },
      },
    })

    const error = expectDiscoveryError(await discoverFor(rs.url("/mcp")))

    expect(error.reason).toBe("issuer_mismatch")
    expect(error.expected).toBe(`${idp.origin}/`)
    expect(error.received).toBe(otherSpelling)
  })
})

describe("OpenID Connect discovery", () => {
  it("falls back to path-inserted then path-appended OpenID configuration", async () => {
    const idp = await serve({
      "GET /tenant/.well-known/openid-configuration": {
        status: 200,
        body: serverMetadata("{BASE}/tenant"),
      },
    })
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [`${idp.origin}/tenant`] },
      },
    })

    const discovery = expectDiscovery(await discoverFor(rs.url("/mcp")))

    expect(discovery.authorizationServer.issuer).toBe(idp.url("/tenant"))
    expect(idp.requestLines()).toEqual([
      "GET /.well-known/oauth-authorization-server/tenant",
      "GET /.well-known/openid-configuration/tenant",
      "GET /tenant/.well-known/openid-configuration",
    ])
    expect(idp.wasRequested("GET /.well-known/oauth-authorization-server")).toBe(false)
  })

  it("falls back to root OpenID configuration after an RFC 8414 404", async () => {
    const idp = await serve({
      "GET /.well-known/openid-configuration": { status: 200, body: serverMetadata("{BASE}") },
    })
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [idp.origin] },
      },
    })

    const discovery = expectDiscovery(await discoverFor(rs.url("/mcp")))

    expect(discovery.authorizationServer.registration_endpoint).toBe(idp.url("/register"))
    expect(idp.requestLines()).toEqual([
      "GET /.well-known/oauth-authorization-server",
      "GET /.well-known/openid-configuration",
    ])
  })

  it("rejects metadata without S256 as a typed error", async () => {
    const idp = await serve({
      "GET /.well-known/openid-configuration": {
        status: 200,
        body: {
          issuer: "{BASE}",
          authorization_endpoint: "{BASE}/authorize",
          token_endpoint: "{BASE}/token",
        },
      },
    })
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [idp.origin] },
      },
    })

    const error = expectDiscoveryError(await discoverFor(rs.url("/mcp")))

    expect(error.reason).toBe("pkce_not_supported")
    expect(error.received).toBe("<absent>")
  })
})

describe("unsafe endpoints in metadata", () => {
  const unsafeEndpoints = [
    "a:$(cmd.exe /c whoami)?response_type=code",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "vscode://authorize",
    "http://as.example.test/authorize",
    "https://user:password@as.example.test/authorize",
    "/authorize",
  ]

  for (const endpoint of unsafeEndpoints) {
    it(`rejects authorization_endpoint ${JSON.stringify(endpoint)}`, async () => {
      const rs = await serve({
        "GET /.well-known/oauth-protected-resource/mcp": {
          status: 200,
          body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}"] },
        },
        "GET /.well-known/oauth-authorization-server": {
          status: 200,
          body: serverMetadata("{BASE}", "{BASE}", { authorization_endpoint: endpoint }),
        },
      })

      const error = expectDiscoveryError(await discoverFor(rs.url("/mcp")))

      expect(error.reason).toBe("insecure_endpoint")
      expect(error.received).toBe(endpoint)
    })
  }

  it("rejects an unsafe token_endpoint", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}"] },
      },
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: serverMetadata("{BASE}", "{BASE}", { token_endpoint: "ftp://127.0.0.1/token" }),
      },
    })

    const error = expectDiscoveryError(await discoverFor(rs.url("/mcp")))

    expect(error.reason).toBe("insecure_endpoint")
    expect(error.detail).toContain("token_endpoint")
  })

  it("rejects an unsafe endpoint in origin metadata", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: serverMetadata("{BASE}", "{BASE}", {
          authorization_endpoint: "file:///bin/sh",
        }),
      },
    })

    const error = expectDiscoveryError(await discoverFor(rs.url("/mcp")))

    expect(error.reason).toBe("insecure_endpoint")
    expect(error.received).toBe("file:///bin/sh")
  })

  it("refuses to build an authorization URL from an unsafe endpoint", async () => {
    const result = await Effect.runPromise(
      Effect.either(
        createAttempt({
          authorizationServer: {
            issuer: "https://as.example.test",
            authorization_endpoint: "a:$(cmd.exe /c whoami)?response_type=code",
            token_endpoint: "https://as.example.test/token",
          },
          clientId: "C1",
          redirectUri: "http://127.0.0.1:3118/callback",
          resource: "https://rs.example.test/mcp",
        }),
      ),
    )

    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left.reason).toBe("insecure_endpoint")
      expect(result.left.received).toBe("a:$(cmd.exe /c whoami)?response_type=code")
    }
  })
})

describe("resource in protected resource metadata", () => {
  it("honours the challenge URL over root metadata for another API", async () => {
    const as = await serve({
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: serverMetadata("{BASE}"),
      },
    })
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}", authorization_servers: [as.origin] },
      },
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [as.origin] },
      },
    })

    const discovery = expectDiscovery(
      await discoverFor(rs.url("/mcp"), rs.url("/.well-known/oauth-protected-resource/mcp")),
    )

    expect(discovery.resource).toBe(rs.url("/mcp"))
    expect(rs.wasRequested("GET /.well-known/oauth-protected-resource")).toBe(false)
  })

  it("keeps the resource exactly as published", async () => {
    const as = await serve({
      "GET /.well-known/oauth-authorization-server": {
        status: 200,
        body: serverMetadata("{BASE}"),
      },
    })
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource": {
        status: 200,
        body: { resource: "{BASE}", authorization_servers: [as.origin] },
      },
    })
    const rsWithSlash = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp/", authorization_servers: [as.origin] },
      },
    })

    const withoutSlash = expectDiscovery(await discoverFor(rs.origin))
    const withSlash = expectDiscovery(await discoverFor(rsWithSlash.url("/mcp")))

    expect(withoutSlash.resource).toBe(rs.origin)
    expect(withSlash.resource).toBe(rsWithSlash.url("/mcp/"))
  })

  it("rejects a resource on another host and names both values", async () => {
    const as = await serve()
    const other = await serve()
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: `${other.origin}/mcp`, authorization_servers: [as.origin] },
      },
    })

    const error = expectDiscoveryError(await discoverFor(rs.url("/mcp")))

    expect(error.reason).toBe("resource_mismatch")
    expect(error.expected).toBe(rs.url("/mcp"))
    expect(error.received).toBe(other.url("/mcp"))
    expect(error.message).toContain(rs.url("/mcp"))
    expect(error.message).toContain(other.url("/mcp"))
    expect(rs.wasRequested("POST /register")).toBe(false)
    expect(rs.wasRequested("GET /.well-known/oauth-authorization-server")).toBe(false)
    expect(as.requests).toHaveLength(0)
    expect(other.requests).toHaveLength(0)
  })

  it("rejects a resource that is only a string prefix of the server path", async () => {
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp-admin": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: ["{BASE}"] },
      },
    })

    const error = expectDiscoveryError(await discoverFor(rs.url("/mcp-admin")))

    expect(error.reason).toBe("resource_mismatch")
  })
})
