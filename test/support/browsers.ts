/**
 * Browser layers for tests, at the edge between the engine and the user agent. One only
 * records the URLs it is asked to open. The other follows the authorization server's redirects
 * like the headless user agent and records the callback URL it reaches.
 */
import { Effect, Layer } from "effect"
import { AuthorizationError, Browser } from "../../src/index.js"
import { withDeadline } from "./wait.js"

/** One call to `Browser.open`. */
export interface BrowserCall {
  readonly authorizationUrl: string
  readonly redirectUri: string
}

/** A browser that opens nothing and records every call. */
export interface RecordingBrowser {
  readonly layer: Layer.Layer<Browser>
  readonly calls: ReadonlyArray<BrowserCall>
  /** Resolves with the first call not yet returned by an earlier `nextCall`. */
  nextCall(): Promise<BrowserCall>
}

/** Builds a {@link RecordingBrowser}. */
export const makeRecordingBrowser = (): RecordingBrowser => {
  const calls: BrowserCall[] = []
  const waiting: Array<(call: BrowserCall) => void> = []
  let returnedCount = 0
  const layer = Layer.succeed(Browser, {
    name: "recording",
    open: (authorizationUrl, redirectUri) =>
      Effect.sync(() => {
        const call = { authorizationUrl, redirectUri }
        calls.push(call)
        const resolve = waiting.shift()
        if (resolve !== undefined) {
          returnedCount++
          resolve(call)
        }
      }),
  })
  return {
    layer,
    calls,
    nextCall: () => {
      const ready = calls[returnedCount]
      if (ready !== undefined) {
        returnedCount++
        return Promise.resolve(ready)
      }
      return withDeadline(
        new Promise<BrowserCall>((resolve) => waiting.push(resolve)),
        "the engine to open the authorization URL",
      )
    },
  }
}

/** Cookies per host, by name; enough for one authorization server on loopback. */
class CookieJar {
  readonly #hosts = new Map<string, Map<string, string>>()

  header(url: URL): string | undefined {
    const cookies = this.#hosts.get(url.host)
    if (cookies === undefined || cookies.size === 0) return undefined
    return [...cookies].map(([name, value]) => `${name}=${value}`).join("; ")
  }

  update(url: URL, response: Response): void {
    const cookies = this.#hosts.get(url.host) ?? new Map<string, string>()
    for (const line of response.headers.getSetCookie()) {
      const [pair = ""] = line.split(";")
      const separator = pair.indexOf("=")
      if (separator <= 0) continue
      const name = pair.slice(0, separator).trim()
      const value = pair.slice(separator + 1).trim()
      const expired = /;\s*max-age=0\b/i.test(line) || /;\s*expires=Thu, 01 Jan 1970/i.test(line)
      if (value === "" || expired) cookies.delete(name)
      else cookies.set(name, value)
    }
    this.#hosts.set(url.host, cookies)
  }
}

const MAX_REDIRECTS = 20

/**
 * Requests `authorizationUrl` and follows redirects until one points at `redirectUri`, then
 * requests that callback URL and returns it. Rejects when a response is not a redirect.
 */
const followToCallback = async (authorizationUrl: string, redirectUri: string) => {
  const jar = new CookieJar()
  let url = new URL(authorizationUrl)
  for (let hop = 0; hop < MAX_REDIRECTS; hop++) {
    const headers = new Headers()
    const cookie = jar.header(url)
    if (cookie !== undefined) headers.set("cookie", cookie)
    const response = await fetch(url, { redirect: "manual", headers })
    jar.update(url, response)
    await response.arrayBuffer()
    const location = response.headers.get("location")
    if (response.status < 300 || response.status >= 400 || location === null) {
      throw new Error(
        `expected a redirect from ${url.origin}${url.pathname}, got ${response.status}`,
      )
    }
    const next = new URL(location, url)
    if (next.href.startsWith(redirectUri)) {
      const callback = await fetch(next)
      await callback.arrayBuffer()
      return next.href
    }
    url = next
  }
  throw new Error(`no redirect to ${redirectUri} within ${MAX_REDIRECTS} redirects`)
}

/** A browser that completes sign-ins on its own and records each callback URL it requested. */
export interface FollowingBrowser {
  readonly layer: Layer.Layer<Browser>
  /** The callback URLs, with `code`, `state` and `iss` in their query. */
  readonly callbackUrls: ReadonlyArray<string>
}

/** Builds a {@link FollowingBrowser}. */
export const makeFollowingBrowser = (): FollowingBrowser => {
  const callbackUrls: string[] = []
  const layer = Layer.succeed(Browser, {
    name: "following",
    open: (authorizationUrl, redirectUri) =>
      Effect.tryPromise({
        try: async () => {
          callbackUrls.push(await followToCallback(authorizationUrl, redirectUri))
        },
        catch: (cause) =>
          new AuthorizationError({
            reason: "browser_failed",
            detail: "the test user agent did not reach the callback",
            cause,
          }),
      }),
  })
  return { layer, callbackUrls }
}
