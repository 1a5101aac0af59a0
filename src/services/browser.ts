/**
 * How the authorization URL reaches a user agent: the system browser (through `open`, which
 * starts the opener with an argument vector, never a shell), a host-supplied command, or a
 * headless user agent for tests and servers that approve without a page.
 */
import { spawn } from "node:child_process"
import { Context, Effect, Layer } from "effect"
import { AuthorizationError } from "../errors.js"
import { isSafeEndpoint, withoutQuery } from "../protocol/urls.js"

/** Opens an authorization URL; the redirect later reaches the loopback callback server. */
export interface BrowserService {
  readonly name: string
  readonly open: (
    authorizationUrl: string,
    redirectUri: string,
  ) => Effect.Effect<void, AuthorizationError>
}

/** The user-agent service. */
export class Browser extends Context.Tag("mcp-auth-engine/Browser")<Browser, BrowserService>() {}

const rejectUnsafe = (url: string) =>
  isSafeEndpoint(url)
    ? Effect.void
    : Effect.fail(
        new AuthorizationError({
          reason: "insecure_endpoint",
          received: url.slice(0, 200),
          detail: "only https: URLs and loopback http: URLs are opened",
        }),
      )

/** The system browser through the `open` package. */
export const BrowserSystem: Layer.Layer<Browser> = Layer.succeed(Browser, {
  name: "system",
  open: (url) =>
    rejectUnsafe(url).pipe(
      Effect.zipRight(
        Effect.tryPromise({
          try: async () => {
            const { default: open } = await import("open")
            const child = await open(url, { wait: false })
            child.unref()
          },
          catch: (cause) =>
            new AuthorizationError({
              reason: "browser_failed",
              detail: "the system browser could not be started",
              cause,
            }),
        }),
      ),
    ),
})

/** A host-supplied program, run without a shell with the URL as its last argument. */
export const BrowserCommand = (
  program: string,
  args: ReadonlyArray<string> = [],
): Layer.Layer<Browser> =>
  Layer.succeed(Browser, {
    name: "command",
    open: (url) =>
      rejectUnsafe(url).pipe(
        Effect.zipRight(
          Effect.async<void, AuthorizationError>((resume) => {
            const child = spawn(program, [...args, url], {
              shell: false,
              stdio: "ignore",
              detached: true,
            })
            child.once("error", (cause) =>
              resume(
                Effect.fail(
                  new AuthorizationError({
                    reason: "browser_failed",
                    detail: `cannot run browser command "${program}"`,
                    cause,
                  }),
                ),
              ),
            )
            child.once("spawn", () => {
              child.unref()
              resume(Effect.void)
            })
          }),
        ),
      ),
  })

/** The maximum number of redirects the headless user agent follows before giving up. */
const MAX_REDIRECTS = 20

const cookieHeader = (jar: Map<string, Map<string, string>>, url: URL): string | undefined => {
  const cookies = jar.get(url.host)
  if (cookies === undefined || cookies.size === 0) return undefined
  return [...cookies].map(([name, value]) => `${name}=${value}`).join("; ")
}

const isExpiredCookie = (attributes: ReadonlyArray<string>): boolean =>
  attributes.some((attribute) => {
    const [name = "", value = ""] = attribute.split("=").map((part) => part.trim())
    if (name.toLowerCase() === "max-age") return Number(value) <= 0
    if (name.toLowerCase() === "expires") return Date.parse(value) <= Date.now()
    return false
  })

const storeCookies = (jar: Map<string, Map<string, string>>, url: URL, response: Response) => {
  for (const line of response.headers.getSetCookie()) {
    const [pair = "", ...attributes] = line.split(";")
    const separator = pair.indexOf("=")
    if (separator <= 0) continue
    const cookies = jar.get(url.host) ?? new Map<string, string>()
    const name = pair.slice(0, separator).trim()
    if (isExpiredCookie(attributes)) cookies.delete(name)
    else cookies.set(name, pair.slice(separator + 1).trim())
    jar.set(url.host, cookies)
  }
}

/**
 * Requests the authorization URL and follows the server's redirects (keeping cookies) until one
 * points at the redirect URI; that request is then made against the loopback callback server,
 * which completes the flow. It never renders a page: a server that shows a login form fails.
 */
export const runHeadlessUserAgent = async (
  authorizationUrl: string,
  redirectUri: string,
): Promise<void> => {
  const jar = new Map<string, Map<string, string>>()
  let current = authorizationUrl
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    if (!isSafeEndpoint(current)) {
      throw new Error(
        `the authorization server redirected to an unsafe URL ${withoutQuery(current)}`,
      )
    }
    const url = new URL(current)
    const headers: Record<string, string> = { accept: "text/html,application/json" }
    const cookie = cookieHeader(jar, url)
    if (cookie !== undefined) headers.cookie = cookie
    const response = await fetch(url, { redirect: "manual", headers })
    storeCookies(jar, url, response)
    await response.arrayBuffer()
    if (current.startsWith(redirectUri)) return
    const location = response.headers.get("location")
    if (response.status < 300 || response.status >= 400 || location === null) {
      throw new Error(
        `the authorization server answered ${response.status} at ${withoutQuery(current)} instead of redirecting; a headless user agent cannot sign in there`,
      )
    }
    current = new URL(location, url).href
  }
  throw new Error(`more than ${MAX_REDIRECTS} redirects from the authorization server`)
}

/** The headless user agent as a browser layer. */
export const BrowserHeadless: Layer.Layer<Browser> = Layer.succeed(Browser, {
  name: "headless",
  open: (url, redirectUri) =>
    rejectUnsafe(url).pipe(
      Effect.zipRight(
        Effect.tryPromise({
          try: () => runHeadlessUserAgent(url, redirectUri),
          catch: (cause) =>
            new AuthorizationError({
              reason: "browser_failed",
              detail: cause instanceof Error ? cause.message : "the headless user agent failed",
              cause,
            }),
        }),
      ),
    ),
})
