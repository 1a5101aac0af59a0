/**
 * First sign-in against the real oidc-provider and MCP SDK server on loopback. The engine's
 * `fetch` turns a 401 into discovery, Dynamic Client Registration, the PKCE authorization
 * request and the code exchange, then retries the call. The headless user agent follows the
 * authorization server's redirects.
 */
import { describe, expect, it } from "vitest"
import {
  callWhoami,
  readWhoami,
  startDemoServers,
  startEngine,
  whoamiRequest,
} from "../support/demo.js"
import { rejectionOf } from "../support/wait.js"

describe("first sign-in", () => {
  it("signs in on 401 and retries", async () => {
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: 600,
    })
    const { handle, recorder } = await startEngine(mcpServer.url)

    const response = await handle.fetch(mcpServer.url, whoamiRequest())

    expect(response.status).toBe(200)
    const whoami = await readWhoami(response)
    expect(whoami.sub).toBe("demo-user")
    expect(whoami.scope).toBe("mcp:tools")
    expect(recorder.statesSince().filter((state) => state !== "idle")).toEqual([
      "authRequired",
      "waitingForLock",
      "discovering",
      "registering",
      "awaitingCallback",
      "exchanging",
      "authenticated",
    ])
    expect(handle.status().state).toBe("authenticated")
    expect(handle.status().error).toBeUndefined()
    expect(authorizationServer.requests.registration).toBe(1)
    expect(authorizationServer.requests.authorization).toBe(1)
    expect(authorizationServer.requests.token).toEqual({ authorization_code: 1 })
    expect(mcpServer.requests.unauthorized).toBe(1)
    expect(mcpServer.requests.authorized).toBe(1)
  })

  it("reports authorization server during sign-in", async () => {
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: 600,
    })
    const { handle, recorder } = await startEngine(mcpServer.url)

    await handle.authenticate()

    const awaiting = recorder.statuses.find((status) => status.state === "awaitingCallback")
    expect(awaiting?.authorizationServer).toBe(authorizationServer.issuer)
    expect(handle.status().scope).toBe("mcp:tools")
    expect(handle.status().expiresAt).toBeGreaterThan(Date.now())
  })

  it("runs one sign-in for 50 callers", async () => {
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: 600,
    })
    const { handle } = await startEngine(mcpServer.url)

    const tokens = await Promise.all(Array.from({ length: 50 }, () => handle.getAccessToken()))

    expect(new Set(tokens).size).toBe(1)
    expect(authorizationServer.requests.registration).toBe(1)
    expect(authorizationServer.requests.authorization).toBe(1)
    expect(authorizationServer.requests.token).toEqual({ authorization_code: 1 })
    const response = await callWhoami(mcpServer.url, tokens[0])
    expect(response.status).toBe(200)
  })

  it("fails with access_denied on denial", async () => {
    const { authorizationServer, mcpServer } = await startDemoServers()
    authorizationServer.setConsent("deny")
    const { handle } = await startEngine(mcpServer.url)

    const error = await rejectionOf(handle.authenticate())

    expect(error._tag).toBe("AuthorizationError")
    expect(error.reason).toBe("access_denied")
    expect(handle.status().state).toBe("failed")
    expect(handle.status().error?.reason).toBe("access_denied")
    expect(authorizationServer.requests.authorization).toBeGreaterThan(0)
    expect(authorizationServer.requests.token).toEqual({})
  })

  it("rejects non-interactive request without session", async () => {
    const { authorizationServer, mcpServer } = await startDemoServers()
    const { handle } = await startEngine(mcpServer.url)

    const error = await rejectionOf(handle.getAccessToken({ interactive: false }))

    expect(error._tag).toBe("SignInRequired")
    expect(error.reason).toBe("no_session")
    expect(authorizationServer.requests.registration).toBe(0)
    expect(authorizationServer.requests.authorization).toBe(0)
  })
})
