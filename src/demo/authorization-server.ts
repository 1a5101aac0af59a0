/**
 * A real OAuth 2.1 authorization server for the demo, the integration tests and the benchmarks:
 * oidc-provider 9 on an ephemeral loopback port, with open Dynamic Client Registration, PKCE
 * (S256 only), resource indicators, rotating refresh tokens, revocation and introspection. Sign-in
 * and consent complete on their own, so the browser part of a flow is a chain of redirects.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import type {
  Adapter,
  AdapterPayload,
  Configuration,
  KoaContextWithOIDC,
  Provider,
  errors as ProviderErrors,
} from "oidc-provider"

/** Outcome of the automatic interaction: grant everything requested, or deny the request. */
export type ConsentMode = "approve" | "deny"

export interface AuthorizationServerOptions {
  /** Scopes of the protected resource. Default: `["mcp:tools"]`. */
  readonly scopes?: readonly string[]
  /**
   * Resource indicators (RFC 8707) that the server issues tokens for. Default: any http or https
   * URL on a loopback host (127.0.0.1, localhost, [::1]).
   */
  readonly resources?: readonly string[]
  /** Access token lifetime in seconds. Default: 20. */
  readonly accessTokenTtlSeconds?: number
  /** Refresh token lifetime in seconds. Default: 86400. */
  readonly refreshTokenTtlSeconds?: number
  /** Account id that the automatic sign-in uses. Default: `"demo-user"`. */
  readonly accountId?: string
  /** Initial consent mode. Default: `"approve"`. */
  readonly consent?: ConsentMode
}

/** Requests that reached the authorization server, by endpoint. */
export interface RequestLog {
  registration: number
  /** Authorization endpoint requests, without the resume requests after an interaction. */
  authorization: number
  /** Token endpoint requests by `grant_type`, failed ones included. */
  token: Record<string, number>
  revocation: number
  introspection: number
  reset(): void
}

export interface DemoAuthorizationServer {
  /** Issuer identifier, `http://127.0.0.1:PORT` without a trailing slash. */
  readonly issuer: string
  /** Scopes of the protected resource, as advertised in `scopes_supported`. */
  readonly scopes: readonly string[]
  readonly requests: RequestLog
  /** Sets the outcome of later interactions. Interactions already finished keep theirs. */
  setConsent(mode: ConsentMode): void
  /**
   * Deletes every grant issued so far, with its refresh tokens, access tokens and unused
   * authorization codes, so the next refresh fails with `invalid_grant`.
   */
  revokeAllGrants(): Promise<void>
  close(): Promise<void>
}

/** Details of a valid access token, for the resource server. */
export interface AccessTokenInfo {
  readonly accountId: string
  readonly clientId: string
  /** Space-separated scopes granted for the resource. */
  readonly scope: string
  /** The resource (audience) that the token was issued for. */
  readonly resource: string
  /** Expiry in seconds since the epoch. */
  readonly expiresAt: number
}

const DEFAULT_SCOPES = ["mcp:tools"]
const DEFAULT_ACCESS_TOKEN_TTL_SECONDS = 20
const DEFAULT_REFRESH_TOKEN_TTL_SECONDS = 24 * 60 * 60
const DEFAULT_ACCOUNT_ID = "demo-user"
const LOOPBACK_HOSTNAMES = new Set(["127.0.0.1", "localhost", "[::1]"])

const providers = new WeakMap<DemoAuthorizationServer, Provider>()

/**
 * Starts the authorization server on `http://127.0.0.1:<free port>`. Rejects with an explanatory
 * error when the development dependency oidc-provider is not installed.
 */
