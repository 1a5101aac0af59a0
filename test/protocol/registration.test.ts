/**
 * The token endpoint authentication method choice and the Dynamic Client Registration request
 * body for a native client.
 */
import { describe, expect, it } from "vitest"
import {
  chooseAuthMethod,
  DEFAULT_CLIENT_NAME,
  makeRegistrationRequest,
  type RegistrationInput,
} from "../../src/protocol/registration.js"
import type { AuthorizationServerMetadata } from "../../src/schema/metadata.js"

const metadata = (methods?: string[]): AuthorizationServerMetadata => ({
  issuer: "https://as.example.test",
  authorization_endpoint: "https://as.example.test/authorize",
  token_endpoint: "https://as.example.test/token",
  registration_endpoint: "https://as.example.test/register",
  ...(methods === undefined ? {} : { token_endpoint_auth_methods_supported: methods }),
})

describe("chooseAuthMethod", () => {
  it("returns none without a secret", () => {
    expect(chooseAuthMethod(metadata(["client_secret_basic"]), false)).toBe("none")
  })

  it("defaults to client_secret_basic when the server lists no methods", () => {
    expect(chooseAuthMethod(metadata(), true)).toBe("client_secret_basic")
  })

  it("prefers client_secret_basic when both are supported", () => {
    expect(chooseAuthMethod(metadata(["client_secret_post", "client_secret_basic"]), true)).toBe(
      "client_secret_basic",
    )
  })

  it("uses client_secret_post when it is the only secret method", () => {
    expect(chooseAuthMethod(metadata(["none", "client_secret_post"]), true)).toBe(
      "client_secret_post",
    )
  })

  it("falls back to client_secret_basic when no listed method fits", () => {
    expect(chooseAuthMethod(metadata(["private_key_jwt"]), true)).toBe("client_secret_basic")
  })
})

describe("makeRegistrationRequest", () => {
  const input = (methods?: string[], clientName?: string): RegistrationInput => ({
    authorizationServer: metadata(methods),
    redirectUri: "http://127.0.0.1:3118/callback",
    client: clientName === undefined ? {} : { clientName },
  })

  it("registers a native client for the redirect URI", () => {
    const body = makeRegistrationRequest(input(["none"]))

    expect(body.application_type).toBe("native")
    expect(body.redirect_uris).toEqual(["http://127.0.0.1:3118/callback"])
    expect(body.response_types).toEqual(["code"])
  })

  it("asks for the code and refresh token grants", () => {
    const body = makeRegistrationRequest(input(["none"]))

    expect(body.grant_types).toContain("authorization_code")
    expect(body.grant_types).toContain("refresh_token")
  })

  it("asks for a public client when the server supports none", () => {
    expect(
      makeRegistrationRequest(input(["client_secret_basic", "none"])).token_endpoint_auth_method,
    ).toBe("none")
  })

  it("asks for client_secret_basic when none is not supported", () => {
    expect(makeRegistrationRequest(input()).token_endpoint_auth_method).toBe("client_secret_basic")
    expect(
      makeRegistrationRequest(input(["client_secret_basic", "client_secret_post"]))
        .token_endpoint_auth_method,
    ).toBe("client_secret_basic")
  })

  it("asks for client_secret_post when it is the only method", () => {
    expect(makeRegistrationRequest(input(["client_secret_post"])).token_endpoint_auth_method).toBe(
      "client_secret_post",
    )
  })

  it("uses the configured client name or the default", () => {
    expect(makeRegistrationRequest(input(["none"], "My Host")).client_name).toBe("My Host")
    expect(makeRegistrationRequest(input(["none"])).client_name).toBe(DEFAULT_CLIENT_NAME)
  })
})
