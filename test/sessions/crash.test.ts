/**
 * A process killed with SIGKILL while it refreshes, at a random point, over many trials. Then a
 * new process requests a token. The only loss allowed is a kill between the authorization
 * server's rotation of the refresh token and the write of the new tokens to the store: the
 * server has spent the stored refresh token and the new one died with the process. Every loss
 * must be of that kind, and no kill may leave a record that does not decode or a lock that
 * blocks the next process.
 */
import { readdir } from "node:fs/promises"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { makeTemporaryDirectory, startDemoServers } from "../support/demo.js"
import {
  expireStoredSession,
  findFreePort,
  isRefreshTokenActive,
  readSession,
  signInHere,
  WorkerPool,
} from "./support.js"

const TRIALS = 50
/** Unkilled refreshes timed first, to size the window the kills are spread over. */
const CALIBRATION_RUNS = 3

/** Where a kill landed, judged from the store and the authorization server afterwards. */
type KillPoint =
  /** The worker finished before the kill. */
  | "finished"
  /** The store contains the refreshed session. */
  | "after-write"
  /** The server rotated the refresh token, but the store still contains the old one. */
  | "in-window"
  /** The server never rotated the stored refresh token. */
  | "before-rotation"

interface Trial {
  readonly point: KillPoint
  readonly delayMs: number
  readonly lost: boolean
  readonly failure?: string
}

describe("crash during refresh", () => {
  it("loses a session only inside the rotation window", { timeout: 300_000 }, async () => {
    const started = Date.now()
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: 600,
    })
    const serverUrl = mcpServer.url
    const home = await makeTemporaryDirectory()
    const callbackPort = await findFreePort()
    const pool = new WorkerPool(1)
    await signInHere(serverUrl, home, callbackPort)

    // The time from the request to a stored refresh, measured on an unkilled worker. Its first
    // request also loads modules the engine imports on first use, so only later ones count, as
    // every killed worker has already served one request.
    const durations: number[] = []
    const calibrating = await pool.take()
    for (let run = 0; run <= CALIBRATION_RUNS; run++) {
      await expireStoredSession(home, serverUrl)
      const begin = performance.now()
      const request = calibrating.requestToken(serverUrl, home)
      await request.obtained
      if (run > 0) durations.push(performance.now() - begin)
      expect((await request.result).ok).toBe(true)
    }
    await calibrating.stop()
    const windowMs = Math.max(...durations) * 1.5

    const trials: Trial[] = []
    let signIns = 0
    // Each trial's verifier is a new process; it then serves as the next trial's refresher.
    let refresher = await pool.take()
    for (let index = 0; index < TRIALS; index++) {
      if ((await readSession(home, serverUrl)) === undefined) {
        await signInHere(serverUrl, home, callbackPort)
        signIns++
      }
      const before = await expireStoredSession(home, serverUrl)
      const spentToken = before.tokens.refreshToken
      if (spentToken === undefined) throw new Error("the stored session has no refresh token")

      const delayMs = Math.random() * windowMs
      const request = refresher.requestToken(serverUrl, home)
      const finished = await Promise.race([
        request.result.then(
          () => true,
          () => false,
        ),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), delayMs)),
      ])
      await refresher.kill()

      // Reading the record also proves it still decodes.
      const after = await readSession(home, serverUrl)
      let point: KillPoint
      if (finished) point = "finished"
      else if (after !== undefined && after.generation > before.generation) point = "after-write"
      else if (await isRefreshTokenActive(authorizationServer.issuer, before, spentToken))
        point = "before-rotation"
      else point = "in-window"

      const verifier = await pool.take()
      const outcome = await verifier.requestToken(serverUrl, home).result
      refresher = verifier
      const lost = !outcome.ok
      trials.push({
        point,
        delayMs,
        lost,
        ...(outcome.ok
          ? outcome.mcpStatus === 200
            ? {}
            : { failure: `MCP server answered ${outcome.mcpStatus}` }
          : { failure: `${outcome.errorTag} ${outcome.errorReason}: ${outcome.message}` }),
      })
      // Whatever happened, the store must still decode.
      await readSession(home, serverUrl)
    }
    await refresher.stop()
    await pool.close()

    const count = (point: KillPoint) => trials.filter((trial) => trial.point === point).length
    const lost = trials.filter((trial) => trial.lost)
    const leftovers = (await readdir(join(home, "sessions"))).filter(
      (file) => file.endsWith(".tmp") || file.endsWith(".lock"),
    )
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    console.log(
      `crash test: ${TRIALS} trials, kills spread over ${windowMs.toFixed(0)} ms: ` +
        `${count("before-rotation")} before the rotation, ${count("in-window")} between the ` +
        `rotation and the store write, ${count("after-write")} after the write, ` +
        `${count("finished")} after the process finished; ${lost.length} sessions lost ` +
        `(${lost.filter((trial) => trial.point === "in-window").length} of them in the window), ` +
        `0 corrupt records, ${leftovers.length} leftover temporary or lock files, ` +
        `${authorizationServer.requests.registration} client registration, ${seconds} s`,
    )

    const unexpected = trials.filter((trial) => trial.lost !== (trial.point === "in-window"))
    if (unexpected.length > 0) {
      console.log(
        `crash test: unexpected outcomes: ${unexpected
          .map((trial) => `${trial.point} after ${trial.delayMs.toFixed(0)} ms: ${trial.failure}`)
          .join("; ")}`,
      )
    }

    for (const trial of trials) {
      // A loss happens exactly when the kill fell into the window, and only as invalid_grant.
      expect({ point: trial.point, lost: trial.lost }).toEqual({
        point: trial.point,
        lost: trial.point === "in-window",
      })
      if (trial.lost)
        expect(trial.failure).toMatch(/^SignInRequired session_expired: .*invalid_grant/)
      else expect(trial.failure).toBeUndefined()
    }
    // Each loss is followed by one sign-in at the start of the next trial; a loss in the last
    // trial has no next trial.
    const lastLost = trials.at(-1)?.lost === true
    expect(signIns).toBe(lost.length - (lastLost ? 1 : 0))
    // Sign-ins after a loss reuse the stored client registration.
    expect(authorizationServer.requests.registration).toBe(1)
  })
})
