/**
 * The host view model: every engine state folds into a view kind, a message and the actions a
 * UI may offer, and the message explains why a sign-in is required.
 */
import { describe, expect, it } from "vitest"
import { toEngineView } from "../../src/engine/status.js"
import {
  type EngineState,
  type EngineViewKind,
  SignInRequired,
  TokenError,
} from "../../src/index.js"
import type { AuthContext } from "../../src/machine/machine.js"

const SERVER_URL = "https://mcp.example/mcp"

const context = (fields: Partial<AuthContext> = {}): AuthContext => ({
  input: {
    serverUrl: SERVER_URL,
    client: {},
    protocolVersion: "2025-11-25",
    callbackPort: 0,
    callbackTimeoutMs: 1000,
    grant: { type: "authorization_code" },
    dpop: "auto",
  },
  loaded: true,
  grant: { type: "authorization_code" },
  registrations: {},
  ...fields,
})

const expected: ReadonlyArray<[EngineState, EngineViewKind, ReadonlyArray<string>]> = [
  ["idle", "signedOut", ["authenticate"]],
  ["authRequired", "signInRequired", ["authenticate", "logout"]],
  ["waitingForLock", "signingIn", ["cancel"]],
  ["discovering", "signingIn", ["cancel"]],
  ["registering", "signingIn", ["cancel"]],
  ["awaitingCallback", "waitingForBrowser", ["cancel"]],
  ["exchanging", "signingIn", ["cancel"]],
  ["authenticated", "authenticated", ["logout"]],
  ["refreshing", "refreshing", ["logout"]],
  ["failed", "failed", ["retry", "logout"]],
  ["loggingOut", "signingOut", []],
]

describe("engine view", () => {
  it.each(expected)("maps %s to %s", (state, kind, actions) => {
    const view = toEngineView(state, context(), "https://auth.example")

    expect(view.kind).toBe(kind)
    expect(view.actions).toEqual(actions)
    expect(view.message.length).toBeGreaterThan(0)
  })

  it("shows loading before the session is read", () => {
    const view = toEngineView("idle", context({ loaded: false }), undefined)

    expect(view.kind).toBe("loading")
    expect(view.actions).toEqual([])
  })

  it("names the authorization server while waiting for the browser", () => {
    const view = toEngineView("awaitingCallback", context(), "https://auth.example")

    expect(view.message).toContain("https://auth.example")
  })

  it("explains why sign-in is required", () => {
    const cancelled = toEngineView(
      "authRequired",
      context({ error: new SignInRequired({ reason: "cancelled", serverUrl: SERVER_URL }) }),
      undefined,
    )
    const stepUp = toEngineView(
      "authRequired",
      context({ stepUp: { scope: "mcp:tools mcp:admin", attempts: 1 } }),
      undefined,
    )
    const expired = toEngineView(
      "authRequired",
      context({
        error: new TokenError({
          reason: "invalid_grant",
          grant: "refresh_token",
          endpoint: "https://auth.example/token",
        }),
      }),
      undefined,
    )

    expect(cancelled.message).toContain("cancelled")
    expect(stepUp.message).toContain("mcp:admin")
    expect(expired.message).toContain("invalid_grant")
  })
})
