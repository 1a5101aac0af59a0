/**
 * The client credentials grant with `private_key_jwt` (RFC 7523 §2.2): the client signs an
 * assertion with its PKCS#8 key, and the authorization server verifies it with the public key.
 */
import { exportPKCS8, generateKeyPair } from "jose"
import { describe, expect, it } from "vitest"
import {
  CLIENT_ASSERTION_TYPE,
  startAuthorizationServer,
  startResourceServer,
} from "../support/capability-servers.js"
import { startEngine } from "../support/demo.js"

const CLIENT_ID = "signing-client"
/** The maximum assertion lifetime, in seconds, that the test accepts as short. */
const MAX_ASSERTION_LIFETIME_SECONDS = 300

describe("client credentials with private_key_jwt", () => {
  it("authenticates with a verified client assertion", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true })
    const as = await startAuthorizationServer({
      name: "as",
      authMethods: ["private_key_jwt"],
      clients: [{ clientId: CLIENT_ID, authMethod: "private_key_jwt", publicKey }],
    })
    const rs = await startResourceServer({ authorizationServer: as })
    const { handle } = await startEngine(rs.mcpUrl, {
      grant: { type: "client_credentials" },
      client: { clientId: CLIENT_ID, privateKeyPem: await exportPKCS8(privateKey) },
    })

    const token = await handle.getAccessToken()

    expect(as.tokenRequests).toHaveLength(1)
    const request = as.tokenRequests[0]
    expect(request?.status).toBe(200)
    expect(request?.grantType).toBe("client_credentials")
    expect(request?.authenticated?.method).toBe("private_key_jwt")
    expect(request?.form.get("client_assertion_type")).toBe(CLIENT_ASSERTION_TYPE)
    const claims = request?.clientAssertion?.payload
    expect(claims?.iss).toBe(CLIENT_ID)
    expect(claims?.sub).toBe(CLIENT_ID)
    expect(claims?.aud).toBe(as.issuer)
    expect(claims?.exp).toBeTypeOf("number")
    expect((claims?.exp ?? 0) - (claims?.iat ?? 0)).toBeLessThanOrEqual(
      MAX_ASSERTION_LIFETIME_SECONDS,
    )
    expect(claims?.jti).toBeTypeOf("string")
    expect(claims?.jti).not.toBe("")
    expect(request?.form.has("client_secret")).toBe(false)
    expect(request?.authorization).toBeUndefined()
    expect(as.lookup(token)?.clientId).toBe(CLIENT_ID)
  })
})
