/**
 * A session outlives the process that signed in. After a sign-in in this process, a new CLI
 * process prints a token without a browser. After the access token expired, another one
 * refreshes it at the real oidc-provider, which rotates refresh tokens.
 */
import { describe, expect, it } from "vitest"
import { callWhoami, makeTemporaryDirectory, startDemoServers } from "../support/demo.js"
import { findFreePort, readSession, runCli, signInHere } from "./support.js"

describe("session across restarts", () => {
  it("serves and refreshes tokens in new processes", { timeout: 60_000 }, async () => {
    const { authorizationServer, mcpServer } = await startDemoServers({ accessTokenTtlSeconds: 8 })
    const home = await makeTemporaryDirectory()
    await signInHere(mcpServer.url, home, await findFreePort())
    const signedIn = await readSession(home, mcpServer.url)
    authorizationServer.requests.reset()

    // A new process while the access token is still valid: no request to the server at all.
    const first = await runCli(["token", mcpServer.url, "--store", "file"], home)
    expect(first.stderr).toBe("")
    expect(first.code).toBe(0)
    const firstToken = first.stdout.trim()
    expect((await callWhoami(mcpServer.url, firstToken)).status).toBe(200)
    expect(authorizationServer.requests.token).toEqual({})
    expect(authorizationServer.requests.authorization).toBe(0)

    // Another process after expiry: one refresh grant, still no browser.
    const expiresAt = signedIn?.tokens.expiresAt ?? 0
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now() + 100)))
    const second = await runCli(["token", mcpServer.url, "--store", "file"], home)
    expect(second.stderr).toBe("")
    expect(second.code).toBe(0)
    const secondToken = second.stdout.trim()
    expect(secondToken).not.toBe(firstToken)
    expect((await callWhoami(mcpServer.url, secondToken)).status).toBe(200)
    expect(authorizationServer.requests.token).toEqual({ refresh_token: 1 })
    expect(authorizationServer.requests.authorization).toBe(0)
    expect(authorizationServer.requests.registration).toBe(0)

    const refreshed = await readSession(home, mcpServer.url)
    expect(refreshed?.generation).toBeGreaterThan(signedIn?.generation ?? 0)
    expect(refreshed?.client.clientId).toBe(signedIn?.client.clientId)
  })
})
