import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { connect } from "node:net"
import { Effect, Exit, Layer, Scope } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { makeAuthEngine } from "../../src/engine/engine.js"
import { Browser } from "../../src/services/browser.js"
import { CallbackServerLive } from "../../src/services/callback-server.js"
import { HttpLive } from "../../src/services/http.js"
import { KeychainMemory } from "../../src/services/keychain.js"

interface HangingServer {
  readonly origin: string
  readonly requests: string[]
  readonly closedRequests: string[]
  readonly server: Server
}

/** Starts a server that serves PRM naming itself, then never responds to the AS metadata request. */
const startHangingServer = async (): Promise<HangingServer> => {
  const requests: string[] = []
  const closedRequests: string[] = []
  const server = createServer((request, response) => {
    const path = request.url ?? "/"
    requests.push(path)
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    if (path === "/.well-known/oauth-protected-resource/mcp") {
      response.writeHead(200, { "content-type": "application/json" })
      response.end(JSON.stringify({ resource: `${origin}/mcp`, authorization_servers: [origin] }))
      return
    }
    // Hang: the engine must give up on this request when its state is left.
    request.once("close", () => closedRequests.push(path))
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return { origin, requests, closedRequests, server }
}

const silentBrowser = (opened: string[]) =>
  Layer.succeed(Browser, {
    name: "recording",
    open: (url: string) => Effect.sync(() => void opened.push(url)),
  })

const canConnect = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

const waitUntil = async (condition: () => boolean | Promise<boolean>, label: string) => {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`timed out waiting until ${label}`)
}

const servers: Server[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})

describe("leaving a state", () => {
  it("interrupts a hanging discovery request on cancel", async () => {
    const hanging = await startHangingServer()
    servers.push(hanging.server)
    const opened: string[] = []
    const scope = Effect.runSync(Scope.make())
    const layer = Layer.mergeAll(
      HttpLive,
      KeychainMemory,
      silentBrowser(opened),
      CallbackServerLive,
    )
    const engine = await Effect.runPromise(
      makeAuthEngine({ serverUrl: `${hanging.origin}/mcp`, callbackPort: 0 }).pipe(
        Effect.provide(layer),
        Effect.provideService(Scope.Scope, scope),
      ),
    )
    engine.actor.send({ type: "AUTHENTICATE" })
    await waitUntil(
      () => hanging.requests.includes("/.well-known/oauth-authorization-server"),
      "the metadata request arrives",
    )
    const redirectUri = engine.actor.getSnapshot().context.redirectUri
    expect(redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/)
    const port = Number(new URL(redirectUri!).port)
    expect(await canConnect(port)).toBe(true)

    engine.actor.send({ type: "CANCEL" })

    expect(engine.actor.getSnapshot().value).toBe("authRequired")
    await waitUntil(
      () => hanging.closedRequests.includes("/.well-known/oauth-authorization-server"),
      "the hanging request is closed",
    )
    await waitUntil(async () => !(await canConnect(port)), "the callback port is closed")
    expect(opened).toEqual([])
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })

  it("fails with a timeout when no callback arrives", async () => {
    const origin = await new Promise<{ server: Server; origin: string }>((resolve) => {
      const server = createServer((request, response) => {
        const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
        if (request.url === "/.well-known/oauth-protected-resource/mcp") {
          response.writeHead(200, { "content-type": "application/json" })
          response.end(JSON.stringify({ resource: `${base}/mcp`, authorization_servers: [base] }))
          return
        }
        if (request.url === "/.well-known/oauth-authorization-server") {
          response.writeHead(200, { "content-type": "application/json" })
          response.end(
            JSON.stringify({
              issuer: base,
              authorization_endpoint: `${base}/authorize`,
              token_endpoint: `${base}/token`,
              code_challenge_methods_supported: ["S256"],
            }),
          )
          return
        }
        response.writeHead(404).end()
      })
      server.listen(0, "127.0.0.1", () =>
        resolve({ server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
      )
    })
    servers.push(origin.server)
    const opened: string[] = []
    const scope = Effect.runSync(Scope.make())
    const layer = Layer.mergeAll(
      HttpLive,
      KeychainMemory,
      silentBrowser(opened),
      CallbackServerLive,
    )
    const engine = await Effect.runPromise(
      makeAuthEngine({
        serverUrl: `${origin.origin}/mcp`,
        callbackPort: 0,
        callbackTimeoutMs: 200,
        client: { clientId: "pre-registered" },
      }).pipe(Effect.provide(layer), Effect.provideService(Scope.Scope, scope)),
    )
    const result = await Effect.runPromise(Effect.either(engine.authenticate))
    if (result._tag !== "Left") throw new Error("the sign-in succeeded without a callback")
    expect(result.left._tag).toBe("AuthorizationError")
    expect(result.left).toHaveProperty("reason", "timeout")
    expect(opened).toHaveLength(1)
    expect(engine.actor.getSnapshot().value).toBe("failed")
    await Effect.runPromise(Scope.close(scope, Exit.void))
  })
})
