/**
 * HTTP for every step: the `@effect/platform` client (Node layer in production), a JSON
 * document fetch used by discovery, and a `fetch`-shaped adapter so `oauth4webapi` sends its
 * requests through the same client.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { Effect, Exit, type Layer } from "effect"

/** The Node HTTP client. Redirects are never followed: each step decides what a 3xx means. */
export const HttpLive: Layer.Layer<HttpClient.HttpClient> = NodeHttpClient.layer

/** A fetched document: its status, content type, and its body parsed as JSON when it is JSON. */
export interface FetchedDocument {
  readonly url: string
  readonly status: number
  readonly contentType: string
  /** The parsed body when it is a JSON object; undefined otherwise. */
  readonly json: Record<string, unknown> | undefined
}

/** A request that never produced a response (refused connection, reset, DNS failure). */
export interface NetworkFailure {
  readonly _tag: "NetworkFailure"
  readonly url: string
  readonly cause: unknown
}

const MAX_DOCUMENT_BYTES = 1_000_000

/**
 * GETs a URL and parses a JSON object body. Anything but a JSON object (HTML catch-all pages,
 * arrays, invalid JSON) yields `json: undefined`, so callers treat it as "not found here".
 */
export const fetchDocument = (
  url: string,
  headers: Record<string, string> = {},
): Effect.Effect<FetchedDocument, NetworkFailure, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    const request = HttpClientRequest.get(url).pipe(
      HttpClientRequest.setHeaders({ accept: "application/json", ...headers }),
    )
    const response = yield* client.execute(request)
    const contentType = response.headers["content-type"] ?? ""
    const text = yield* response.text
    return { url, status: response.status, contentType, json: parseJsonObject(text) }
  }).pipe(
    Effect.scoped,
    Effect.mapError((cause): NetworkFailure => ({ _tag: "NetworkFailure", url, cause })),
  )

const parseJsonObject = (text: string): Record<string, unknown> | undefined => {
  if (text.length > MAX_DOCUMENT_BYTES) return undefined
  try {
    const value: unknown = JSON.parse(text)
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

/** The `fetch` signature `oauth4webapi` calls through its `customFetch` option. */
export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>

/**
 * Builds a `fetch` that sends through the Effect HTTP client. Aborting the signal interrupts
 * the request; the response is buffered, which suits OAuth endpoints' small JSON bodies.
 */
export const makeFetch = Effect.gen(function* () {
  const client = yield* HttpClient.HttpClient
  const runtime = yield* Effect.runtime<never>()
  const fetchThroughClient: FetchFunction = async (url, init) => {
    const method = (init.method ?? "GET").toUpperCase() as "GET" | "POST"
    const headers: Record<string, string> = {}
    new Headers(init.headers).forEach((value, key) => {
      headers[key] = value
    })
    let request = HttpClientRequest.make(method)(url).pipe(HttpClientRequest.setHeaders(headers))
    if (init.body !== undefined && init.body !== null) {
      const body =
        init.body instanceof URLSearchParams ? init.body.toString() : String(init.body as string)
      request = HttpClientRequest.bodyText(
        request,
        body,
        headers["content-type"] ?? "application/x-www-form-urlencoded",
      )
    }
    const program = Effect.gen(function* () {
      const response = yield* client.execute(request)
      const bytes = yield* response.arrayBuffer
      return new Response(response.status === 204 ? null : bytes, {
        status: response.status,
        headers: response.headers,
      })
    }).pipe(Effect.scoped)
    const exit = await Effect.runPromiseExit(
      Effect.provide(program, runtime.context),
      init.signal ? { signal: init.signal } : undefined,
    )
    if (Exit.isSuccess(exit)) return exit.value
    throw new TypeError(`request to ${new URL(url).origin} failed`, { cause: exit.cause })
  }
  return fetchThroughClient
})
