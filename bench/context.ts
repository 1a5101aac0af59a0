/** Shared parts of every measurement: the servers, the proxy and the table row shape. */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import type { DemoAuthorizationServer, DemoMcpServer } from "../src/demo/servers.js"
import type { DelayProxy, ProxiedRequest } from "./proxy.js"
import type { SdkCallbackServer } from "./sdk-client.js"

/** One row of the printed table. */
export interface Row {
  readonly measure: string
  readonly engine: string
  readonly sdk: string
  readonly ratio: string
}

export interface BenchContext {
  /** The temporary folder, the only place the benchmark writes to. */
  readonly tmp: string
  readonly authorizationServer: DemoAuthorizationServer
  readonly mcp: DemoMcpServer
  readonly proxy: DelayProxy
  readonly sdkCallbacks: SdkCallbackServer
  /** The path of the authorization endpoint, which only the user agent requests. */
  readonly authorizationPath: string
}

/** Writes a progress line to stderr, so stdout contains only the table. */
export const progress = (text: string): void => {
  process.stderr.write(`bench: ${text}\n`)
}

/** Returns the init of the MCP request every sign-in starts with, a stateless `tools/list`. */
export const mcpRequestInit = (): RequestInit => ({
  method: "POST",
  headers: {
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  },
  body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
})

/** Returns a loopback port that was free a moment ago, for a fixed callback port. */
export async function findFreePort(): Promise<number> {
  const server = createServer()
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
  })
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Tells whether a proxied request came from the user agent rather than the client library. */
export const isUserAgentRequest = (context: BenchContext, request: ProxiedRequest): boolean =>
  request.path === context.authorizationPath ||
  request.path.startsWith(`${context.authorizationPath}/`) ||
  request.path.startsWith("/interaction/")

/** Tells whether a request was a metadata lookup that found nothing, so the next was tried. */
export const isFallback = (request: ProxiedRequest): boolean =>
  request.path.startsWith("/.well-known/") && request.status >= 400 && request.status < 500

/** Returns the client library's requests in a proxy log, without the user agent's. */
export const clientRequests = (
  context: BenchContext,
  log: ReadonlyArray<ProxiedRequest>,
): ProxiedRequest[] => log.filter((request) => !isUserAgentRequest(context, request))

/**
 * Describes requests as "+0 POST /mcp 401 (21 ms), +25 GET /.well-known/… 200 (22 ms), …":
 * arrival at the proxy in milliseconds after `startedAt`, and the time until the response
 * ended, delay included. User agent requests are marked "(user agent)".
 */
export const describeRequests = (
  context: BenchContext,
  requests: ReadonlyArray<ProxiedRequest>,
  startedAt: number,
): string =>
  requests
    .map((request) => {
      const arrival = (request.arrivedAt - startedAt).toFixed(0)
      const duration = (request.finishedAt - request.arrivedAt).toFixed(0)
      const marker = isUserAgentRequest(context, request) ? " (user agent)" : ""
      return `+${arrival} ${request.method} ${request.path} ${request.status} (${duration} ms)${marker}`
    })
    .join(", ")
