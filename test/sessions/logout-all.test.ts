/**
 * The CLI over several stored sessions: `status` lists each with its issuer, and `logout --all`
 * deletes every session and revokes its tokens at its own authorization server.
 */
import { Effect, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { callWhoami, makeTemporaryDirectory, startDemoServers } from "../support/demo.js"
import { fileStoreOf, findFreePort, readSession, runCli, signInHere } from "./support.js"

describe("CLI with several sessions", () => {
  it("lists every session and signs out of all", { timeout: 60_000 }, async () => {
    const one = await startDemoServers({ accessTokenTtlSeconds: 600 })
    const two = await startDemoServers({ accessTokenTtlSeconds: 600 })
    const home = await makeTemporaryDirectory()
    const callbackPort = await findFreePort()
    await signInHere(one.mcpServer.url, home, callbackPort)
    await signInHere(two.mcpServer.url, home, callbackPort)
    const tokens: string[] = []
    for (const { mcpServer } of [one, two]) {
      const stored = await readSession(home, mcpServer.url)
      if (stored === undefined) throw new Error(`no session for ${mcpServer.url}`)
      tokens.push(Redacted.value(stored.tokens.accessToken))
      expect(
        (await callWhoami(mcpServer.url, Redacted.value(stored.tokens.accessToken))).status,
      ).toBe(200)
    }

    const status = await runCli(["status", "--store", "file"], home)
    expect(status.stderr).toBe("")
    expect(status.code).toBe(0)
    for (const { authorizationServer, mcpServer } of [one, two]) {
      expect(status.stdout).toContain(`${mcpServer.url}\n  issuer:  ${authorizationServer.issuer}`)
    }
    expect(status.stdout).toContain(`store:   file (${home}/sessions)`)

    const logout = await runCli(["logout", "--all", "--store", "file"], home)
    expect(logout.stderr).toBe("")
    expect(logout.code).toBe(0)
    expect(logout.stdout.trim().split("\n").sort()).toEqual(
      [`Signed out of ${one.mcpServer.url}.`, `Signed out of ${two.mcpServer.url}.`].sort(),
    )
    expect(one.authorizationServer.requests.revocation).toBe(2)
    expect(two.authorizationServer.requests.revocation).toBe(2)
    expect(await readSession(home, one.mcpServer.url)).toBeUndefined()
    expect(await readSession(home, two.mcpServer.url)).toBeUndefined()
    for (const [index, { mcpServer }] of [one, two].entries()) {
      expect((await callWhoami(mcpServer.url, tokens[index])).status).toBe(401)
    }
    // Only the two client registrations remain.
    const keys = await Effect.runPromise(fileStoreOf(home).keys)
    expect(keys.filter((key) => key.startsWith("mcp-auth-engine-client:"))).toHaveLength(2)
    expect(keys).toHaveLength(2)

    const again = await runCli(["logout", "--all", "--store", "file"], home)
    expect(again.code).toBe(0)
    expect(again.stdout.trim()).toBe("No stored sessions.")
  })

  it("logout needs a server URL or --all", async () => {
    const home = await makeTemporaryDirectory()
    const result = await runCli(["logout", "--store", "file"], home)
    expect(result.code).toBe(2)
    expect(result.stderr.trim()).toBe(
      "error: missing <server-url>; give the server to sign out of, or --all for every session",
    )
  })
})
