/**
 * A loopback HTTP proxy that delays every request by a fixed time before forwarding it, and
 * logs each one. Clients reach it through {@link routeFetchThroughProxy} (for `fetch`) and
 * {@link connectThroughProxy} (for `node:http` agents), which keep the original URLs, so the
 * servers and their metadata need no change.
 */
import { Agent, createServer, type IncomingMessage, request, type ServerResponse } from "node:http"
import { type AddressInfo, connect } from "node:net"

/**
 * The header that names the upstream `host:port` when `fetch` sends to the proxy's own URL.
 * Requests without it are routed by their `Host` header.
 */
const UPSTREAM_HEADER = "x-bench-upstream"

/** Headers that belong to one connection and are never forwarded (RFC 9110 §7.6.1). */
const HOP_BY_HOP_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  UPSTREAM_HEADER,
])

/** One request that passed through the proxy. */
export interface ProxiedRequest {
  /** The upstream `host:port`. */
  readonly upstream: string
  readonly method: string
  /** The path without the query, so codes and states never reach the log. */
  readonly path: string
  /** The upstream's status code, or 502 when it could not be reached. */
  status: number
  /** `performance.now()` when the request reached the proxy. */
  readonly arrivedAt: number
  /** `performance.now()` when the response to the client ended, or 0 before that. */
  finishedAt: number
}

export interface DelayProxy {
  readonly port: number
  /** `http://127.0.0.1:PORT` */
  readonly origin: string
  /** Requests in arrival order since the last `clearLog()`. */
  readonly log: ReadonlyArray<ProxiedRequest>
  clearLog(): void
  close(): Promise<void>
}

/**
 * Starts the proxy on an ephemeral 127.0.0.1 port. It forwards only to the loopback
 * `host:port` values in `upstreams` and responds with 502 to any other target.
 */
export async function startDelayProxy(options: {
  readonly delayMs: number
  readonly upstreams: ReadonlySet<string>
}): Promise<DelayProxy> {
  const log: ProxiedRequest[] = []
  const upstreamAgent = new Agent({ keepAlive: true })

  const forward = (req: IncomingMessage, res: ServerResponse, entry: ProxiedRequest) => {
    const [hostname = "", port = ""] = entry.upstream.split(":")
    const headers: Record<string, string | string[]> = {}
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined && !HOP_BY_HOP_HEADERS.has(name)) headers[name] = value
    }
    headers.host = entry.upstream
    const outgoing = request(
      {
        host: hostname,
        port: Number(port),
        method: req.method,
        path: req.url,
        headers,
        agent: upstreamAgent,
      },
      (upstream) => {
        entry.status = upstream.statusCode ?? 502
        const responseHeaders: string[] = []
        for (let i = 0; i < upstream.rawHeaders.length; i += 2) {
          const name = upstream.rawHeaders[i] ?? ""
          if (!HOP_BY_HOP_HEADERS.has(name.toLowerCase())) {
            responseHeaders.push(name, upstream.rawHeaders[i + 1] ?? "")
          }
        }
        res.writeHead(entry.status, responseHeaders)
        upstream.pipe(res)
      },
    )
    outgoing.on("error", (error) => {
      entry.status = 502
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" })
      res.end(`bench proxy: forwarding to ${entry.upstream} failed: ${error.message}`)
    })
    req.pipe(outgoing)
  }

  const server = createServer((req, res) => {
    const named = req.headers[UPSTREAM_HEADER]
    const upstream = (typeof named === "string" ? named : req.headers.host) ?? ""
    const path = new URL(req.url ?? "/", "http://proxy.invalid").pathname
    const entry: ProxiedRequest = {
      upstream,
      method: req.method ?? "GET",
      path,
      status: 0,
      arrivedAt: performance.now(),
      finishedAt: 0,
    }
    res.once("finish", () => {
      entry.finishedAt = performance.now()
    })
    log.push(entry)
    if (!options.upstreams.has(upstream)) {
      entry.status = 502
      res.writeHead(502, { "content-type": "text/plain" })
      res.end(`bench proxy: ${upstream} is not a configured upstream`)
      return
    }
    // Node buffers the request body during the delay, until `forward` pipes it upstream.
    setTimeout(() => forward(req, res, entry), options.delayMs)
  })

  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
  })

  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    log,
    clearLog: () => {
      log.length = 0
    },
    close: () =>
      new Promise<void>((resolve) => {
        upstreamAgent.destroy()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/**
 * Replaces `globalThis.fetch` so requests to `origins` go to the proxy, which forwards them
 * to the original `host:port`. Returns the function that restores the previous `fetch`.
 */
export function routeFetchThroughProxy(
  proxy: DelayProxy,
  origins: ReadonlySet<string>,
): () => void {
  const original = globalThis.fetch
  const routed: typeof fetch = (input, init) => {
    if (input instanceof Request) return original(input, init)
    const url = new URL(String(input))
    if (!origins.has(url.origin)) return original(input, init)
    const headers = new Headers(init?.headers)
    headers.set(UPSTREAM_HEADER, url.host)
    return original(`${proxy.origin}${url.pathname}${url.search}`, { ...init, headers })
  }
  globalThis.fetch = routed
  return () => {
    globalThis.fetch = original
  }
}

/**
 * Makes `agent` open its connections to `hosts` (as `host:port`) at the proxy instead. The
 * request keeps its `Host` header, which the proxy routes by.
 */
export function connectThroughProxy(
  agent: Agent,
  proxy: DelayProxy,
  hosts: ReadonlySet<string>,
): void {
  const direct = agent.createConnection.bind(agent)
  agent.createConnection = (options, callback) => {
    const port = options.port ?? 80
    if (!hosts.has(`${options.host ?? "localhost"}:${port}`)) return direct(options, callback)
    return connect(proxy.port, "127.0.0.1")
  }
}
