/**
 * Discovery: RFC 9728 protected resource metadata, then RFC 8414 / OpenID Connect authorization
 * server metadata, with the MCP fallbacks (path-inserted then root well-known URLs, and the
 * 2025-03-26 rule that the MCP origin is the authorization server when no resource metadata
 * exists). Every MUST check is its own `reason`, raised before any registration or browser step.
 */
import type { HttpClient } from "@effect/platform"
import { Effect, Either } from "effect"
import { DiscoveryError } from "../errors.js"
import {
  type AuthorizationServerMetadata,
  decodeAuthorizationServerMetadata,
  decodeProtectedResourceMetadata,
  type ProtectedResourceMetadata,
} from "../schema/metadata.js"
import { type FetchedDocument, fetchDocument } from "../services/http.js"
import {
  authorizationServerMetadataUrls,
  isSafeEndpoint,
  parseUrl,
  protectedResourceMetadataUrls,
} from "./urls.js"

/** The method by which the authorization server was found. */
export type DiscoveryMode =
  | "protected-resource-metadata"
  | "legacy-origin-metadata"
  | "legacy-default-endpoints"

/** The result of discovery for one MCP server. */
export interface Discovery {
  readonly serverUrl: string
  readonly mode: DiscoveryMode
  /** The `resource` to send, exactly as the metadata wrote it (the server URL in legacy modes). */
  readonly resource: string
  readonly resourceMetadataUrl?: string | undefined
  readonly resourceMetadata?: ProtectedResourceMetadata | undefined
  readonly authorizationServer: AuthorizationServerMetadata
}

/** Inputs of one discovery run. */
export interface DiscoveryInput {
  readonly serverUrl: string
  /** `resource_metadata` from the server's challenge, tried before the well-known URLs. */
  readonly resourceMetadataUrl?: string | undefined
  /** Sent as `MCP-Protocol-Version` on discovery requests. */
  readonly protocolVersion: string
}

/**
 * Tells whether a metadata `resource` identifies the server: the same origin and a path equal to
 * the server's path or a prefix of it at a segment boundary. A different origin never matches.
 */
export const resourceMatchesServer = (resource: string, serverUrl: URL): boolean => {
  const parsed = parseUrl(resource)
  if (parsed === undefined || parsed.hash !== "") return false
  if (parsed.protocol !== serverUrl.protocol || parsed.host !== serverUrl.host) return false
  const resourcePath = parsed.pathname.replace(/\/$/, "")
  const serverPath = serverUrl.pathname.replace(/\/$/, "")
  return (
    resourcePath === "" || serverPath === resourcePath || serverPath.startsWith(`${resourcePath}/`)
  )
}

/**
 * Tells whether a metadata `issuer` is the one the document was looked up for: exact string
 * equality, with one tolerated trailing "/" difference (servers such as Google publish
 * `https://accounts.google.com` for an identifier written with a slash).
 */
export const issuerMatches = (expected: string, received: string): boolean =>
  received === expected || received === `${expected}/` || `${received}/` === expected

const isNotFound = (document: FetchedDocument): boolean =>
  document.json === undefined || (document.status >= 400 && document.status < 500)

/** Describes a candidate without metadata, such as an HTML catch-all page, for errors. */
const describeMiss = (document: FetchedDocument): string =>
  `${document.url} (status ${document.status}, ${document.contentType || "no content type"})`

const fetchCandidate = (url: string, protocolVersion: string) =>
  fetchDocument(url, { "mcp-protocol-version": protocolVersion }).pipe(
    Effect.mapError(
      (failure) =>
        new DiscoveryError({ reason: "network", url: failure.url, cause: failure.cause }),
    ),
    Effect.flatMap((document) =>
      document.status >= 500
        ? Effect.fail(new DiscoveryError({ reason: "http_status", url, status: document.status }))
        : Effect.succeed(document),
    ),
    Effect.tap((document) =>
      Effect.logDebug("discovery candidate").pipe(
        Effect.annotateLogs({ url, status: document.status, contentType: document.contentType }),
      ),
    ),
  )

