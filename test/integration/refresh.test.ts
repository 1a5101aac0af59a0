/**
 * Refresh against the real oidc-provider, which rotates refresh tokens and treats a reused one
 * as theft: scheduled refreshes before expiry, one refresh grant for many waiting callers, and
 * the fallback to `authRequired` when the grant is gone.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { makeMemoryKeychain } from "../../src/index.js"
import {
  callWhoami,
  readStoredSession,
  startDemoServers,
  startEngine,
  storedSessionKeys,
} from "../support/demo.js"
import { containsInOrder } from "../support/status.js"
import { rejectionOf } from "../support/wait.js"

describe("scheduled refresh", () => {
  it("refreshes before expiry with rotation", async () => {
    // A 4 s token refreshes at half its lifetime, about 2 s after each grant.
    const { authorizationServer, mcpServer } = await startDemoServers({ accessTokenTtlSeconds: 4 })
    const keychain = makeMemoryKeychain()
    const { handle, recorder } = await startEngine(mcpServer.url, { store: keychain })
    await handle.authenticate()
    const firstToken = await handle.getAccessToken()
    const firstStored = await readStoredSession(keychain)

    const firstMark = recorder.mark()
    await recorder.waitFor("the first scheduled refresh", () =>
      containsInOrder(recorder.statesSince(firstMark), ["refreshing", "authenticated"]),
    )
    const refreshGrants = authorizationServer.requests.token.refresh_token
    const secondToken = await handle.getAccessToken()
    const secondStored = await readStoredSession(keychain)

    expect(refreshGrants).toBe(1)
    expect(handle.status().error).toBeUndefined()
    expect(secondToken).not.toBe(firstToken)
    expect(secondStored.tokens.accessToken).toBe(secondToken)
    expect(secondStored.tokens.refreshToken).toBeTypeOf("string")
    expect(secondStored.tokens.refreshToken).not.toBe(firstStored.tokens.refreshToken)
    expect(secondStored.generation).toBeGreaterThan(firstStored.generation)
    expect((await callWhoami(mcpServer.url, secondToken)).status).toBe(200)

    // oidc-provider revokes the grant when a rotated-out refresh token is used again, so a
    // second refresh succeeds only with the refresh token kept from the first one.
    const secondMark = recorder.mark()
    await recorder.waitFor("the second scheduled refresh", () =>
      containsInOrder(recorder.statesSince(secondMark), ["refreshing", "authenticated"]),
    )
    const thirdToken = await handle.getAccessToken()

    expect(authorizationServer.requests.token.refresh_token).toBe(2)
    expect(handle.status().state).toBe("authenticated")
    expect(handle.status().error).toBeUndefined()
    expect(thirdToken).not.toBe(secondToken)
    expect((await callWhoami(mcpServer.url, thirdToken)).status).toBe(200)
    expect(authorizationServer.requests.token.authorization_code).toBe(1)
  })
})

describe("refresh single flight", () => {
  it("serves 50 callers with one refresh", async () => {
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: 600,
    })
    const { handle } = await startEngine(mcpServer.url)
    await handle.authenticate()
    const oldToken = await handle.getAccessToken()
    authorizationServer.requests.reset()

    handle.service.actor.send({ type: "REFRESH" })
    const stateAfterSend = handle.status().state
    const tokens = await Promise.all(Array.from({ length: 50 }, () => handle.getAccessToken()))

    expect(stateAfterSend).toBe("refreshing")
    expect(new Set(tokens).size).toBe(1)
    expect(tokens[0]).not.toBe(oldToken)
    expect(authorizationServer.requests.token).toEqual({ refresh_token: 1 })
    expect((await callWhoami(mcpServer.url, tokens[0])).status).toBe(200)
  })
})

describe("refresh rejected", () => {
  it("returns to authRequired on invalid_grant", async () => {
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: 600,
    })
    const keychain = makeMemoryKeychain()
    const { handle, recorder } = await startEngine(mcpServer.url, { store: keychain })
    await handle.authenticate()
    await readStoredSession(keychain)

    await authorizationServer.revokeAllGrants()
    handle.service.actor.send({ type: "REFRESH" })
    await recorder.waitForState("authRequired")

    const status = handle.status()
    expect(status.error?.tag).toBe("TokenError")
    expect(status.error?.reason).toBe("invalid_grant")
    expect(status.expiresAt).toBeUndefined()
    expect(authorizationServer.requests.token.refresh_token).toBe(1)
    const error = await rejectionOf(handle.getAccessToken({ interactive: false }))
    expect(error._tag).toBe("SignInRequired")
    expect(error.reason).toBe("session_expired")
    // The tokens are gone; the client registration stays for the next sign-in.
    expect(await storedSessionKeys(keychain)).toEqual([])
    const keys = await Effect.runPromise(keychain.keys)
    expect(keys).toHaveLength(1)
    expect(keys[0]).toMatch(
      `mcp-auth-engine-client:${authorizationServer.issuer}|http://127.0.0.1:`,
    )
  })
})
