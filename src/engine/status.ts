/**
 * The host view of an engine: which lifecycle state it is in and what a UI should show.
 * `state` names the statechart's step. `view` folds those steps into what a user is shown, with
 * the line to show and the actions a UI may offer.
 */
import type { AuthError } from "../errors.js"
import type { AuthContext } from "../machine/machine.js"
import type { GrantType } from "../protocol/grants.js"

/** The lifecycle states reported to hosts. Sub-steps of sign-in are flattened to their step name. */
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

/** A host-facing summary of a failure, which never contains a token or a response body. */
export interface EngineErrorSummary {
  readonly tag: AuthError["_tag"]
  readonly reason: string
  readonly message: string
}

/** The engine status a UI renders. */
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
  /** The user-facing summary of this status. */
  readonly view: EngineView
}

/**
 * The kinds of user-facing status, folded from the engine states:
 *
 * | kind | engine states | actions |
 * |---|---|---|
 * | `loading` | `idle` before the stored session was read | none |
 * | `signedOut` | `idle` once no usable session was found | authenticate |
 * | `signInRequired` | `authRequired` (expired, rejected, cancelled, or more scope needed) | authenticate, logout |
 * | `signingIn` | `waitingForLock`, `discovering`, `registering`, `exchanging` | cancel |
 * | `waitingForBrowser` | `awaitingCallback` | cancel |
 * | `authenticated` | `authenticated` | logout |
 * | `refreshing` | `refreshing` | logout |
 * | `signingOut` | `loggingOut` | none |
 * | `failed` | `failed` | retry, logout |
 */
export type EngineViewKind =
  | "loading"
  | "signedOut"
  | "signInRequired"
  | "signingIn"
  | "waitingForBrowser"
  | "authenticated"
  | "refreshing"
  | "signingOut"
  | "failed"

/**
 * An action a UI may offer, and the engine call behind it: `authenticate` and `retry` call
 * `authenticate()`, `cancel` calls `cancel()`, `logout` calls `logout()`.
 */
export type EngineAction = "authenticate" | "cancel" | "logout" | "retry"

/** The user-facing summary of a status. */
export interface EngineView {
  readonly kind: EngineViewKind
  /** One sentence to show, in English; it names the servers involved and never a secret. */
  readonly message: string
  /** The actions that make sense now, in the order a UI would offer them. */
  readonly actions: ReadonlyArray<EngineAction>
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

/** Explains in one sentence why sign-in is required. */
const signInRequiredMessage = (context: AuthContext): string => {
  const server = context.input.serverUrl
  if (context.error?._tag === "SignInRequired" && context.error.reason === "cancelled") {
    return `Sign-in to ${server} was cancelled.`
  }
  if (context.stepUp !== undefined) {
    return `${server} asks for more access (scope "${context.stepUp.scope}"); sign in again to grant it.`
  }
  if (context.error !== undefined) {
    return `Sign in again to ${server}: the session ended (${context.error.message}).`
  }
  return `Sign in to ${server}.`
}

/** Folds an engine state and its context into what a UI shows. */
export const toEngineView = (
  state: EngineState,
  context: AuthContext,
  authorizationServer: string | undefined,
): EngineView => {
  const server = context.input.serverUrl
  const at = authorizationServer ?? "the authorization server"
  switch (state) {
    case "idle":
      return context.loaded
        ? { kind: "signedOut", message: `Not signed in to ${server}.`, actions: ["authenticate"] }
        : { kind: "loading", message: "Loading the stored session…", actions: [] }
    case "authRequired":
      return {
        kind: "signInRequired",
        message: signInRequiredMessage(context),
        actions: ["authenticate", "logout"],
      }
    case "waitingForLock":
      return {
        kind: "signingIn",
        // Usually instant; it lasts only while another process signs in to the same server.
        message: "Starting the sign-in…",
        actions: ["cancel"],
      }
    case "discovering":
      return {
        kind: "signingIn",
        message: `Finding the authorization server of ${server}…`,
        actions: ["cancel"],
      }
    case "registering":
      return { kind: "signingIn", message: `Identifying the client at ${at}…`, actions: ["cancel"] }
    case "awaitingCallback":
      return {
        kind: "waitingForBrowser",
        message: `Continue in the browser: sign in at ${at}.`,
        actions: ["cancel"],
      }
    case "exchanging":
      return { kind: "signingIn", message: "Obtaining tokens…", actions: ["cancel"] }
    case "authenticated":
      return { kind: "authenticated", message: `Signed in to ${server}.`, actions: ["logout"] }
    case "refreshing":
      return { kind: "refreshing", message: "Refreshing the access token…", actions: ["logout"] }
    case "loggingOut":
      return { kind: "signingOut", message: `Signing out of ${server}…`, actions: [] }
    case "failed":
      return {
        kind: "failed",
        message:
          context.error === undefined
            ? `Authorization for ${server} failed.`
            : `Authorization for ${server} failed: ${context.error.message}`,
        actions: ["retry", "logout"],
      }
  }
}

/** Builds the host status from a machine snapshot. */
export const toEngineStatus = (value: unknown, context: AuthContext): EngineStatus => {
  const state = toEngineState(value)
  const authorizationServer =
    context.discovery === undefined
      ? context.session === undefined
        ? undefined
        : new URL(context.session.authorizationServer.issuer).origin
      : new URL(context.discovery.authorizationServer.authorization_endpoint).origin
  return {
    state,
    serverUrl: context.input.serverUrl,
    grant: context.grant.type,
    loaded: context.loaded,
    authorizationServer,
    scope: context.session?.tokens.scope,
    expiresAt: context.session?.tokens.expiresAt,
    error: context.error === undefined ? undefined : summarizeError(context.error),
    view: toEngineView(state, context, authorizationServer),
  }
}
