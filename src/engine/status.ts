/**
 * The host view of an engine: which lifecycle state it is in and what a UI should show.
 */
import type { AuthError } from "../errors.js"
import type { AuthContext } from "../machine/machine.js"
import type { GrantType } from "../protocol/grants.js"

/** The lifecycle states a host sees. Sub-steps of sign-in are flattened to their step name. */
export type EngineState =
  | "idle"
  | "waitingForLock"
  | "authRequired"
  | "discovering"
  | "registering"
  | "awaitingCallback"
  | "exchanging"
  | "authenticated"
  | "refreshing"
  | "failed"
  | "loggingOut"

/** A host-facing summary of a failure; it never holds a token or a response body. */
export interface EngineErrorSummary {
  readonly tag: AuthError["_tag"]
  readonly reason: string
  readonly message: string
}

/** What a UI needs to render the engine. */
export interface EngineStatus {
  readonly state: EngineState
  readonly serverUrl: string
  /** The grant of the current or last sign-in, such as "authorization_code". */
  readonly grant: GrantType
  /** Whether a stored session has been looked for yet. */
  readonly loaded: boolean
  /** The authorization server's origin while signing in, so the user sees where they log in. */
  readonly authorizationServer?: string | undefined
  readonly scope?: string | undefined
  /** When the access token expires, in milliseconds since the epoch. */
  readonly expiresAt?: number | undefined
  readonly error?: EngineErrorSummary | undefined
}

/** Maps a machine state value to the host-facing state. */
export const toEngineState = (value: unknown): EngineState => {
  if (typeof value === "string") return value as EngineState
  if (typeof value === "object" && value !== null && "authorizing" in value) {
    const step = (value as { authorizing: string }).authorizing
    return step === "waitingForListener" ? "discovering" : (step as EngineState)
  }
  return "idle"
}

/** Summarises an error for hosts. */
export const summarizeError = (error: AuthError): EngineErrorSummary => ({
  tag: error._tag,
  reason:
    "reason" in error ? error.reason : error._tag === "ConfigError" ? error.option : "unknown",
  message: error.message,
})

/** Builds the host status from a machine snapshot. */
export const toEngineStatus = (value: unknown, context: AuthContext): EngineStatus => ({
  state: toEngineState(value),
  serverUrl: context.input.serverUrl,
  grant: context.grant.type,
  loaded: context.loaded,
  authorizationServer:
    context.discovery === undefined
      ? context.session === undefined
        ? undefined
        : new URL(context.session.authorizationServer.issuer).origin
      : new URL(context.discovery.authorizationServer.authorization_endpoint).origin,
  scope: context.session?.tokens.scope,
  expiresAt: context.session?.tokens.expiresAt,
  error: context.error === undefined ? undefined : summarizeError(context.error),
})
