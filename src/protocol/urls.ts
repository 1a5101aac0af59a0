/**
 * URL rules shared by every step: which endpoints may be used, and the well-known URLs that
 * RFC 9728 and RFC 8414 build from a resource or an issuer.
 */
import { isIP } from "node:net"

/** Tells whether a host name is a loopback address or `localhost` (RFC 8252 §8.3). */
export const isLoopbackHost = (hostname: string): boolean => {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase()
  if (host === "localhost" || host.endsWith(".localhost")) return true
  if (isIP(host) === 4) return host.startsWith("127.")
  if (isIP(host) === 6) return host === "::1" || host === "0:0:0:0:0:0:0:1"
  return false
}

/** Parses a URL, returning undefined for anything that is not an absolute URL. */
export const parseUrl = (value: string, base?: string): URL | undefined => {
  try {
    return new URL(value, base)
  } catch {
    return undefined
  }
}

/**
 * Tells whether an endpoint may receive requests or be opened in a browser: `https:`, or
 * `http:` on a loopback host. Anything else (`file:`, custom schemes, `javascript:`) is unsafe.
 */
export const isSafeEndpoint = (value: string): boolean => {
  const url = parseUrl(value)
  if (url === undefined) return false
  if (url.username !== "" || url.password !== "") return false
  if (url.protocol === "https:") return true
  return url.protocol === "http:" && isLoopbackHost(url.hostname)
}

const trimTrailingSlash = (path: string): string => (path.endsWith("/") ? path.slice(0, -1) : path)

/**
 * RFC 9728 §3.1 candidates for a resource URL: the path-inserted well-known URL first, then
 * the root one. A resource without a path has only the root candidate.
 */
export const protectedResourceMetadataUrls = (resource: URL): ReadonlyArray<string> => {
  const path = trimTrailingSlash(resource.pathname)
  const root = `${resource.origin}/.well-known/oauth-protected-resource`
  return path === "" ? [root] : [`${root}${path}`, root]
}

/**
 * RFC 8414 §3.1 and OpenID Connect Discovery §4 candidates for an issuer. With a path:
 * oauth path-inserted, openid path-inserted, openid path-appended. Without: the two root forms.
 * The root oauth URL of a path issuer belongs to another issuer and is never probed.
 */
export const authorizationServerMetadataUrls = (issuer: URL): ReadonlyArray<string> => {
  const path = trimTrailingSlash(issuer.pathname)
  if (path === "") {
    return [
      `${issuer.origin}/.well-known/oauth-authorization-server`,
      `${issuer.origin}/.well-known/openid-configuration`,
    ]
  }
  return [
    `${issuer.origin}/.well-known/oauth-authorization-server${path}`,
    `${issuer.origin}/.well-known/openid-configuration${path}`,
    `${issuer.origin}${path}/.well-known/openid-configuration`,
  ]
}

/** Removes the query and fragment, so a URL can be logged without codes or state. */
export const withoutQuery = (value: string): string => {
  const url = parseUrl(value)
  if (url === undefined) return "<invalid url>"
  return `${url.origin}${url.pathname}`
}