export async function startAuthorizationServer(
  options: AuthorizationServerOptions = {},
): Promise<DemoAuthorizationServer> {
  const oidc = await loadOidcProvider()
  const scopes = [...(options.scopes ?? DEFAULT_SCOPES)]
  const accountId = options.accountId ?? DEFAULT_ACCOUNT_ID
  let consentMode: ConsentMode = options.consent ?? "approve"

  // The issuer is fixed when the Provider is constructed, so the port must be known first.
  const server = createServer()
  const port = await listenOnLoopback(server)
  const issuer = `http://127.0.0.1:${port}`

  const store = new MemoryStore()
  const provider = new oidc.Provider(
    issuer,
    buildConfiguration({
      store,
      scopes,
      errors: oidc.errors,
      allowResource: (resource) => isAllowedResource(resource, options.resources),
      accessTokenTtlSeconds: options.accessTokenTtlSeconds ?? DEFAULT_ACCESS_TOKEN_TTL_SECONDS,
      refreshTokenTtlSeconds: options.refreshTokenTtlSeconds ?? DEFAULT_REFRESH_TOKEN_TTL_SECONDS,
    }),
  )

  const requests = createRequestLog()
  provider.use(async (ctx: KoaContextWithOIDC, next) => {
    try {
      await next()
    } finally {
      countRequest(requests, ctx)
    }
  })

  const handleProviderRequest = provider.callback()
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? "/", issuer).pathname
    if (req.method === "GET" && path.startsWith("/interaction/")) {
      void completeInteraction(provider, req, res, accountId, consentMode)
      return
    }
    handleProviderRequest(req, res)
  })

  const demo: DemoAuthorizationServer = {
    issuer,
    scopes,
    requests,
    setConsent(mode) {
      consentMode = mode
    },
    async revokeAllGrants() {
      store.deleteAllGrants()
    },
    close: () => closeServer(server),
  }
  providers.set(demo, provider)
  return demo
}

/**
 * Looks up an access token issued by `server`. Returns its details when the token is known, not
 * expired and issued for `resource`, and undefined otherwise.
 */
export async function validateAccessToken(
  server: DemoAuthorizationServer,
  token: string,
  resource: string,
): Promise<AccessTokenInfo | undefined> {
  const provider = providers.get(server)
  if (provider === undefined) {
    throw new Error("validateAccessToken needs a server returned by startAuthorizationServer")
  }

  const accessToken = await provider.AccessToken.find(token)
  if (accessToken === undefined || accessToken.isExpired || accessToken.exp === undefined) {
    return undefined
  }
  const audiences = Array.isArray(accessToken.aud) ? accessToken.aud : [accessToken.aud]
  if (!audiences.includes(resource)) {
    return undefined
  }

  return {
    accountId: accessToken.accountId,
    clientId: accessToken.clientId ?? "",
    scope: accessToken.scope ?? "",
    resource,
    expiresAt: accessToken.exp,
  }
}

interface ConfigurationInput {
  readonly store: MemoryStore
  readonly scopes: readonly string[]
  readonly errors: typeof ProviderErrors
  readonly allowResource: (resource: string) => boolean
  readonly accessTokenTtlSeconds: number
  readonly refreshTokenTtlSeconds: number
}

function buildConfiguration(input: ConfigurationInput): Configuration {
  const { store, errors, accessTokenTtlSeconds, refreshTokenTtlSeconds } = input
  const signingKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
    format: "jwk",
  })

  return {
    adapter: (model: string) => new MemoryAdapter(model, store),
    // An ES256 key replaces the RS256 default, so clients get ES256 as their ID token algorithm.
    jwks: { keys: [{ ...signingKey, kid: "demo-es256", alg: "ES256", use: "sig" }] },
    clientDefaults: {
      grant_types: ["authorization_code"],
      id_token_signed_response_alg: "ES256",
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    clientBasedCORS: () => false,
    scopes: ["openid", "offline_access", ...input.scopes],
    findAccount: (_ctx, sub) => ({ accountId: sub, claims: () => ({ sub }) }),
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    pkce: { required: () => true },
    // Every client allowed the refresh_token grant gets a refresh token, offline_access or not.
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed("refresh_token"),
    rotateRefreshToken: true,
    // Tokens outlive the authorization server's browser session, as a native app expects.
    expiresWithSession: async () => false,
    renderError: (ctx, out) => {
      ctx.type = "json"
      ctx.body = out
    },
    features: {
      devInteractions: { enabled: false },
      registration: { enabled: true, initialAccessToken: false },
      resourceIndicators: {
        enabled: true,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resource) => {
          if (!input.allowResource(resource)) {
            throw new errors.InvalidTarget(`resource ${resource} is not served here`)
          }
          return {
            scope: input.scopes.join(" "),
            audience: resource,
            accessTokenTTL: accessTokenTtlSeconds,
            accessTokenFormat: "opaque",
          }
        },
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
      },
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) =>
          client.clientAuthMethod !== "none" || token.clientId === ctx.oidc.client?.clientId,
      },
      rpInitiatedLogout: { enabled: false },
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTtlSeconds,
      AuthorizationCode: 60,
      IdToken: 60 * 60,
      Interaction: 10 * 60,
      RefreshToken: refreshTokenTtlSeconds,
      Grant: refreshTokenTtlSeconds,
      Session: refreshTokenTtlSeconds,
    },
  }
}

