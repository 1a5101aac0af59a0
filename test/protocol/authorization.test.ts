/**
 * The authorization request: the URL built from `authorization_endpoint`, and the PKCE, `state`
 * and `resource` parameters of a fresh attempt.
 */
import { Effect, Redacted } from "effect"
import { calculatePKCECodeChallenge } from "oauth4webapi"
import { describe, expect, it } from "vitest"
import { buildAuthorizationUrl, createAttempt } from "../../src/protocol/authorization.js"

describe("buildAuthorizationUrl", () => {
  it("keeps query parameters already in the endpoint", () => {
    const url = new URL(
      buildAuthorizationUrl("https://as.example.test/authorize?tenant=t1&audience=api", {
        response_type: "code",
        client_id: "C1",
      }),
    )

    expect(url.searchParams.get("tenant")).toBe("t1")
    expect(url.searchParams.get("audience")).toBe("api")
    expect(url.searchParams.get("response_type")).toBe("code")
    expect(url.searchParams.get("client_id")).toBe("C1")
  })

  it("replaces a same-named parameter of the endpoint", () => {
    const url = new URL(
      buildAuthorizationUrl("https://as.example.test/authorize?prompt=none", {
        prompt: "consent",
      }),
    )

    expect(url.searchParams.getAll("prompt")).toEqual(["consent"])
  })

  it("omits undefined parameters", () => {
    const url = new URL(
      buildAuthorizationUrl("https://as.example.test/authorize", {
        scope: undefined,
        state: "S",
      }),
    )

    expect(url.searchParams.has("scope")).toBe(false)
    expect(url.searchParams.get("state")).toBe("S")
  })

  it("encodes values so they decode unchanged", () => {
    const resource = "https://rs.example.test/mcp?x=1&y=2"
    const url = new URL(
      buildAuthorizationUrl("https://as.example.test/authorize", { resource, scope: "a b+c" }),
    )

    expect(url.searchParams.get("resource")).toBe(resource)
    expect(url.searchParams.get("scope")).toBe("a b+c")
  })
})

describe("createAttempt", () => {
  const input = {
    authorizationServer: {
      issuer: "https://as.example.test",
      authorization_endpoint: "https://as.example.test/authorize?tenant=t1",
      token_endpoint: "https://as.example.test/token",
      authorization_response_iss_parameter_supported: true,
    },
    clientId: "C1",
    redirectUri: "http://127.0.0.1:3118/callback",
    resource: "https://rs.example.test/mcp",
    scope: "mcp:read",
  }

  it("sends PKCE S256, state, resource and scope", async () => {
    const attempt = await Effect.runPromise(createAttempt(input))
    const url = new URL(Redacted.value(attempt.authorizationUrl))

    expect(url.origin + url.pathname).toBe("https://as.example.test/authorize")
    expect(url.searchParams.get("tenant")).toBe("t1")
    expect(url.searchParams.get("response_type")).toBe("code")
    expect(url.searchParams.get("client_id")).toBe("C1")
    expect(url.searchParams.get("redirect_uri")).toBe(input.redirectUri)
    expect(url.searchParams.get("code_challenge_method")).toBe("S256")
    expect(url.searchParams.get("code_challenge")).toBe(attempt.codeChallenge)
    expect(url.searchParams.get("state")).toBe(Redacted.value(attempt.state))
    expect(url.searchParams.get("resource")).toBe(input.resource)
    expect(url.searchParams.get("scope")).toBe("mcp:read")
  })

  it("derives the challenge from the verifier", async () => {
    const attempt = await Effect.runPromise(createAttempt(input))

    expect(attempt.codeChallenge).toBe(
      await calculatePKCECodeChallenge(Redacted.value(attempt.codeVerifier)),
    )
  })

  it("records the issuer and whether iss is required", async () => {
    const attempt = await Effect.runPromise(createAttempt(input))

    expect(attempt.issuer).toBe("https://as.example.test")
    expect(attempt.issRequired).toBe(true)
  })

  it("draws a new state and verifier each time", async () => {
    const first = await Effect.runPromise(createAttempt(input))
    const second = await Effect.runPromise(createAttempt(input))

    expect(Redacted.value(first.state)).not.toBe(Redacted.value(second.state))
    expect(Redacted.value(first.codeVerifier)).not.toBe(Redacted.value(second.codeVerifier))
  })

  it("omits scope when none is chosen", async () => {
    const attempt = await Effect.runPromise(createAttempt({ ...input, scope: undefined }))

    expect(new URL(Redacted.value(attempt.authorizationUrl)).searchParams.has("scope")).toBe(false)
  })
})
