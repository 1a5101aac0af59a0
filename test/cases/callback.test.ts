/**
 * Stray requests at the loopback redirect URI while a sign-in is pending: a wrong `state`, or an
 * `error` with no `state`, must get a 404 and leave the pending flow waiting for the real
 * redirect, which then completes it once.
 */
import { Effect, Either, Exit, Redacted, Scope } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import {
  type AuthorizationAttempt,
  createAttempt,
  validateCallback,
} from "../../src/protocol/authorization.js"
import { type CallbackListener, listen } from "../../src/services/callback-server.js"

const scopes: Scope.CloseableScope[] = []

afterEach(async () => {
  await Promise.all(
    scopes.splice(0).map((scope) => Effect.runPromise(Scope.close(scope, Exit.void))),
  )
})

const ISSUER = "https://as.example.test"

const makeAttempt = (redirectUri: string, issRequired = false) =>
  Effect.runPromise(
    createAttempt({
      authorizationServer: {
        issuer: ISSUER,
        authorization_endpoint: `${ISSUER}/authorize`,
        token_endpoint: `${ISSUER}/token`,
        authorization_response_iss_parameter_supported: issRequired,
      },
      clientId: "C1",
      redirectUri,
      resource: "https://rs.example.test/mcp",
    }),
  )

/** Binds a listener on a free port and records every callback it accepts. */
const startListener = async () => {
  const scope = Effect.runSync(Scope.make())
  scopes.push(scope)
  const accepted: URLSearchParams[] = []
  const listener: CallbackListener = await Effect.runPromise(
    Scope.extend(
      listen({ preferredPort: 0, onCallback: (params) => accepted.push(params) }),
      scope,
    ),
  )
  return { listener, accepted }
}

/** Sends a GET to the redirect URI with a query and returns the status. */
const visit = async (listener: CallbackListener, query: string, method = "GET") => {
  const response = await fetch(`${listener.redirectUri}?${query}`, { method })
  await response.arrayBuffer()
  return response.status
}

const waitUntil = async (condition: () => boolean, timeoutMs = 2_000) => {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

const rightQuery = (attempt: AuthorizationAttempt, extra: Record<string, string> = {}) =>
  new URLSearchParams({ code: "C1", state: Redacted.value(attempt.state), ...extra }).toString()

describe("loopback callback listener", () => {
  it("ignores a code with the wrong state", async () => {
    const { listener, accepted } = await startListener()
    const attempt = await makeAttempt(listener.redirectUri)
    listener.expect(attempt)

    const status = await visit(listener, "code=ATTACKER&state=whatever")

    expect(status).toBe(404)
    expect(accepted).toHaveLength(0)
  })

  it("ignores an error with no state", async () => {
    const { listener, accepted } = await startListener()
    const attempt = await makeAttempt(listener.redirectUri)
    listener.expect(attempt)

    const status = await visit(
      listener,
      "error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    )

    expect(status).toBe(404)
    expect(accepted).toHaveLength(0)
  })

  it("completes with the right callback after strays", async () => {
    const { listener, accepted } = await startListener()
    const attempt = await makeAttempt(listener.redirectUri)
    listener.expect(attempt)

    const strayCode = await visit(listener, "code=ATTACKER&state=whatever")
    const strayError = await visit(listener, "error=access_denied")
    const right = await visit(listener, rightQuery(attempt))
    await waitUntil(() => accepted.length > 0)

    expect(strayCode).toBe(404)
    expect(strayError).toBe(404)
    expect(right).toBe(200)
    expect(accepted).toHaveLength(1)
    expect(accepted[0]?.get("code")).toBe("C1")
  })

  it("accepts the right state only once", async () => {
    const { listener, accepted } = await startListener()
    const attempt = await makeAttempt(listener.redirectUri)
    listener.expect(attempt)

    const first = await visit(listener, rightQuery(attempt))
    await waitUntil(() => accepted.length > 0)
    const replay = await visit(listener, rightQuery(attempt))

    expect(first).toBe(200)
    expect(replay).toBe(404)
    expect(accepted).toHaveLength(1)
  })

  it("answers 404 before an attempt is armed", async () => {
    const { listener, accepted } = await startListener()
    const attempt = await makeAttempt(listener.redirectUri)

    const status = await visit(listener, rightQuery(attempt))

    expect(status).toBe(404)
    expect(accepted).toHaveLength(0)
  })

  it("answers 404 to other paths and methods", async () => {
    const { listener, accepted } = await startListener()
    const attempt = await makeAttempt(listener.redirectUri)
    listener.expect(attempt)

    const otherPath = await fetch(`http://127.0.0.1:${listener.port}/other?${rightQuery(attempt)}`)
    await otherPath.arrayBuffer()
    const post = await visit(listener, rightQuery(attempt), "POST")

    expect(otherPath.status).toBe(404)
    expect(post).toBe(404)
    expect(accepted).toHaveLength(0)
  })

  it("ends the flow on an error that carries the right state", async () => {
    const { listener, accepted } = await startListener()
    const attempt = await makeAttempt(listener.redirectUri)
    listener.expect(attempt)

    const status = await visit(
      listener,
      new URLSearchParams({
        error: "access_denied",
        state: Redacted.value(attempt.state),
      }).toString(),
    )
    await waitUntil(() => accepted.length > 0)

    expect(status).toBe(400)
    expect(accepted).toHaveLength(1)
  })
})

describe("callback validation order", () => {
  it("reports a state mismatch before an error", async () => {
    const attempt = await makeAttempt("http://127.0.0.1:3118/callback")

    const result = validateCallback(new URLSearchParams({ error: "access_denied" }), attempt)

    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.reason).toBe("state_mismatch")
  })

  it("reports access_denied with the right state", async () => {
    const attempt = await makeAttempt("http://127.0.0.1:3118/callback")
    const params = new URLSearchParams({
      error: "access_denied",
      state: Redacted.value(attempt.state),
    })

    const result = validateCallback(params, attempt)

    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.reason).toBe("access_denied")
  })

  it("reports an iss mismatch before an error", async () => {
    const attempt = await makeAttempt("http://127.0.0.1:3118/callback")
    const params = new URLSearchParams({
      error: "access_denied",
      state: Redacted.value(attempt.state),
      iss: "https://idp.example.test",
    })

    const result = validateCallback(params, attempt)

    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left.reason).toBe("iss_mismatch")
      expect(result.left.received).toBe("https://idp.example.test")
    }
  })

  it("requires iss when the server advertises it", async () => {
    const attempt = await makeAttempt("http://127.0.0.1:3118/callback", true)

    const result = validateCallback(new URLSearchParams(rightQuery(attempt)), attempt)

    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.reason).toBe("iss_missing")
  })

  it("accepts the right state and code", async () => {
    const attempt = await makeAttempt("http://127.0.0.1:3118/callback")

    const result = validateCallback(new URLSearchParams(rightQuery(attempt)), attempt)

    expect(Either.isRight(result)).toBe(true)
    if (Either.isRight(result)) expect(Redacted.value(result.right.code)).toBe("C1")
  })
})