const findProtectedResourceMetadata = (serverUrl: URL, input: DiscoveryInput) =>
  Effect.gen(function* () {
    const candidates: string[] = []
    if (input.resourceMetadataUrl !== undefined) {
      if (!isSafeEndpoint(input.resourceMetadataUrl)) {
        return yield* new DiscoveryError({
          reason: "insecure_endpoint",
          url: input.resourceMetadataUrl,
          detail: `"resource_metadata" must be an https: URL or a loopback http: URL`,
        })
      }
      candidates.push(input.resourceMetadataUrl)
    }
    for (const url of protectedResourceMetadataUrls(serverUrl)) {
      if (!candidates.includes(url)) candidates.push(url)
    }

    // A JSON body without "resource" is often a catch-all response, so the next candidate is
    // tried. It is reported when no candidate contains metadata, and legacy discovery does not
    // start then, because the server did publish something at a metadata URL.
    let invalidUrl: string | undefined
    for (const url of candidates) {
      const document = yield* fetchCandidate(url, input.protocolVersion)
      if (isNotFound(document) || document.status !== 200) continue
      const decoded = decodeProtectedResourceMetadata(document.json)
      if (Either.isLeft(decoded)) {
        invalidUrl ??= url
        continue
      }
      const metadata = decoded.right
      if (!resourceMatchesServer(metadata.resource, serverUrl)) {
        return yield* new DiscoveryError({
          reason: "resource_mismatch",
          url,
          expected: input.serverUrl,
          received: metadata.resource,
          detail: `protected resource metadata names another resource`,
        })
      }
      return { url, metadata }
    }
    if (invalidUrl !== undefined) {
      return yield* new DiscoveryError({
        reason: "invalid_metadata",
        url: invalidUrl,
        detail: `protected resource metadata lacks a string "resource"`,
      })
    }
    return undefined
  })

const findAuthorizationServerMetadata = (
  issuer: string,
  candidates: ReadonlyArray<string>,
  protocolVersion: string,
) =>
  Effect.gen(function* () {
    const misses: string[] = []
    for (const url of candidates) {
      const document = yield* fetchCandidate(url, protocolVersion)
      if (
        isNotFound(document) ||
        document.status !== 200 ||
        typeof document.json?.issuer !== "string"
      ) {
        misses.push(describeMiss(document))
        continue
      }
      const decoded = decodeAuthorizationServerMetadata(document.json)
      if (Either.isLeft(decoded)) {
        return yield* new DiscoveryError({
          reason: "invalid_metadata",
          url,
          detail: `authorization server metadata lacks "authorization_endpoint" or "token_endpoint"`,
        })
      }
      if (!issuerMatches(issuer, decoded.right.issuer)) {
        return yield* new DiscoveryError({
          reason: "issuer_mismatch",
          url,
          expected: issuer,
          received: decoded.right.issuer,
          detail: `authorization server metadata names another "issuer"`,
        })
      }
      return { metadata: decoded.right, misses }
    }
    return { metadata: undefined, misses }
  })

/** Checks the MUSTs on usable authorization server metadata: safe endpoints and S256 PKCE. */
export const validateAuthorizationServer = (
  metadata: AuthorizationServerMetadata,
  options: { readonly requirePkceMetadata: boolean },
): Effect.Effect<AuthorizationServerMetadata, DiscoveryError> =>
  Effect.gen(function* () {
    const endpoints: ReadonlyArray<[string, string | undefined]> = [
      ["authorization_endpoint", metadata.authorization_endpoint],
      ["token_endpoint", metadata.token_endpoint],
      ["registration_endpoint", metadata.registration_endpoint],
      ["revocation_endpoint", metadata.revocation_endpoint],
    ]
    for (const [name, value] of endpoints) {
      if (value !== undefined && !isSafeEndpoint(value)) {
        return yield* new DiscoveryError({
          reason: "insecure_endpoint",
          received: value,
          detail: `"${name}" must be an https: URL or a loopback http: URL`,
        })
      }
    }
    const methods = metadata.code_challenge_methods_supported
    if (options.requirePkceMetadata && !methods?.includes("S256")) {
      return yield* new DiscoveryError({
        reason: "pkce_not_supported",
        received: methods === undefined ? "<absent>" : methods.join(" "),
        detail: `"code_challenge_methods_supported" must list "S256"`,
      })
    }
    return metadata
  })

