/**
 * The Promise facade for hosts that do not use Effect. Errors reject with the engine's typed
 * errors (check `error._tag`), never with Effect's wrapper.
 */
import {
  Cause,
  Effect,
  Exit,
  Layer,
  Logger,
  LogLevel,
  ManagedRuntime,
  Option,
  Redacted,
  Scope,
} from "effect"
import type { AuthError, ConfigError } from "../errors.js"
import type { InspectionObserver } from "../inspect/events.js"
import type { GrantConfig } from "../protocol/grants.js"
import type { ClientConfig } from "../protocol/registration.js"
import type { TokenEndpointAuthMethod } from "../schema/oauth.js"
import {
  type AuthEngineConfig,
  type AuthEngineService,
  makeAuthEngine,
  type TokenOptions,
} from "./engine.js"
import { type LayerOptions, makeServiceLayer } from "./layers.js"
import type { EngineStatus } from "./status.js"

/** Options of {@link createAuthEngine}. Secrets are plain strings here and wrapped at once. */
/** A grant as the Promise API takes it: secrets as plain strings. */
export type GrantOption =
  | { readonly type: "authorization_code" }
  | { readonly type: "client_credentials" }
  | { readonly type: "jwt_bearer"; readonly assertion: string }
  | {
      readonly type: "id_jag"
      readonly identityProvider: {
        readonly tokenEndpoint: string
        readonly clientId: string
        readonly clientSecret?: string | undefined
        readonly subjectToken: string
        readonly subjectTokenType?: string | undefined
      }
    }

export interface CreateAuthEngineOptions
  extends Omit<AuthEngineConfig, "client" | "grant">,
    LayerOptions {
  readonly grant?: GrantOption | undefined
  /**
   * The lowest level logged, to stderr: "Debug", "Info", "Warning" (default), "Error" or
   * "None". Logs never contain tokens, codes or secrets.
   */
  readonly logLevel?: "Debug" | "Info" | "Warning" | "Error" | "None" | undefined
  readonly client?:
    | {
        readonly clientId?: string | undefined
        readonly clientSecret?: string | undefined
        readonly issuer?: string | undefined
        readonly tokenEndpointAuthMethod?: TokenEndpointAuthMethod | undefined
        readonly clientMetadataUrl?: string | undefined
        readonly clientName?: string | undefined
        /** A PKCS#8 PEM key for `private_key_jwt`, and its JWS algorithm (default "ES256"). */
        readonly privateKeyPem?: string | undefined
        readonly privateKeyAlgorithm?: string | undefined
      }
    | undefined
}

/** An engine driven through Promises. */
export interface AuthEngineHandle {
  readonly serverUrl: string
  /** A valid access token (in clear: the caller puts it in a request). */
  getAccessToken(options?: TokenOptions): Promise<string>
  authenticate(): Promise<void>
  cancel(): Promise<void>
  logout(): Promise<void>
  status(): EngineStatus
  subscribe(listener: (status: EngineStatus) => void): () => void
  /** Calls `observer` with every redacted inspection event; returns the unsubscribe function. */
  inspect(observer: InspectionObserver): () => void
  /** `fetch` with the token added; a 401 or 403 is handled once. Bodies must be replayable. */
  fetch(input: string | URL, init?: RequestInit, options?: TokenOptions): Promise<Response>
  /** Stops the engine and closes its listeners. */
  dispose(): Promise<void>
  /** The Effect service underneath, for hosts that mix both styles. */
  readonly service: AuthEngineService
}

const toClientConfig = (client: CreateAuthEngineOptions["client"]): ClientConfig | undefined => {
  if (client === undefined) return undefined
  const { clientSecret, privateKeyPem, privateKeyAlgorithm, ...rest } = client
  return {
    ...rest,
    clientSecret: clientSecret === undefined ? undefined : Redacted.make(clientSecret),
    privateKey:
      privateKeyPem === undefined
        ? undefined
        : { pem: Redacted.make(privateKeyPem), algorithm: privateKeyAlgorithm ?? "ES256" },
  }
}

const toGrantConfig = (grant: GrantOption | undefined): GrantConfig | undefined => {
  if (grant === undefined) return undefined
  switch (grant.type) {
    case "authorization_code":
    case "client_credentials":
      return grant
    case "jwt_bearer":
      return { type: "jwt_bearer", assertion: Redacted.make(grant.assertion) }
    case "id_jag": {
      const { clientSecret, subjectToken, ...rest } = grant.identityProvider
      return {
        type: "id_jag",
        identityProvider: {
          ...rest,
          clientSecret: clientSecret === undefined ? undefined : Redacted.make(clientSecret),
          subjectToken: Redacted.make(subjectToken),
        },
      }
    }
  }
}

/** Rejects with the typed failure of an exit, or returns its value. */
const unwrap = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isSuccess(exit)) return exit.value
  throw Option.getOrElse(Cause.failureOption(exit.cause), () => Cause.squash(exit.cause))
}

/**
 * Creates and starts an engine for one MCP server. Rejects with a `ConfigError` for unusable
 * options. Call `dispose()` when done.
 */
export const createAuthEngine = async (
  options: CreateAuthEngineOptions,
): Promise<AuthEngineHandle> => {
  const runtime = ManagedRuntime.make(
    Layer.mergeAll(
      makeServiceLayer(options),
      Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger)),
      Logger.minimumLogLevel(LogLevel.fromLiteral(options.logLevel ?? "Warning")),
    ),
  )
  const scope = Effect.runSync(Scope.make())
  const config: AuthEngineConfig = {
    ...options,
    client: toClientConfig(options.client),
    grant: toGrantConfig(options.grant),
  }
  const exit = await runtime.runPromiseExit(
    makeAuthEngine(config).pipe(Effect.provideService(Scope.Scope, scope)),
  )
  if (Exit.isFailure(exit)) await runtime.dispose()
  const service = unwrap<AuthEngineService, ConfigError>(exit)
  const run = async <A>(effect: Effect.Effect<A, AuthError>): Promise<A> =>
    unwrap(await runtime.runPromiseExit(effect))

  return {
    serverUrl: service.serverUrl,
    getAccessToken: async (tokenOptions) => {
      const held = service.peekAccessToken()
      if (held !== undefined) return Redacted.value(held)
      return Redacted.value(await run(service.getAccessToken(tokenOptions)))
    },
    authenticate: () => run(service.authenticate),
    cancel: () => run(service.cancel),
    logout: () => run(service.logout),
    status: () => Effect.runSync(service.status),
    subscribe: (listener) => service.subscribe(listener),
    inspect: (observer) => service.inspect(observer),
    fetch: (input, init, tokenOptions) => run(service.fetch(input, init, tokenOptions)),
    dispose: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await runtime.dispose()
    },
    service,
  }
}
