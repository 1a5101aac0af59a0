/**
 * The live view server: serves on 127.0.0.1 a page that draws the engine's statechart and
 * follows an engine through its redacted inspection stream, sent to the page as Server-Sent
 * Events. It keeps the latest events so a page opened late still shows the run so far.
 */
import { randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { type MachineDescription, renderAuthMachineJson } from "../machine/diagram.js"
import type { EngineInspectionEvent, InspectionObserver } from "./events.js"
import { renderPage } from "./page.js"
import { renderStatechartSvg } from "./svg.js"

/** The host the live view binds; it is never reachable from another machine. */
export const LIVE_VIEW_HOST = "127.0.0.1"
/** How many of the latest events a newly opened page receives. */
const DEFAULT_HISTORY = 1000

/** Options of {@link startLiveView}. */
export interface LiveViewOptions {
  /** TCP port on 127.0.0.1; 0 (the default) picks a free port. */
  readonly port?: number | undefined
  /** The page title. */
  readonly title?: string | undefined
  /** How many of the latest events are kept for pages opened later. Default: 1000. */
  readonly history?: number | undefined
}

/** The part of an engine the live view subscribes to. */
export interface InspectableEngine {
  readonly inspect: (observer: InspectionObserver) => () => void
}

/** A running live view. */
export interface LiveView {
  /** The page's URL, `http://127.0.0.1:PORT/`. */
  readonly url: string
  /** Shows one event; {@link attach} feeds this from an engine. */
  readonly observer: InspectionObserver
  /** Follows an engine until the returned function is called or the view closes. */
  attach(engine: InspectableEngine): () => void
  /** The number of pages connected now. */
  readonly connections: () => number
  /** Ends every page's event stream and stops listening. */
  close(): Promise<void>
}

const listen = (server: Server, port: number) =>
  new Promise<number>((resolve, reject) => {
    server.once("error", reject)
    server.listen(port, LIVE_VIEW_HOST, () => {
      server.off("error", reject)
      resolve((server.address() as AddressInfo).port)
    })
  })

/**
 * Tells whether a request names this server in its `Host` header. A page on another site that
 * resolves its own name to 127.0.0.1 (DNS rebinding) sends that name and is rejected.
 */
const isLocalHost = (request: IncomingMessage, port: number): boolean => {
  const host = request.headers.host
  return (
    host === `${LIVE_VIEW_HOST}:${port}` || host === `localhost:${port}` || host === `[::1]:${port}`
  )
}

const sendText = (response: ServerResponse, status: number, type: string, body: string) => {
  response.writeHead(status, {
    "content-type": type,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  })
  response.end(body)
}

const formatEvent = (event: EngineInspectionEvent): string =>
  `id: ${event.sequence}\ndata: ${JSON.stringify(event)}\n\n`

/** Starts a live view on 127.0.0.1. Rejects when the port cannot be bound. */
export const startLiveView = async (options: LiveViewOptions = {}): Promise<LiveView> => {
  const title = options.title ?? "mcp-auth-engine live view"
  const historyLimit = options.history ?? DEFAULT_HISTORY
  const description = JSON.parse(renderAuthMachineJson()) as MachineDescription
  const svg = renderStatechartSvg(description)
  const history: EngineInspectionEvent[] = []
  const streams = new Set<ServerResponse>()
  const detachers = new Set<() => void>()
  let port = 0

  const observer: InspectionObserver = (event) => {
    history.push(event)
    if (history.length > historyLimit) history.shift()
    const text = formatEvent(event)
    for (const stream of streams) stream.write(text)
  }

  const openStream = (request: IncomingMessage, response: ServerResponse) => {
    response.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-content-type-options": "nosniff",
    })
    response.write("retry: 1000\n\n")
    for (const event of history) response.write(formatEvent(event))
    streams.add(response)
    request.once("close", () => streams.delete(response))
  }

  const server = createServer((request, response) => {
    if (!isLocalHost(request, port)) {
      sendText(
        response,
        421,
        "text/plain; charset=utf-8",
        "Use http://127.0.0.1 to reach this page.\n",
      )
      return
    }
    const path = new URL(request.url ?? "/", `http://${LIVE_VIEW_HOST}`).pathname
    if (request.method !== "GET") {
      sendText(response, 405, "text/plain; charset=utf-8", "Only GET is supported.\n")
      return
    }
    switch (path) {
      case "/": {
        const nonce = randomBytes(16).toString("base64")
        response.setHeader(
          "content-security-policy",
          `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'`,
        )
        response.setHeader("referrer-policy", "no-referrer")
        sendText(response, 200, "text/html; charset=utf-8", renderPage({ title, svg, nonce }))
        return
      }
      case "/statechart.svg":
        sendText(response, 200, "image/svg+xml", svg)
        return
      case "/events":
        openStream(request, response)
        return
      case "/history.json":
        sendText(response, 200, "application/json", JSON.stringify(history))
        return
      default:
        sendText(response, 404, "text/plain; charset=utf-8", "Not found.\n")
    }
  })
  port = await listen(server, options.port ?? 0)

  return {
    url: `http://${LIVE_VIEW_HOST}:${port}/`,
    observer,
    attach: (engine) => {
      const unsubscribe = engine.inspect(observer)
      const detach = () => {
        detachers.delete(detach)
        unsubscribe()
      }
      detachers.add(detach)
      return detach
    },
    connections: () => streams.size,
    close: async () => {
      for (const detach of [...detachers]) detach()
      for (const stream of streams) stream.end()
      streams.clear()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
    },
  }
}
