/**
 * Token responses seen in the field: `expires_in` as 0, as a numeric string or as garbage, and
 * long-lived access tokens that come without a refresh token.
 */
import { Either, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { decodeTokenResponse } from "../../src/protocol/token.js"

const NOW = 1_700_000_000_000

const decode = (body: object, previousRefreshToken?: string) =>
  decodeTokenResponse(
    { status: 200, body: JSON.stringify(body) },
    {
      grant: previousRefreshToken === undefined ? "authorization_code" : "refresh_token",
      endpoint: "https://as.example.test/token",
      requestedScope: "mcp",
      previousRefreshToken:
        previousRefreshToken === undefined ? undefined : Redacted.make(previousRefreshToken),
      now: NOW,
    },
  )

const decodeRight = (body: object, previousRefreshToken?: string) => {
  const result = decode(body, previousRefreshToken)
  if (Either.isLeft(result)) throw new Error(result.left.message)
  return result.right
}

describe("expires_in", () => {
  it("treats 0 as already expired", () => {
    const tokens = decodeRight({ access_token: "AT", token_type: "Bearer", expires_in: 0 })

    expect(tokens.expiresAt).toBe(NOW)
    expect(tokens.expiresAt).toBeLessThanOrEqual(NOW)
  })

  it("accepts a numeric string", () => {
    const tokens = decodeRight({ access_token: "AT", token_type: "Bearer", expires_in: "3600" })

    expect(tokens.expiresAt).toBe(NOW + 3_600_000)
  })

  it("treats a malformed string as unknown expiry", () => {
    const result = decode({ access_token: "AT", token_type: "Bearer", expires_in: "3600abc" })

    expect(Either.isRight(result)).toBe(true)
    if (Either.isRight(result)) {
      expect(result.right.expiresAt).toBeUndefined()
      expect(Redacted.value(result.right.accessToken)).toBe("AT")
    }
  })

  it("treats negative, fractional-string and null values as unknown expiry", () => {
    for (const expiresIn of [-5, "-5", "1.5", null, true, ""]) {
      const tokens = decodeRight({
        access_token: "AT",
        token_type: "Bearer",
        expires_in: expiresIn,
      })

      expect(tokens.expiresAt, `expires_in ${JSON.stringify(expiresIn)}`).toBeUndefined()
    }
  })

  it("treats a missing value as unknown expiry", () => {
    const tokens = decodeRight({ access_token: "AT", token_type: "Bearer" })

    expect(tokens.expiresAt).toBeUndefined()
  })
})

describe("refresh_token", () => {
  it("accepts a response without a refresh token", () => {
    const tokens = decodeRight({ access_token: "AT", token_type: "Bearer", expires_in: 5_184_000 })

    expect(Redacted.value(tokens.accessToken)).toBe("AT")
    expect(tokens.refreshToken).toBeUndefined()
    expect(tokens.expiresAt).toBe(NOW + 5_184_000_000)
  })

  it("keeps the previous refresh token when a refresh returns none", () => {
    const tokens = decodeRight({ access_token: "AT2", token_type: "Bearer" }, "RT1")

    expect(
      tokens.refreshToken === undefined ? undefined : Redacted.value(tokens.refreshToken),
    ).toBe("RT1")
  })

  it("replaces the previous refresh token with a rotated one", () => {
    const tokens = decodeRight(
      { access_token: "AT2", token_type: "Bearer", refresh_token: "RT2" },
      "RT1",
    )

    expect(
      tokens.refreshToken === undefined ? undefined : Redacted.value(tokens.refreshToken),
    ).toBe("RT2")
  })
})