/**
 * Completes the interaction at `/interaction/<uid>` without a page. It signs in `accountId`,
 * then grants every requested scope, or denies the request in "deny" mode. The response is a
 * redirect back to the authorization endpoint, where oidc-provider resumes the request.
 */
async function completeInteraction(
  provider: Provider,
  req: IncomingMessage,
  res: ServerResponse,
  accountId: string,
  consentMode: ConsentMode,
): Promise<void> {
  try {
    const interaction = await provider.interactionDetails(req, res)

    if (consentMode === "deny") {
      await provider.interactionFinished(
        req,
        res,
        { error: "access_denied", error_description: "the user denied access" },
        { mergeWithLastSubmission: false },
      )
      return
    }

    switch (interaction.prompt.name) {
      case "login":
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId } },
          { mergeWithLastSubmission: false },
        )
        return
      case "consent": {
        const grantId = await grantRequestedAccess(provider, interaction)
        await provider.interactionFinished(req, res, { consent: { grantId } })
        return
      }
      default:
        sendJson(res, 400, {
          error: "invalid_request",
          error_description: `the demo server cannot complete the prompt ${interaction.prompt.name}`,
        })
    }
  } catch (error) {
    // A missing or expired interaction cookie ends up here, and the user agent has to start over.
    const message = error instanceof Error ? error.message : String(error)
    console.error(`demo authorization server: interaction ${req.url ?? ""} failed: ${message}`)
    sendJson(res, 400, {
      error: "invalid_request",
      error_description: `interaction failed: ${message}`,
    })
  }
}

type Interaction = Awaited<ReturnType<Provider["interactionDetails"]>>

/** Adds everything the consent prompt lists as missing to the grant and saves it. */
async function grantRequestedAccess(provider: Provider, interaction: Interaction): Promise<string> {
  const accountId = interaction.session?.accountId
  const clientId = interaction.params.client_id
  if (accountId === undefined || typeof clientId !== "string") {
    throw new Error("the consent prompt arrived without a signed-in account or a client_id")
  }

  const existing =
    interaction.grantId === undefined ? undefined : await provider.Grant.find(interaction.grantId)
  const grant = existing ?? new provider.Grant({ accountId, clientId })

  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = interaction.prompt.details
  if (isStringArray(missingOIDCScope)) {
    grant.addOIDCScope(missingOIDCScope)
  }
  if (isStringArray(missingOIDCClaims)) {
    grant.addOIDCClaims(missingOIDCClaims)
  }
  if (typeof missingResourceScopes === "object" && missingResourceScopes !== null) {
    for (const [resource, scopes] of Object.entries(missingResourceScopes)) {
      if (isStringArray(scopes)) {
        grant.addResourceScope(resource, scopes)
      }
    }
  }
  return grant.save()
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string")
}

function isAllowedResource(resource: string, allowed: readonly string[] | undefined): boolean {
  if (allowed !== undefined) {
    return allowed.includes(resource)
  }
  const url = URL.parse(resource)
  return (
    url !== null &&
    (url.protocol === "http:" || url.protocol === "https:") &&
    LOOPBACK_HOSTNAMES.has(url.hostname)
  )
}