const legacyDiscovery = (serverUrl: URL, input: DiscoveryInput) =>
  Effect.gen(function* () {
    const origin = serverUrl.origin
    yield* Effect.logWarning(
      "no protected resource metadata; using the MCP origin as the authorization server",
    ).pipe(Effect.annotateLogs({ origin }))
    const { metadata } = yield* findAuthorizationServerMetadata(
      origin,
      [`${origin}/.well-known/oauth-authorization-server`],
      input.protocolVersion,
    )
    if (metadata !== undefined) {
      const validated = yield* validateAuthorizationServer(metadata, { requirePkceMetadata: false })
      const discovery: Discovery = {
        serverUrl: input.serverUrl,
        mode: "legacy-origin-metadata",
        resource: input.serverUrl,
        authorizationServer: validated,
      }
      return discovery
    }
    yield* Effect.logWarning("no authorization server metadata; using the default endpoints").pipe(
      Effect.annotateLogs({ origin }),
    )
    const discovery: Discovery = {
      serverUrl: input.serverUrl,
      mode: "legacy-default-endpoints",
      resource: input.serverUrl,
      authorizationServer: {
        issuer: origin,
        authorization_endpoint: `${origin}/authorize`,
        token_endpoint: `${origin}/token`,
        registration_endpoint: `${origin}/register`,
        code_challenge_methods_supported: ["S256"],
      },
    }
    return discovery
  })

/**
 * Discovers the authorization server of an MCP server and validates what it publishes.
 * Fails with a {@link DiscoveryError} naming the broken rule; never opens a browser.
 */
export const discover = (
  input: DiscoveryInput,
): Effect.Effect<Discovery, DiscoveryError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const serverUrl = parseUrl(input.serverUrl)
    if (serverUrl === undefined || !isSafeEndpoint(input.serverUrl)) {
      return yield* new DiscoveryError({
        reason: "invalid_server_url",
        received: input.serverUrl,
        detail: "the server URL must be an https: URL or a loopback http: URL",
      })
    }

    const found = yield* findProtectedResourceMetadata(serverUrl, input)
    if (found === undefined) return yield* legacyDiscovery(serverUrl, input)

    const issuer = found.metadata.authorization_servers?.[0]
    const issuerUrl = issuer === undefined ? undefined : parseUrl(issuer)
    if (issuer === undefined || issuerUrl === undefined) {
      return yield* new DiscoveryError({
        reason: "no_authorization_server",
        url: found.url,
        detail: `"authorization_servers" must list at least one issuer URL`,
      })
    }
    if (!isSafeEndpoint(issuer)) {
      return yield* new DiscoveryError({
        reason: "insecure_endpoint",
        received: issuer,
        detail: "the issuer must be an https: URL or a loopback http: URL",
      })
    }

    const { metadata, misses } = yield* findAuthorizationServerMetadata(
      issuer,
      authorizationServerMetadataUrls(issuerUrl),
      input.protocolVersion,
    )
    if (metadata === undefined) {
      return yield* new DiscoveryError({
        reason: "metadata_not_found",
        expected: issuer,
        detail: `no authorization server metadata at any RFC 8414 or OpenID Connect location (tried ${misses.join(", ")})`,
      })
    }
    const validated = yield* validateAuthorizationServer(metadata, { requirePkceMetadata: true })
    const discovery: Discovery = {
      serverUrl: input.serverUrl,
      mode: "protected-resource-metadata",
      resource: found.metadata.resource,
      resourceMetadataUrl: found.url,
      resourceMetadata: found.metadata,
      authorizationServer: validated,
    }
    return discovery
  }).pipe(Effect.withSpan("mcp-auth.discover"))

/**
 * Reads the protected resource metadata again (after a 401 that named it) and returns the
 * authorization server it lists first, so a caller can tell when the server moved.
 */
export const currentAuthorizationServer = (
  input: DiscoveryInput,
): Effect.Effect<string | undefined, DiscoveryError, HttpClient.HttpClient> =>
  Effect.gen(function* () {
    const serverUrl = parseUrl(input.serverUrl)
    if (serverUrl === undefined) return undefined
    const found = yield* findProtectedResourceMetadata(serverUrl, input)
    return found?.metadata.authorization_servers?.[0]
  })
