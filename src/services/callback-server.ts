/**
 * The loopback redirect listener (RFC 8252 §7.3): binds 127.0.0.1 only, on a preferred port
 * or any free one, and accepts exactly one callback carrying the expected `state`. Every other
 * request gets a 404 and changes nothing, so a stray or hostile local request cannot end a
 * pending sign-in.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Context, Effect, Either, Layer, type Scope } from "effect"
import { AuthorizationError } from "../errors.js"
import {
  type AuthorizationAttempt,
  callbackMatchesState,
  validateCallback,
} from "../protocol/authorization.js"

/** The host the listener binds; never a wildcard address. */
export const CALLBACK_HOST = "127.0.0.1"
/** The path of the redirect URI. */
export const CALLBACK_PATH = "/callback"

/** A bound listener for one sign-in. */
export interface CallbackListener {
  readonly port: number
  readonly redirectUri: string
  /** Sets the attempt whose `state` the next valid callback must carry. */
  readonly expect: (attempt: AuthorizationAttempt | undefined) => void
}

/** Options of one listener. */
export interface ListenOptions {
  /** Tried first so the registered redirect URI stays the same across runs; 0 for any port. */
  readonly preferredPort: number
  /** Called once with the parameters of the callback that matched the expected `state`. */
  readonly onCallback: (params: URLSearchParams) => void
}

/** The callback server service. */
export interface CallbackServerService {
  readonly listen: (
    options: ListenOptions,
  ) => Effect.Effect<CallbackListener, AuthorizationError, Scope.Scope>
}

/** The callback server service tag. */
export class CallbackServer extends Context.Tag("mcp-auth-engine/CallbackServer")<
  CallbackServer,
  CallbackServerService
>() {}

const page = (title: string, text: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>` +
  `<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}</style>` +
  `</head><body><h1>${title}</h1><p>${text}</p></body></html>`

const send = (response: ServerResponse, status: number, body: string, onFinish?: () => void) => {
  response.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
  })
  if (onFinish !== undefined) response.once("finish", onFinish)
  response.end(body)
}

const bind = (server: Server, port: number) =>
  Effect.async<number, NodeJS.ErrnoException>((resume) => {
    const onError = (error: NodeJS.ErrnoException) => resume(Effect.fail(error))
    server.once("error", onError)
    server.listen(port, CALLBACK_HOST, () => {
      server.off("error", onError)
      resume(Effect.succeed((server.address() as AddressInfo).port))
    })
  })

const close = (server: Server) =>
  Effect.async<void>((resume) => {
    server.close(() => resume(Effect.void))
    server.closeAllConnections()
  })

const handle = (
  request: IncomingMessage,
  response: ServerResponse,
  state: { attempt: AuthorizationAttempt | undefined; done: boolean },
  onCallback: (params: URLSearchParams) => void,
) => {
  const url = new URL(request.url ?? "/", `http://${CALLBACK_HOST}`)
  const attempt = state.attempt
  if (
    request.method !== "GET" ||
    url.pathname !== CALLBACK_PATH ||
    state.done ||
    attempt === undefined ||
    !callbackMatchesState(url.searchParams, attempt)
  ) {
    send(response, 404, page("Not found", "This address is not waiting for a sign-in."))
    return
  }
  // The state is single use: whatever follows, this attempt takes no other callback.
  state.done = true
  const result = validateCallback(url.searchParams, attempt)
  const body = Either.isRight(result)
    ? page("Signed in", "You can close this window and return to the application.")
    : page("Sign-in failed", "The sign-in did not complete. Return to the application for details.")
  send(response, Either.isRight(result) ? 200 : 400, body, () => onCallback(url.searchParams))
}

/** Binds a listener: the preferred port first, then any free port. */
export const listen = (
  options: ListenOptions,
): Effect.Effect<CallbackListener, AuthorizationError, Scope.Scope> =>
  Effect.gen(function* () {
    const state: { attempt: AuthorizationAttempt | undefined; done: boolean } = {
      attempt: undefined,
      done: false,
    }
    const server = yield* Effect.acquireRelease(
      Effect.sync(() =>
        createServer((request, response) => handle(request, response, state, options.onCallback)),
      ),
      close,
    )
    const port = yield* bind(server, options.preferredPort).pipe(
      Effect.catchAll((error) =>
        options.preferredPort !== 0 && error.code === "EADDRINUSE"
          ? Effect.logWarning("callback port in use; using a free port").pipe(
              Effect.annotateLogs({ preferredPort: options.preferredPort }),
              Effect.zipRight(bind(server, 0)),
            )
          : Effect.fail(error),
      ),
      Effect.mapError(
        (cause) =>
          new AuthorizationError({
            reason: "callback_server_failed",
            detail: `cannot listen on ${CALLBACK_HOST}: ${cause.code ?? cause.message}`,
            cause,
          }),
      ),
    )
    const listener: CallbackListener = {
      port,
      redirectUri: `http://${CALLBACK_HOST}:${port}${CALLBACK_PATH}`,
      expect: (attempt) => {
        state.attempt = attempt
        state.done = false
      },
    }
    return listener
  })

/** The live callback server. */
export const CallbackServerLive: Layer.Layer<CallbackServer> = Layer.succeed(CallbackServer, {
  listen,
})
