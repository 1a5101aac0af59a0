/**
 * Workload identity: the JWT bearer grant (RFC 7523 §2.1) with an assertion the host supplies.
 * A refused assertion ends the sign-in after one token request, with no other grant tried.
 */
import { randomUUID } from "node:crypto"
import { type CryptoKey, generateKeyPair, SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import {
  JWT_BEARER_GRANT_TYPE,
  startAuthorizationServer,
  startResourceServer,
} from "../support/capability-servers.js"
import { startEngine } from "../support/demo.js"
import { rejectionOf } from "../support/wait.js"

const WORKLOAD_ISSUER = "https://workload-identity.test"
const WORKLOAD_SUBJECT = "spiffe://cluster.test/ns/tools/sa/agent"
const CLIENT_ID = "workload-client"

const signAssertion = (privateKey: CryptoKey, audience: string): Promise<string> =>
  new SignJWT({})
    .setProtectedHeader({ alg: "ES256", typ: "JWT" })
    .setIssuer(WORKLOAD_ISSUER)
    .setSubject(WORKLOAD_SUBJECT)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime("5m")
    .setJti(randomUUID())
    .sign(privateKey)

const startServers = async () => {
  const { privateKey, publicKey } = await generateKeyPair("ES256")
  const as = await startAuthorizationServer({
    name: "as",
    clients: [{ clientId: CLIENT_ID, authMethod: "none" }],
    trustedIssuers: [{ issuer: WORKLOAD_ISSUER, publicKey }],
  })
  const rs = await startResourceServer({ authorizationServer: as })
  return { as, rs, privateKey }
}

describe("JWT bearer grant with a supplied assertion", () => {
  it("obtains a token for the workload", async () => {
    const { as, rs, privateKey } = await startServers()
    const assertion = await signAssertion(privateKey, as.issuer)
    const { handle } = await startEngine(rs.mcpUrl, {
      grant: { type: "jwt_bearer", assertion },
      client: { clientId: CLIENT_ID },
    })

    const token = await handle.getAccessToken()

    expect(as.tokenRequests).toHaveLength(1)
    const request = as.tokenRequests[0]
    expect(request?.grantType).toBe(JWT_BEARER_GRANT_TYPE)
    expect(request?.form.get("assertion")).toBe(assertion)
    expect(request?.form.get("resource")).toBe(rs.mcpUrl)
    expect(request?.grantAssertion?.sub).toBe(WORKLOAD_SUBJECT)
    expect(request?.status).toBe(200)
    expect(as.lookup(token)?.grantType).toBe(JWT_BEARER_GRANT_TYPE)
    expect(as.authorizations).toEqual([])
  })

  it("makes one request and no other grant after invalid_grant", async () => {
    const { as, rs, privateKey } = await startServers()
    // An assertion for another authorization server, which this one refuses.
    const assertion = await signAssertion(privateKey, "https://other-as.test")
    const { handle } = await startEngine(rs.mcpUrl, {
      grant: { type: "jwt_bearer", assertion },
      client: { clientId: CLIENT_ID },
    })

    const error = await rejectionOf(handle.getAccessToken())

    expect(error._tag).toBe("TokenError")
    expect(error.reason).toBe("invalid_grant")
    expect(as.tokenRequests).toHaveLength(1)
    expect(as.tokenRequests[0]?.status).toBe(400)
    expect(as.tokenRequests[0]?.error).toBe("invalid_grant")
    expect(as.tokenRequests.map((request) => request.grantType)).toEqual([JWT_BEARER_GRANT_TYPE])
    expect(as.http.wasRequested("GET /authorize")).toBe(false)
    expect(as.registrations).toEqual([])
    expect(handle.status().state).toBe("failed")
  })
})
