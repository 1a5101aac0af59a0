/**
 * DPoP (RFC 9449) through a whole sign-in and three MCP requests. The MCP server challenges
 * with the DPoP scheme. The authorization server first requires its nonce, then checks the
 * proof and issues a DPoP-bound token. The MCP server requires its own nonce and checks every
 * proof: `ath`, `htu`, a fresh `jti` and the token's key.
 */
import { createHash } from "node:crypto"
import { describe, expect, it } from "vitest"
import {
  mcpRequest,
  startAuthorizationServer,
  startResourceServer,
} from "../support/capability-servers.js"
import { startEngine } from "../support/demo.js"

/** How far a proof's `iat` may be from the test's clock, in seconds. */
const IAT_WINDOW_SECONDS = 60

const startDpopFlow = async () => {
  const as = await startAuthorizationServer({
    name: "as",
    requireDpopNonce: true,
    tokenEndpointQuery: "tenant=one",
  })
  const rs = await startResourceServer({
    authorizationServer: as,
    scheme: "DPoP",
    requireDpopNonce: true,
  })
  const { handle } = await startEngine(rs.mcpUrl)
  const statuses: number[] = []
  for (let request = 0; request < 3; request++) {
    const response = await handle.fetch(`${rs.mcpUrl}?session=s1`, mcpRequest())
    await response.arrayBuffer()
    statuses.push(response.status)
  }
  const authenticated = rs.requests.filter((request) => request.authorization !== undefined)
  const accessToken = authenticated[0]?.authorization?.replace(/^DPoP /, "") ?? ""
  return { as, rs, handle, statuses, authenticated, accessToken }
}

describe("DPoP", () => {
  it("answers the server's DPoP challenge with a bound token", async () => {
    const { rs, handle, statuses } = await startDpopFlow()

    expect(statuses).toEqual([200, 200, 200])
    const [unauthenticated] = rs.requests
    expect(unauthenticated?.authorization).toBeUndefined()
    expect(unauthenticated?.status).toBe(401)
    expect(unauthenticated?.wwwAuthenticate).toMatch(/^DPoP /)
    expect(unauthenticated?.wwwAuthenticate).toContain(`resource_metadata="${rs.metadataUrl}"`)
    expect(handle.service.actor.getSnapshot().context.session?.tokens.tokenType).toBe("DPoP")
  })

  it("retries the token request with the server nonce", async () => {
    const { as } = await startDpopFlow()

    expect(as.tokenRequests).toHaveLength(2)
    const [first, second] = as.tokenRequests
    expect(first?.status).toBe(400)
    expect(first?.error).toBe("use_dpop_nonce")
    expect(first?.dpop).toBeDefined()
    expect(second?.status).toBe(200)
    expect(second?.dpop?.payload.nonce).toBe(as.dpopNonce)
  })

  it("sends a valid proof to the token endpoint", async () => {
    const { as } = await startDpopFlow()
    const proof = as.tokenRequests[1]?.dpop
    const now = Math.floor(Date.now() / 1000)

    expect(proof?.header.typ).toBe("dpop+jwt")
    expect(proof?.header.alg).toBe("ES256")
    expect(proof?.header.jwk).toBeDefined()
    expect(proof?.header.jwk).not.toHaveProperty("d")
    expect(proof?.payload.htm).toBe("POST")
    expect(proof?.payload.htu).toBe(as.tokenEndpoint)
    expect(Math.abs(now - (proof?.payload.iat ?? 0))).toBeLessThanOrEqual(IAT_WINDOW_SECONDS)
    expect(proof?.payload.jti).toBeTypeOf("string")
  })

  it("binds the issued token to the proof key", async () => {
    const { as, accessToken } = await startDpopFlow()

    const issued = as.lookup(accessToken)
    expect(issued).toBeDefined()
    expect(issued?.jkt).toBe(as.tokenRequests[1]?.dpop?.thumbprint)
  })

  it("sends resource proofs with ath, htu and the resource nonce", async () => {
    const { rs, authenticated, accessToken } = await startDpopFlow()
    const ath = createHash("sha256").update(accessToken).digest("base64url")

    expect(authenticated.map((request) => request.status)).toEqual([401, 200, 200, 200])
    expect(authenticated[0]?.wwwAuthenticate).toContain('error="use_dpop_nonce"')
    expect(authenticated[0]?.proof?.payload.nonce).toBeUndefined()
    for (const request of authenticated) {
      expect(request.url).toBe(`${rs.mcpUrl}?session=s1`)
      expect(request.proof?.payload.htu).toBe(rs.mcpUrl)
      expect(request.proof?.payload.htm).toBe("POST")
      expect(request.proof?.payload.ath).toBe(ath)
    }
    const later = authenticated.slice(1)
    expect(later.map((request) => request.proof?.payload.nonce)).toEqual(
      later.map(() => rs.dpopNonce),
    )
  })

  it("uses a fresh jti on every request", async () => {
    const { as, authenticated } = await startDpopFlow()
    const jtis = [
      ...as.tokenRequests.map((request) => request.dpop?.payload.jti),
      ...authenticated.map((request) => request.proof?.payload.jti),
    ]

    expect(jtis).toHaveLength(6)
    expect(jtis.every((jti) => typeof jti === "string" && jti !== "")).toBe(true)
    expect(new Set(jtis).size).toBe(jtis.length)
  })

  it("signs with one key for token and resource requests", async () => {
    const { as, authenticated } = await startDpopFlow()
    const thumbprints = new Set([
      ...as.tokenRequests.map((request) => request.dpop?.thumbprint),
      ...authenticated.map((request) => request.proof?.thumbprint),
    ])

    expect(thumbprints.size).toBe(1)
    expect([...thumbprints][0]).toBeTypeOf("string")
  })

  it("never sends the token as Bearer", async () => {
    const { as, rs, accessToken } = await startDpopFlow()
    const authorizations = [...rs.http.requests, ...as.http.requests].map(
      (request) => request.headers.authorization,
    )

    expect(authorizations).not.toContain(`Bearer ${accessToken}`)
    expect(authorizations.some((value) => String(value).startsWith("Bearer"))).toBe(false)
  })
})