function createRequestLog(): RequestLog {
  const log: RequestLog = {
    registration: 0,
    authorization: 0,
    token: {},
    revocation: 0,
    introspection: 0,
    reset() {
      log.registration = 0
      log.authorization = 0
      log.token = {}
      log.revocation = 0
      log.introspection = 0
    },
  }
  return log
}

/** Counts a finished request by the oidc-provider route it matched. */
function countRequest(log: RequestLog, ctx: KoaContextWithOIDC): void {
  // ctx.oidc is only defined once the request has entered oidc-provider's own middleware.
  const oidc: KoaContextWithOIDC["oidc"] | undefined = ctx.oidc
  switch (oidc?.route) {
    case "registration":
      log.registration++
      return
    case "authorization":
      log.authorization++
      return
    case "token": {
      const grantType = oidc.params?.grant_type ?? oidc.body?.grant_type
      const key = typeof grantType === "string" ? grantType : "unknown"
      log.token[key] = (log.token[key] ?? 0) + 1
      return
    }
    case "revocation":
      log.revocation++
      return
    case "introspection":
      log.introspection++
      return
  }
}

/**
 * Storage for one authorization server's tokens, grants, sessions and clients, kept in memory.
 * Expired records are dropped when read and in a periodic sweep on write.
 */
class MemoryStore {
  readonly #records = new Map<string, { payload: AdapterPayload; expiresAt: number | undefined }>()
  /** Record keys of grant-bound tokens, by grant id. */
  readonly #grantMembers = new Map<string, Set<string>>()
  readonly #sessionIdsByUid = new Map<string, string>()
  readonly #idsByUserCode = new Map<string, string>()
  #writesSinceSweep = 0

  get(key: string): AdapterPayload | undefined {
    const record = this.#records.get(key)
    if (record === undefined) {
      return undefined
    }
    if (record.expiresAt !== undefined && record.expiresAt <= Date.now()) {
      this.delete(key)
      return undefined
    }
    return record.payload
  }

  set(key: string, payload: AdapterPayload, expiresInSeconds: number | undefined): void {
    const expiresAt =
      expiresInSeconds === undefined ? undefined : Date.now() + expiresInSeconds * 1000
    this.#records.set(key, { payload, expiresAt })
    if (payload.grantId !== undefined && GRANT_BOUND_MODELS.has(modelOf(key))) {
      const members = this.#grantMembers.get(payload.grantId) ?? new Set<string>()
      members.add(key)
      this.#grantMembers.set(payload.grantId, members)
    }

    this.#writesSinceSweep++
    if (this.#writesSinceSweep >= SWEEP_INTERVAL_WRITES) {
      this.#writesSinceSweep = 0
      this.#sweepExpired()
    }
  }

  delete(key: string): void {
    const payload = this.#records.get(key)?.payload
    this.#records.delete(key)
    if (payload?.grantId !== undefined) {
      this.#grantMembers.get(payload.grantId)?.delete(key)
    }
  }

  indexSessionUid(uid: string, id: string): void {
    this.#sessionIdsByUid.set(uid, id)
  }

  sessionIdForUid(uid: string): string | undefined {
    return this.#sessionIdsByUid.get(uid)
  }

  indexUserCode(userCode: string, id: string): void {
    this.#idsByUserCode.set(userCode, id)
  }

  idForUserCode(userCode: string): string | undefined {
    return this.#idsByUserCode.get(userCode)
  }

  /** Deletes the records of `model` that belong to `grantId`. */
  deleteGrantMembers(model: string, grantId: string): void {
    for (const key of this.#grantMembers.get(grantId) ?? []) {
      if (modelOf(key) === model) {
        this.delete(key)
      }
    }
  }

  /** Deletes every grant and every token or code bound to one. */
  deleteAllGrants(): void {
    for (const [key, record] of this.#records) {
      const model = modelOf(key)
      if (
        model === "Grant" ||
        (GRANT_BOUND_MODELS.has(model) && record.payload.grantId !== undefined)
      ) {
        this.#records.delete(key)
      }
    }
    this.#grantMembers.clear()
  }

