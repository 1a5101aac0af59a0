/**
 * The MCP TypeScript SDK's client auth, driven the way its Streamable HTTP transport drives it.
 * A 401 response starts `auth()`, which discovers, registers and redirects. The host then
 * completes the sign-in with `auth()` and the authorization code, and retries. The
 * provider keeps everything in memory, discovery state included, so `auth()` can skip
 * discovery on later calls.
 */
import { randomBytes } from "node:crypto"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import {
  auth,
  extractWWWAuthenticateParams,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
} from "@modelcontextprotocol/sdk/client/auth.js"
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js"

/** A handler that opens the authorization URL for `redirectToAuthorization`. */
export type RedirectHandler = (authorizationUrl: URL, redirectUri: string) => Promise<void>

/** An `OAuthClientProvider` that keeps its state in fields, as a host's in-memory store would. */
export class MemoryOAuthProvider implements OAuthClientProvider {
  #client: OAuthClientInformationMixed | undefined
  #tokens: OAuthTokens | undefined
  #codeVerifier: string | undefined
  #discovery: OAuthDiscoveryState | undefined
  /** The `state` of the last authorization request. */
  lastState: string | undefined
  /** How many times the SDK asked to open the authorization URL. */
  redirectCount = 0

  /**
   * @param redirectHandler opens the authorization URL. When it is undefined, the request is
   *   only counted in `redirectCount`.
   */
  constructor(
    readonly redirectUrl: string,
    public redirectHandler: RedirectHandler | undefined,
  ) {}

  get clientMetadata(): OAuthClientMetadata {
    // The SDK's client metadata schema strips `application_type`, so the client registers with
    // oidc-provider's default type "web", which accepts this loopback http redirect URI.
    return {
      client_name: "mcp-auth-engine bench (SDK)",
      redirect_uris: [this.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    }
  }

  state(): string {
    this.lastState = randomBytes(16).toString("base64url")
    return this.lastState
  }

  clientInformation() {
    return this.#client
  }

  saveClientInformation(information: OAuthClientInformationMixed): void {
    this.#client = information
  }

  tokens() {
    return this.#tokens
  }

  saveTokens(tokens: OAuthTokens): void {
    this.#tokens = tokens
  }

  async redirectToAuthorization(authorizationUrl: URL): Promise<void> {
    this.redirectCount++
    await this.redirectHandler?.(authorizationUrl, this.redirectUrl)
  }

  saveCodeVerifier(codeVerifier: string): void {
    this.#codeVerifier = codeVerifier
  }

  codeVerifier(): string {
    if (this.#codeVerifier === undefined) throw new Error("no PKCE code verifier was saved")
    return this.#codeVerifier
  }

  saveDiscoveryState(state: OAuthDiscoveryState): void {
    this.#discovery = state
  }

  discoveryState() {
    return this.#discovery
  }

  invalidateCredentials(scope: "all" | "client" | "tokens" | "verifier" | "discovery"): void {
    if (scope === "all" || scope === "client") this.#client = undefined
    if (scope === "all" || scope === "tokens") this.#tokens = undefined
    if (scope === "all" || scope === "verifier") this.#codeVerifier = undefined
    if (scope === "all" || scope === "discovery") this.#discovery = undefined
  }
}

/** The SDK host's loopback redirect listener, which records authorization codes by `state`. */
export interface SdkCallbackServer {
  readonly redirectUri: string
  /** Returns the code that arrived with `state` and removes it. */
  takeCode(state: string | undefined): string
  close(): Promise<void>
}

/** Starts the SDK host's redirect listener on an ephemeral 127.0.0.1 port. */
export async function startSdkCallbackServer(): Promise<SdkCallbackServer> {
  const codes = new Map<string, string>()
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1")
    const code = url.searchParams.get("code")
    const state = url.searchParams.get("state")
    if (url.pathname !== "/callback" || code === null || state === null) {
      res.writeHead(400, { "content-type": "text/plain" })
      res.end("expected /callback with code and state")
      return
    }
    codes.set(state, code)
    res.writeHead(200, { "content-type": "text/plain" })
    res.end("signed in")
  })
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port))
  })
  return {
    redirectUri: `http://127.0.0.1:${port}/callback`,
    takeCode: (state) => {
      const code = state === undefined ? undefined : codes.get(state)
      if (state === undefined || code === undefined) {
        throw new Error("no authorization code reached the SDK callback server for this state")
      }
      codes.delete(state)
      return code
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/**
 * Completes an authorization that `auth()` started. When `result` is "REDIRECT", the user agent
 * has delivered the code to the callback server, and `auth()` runs again with it.
 */
export async function completeSdkAuthorization(
  provider: MemoryOAuthProvider,
  callbacks: SdkCallbackServer,
  result: "AUTHORIZED" | "REDIRECT",
  options: { readonly serverUrl: string; readonly resourceMetadataUrl?: URL | undefined },
): Promise<void> {
  if (result === "AUTHORIZED") return
  const authorizationCode = callbacks.takeCode(provider.lastState)
  const final = await auth(provider, {
    serverUrl: options.serverUrl,
    authorizationCode,
    ...(options.resourceMetadataUrl === undefined
      ? {}
      : { resourceMetadataUrl: options.resourceMetadataUrl }),
  })
  if (final !== "AUTHORIZED") throw new Error(`SDK auth() with a code returned ${final}`)
}

/**
 * Sends an MCP request as the SDK's transport does. A 401 response starts `auth()`, and after
 * the sign-in the request is sent again with the access token. Returns the final response,
 * whose body the caller reads.
 */
export async function sdkFetchWithSignIn(
  provider: MemoryOAuthProvider,
  callbacks: SdkCallbackServer,
  serverUrl: string,
  init: RequestInit,
): Promise<Response> {
  const send = async () => {
    const headers = new Headers(init.headers)
    const tokens = await provider.tokens()
    if (tokens !== undefined) headers.set("authorization", `Bearer ${tokens.access_token}`)
    return fetch(serverUrl, { ...init, headers })
  }
  const first = await send()
  if (first.status !== 401) return first
  const { resourceMetadataUrl, scope } = extractWWWAuthenticateParams(first)
  await first.arrayBuffer()
  const result = await auth(provider, {
    serverUrl,
    ...(resourceMetadataUrl === undefined ? {} : { resourceMetadataUrl }),
    ...(scope === undefined ? {} : { scope }),
  })
  await completeSdkAuthorization(provider, callbacks, result, { serverUrl, resourceMetadataUrl })
  return send()
}
