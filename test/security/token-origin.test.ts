import { afterEach, describe, expect, it } from "vitest"
import { type CaseServer, startCaseServer } from "../support/case-server.js"
import { startDemoServers, startEngine } from "../support/demo.js"

const servers: CaseServer[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close()
})

describe("authenticated fetch", () => {
  it("sends no token to another origin", async () => {
    const { mcpServer } = await startDemoServers()
    const { handle } = await startEngine(mcpServer.url)
    const token = await handle.getAccessToken()
    const elsewhere = await startCaseServer({
      "GET /data": { status: 401, headers: { "www-authenticate": 'Bearer scope="x"' } },
    })
    servers.push(elsewhere)

    const response = await handle.fetch(elsewhere.url("/data"))

    expect(response.status).toBe(401)
    const [request] = elsewhere.requestsTo("GET /data")
    expect(request?.headers.authorization).toBeUndefined()
    expect(JSON.stringify(request?.headers)).not.toContain(token)
    expect(elsewhere.requestsTo("GET /data")).toHaveLength(1)
    expect(handle.status().state).toBe("authenticated")
  })

  it("sends the token to its own server", async () => {
    const { mcpServer } = await startDemoServers()
    const { handle } = await startEngine(mcpServer.url)
    const token = await handle.getAccessToken()

    const response = await handle.fetch(mcpServer.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
    })

    expect(response.status).toBe(200)
    expect(token.length).toBeGreaterThan(0)
    expect(mcpServer.requests.authorized).toBe(1)
  })
})