  #sweepExpired(): void {
    const now = Date.now()
    for (const [key, record] of this.#records) {
      if (record.expiresAt !== undefined && record.expiresAt <= now) {
        this.delete(key)
      }
    }
  }
}

/** Models whose records carry a grantId and are revoked with their grant. */
const GRANT_BOUND_MODELS = new Set([
  "AccessToken",
  "AuthorizationCode",
  "RefreshToken",
  "DeviceCode",
  "BackchannelAuthenticationRequest",
])
const SWEEP_INTERVAL_WRITES = 500

const modelOf = (key: string): string => key.slice(0, key.indexOf(":"))

/** oidc-provider's storage interface over a MemoryStore, for one model. */
class MemoryAdapter implements Adapter {
  readonly #model: string
  readonly #store: MemoryStore

  constructor(model: string, store: MemoryStore) {
    this.#model = model
    this.#store = store
  }

  #key(id: string): string {
    return `${this.#model}:${id}`
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    this.#store.set(this.#key(id), payload, expiresIn)
    if (this.#model === "Session" && payload.uid !== undefined) {
      this.#store.indexSessionUid(payload.uid, id)
    }
    if (payload.userCode !== undefined) {
      this.#store.indexUserCode(payload.userCode, id)
    }
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    return this.#store.get(this.#key(id))
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = this.#store.sessionIdForUid(uid)
    return id === undefined ? undefined : this.#store.get(this.#key(id))
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = this.#store.idForUserCode(userCode)
    return id === undefined ? undefined : this.#store.get(this.#key(id))
  }

  async consume(id: string): Promise<void> {
    const payload = this.#store.get(this.#key(id))
    if (payload !== undefined) {
      payload.consumed = Math.floor(Date.now() / 1000)
    }
  }

  async destroy(id: string): Promise<void> {
    this.#store.delete(this.#key(id))
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    this.#store.deleteGrantMembers(this.#model, grantId)
  }
}

type OidcProviderModule = typeof import("oidc-provider")

let oidcProviderModule: Promise<OidcProviderModule> | undefined

/**
 * Imports oidc-provider once. oidc-provider 9.13 prints an "Unsupported runtime" warning when it
 * is loaded on a Node.js release older than 22 LTS. Everything used here works on Node 20 (the
 * demo server tests run there), so that one line is dropped while the module loads.
 */
function loadOidcProvider(): Promise<OidcProviderModule> {
  oidcProviderModule ??= withoutRuntimeWarning(() =>
    importDevDependency("oidc-provider", () => import("oidc-provider")),
  ).catch((error: unknown) => {
    oidcProviderModule = undefined
    throw error
  })
  return oidcProviderModule
}

async function withoutRuntimeWarning<T>(load: () => Promise<T>): Promise<T> {
  const warn = console.warn
  console.warn = (...args: unknown[]) => {
    const [first] = args
    if (typeof first === "string" && first.includes("Unsupported runtime")) {
      return
    }
    warn.apply(console, args)
  }
  try {
    return await load()
  } finally {
    console.warn = warn
  }
}

/**
 * Runs `load`, the dynamic import of the development dependency `name`, and replaces its
 * module-not-found failure with an error that names the package and the install command.
 */
export async function importDevDependency<T>(name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (error) {
    // A package that `name` itself imports and that is missing keeps its original error.
    const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown }
    const notFound = code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND"
    if (notFound && typeof message === "string" && message.includes(`'${name}'`)) {
      throw new Error(`the demo needs the development dependency ${name}; run npm install`, {
        cause: error,
      })
    }
    throw error
  }
}

/** Binds `server` to an ephemeral port on 127.0.0.1 and returns the port. */
export function listenOnLoopback(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

/** Stops `server` and ends its open connections, including idle keep-alive ones. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error === undefined ? resolve() : reject(error)))
    server.closeAllConnections()
  })
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end()
    return
  }
  const text = JSON.stringify(body)
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  })
  res.end(text)
}
