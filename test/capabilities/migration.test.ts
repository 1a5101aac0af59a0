/**
 * Authorization server migration: the MCP server first names AS1 in its protected resource
 * metadata, then names AS2 and rejects AS1 tokens with a 401 that points at the metadata. The
 * engine must read the metadata again, register at AS2 and sign in there, without sending
 * either server the other's client id.
 */
import { describe, expect, it } from "vitest"
import {
  type CapabilityAuthorizationServer,
  mcpRequest,
  requestsMention,
  startAuthorizationServer,
  startResourceServer,
} from "../support/capability-servers.js"
import { startEngine } from "../support/demo.js"

/** Signs in at AS1 through a first MCP request, moves the server to AS2, sends a second one. */
const migrate = async (options: { readonly issueRefreshTokens: boolean }) => {
  const as1 = await startAuthorizationServer({ name: "as1", ...options })
  const as2 = await startAuthorizationServer({ name: "as2", ...options })
  const rs = await startResourceServer({ authorizationServer: as1 })
  const { handle, recorder } = await startEngine(rs.mcpUrl)

  const first = await handle.fetch(rs.mcpUrl, mcpRequest())
  await first.arrayBuffer()
  const refreshTokenBeforeMove =
    handle.service.actor.getSnapshot().context.session?.tokens.refreshToken
  const metadataReadsBeforeMove = rs.metadataRequestCount()
  const statusMark = recorder.mark()
  rs.moveTo(as2)
  const second = await handle.fetch(rs.mcpUrl, mcpRequest())
  await second.arrayBuffer()

  return {
    as1,
    as2,
    rs,
    first,
    second,
    refreshTokenBeforeMove,
    metadataReadsBeforeMove,
    statusesAfterMove: recorder.statuses.slice(statusMark),
  }
}

const clientIdOf = (server: CapabilityAuthorizationServer): string =>
  server.registrations[0]?.clientId ?? "<none registered>"

describe("authorization server migration", () => {
  it("signs in at the new server without refresh tokens", async () => {
    const run = await migrate({ issueRefreshTokens: false })
    const as1ClientId = clientIdOf(run.as1)
    const as2ClientId = clientIdOf(run.as2)

    expect(run.first.status).toBe(200)
    expect(run.refreshTokenBeforeMove).toBeUndefined()
    expect(run.rs.metadataRequestCount()).toBeGreaterThan(run.metadataReadsBeforeMove)
    expect(run.as1.registrations).toHaveLength(1)
    expect(run.as2.registrations).toHaveLength(1)
    expect(run.as2.registrations[0]?.status).toBe(201)
    expect(run.as2.authorizations.map((a) => a.params.get("client_id"))).toEqual([as2ClientId])
    expect(run.as2.tokenRequests.map((r) => r.claimedClientId)).toEqual([as2ClientId])
    expect(requestsMention(run.as2.http, as1ClientId)).toBe(false)
    expect(requestsMention(run.as1.http, as2ClientId)).toBe(false)
    expect(run.second.status).toBe(200)
    expect(run.rs.requests.at(-1)?.token?.issuer).toBe(run.as2.issuer)
  })

  it("detects the move instead of refreshing at the old server", async () => {
    const run = await migrate({ issueRefreshTokens: true })
    const as1ClientId = clientIdOf(run.as1)
    const as2ClientId = clientIdOf(run.as2)
    const refreshesAtAs1 = run.as1.tokenRequests.filter((r) => r.grantType === "refresh_token")
    const errorReasons = run.statusesAfterMove.map((status) => status.error?.reason)

    expect(run.first.status).toBe(200)
    expect(run.refreshTokenBeforeMove).toBeDefined()
    expect(run.rs.metadataRequestCount()).toBeGreaterThan(run.metadataReadsBeforeMove)
    expect(errorReasons).toContain("authorization_server_changed")
    expect(refreshesAtAs1).toEqual([])
    expect(run.as2.registrations).toHaveLength(1)
    expect(run.as2.registrations[0]?.status).toBe(201)
    expect(run.as2.authorizations.map((a) => a.params.get("client_id"))).toEqual([as2ClientId])
    expect(run.as2.tokenRequests.map((r) => r.claimedClientId)).toEqual([as2ClientId])
    expect(requestsMention(run.as2.http, as1ClientId)).toBe(false)
    expect(requestsMention(run.as1.http, as2ClientId)).toBe(false)
    expect(run.second.status).toBe(200)
    expect(run.rs.requests.at(-1)?.token?.issuer).toBe(run.as2.issuer)
  })
})
