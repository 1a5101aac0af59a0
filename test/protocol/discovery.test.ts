/**
 * The two comparisons discovery makes on metadata: whether a published `resource` identifies
 * the server, and whether a published `issuer` is the one the metadata was looked up for.
 */
import { describe, expect, it } from "vitest"
import { issuerMatches, resourceMatchesServer } from "../../src/protocol/discovery.js"

const server = new URL("https://rs.example.test/api/mcp")

describe("resourceMatchesServer", () => {
  it("accepts the server URL itself", () => {
    expect(resourceMatchesServer("https://rs.example.test/api/mcp", server)).toBe(true)
  })

  it("accepts one trailing slash on either side", () => {
    expect(resourceMatchesServer("https://rs.example.test/api/mcp/", server)).toBe(true)
    expect(
      resourceMatchesServer("https://rs.example.test/api/mcp", new URL(`${server.href}/`)),
    ).toBe(true)
  })

  it("accepts a parent path at a segment boundary", () => {
    expect(resourceMatchesServer("https://rs.example.test/api", server)).toBe(true)
    expect(resourceMatchesServer("https://rs.example.test/api/", server)).toBe(true)
  })

  it("accepts the origin", () => {
    expect(resourceMatchesServer("https://rs.example.test", server)).toBe(true)
    expect(resourceMatchesServer("https://rs.example.test/", server)).toBe(true)
  })

  it("compares the host case-insensitively", () => {
    expect(resourceMatchesServer("https://RS.example.test/api/mcp", server)).toBe(true)
  })

  it("rejects a string prefix that is not a segment", () => {
    expect(resourceMatchesServer("https://rs.example.test/ap", server)).toBe(false)
    expect(resourceMatchesServer("https://rs.example.test/api/mc", server)).toBe(false)
  })

  it("rejects a longer path", () => {
    expect(resourceMatchesServer("https://rs.example.test/api/mcp/admin", server)).toBe(false)
  })

  it("rejects another host, scheme or port", () => {
    expect(resourceMatchesServer("https://other.example.test/api/mcp", server)).toBe(false)
    expect(resourceMatchesServer("http://rs.example.test/api/mcp", server)).toBe(false)
    expect(resourceMatchesServer("https://rs.example.test:8443/api/mcp", server)).toBe(false)
  })

  it("rejects a resource with a fragment", () => {
    expect(resourceMatchesServer("https://rs.example.test/api/mcp#x", server)).toBe(false)
  })

  it("rejects a value that is not an absolute URL", () => {
    expect(resourceMatchesServer("/api/mcp", server)).toBe(false)
    expect(resourceMatchesServer("", server)).toBe(false)
  })
})

describe("issuerMatches", () => {
  it("accepts the same string", () => {
    expect(issuerMatches("https://as.example.test/t1", "https://as.example.test/t1")).toBe(true)
  })

  it("accepts one trailing slash added or removed", () => {
    expect(issuerMatches("https://as.example.test/", "https://as.example.test")).toBe(true)
    expect(issuerMatches("https://as.example.test", "https://as.example.test/")).toBe(true)
    expect(issuerMatches("https://as.example.test/t1", "https://as.example.test/t1/")).toBe(true)
  })

  it("rejects two trailing slashes of difference", () => {
    expect(issuerMatches("https://as.example.test", "https://as.example.test//")).toBe(false)
    expect(issuerMatches("https://as.example.test//", "https://as.example.test")).toBe(false)
  })

  it("rejects a dropped or changed path", () => {
    expect(issuerMatches("https://as.example.test/APPID", "https://as.example.test")).toBe(false)
    expect(issuerMatches("https://as.example.test/t1", "https://as.example.test/t2")).toBe(false)
  })

  it("rejects another host", () => {
    expect(issuerMatches("https://as.example.test", "https://idp.example.test")).toBe(false)
  })

  it("rejects differences a URL parser would normalise", () => {
    expect(issuerMatches("https://as.example.test", "https://AS.example.test")).toBe(false)
    expect(issuerMatches("https://as.example.test", "https://as.example.test:443")).toBe(false)
    expect(issuerMatches("https://as.example.test", "https://as.example.test?x=1")).toBe(false)
  })
})
