/**
 * Stored sessions against the real oidc-provider: a second engine on the same store starts
 * signed in without contacting the authorization server, and logout revokes the tokens there
 * before a later engine or a direct refresh can use them.
 */
import { join } from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { makeFileKeychain, makeMemoryKeychain } from "../../src/index.js"
import {
  callWhoami,
  makeTemporaryDirectory,
  readStoredSession,
  startDemoServers,
  startEngine,
  storedSessionKeys,
  whoamiRequest,
} from "../support/demo.js"
import { rejectionOf } from "../support/wait.js"

describe("stored session", () => {
  it("restores a session from the file store", async () => {
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: 600,
    })
    const home = await makeTemporaryDirectory()
    const first = await startEngine(mcpServer.url, { store: "file", home })
    await first.handle.authenticate()
    const firstToken = await first.handle.getAccessToken()
    await first.handle.dispose()
    authorizationServer.requests.reset()

    const second = await startEngine(mcpServer.url, { store: "file", home })
    await second.recorder.waitForState("authenticated")
    const secondToken = await second.handle.getAccessToken({ interactive: false })
    const response = await second.handle.fetch(mcpServer.url, whoamiRequest())

    expect(second.recorder.statesSince()).toEqual(["idle", "authenticated"])
    expect(secondToken).toBe(firstToken)
    expect(response.status).toBe(200)
    expect(authorizationServer.requests.registration).toBe(0)
    expect(authorizationServer.requests.authorization).toBe(0)
    expect(authorizationServer.requests.token).toEqual({})
    expect(authorizationServer.requests.revocation).toBe(0)
    expect(authorizationServer.requests.introspection).toBe(0)
    const stored = await readStoredSession(makeFileKeychain(join(home, "sessions")))
    expect(stored.tokens.accessToken).toBe(firstToken)
  })

  it("refreshes a stored session whose token expired", async () => {
    // The token expires while no engine runs: the next engine refreshes it at start.
    const { authorizationServer, mcpServer } = await startDemoServers({ accessTokenTtlSeconds: 2 })
    const keychain = makeMemoryKeychain()
    const first = await startEngine(mcpServer.url, { store: keychain })
    await first.handle.authenticate()
    const firstToken = await first.handle.getAccessToken()
    const expiresAt = first.handle.status().expiresAt ?? 0
    await first.handle.dispose()
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now() + 50)))
    authorizationServer.requests.reset()

    const second = await startEngine(mcpServer.url, { store: keychain })
    const secondToken = await second.handle.getAccessToken({ interactive: false })

    expect(second.recorder.statesSince()).toContain("refreshing")
    expect(secondToken).not.toBe(firstToken)
    expect(authorizationServer.requests.token).toEqual({ refresh_token: 1 })
    expect(authorizationServer.requests.authorization).toBe(0)
    expect((await callWhoami(mcpServer.url, secondToken)).status).toBe(200)
  })
})

describe("logout", () => {
  it("revokes the tokens and deletes the session", async () => {
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: 600,
    })
    const keychain = makeMemoryKeychain()
    const first = await startEngine(mcpServer.url, { store: keychain })
    await first.handle.authenticate()
    const stored = await readStoredSession(keychain)
    const refreshToken = stored.tokens.refreshToken ?? ""
    expect(refreshToken).not.toBe("")
    authorizationServer.requests.reset()

    await first.handle.logout()

    expect(first.handle.status().state).toBe("idle")
    expect(authorizationServer.requests.revocation).toBe(2)
    expect(await storedSessionKeys(keychain)).toEqual([])
    // Signing out keeps the client registration, so the next sign-in does not register again.
    const remaining = await Effect.runPromise(keychain.keys)
    expect(remaining).toHaveLength(1)
    expect(remaining[0]).toMatch(/^mcp-auth-engine-client:/)

    const refresh = await fetch(stored.authorizationServer.token_endpoint, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "refresh_token",
        client_id: stored.client.clientId,
        refresh_token: refreshToken,
      }),
    })
    const refreshBody = (await refresh.json()) as { error?: string }
    expect(refresh.status).toBe(400)
    expect(refreshBody.error).toBe("invalid_grant")
    expect((await callWhoami(mcpServer.url, stored.tokens.accessToken)).status).toBe(401)

    const second = await startEngine(mcpServer.url, { store: keychain })
    await second.recorder.waitFor("the stored session lookup", () => second.recorder.latest.loaded)
    const error = await rejectionOf(second.handle.getAccessToken({ interactive: false }))
    expect(second.handle.status().state).toBe("idle")
    expect(error._tag).toBe("SignInRequired")
    expect(error.reason).toBe("no_session")
  })
})
