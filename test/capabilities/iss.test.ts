/**
 * RFC 9207 `iss` in the authorization response, through a whole headless sign-in: the server
 * advertises the parameter and redirects with its exact issuer. Rejections of a wrong or
 * missing `iss` are covered by the security tests.
 */
import { describe, expect, it } from "vitest"
import { startAuthorizationServer, startResourceServer } from "../support/capability-servers.js"
import { startEngine } from "../support/demo.js"

describe("authorization response iss", () => {
  it("accepts the exact issuer and exchanges the code", async () => {
    const as = await startAuthorizationServer({ name: "as", issParameterSupported: true })
    const rs = await startResourceServer({ authorizationServer: as })
    const { handle } = await startEngine(rs.mcpUrl)

    const token = await handle.getAccessToken()

    expect(as.metadata.authorization_response_iss_parameter_supported).toBe(true)
    expect(as.authorizations).toHaveLength(1)
    const redirect = new URL(as.authorizations[0]?.location ?? "about:blank")
    expect(redirect.searchParams.get("iss")).toBe(as.issuer)
    expect(as.tokenRequests).toHaveLength(1)
    const exchange = as.tokenRequests[0]
    expect(exchange?.grantType).toBe("authorization_code")
    expect(exchange?.form.get("code")).toBe(redirect.searchParams.get("code"))
    expect(exchange?.status).toBe(200)
    expect(as.lookup(token)?.grantType).toBe("authorization_code")
    expect(handle.status().state).toBe("authenticated")
  })
})
