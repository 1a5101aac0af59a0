/**
 * The grant in flight as hosts see it: the status names the grant of the running sign-in, and
 * a grant without a browser goes from registration straight to `exchanging`.
 */
import { generateKeyPair, SignJWT } from "jose"
import { describe, expect, it } from "vitest"
import { startAuthorizationServer, startResourceServer } from "../support/capability-servers.js"
import { startEngine } from "../support/demo.js"
import { containsInOrder } from "../support/status.js"

describe("grant in the status", () => {
  it("names authorization_code during a browser sign-in", async () => {
    const as = await startAuthorizationServer({ name: "as" })
    const rs = await startResourceServer({ authorizationServer: as })
    const { handle, recorder } = await startEngine(rs.mcpUrl)

    await handle.authenticate()

    const signingIn = recorder.statuses.filter(
      (status) => status.state === "awaitingCallback" || status.state === "exchanging",
    )
    const states = recorder.statesSince()
    expect(containsInOrder(states, ["registering", "awaitingCallback", "exchanging"])).toBe(true)
    expect(signingIn.map((status) => status.grant)).toEqual(
      signingIn.map(() => "authorization_code"),
    )
  })

  it("names jwt_bearer and passes through exchanging", async () => {
    const { privateKey, publicKey } = await generateKeyPair("ES256")
    const as = await startAuthorizationServer({
      name: "as",
      clients: [{ clientId: "workload-client", authMethod: "none" }],
      trustedIssuers: [{ issuer: "https://workload-identity.test", publicKey }],
    })
    const rs = await startResourceServer({ authorizationServer: as })
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: "ES256" })
      .setIssuer("https://workload-identity.test")
      .setSubject("workload")
      .setAudience(as.issuer)
      .setExpirationTime("5m")
      .sign(privateKey)
    const { handle, recorder } = await startEngine(rs.mcpUrl, {
      grant: { type: "jwt_bearer", assertion },
      client: { clientId: "workload-client" },
    })

    await handle.getAccessToken()

    const states = recorder.statesSince()
    const exchanging = recorder.statuses.filter((status) => status.state === "exchanging")
    expect(containsInOrder(states, ["registering", "exchanging", "authenticated"])).toBe(true)
    expect(states).not.toContain("awaitingCallback")
    expect(exchanging.length).toBeGreaterThan(0)
    expect(exchanging.map((status) => status.grant)).toEqual(exchanging.map(() => "jwt_bearer"))
  })
})
