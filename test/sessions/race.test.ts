/**
 * Eight processes share one file store and ask for a token at the same moment, right after the
 * access token expired, over and over. The authorization server rotates refresh tokens and
 * revokes the whole grant when a rotated-out one comes back, so a second refresh with the same
 * token would surface as `invalid_grant`. The session lock must let exactly one process refresh
 * per expiry while the others reuse what it stored.
 */
import { describe, expect, it } from "vitest"
import { makeTemporaryDirectory, startDemoServers } from "../support/demo.js"
import { findFreePort, readSession, signInHere, TokenWorker, type WorkerResult } from "./support.js"

const PROCESSES = 8
const EXPIRIES = 20
/**
 * Short enough for 20 expiries in under two minutes. Long enough that a token handed out right
 * after a refresh still works when a process slowed by a loaded machine calls the MCP server
 * with it: at 2 s, a loaded 2-core machine saw fresh tokens expire before that call.
 */
const ACCESS_TOKEN_TTL_SECONDS = 4

describe("refresh race between processes", () => {
  it("refreshes once per expiry for 8 processes", { timeout: 180_000 }, async () => {
    const started = Date.now()
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS,
    })
    const home = await makeTemporaryDirectory()
    const workers = await Promise.all(Array.from({ length: PROCESSES }, () => TokenWorker.start()))
    await signInHere(mcpServer.url, home, await findFreePort())
    authorizationServer.requests.reset()

    const refreshesPerExpiry: number[] = []
    const failures: WorkerResult[] = []
    const rejectedByServer: number[] = []
    const distinctTokens: number[] = []
    for (let expiry = 0; expiry < EXPIRIES; expiry++) {
      const stored = await readSession(home, mcpServer.url)
      const expiresAt = stored?.tokens.expiresAt ?? 0
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now() + 50)))

      const before = authorizationServer.requests.token.refresh_token ?? 0
      const results = await Promise.all(
        workers.map((worker) => worker.requestToken(mcpServer.url, home).result),
      )
      refreshesPerExpiry.push((authorizationServer.requests.token.refresh_token ?? 0) - before)
      const succeeded = results.filter((result) => result.ok)
      failures.push(...results.filter((result) => !result.ok))
      rejectedByServer.push(succeeded.filter((result) => result.mcpStatus !== 200).length)
      distinctTokens.push(new Set(succeeded.map((result) => result.tokenDigest)).size)
    }
    await Promise.all(workers.map((worker) => worker.stop()))

    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    const refreshes = refreshesPerExpiry.reduce((sum, count) => sum + count, 0)
    console.log(
      `race test: ${PROCESSES} processes x ${EXPIRIES} expiries: ${refreshes} refresh requests ` +
        `(per expiry: ${refreshesPerExpiry.join(",")}), ${failures.length} failed token requests, ` +
        `${rejectedByServer.reduce((sum, count) => sum + count, 0)} tokens rejected by the MCP ` +
        `server, ${authorizationServer.requests.authorization} authorizations, ${seconds} s`,
    )

    expect(failures).toEqual([])
    expect(refreshesPerExpiry).toEqual(Array.from({ length: EXPIRIES }, () => 1))
    expect(rejectedByServer).toEqual(Array.from({ length: EXPIRIES }, () => 0))
    expect(distinctTokens).toEqual(Array.from({ length: EXPIRIES }, () => 1))
    expect(authorizationServer.requests.authorization).toBe(0)
    expect(authorizationServer.requests.registration).toBe(0)
  })
})
