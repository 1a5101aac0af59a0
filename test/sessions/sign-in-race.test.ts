/**
 * Several processes need a sign-in for the same server at the same moment, with nothing stored.
 * The sign-in lock lets one of them run the browser flow while the others wait, then reuse the
 * session it stored, so the authorization server sees one registration and one authorization.
 */
import { describe, expect, it } from "vitest"
import { makeTemporaryDirectory, startDemoServers } from "../support/demo.js"
import { readSession, TokenWorker } from "./support.js"

const PROCESSES = 6

describe("sign-in race between processes", () => {
  it("signs in once for 6 processes", { timeout: 120_000 }, async () => {
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: 60,
    })
    const home = await makeTemporaryDirectory()
    const workers = await Promise.all(Array.from({ length: PROCESSES }, () => TokenWorker.start()))

    const results = await Promise.all(
      workers.map((worker) => worker.requestToken(mcpServer.url, home, true).result),
    )
    await Promise.all(workers.map((worker) => worker.stop()))

    const succeeded = results.filter((result) => result.ok)
    expect(results.filter((result) => !result.ok)).toEqual([])
    expect(succeeded).toHaveLength(PROCESSES)
    expect(new Set(succeeded.map((result) => result.tokenDigest)).size).toBe(1)
    expect(succeeded.every((result) => result.mcpStatus === 200)).toBe(true)
    expect(authorizationServer.requests.authorization).toBe(1)
    expect(authorizationServer.requests.registration).toBe(1)
    expect(authorizationServer.requests.token.authorization_code).toBe(1)
    expect(await readSession(home, mcpServer.url)).toBeDefined()
  })
})
