/**
 * URL rules: which endpoints may be used, and the RFC 9728 / RFC 8414 / OpenID Connect
 * well-known URLs built from a resource or an issuer.
 */
import { describe, expect, it } from "vitest"
import {
  authorizationServerMetadataUrls,
  isLoopbackHost,
  isSafeEndpoint,
  parseUrl,
  protectedResourceMetadataUrls,
  withoutQuery,
} from "../../src/protocol/urls.js"

describe("isSafeEndpoint", () => {
  const safe = [
    "https://as.example.test/authorize",
    "https://as.example.test:8443/oauth/authorize?tenant=x",
    "http://127.0.0.1:8080/authorize",
    "http://127.10.0.1/authorize",
    "http://[::1]:8080/authorize",
    "http://localhost:3000/authorize",
    "http://LOCALHOST/authorize",
    "http://dev.localhost/authorize",
  ]
  const unsafe = [
    "http://as.example.test/authorize",
    "http://127.0.0.1.example.test/authorize",
    "http://localhost.example.test/authorize",
    "http://0.0.0.0/authorize",
    "http://[::ffff:127.0.0.1]/authorize",
    "file:///etc/passwd",
    "javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vscode://authorize",
    "a:$(cmd.exe /c whoami)?response_type=code",
    "https://user:password@as.example.test/authorize",
    "https://user@as.example.test/authorize",
    "/authorize",
    "",
    "not a url",
  ]

  for (const url of safe) {
    it(`accepts ${url}`, () => {
      expect(isSafeEndpoint(url)).toBe(true)
    })
  }
  for (const url of unsafe) {
    it(`rejects ${JSON.stringify(url)}`, () => {
      expect(isSafeEndpoint(url)).toBe(false)
    })
  }
})

describe("isLoopbackHost", () => {
  it("accepts loopback names and addresses", () => {
    expect(isLoopbackHost("localhost")).toBe(true)
    expect(isLoopbackHost("127.0.0.1")).toBe(true)
    expect(isLoopbackHost("127.255.255.254")).toBe(true)
    expect(isLoopbackHost("[::1]")).toBe(true)
    expect(isLoopbackHost("::1")).toBe(true)
  })

  it("rejects other hosts", () => {
    expect(isLoopbackHost("128.0.0.1")).toBe(false)
    expect(isLoopbackHost("10.0.0.1")).toBe(false)
    expect(isLoopbackHost("[::2]")).toBe(false)
    expect(isLoopbackHost("example.test")).toBe(false)
    expect(isLoopbackHost("localhostx")).toBe(false)
  })
})

describe("parseUrl", () => {
  it("returns undefined for a relative or invalid URL", () => {
    expect(parseUrl("/path")).toBeUndefined()
    expect(parseUrl("http://")).toBeUndefined()
  })

  it("resolves against a base", () => {
    expect(parseUrl("/path", "https://as.example.test/x")?.href).toBe(
      "https://as.example.test/path",
    )
  })
})

describe("protectedResourceMetadataUrls", () => {
  it("lists path-inserted then root for a resource with a path", () => {
    expect(protectedResourceMetadataUrls(new URL("https://rs.example.test/mcp"))).toEqual([
      "https://rs.example.test/.well-known/oauth-protected-resource/mcp",
      "https://rs.example.test/.well-known/oauth-protected-resource",
    ])
  })

  it("drops one trailing slash of the path", () => {
    expect(protectedResourceMetadataUrls(new URL("https://rs.example.test/a/mcp/"))).toEqual([
      "https://rs.example.test/.well-known/oauth-protected-resource/a/mcp",
      "https://rs.example.test/.well-known/oauth-protected-resource",
    ])
  })

  it("lists only root for a resource without a path", () => {
    const expected = ["https://rs.example.test/.well-known/oauth-protected-resource"]

    expect(protectedResourceMetadataUrls(new URL("https://rs.example.test"))).toEqual(expected)
    expect(protectedResourceMetadataUrls(new URL("https://rs.example.test/"))).toEqual(expected)
  })

  it("keeps a non-default port", () => {
    expect(protectedResourceMetadataUrls(new URL("http://127.0.0.1:8080/mcp"))[0]).toBe(
      "http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp",
    )
  })
})

describe("authorizationServerMetadataUrls", () => {
  it("lists the two root forms for an issuer without a path", () => {
    const expected = [
      "https://as.example.test/.well-known/oauth-authorization-server",
      "https://as.example.test/.well-known/openid-configuration",
    ]

    expect(authorizationServerMetadataUrls(new URL("https://as.example.test"))).toEqual(expected)
    expect(authorizationServerMetadataUrls(new URL("https://as.example.test/"))).toEqual(expected)
  })

  it("lists inserted and appended forms for an issuer with a path", () => {
    expect(authorizationServerMetadataUrls(new URL("https://as.example.test/tenant1"))).toEqual([
      "https://as.example.test/.well-known/oauth-authorization-server/tenant1",
      "https://as.example.test/.well-known/openid-configuration/tenant1",
      "https://as.example.test/tenant1/.well-known/openid-configuration",
    ])
  })

  it("drops one trailing slash of an issuer path", () => {
    expect(authorizationServerMetadataUrls(new URL("https://as.example.test/a/b/"))).toEqual([
      "https://as.example.test/.well-known/oauth-authorization-server/a/b",
      "https://as.example.test/.well-known/openid-configuration/a/b",
      "https://as.example.test/a/b/.well-known/openid-configuration",
    ])
  })

  it("never lists the root URL for an issuer with a path", () => {
    const urls = authorizationServerMetadataUrls(new URL("https://as.example.test/tenant1"))

    expect(urls).not.toContain("https://as.example.test/.well-known/oauth-authorization-server")
    expect(urls).not.toContain("https://as.example.test/.well-known/openid-configuration")
  })
})

describe("withoutQuery", () => {
  it("removes the query and fragment", () => {
    expect(withoutQuery("https://as.example.test/cb?code=SECRET&state=S#frag")).toBe(
      "https://as.example.test/cb",
    )
  })

  it("hides an invalid URL", () => {
    expect(withoutQuery("not a url?code=SECRET")).toBe("<invalid url>")
  })
})
