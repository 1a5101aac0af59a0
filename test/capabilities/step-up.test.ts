/**
 * Step-up authorization: a 403 `insufficient_scope` after a grant of `a` leads to a new
 * authorization request for the union of what was granted and what the server asked for. A
 * server that keeps asking for the same scope stops the engine after a bounded number of
 * attempts.
 */
import { describe, expect, it } from "vitest"
import { MAX_STEP_UP_ATTEMPTS } from "../../src/index.js"
import {
  mcpRequest,
  startAuthorizationServer,
  startResourceServer,
} from "../support/capability-servers.js"
import { startEngine } from "../support/demo.js"
import type { Rejection } from "../support/wait.js"

/** The most MCP requests a test sends while the engine keeps stepping up. */
const MAX_REQUESTS = 6

const sortedScopes = (scope: string | null | undefined): string =>
  (scope ?? "")
    .split(" ")
    .filter((token) => token !== "")
    .sort()
    .join(" ")

describe("step-up authorization", () => {
  it("requests the union of granted and challenged scopes", async () => {
    const as = await startAuthorizationServer({ name: "as" })
    const rs = await startResourceServer({
      authorizationServer: as,
      scopesSupported: ["a"],
      requiredScope: "b",
    })
    const { handle } = await startEngine(rs.mcpUrl)

    const first = await handle.fetch(rs.mcpUrl, mcpRequest())
    await first.arrayBuffer()
    const second = await handle.fetch(rs.mcpUrl, mcpRequest())
    await second.arrayBuffer()

    expect(first.status).toBe(403)
    expect(first.headers.get("www-authenticate")).toContain('scope="b"')
    expect(as.authorizations).toHaveLength(2)
    expect(sortedScopes(as.authorizations[0]?.params.get("scope"))).toBe("a")
    expect(sortedScopes(as.authorizations[1]?.params.get("scope"))).toBe("a b")
    expect(second.status).toBe(200)
    expect(sortedScopes(rs.requests.at(-1)?.token?.scope)).toBe("a b")
  })

  it("stops after repeated requests for one scope", async () => {
    // The server grants only `a`, so every retry still lacks `b`.
    const as = await startAuthorizationServer({ name: "as", grantScope: () => "a" })
    const rs = await startResourceServer({
      authorizationServer: as,
      scopesSupported: ["a"],
      requiredScope: "b",
    })
    const { handle } = await startEngine(rs.mcpUrl)

    const statuses: number[] = []
    let failure: Rejection | undefined
    for (let request = 0; request < MAX_REQUESTS && failure === undefined; request++) {
      try {
        const response = await handle.fetch(rs.mcpUrl, mcpRequest())
        await response.arrayBuffer()
        statuses.push(response.status)
      } catch (error) {
        failure = error as Rejection
      }
    }

    const stepUpAttempts = as.authorizations.filter(
      (authorization) => sortedScopes(authorization.params.get("scope")) === "a b",
    )
    expect(failure?._tag).toBe("SignInRequired")
    expect(failure?.reason).toBe("step_up_limit")
    expect(statuses.every((status) => status === 403)).toBe(true)
    expect(stepUpAttempts.length).toBeGreaterThan(0)
    expect(stepUpAttempts.length).toBeLessThanOrEqual(MAX_STEP_UP_ATTEMPTS)
    expect(handle.status().state).toBe("failed")
  })
})
