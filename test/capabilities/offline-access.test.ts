/**
 * `offline_access`: requested with the resource's scopes when the authorization server lists
 * it, never otherwise, and never added to an authorization request that omits `scope`. Dynamic
 * Client Registration requests a native client that may use refresh tokens.
 */
import { describe, expect, it } from "vitest"
import { startAuthorizationServer, startResourceServer } from "../support/capability-servers.js"
import { startEngine } from "../support/demo.js"

const scopesOf = (scope: string | null | undefined): string[] =>
  (scope ?? "").split(" ").filter((token) => token !== "")

describe("offline_access", () => {
  it("is requested when the server lists it", async () => {
    const as = await startAuthorizationServer({
      name: "as",
      scopesSupported: ["mcp:read", "offline_access"],
    })
    const rs = await startResourceServer({ authorizationServer: as, scopesSupported: ["mcp:read"] })
    const { handle } = await startEngine(rs.mcpUrl)

    await handle.authenticate()

    expect(as.authorizations).toHaveLength(1)
    const requested = scopesOf(as.authorizations[0]?.params.get("scope"))
    expect(requested).toContain("offline_access")
    expect(requested).toContain("mcp:read")
  })

  it("is never requested when the server omits it", async () => {
    const as = await startAuthorizationServer({ name: "as", scopesSupported: ["mcp:read"] })
    const rs = await startResourceServer({ authorizationServer: as, scopesSupported: ["mcp:read"] })
    const { handle } = await startEngine(rs.mcpUrl)

    await handle.authenticate()

    expect(as.authorizations).toHaveLength(1)
    expect(scopesOf(as.authorizations[0]?.params.get("scope"))).toEqual(["mcp:read"])
    const tokenScopes = as.tokenRequests.flatMap((r) => scopesOf(r.form.get("scope")))
    expect(tokenScopes).not.toContain("offline_access")
  })

  it("is not added to an omitted scope", async () => {
    const as = await startAuthorizationServer({
      name: "as",
      scopesSupported: ["mcp:read", "offline_access"],
    })
    const rs = await startResourceServer({ authorizationServer: as })
    const { handle } = await startEngine(rs.mcpUrl)

    await handle.authenticate()

    expect(as.authorizations).toHaveLength(1)
    expect(as.authorizations[0]?.params.has("scope")).toBe(false)
    expect(as.tokenRequests[0]?.form.has("scope")).toBe(false)
  })

  it("registers a native client that may refresh", async () => {
    const as = await startAuthorizationServer({
      name: "as",
      scopesSupported: ["mcp:read", "offline_access"],
    })
    const rs = await startResourceServer({ authorizationServer: as, scopesSupported: ["mcp:read"] })
    const { handle } = await startEngine(rs.mcpUrl)

    await handle.authenticate()

    expect(as.registrations).toHaveLength(1)
    const body = as.registrations[0]?.body
    expect(body?.grant_types).toContain("refresh_token")
    expect(body?.grant_types).toContain("authorization_code")
    expect(body?.application_type).toBe("native")
  })
})
