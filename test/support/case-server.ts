/**
 * A scriptable loopback HTTP server for replaying recorded OAuth exchanges. Each route is keyed
 * by `"METHOD /path"` (the query is not part of the key) and returns a status, headers and a
 * body. `{BASE}` in a route's body or header values is replaced by the server's own origin.
 * Every request is logged, so a test can assert which URLs were requested, in what order, and
 * which were never requested.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/** One request as the server received it. */
export interface RecordedRequest {
  readonly method: string
  readonly path: string
  /** The query string without the leading "?", or "" when there is none. */
  readonly query: string
  readonly searchParams: URLSearchParams
  /** Header names are lowercased, as node:http delivers them. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly body: string
}

/** What a route returns. An object body is sent as JSON. */
export interface CaseResponse {
  readonly status: number
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly body?: string | object | undefined
}

/** A route: a fixed response, or a function of the request that may be async. */
export type Route =
  | CaseResponse
  | ((request: RecordedRequest) => CaseResponse | Promise<CaseResponse>)

/** Routes by `"METHOD /path"`, for example `"GET /.well-known/oauth-protected-resource"`. */
export type RouteTable = Readonly<Record<string, Route>>

/** A running case server. */
export interface CaseServer {
  /** `http://127.0.0.1:PORT`, without a trailing slash. */
  readonly origin: string
  /** Every request received so far, oldest first. */
  readonly requests: ReadonlyArray<RecordedRequest>
  /** Builds an absolute URL on this server. */
  url(path: string): string
  /** Adds routes or replaces routes with the same key. */
  setRoutes(routes: RouteTable): void
  /** `"METHOD /path"` of every request received so far, oldest first. */
  requestLines(): string[]
  /** Requests received for one `"METHOD /path"` key. */
  requestsTo(key: string): RecordedRequest[]
  /** Whether a request for one `"METHOD /path"` key was received. */
  wasRequested(key: string): boolean
  /** Stops the server and drops open connections. */
  close(): Promise<void>
}

/** The response for a request that matches no route. */
const NOT_FOUND: CaseResponse = {
  status: 404,
  headers: { "content-type": "text/plain" },
  body: "Not Found",
}

const substitute = (text: string, origin: string): string => text.replaceAll("{BASE}", origin)

const readBody = (request: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")))
    request.on("error", reject)
  })

const writeResponse = (response: ServerResponse, result: CaseResponse, origin: string) => {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(result.headers ?? {})) {
    headers[name.toLowerCase()] = substitute(value, origin)
  }
  let body = ""
  if (typeof result.body === "string") {
    body = substitute(result.body, origin)
  } else if (result.body !== undefined) {
    body = substitute(JSON.stringify(result.body), origin)
    headers["content-type"] ??= "application/json"
  }
  response.writeHead(result.status, headers)
  response.end(body)
}

/** Starts a case server on 127.0.0.1 with a free port. */
export const startCaseServer = async (routes: RouteTable = {}): Promise<CaseServer> => {
  const table = new Map<string, Route>(Object.entries(routes))
  const requests: RecordedRequest[] = []
  let origin = ""

  const server = createServer((request, response) => {
    const handle = async () => {
      const url = new URL(request.url ?? "/", origin)
      const recorded: RecordedRequest = {
        method: request.method ?? "GET",
        path: url.pathname,
        query: url.search.replace(/^\?/, ""),
        searchParams: url.searchParams,
        headers: { ...request.headers },
        body: await readBody(request),
      }
      requests.push(recorded)
      const route = table.get(`${recorded.method} ${recorded.path}`)
      const result =
        route === undefined
          ? NOT_FOUND
          : typeof route === "function"
            ? await route(recorded)
            : route
      writeResponse(response, result, origin)
    }
    handle().catch((error: unknown) => {
      response.writeHead(500, { "content-type": "text/plain" })
      response.end(`case server route failed: ${String(error)}`)
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject)
      resolve()
    })
  })
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  const lineOf = (request: RecordedRequest) => `${request.method} ${request.path}`

  return {
    origin,
    requests,
    url: (path) => `${origin}${path}`,
    setRoutes: (more) => {
      for (const [key, route] of Object.entries(more)) table.set(key, route)
    },
    requestLines: () => requests.map(lineOf),
    requestsTo: (key) => requests.filter((request) => lineOf(request) === key),
    wasRequested: (key) => requests.some((request) => lineOf(request) === key),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
