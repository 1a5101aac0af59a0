/**
 * Enterprise-managed authorization: the engine exchanges the user's ID token at the identity
 * provider for an ID-JAG (RFC 8693 token exchange), then presents it to the MCP authorization
 * server with the JWT bearer grant and the MCP client's own credentials.
 */
import { Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { makeRecordingBrowser } from "../support/browsers.js"
import {
  ID_JAG_JWT_TYPE,
  ID_JAG_TOKEN_TYPE,
  ID_TOKEN_TYPE,
  JWT_BEARER_GRANT_TYPE,
  makeLoopbackOnlyLayer,
  mcpRequest,
  startAuthorizationServer,
  startIdentityProvider,
  startResourceServer,
  TOKEN_EXCHANGE_GRANT_TYPE,
} from "../support/capability-servers.js"
import { startEngine } from "../support/demo.js"
import { startEffectEngine } from "../support/effect-engine.js"
import { rejectionOf } from "../support/wait.js"

const IDP_CLIENT_ID = "idp-client"
const IDP_CLIENT_SECRET = "idp-secret"
const MCP_CLIENT_ID = "mcp-client"
const MCP_CLIENT_SECRET = "mcp-secret"

const startServers = async () => {
  const idp = await startIdentityProvider({
    clientId: IDP_CLIENT_ID,
    clientSecret: IDP_CLIENT_SECRET,
    resourceClientId: MCP_CLIENT_ID,
  })
  const as = await startAuthorizationServer({
    name: "as",
    clients: [
      { clientId: MCP_CLIENT_ID, authMethod: "client_secret_basic", secret: MCP_CLIENT_SECRET },
    ],
    trustedIssuers: [
      { issuer: idp.issuer, publicKey: idp.publicKey, type: ID_JAG_JWT_TYPE, bindsClient: true },
    ],
  })
  const rs = await startResourceServer({ authorizationServer: as })
  return { idp, as, rs }
}

describe("enterprise-managed authorization", () => {
  it("exchanges the ID token and presents the ID-JAG", async () => {
    const { idp, as, rs } = await startServers()
    const idToken = await idp.issueIdToken("alice")
    const { handle } = await startEngine(rs.mcpUrl, {
      grant: {
        type: "id_jag",
        identityProvider: {
          tokenEndpoint: idp.tokenEndpoint,
          clientId: IDP_CLIENT_ID,
          clientSecret: IDP_CLIENT_SECRET,
          subjectToken: idToken,
        },
      },
      client: { clientId: MCP_CLIENT_ID, clientSecret: MCP_CLIENT_SECRET },
    })

    const response = await handle.fetch(rs.mcpUrl, mcpRequest())
    await response.arrayBuffer()

    expect(idp.exchanges).toHaveLength(1)
    const exchange = idp.exchanges[0]
    expect(exchange?.status).toBe(200)
    expect(exchange?.form.get("grant_type")).toBe(TOKEN_EXCHANGE_GRANT_TYPE)
    expect(exchange?.form.get("requested_token_type")).toBe(ID_JAG_TOKEN_TYPE)
    expect(exchange?.form.get("subject_token")).toBe(idToken)
    expect(exchange?.form.get("subject_token_type")).toBe(ID_TOKEN_TYPE)
    expect(exchange?.form.get("audience")).toBe(as.issuer)
    expect(exchange?.form.get("resource")).toBe(rs.mcpUrl)
    expect(exchange?.form.get("client_id")).toBe(IDP_CLIENT_ID)

    expect(as.tokenRequests).toHaveLength(1)
    const grant = as.tokenRequests[0]
    const basic = Buffer.from(`${MCP_CLIENT_ID}:${MCP_CLIENT_SECRET}`).toString("base64")
    expect(grant?.grantType).toBe(JWT_BEARER_GRANT_TYPE)
    expect(grant?.form.get("assertion")).toBe(exchange?.idJag)
    expect(grant?.authorization).toBe(`Basic ${basic}`)
    expect(grant?.grantAssertion?.sub).toBe("alice")
    expect(grant?.status).toBe(200)
    expect(response.status).toBe(200)
    expect(rs.requests.at(-1)?.token?.grantType).toBe(JWT_BEARER_GRANT_TYPE)
  })

  it("refuses an identity provider endpoint off https and loopback", async () => {
    const { as, rs } = await startServers()
    const browser = makeRecordingBrowser()
    const guarded = makeLoopbackOnlyLayer(browser.layer)
    const engine = await startEffectEngine(
      {
        serverUrl: rs.mcpUrl,
        callbackPort: 0,
        grant: {
          type: "id_jag",
          identityProvider: {
            tokenEndpoint: "http://idp.example/oauth2/token",
            clientId: IDP_CLIENT_ID,
            clientSecret: Redacted.make(IDP_CLIENT_SECRET),
            subjectToken: Redacted.make("header.payload.signature"),
          },
        },
        client: { clientId: MCP_CLIENT_ID, clientSecret: Redacted.make(MCP_CLIENT_SECRET) },
      },
      guarded.layer,
    )

    const error = await rejectionOf(engine.run(engine.service.getAccessToken()))

    expect(error._tag).toBe("TokenError")
    expect(error.reason).toBe("invalid_response")
    expect(error.grant).toBe("token_exchange")
    expect(guarded.refusedUrls).toEqual([])
    expect(as.tokenRequests).toEqual([])
    expect(browser.calls).toEqual([])
  })
})
