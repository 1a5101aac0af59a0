/**
 * `WWW-Authenticate` parsing and the classification of 401 and 403 responses.
 */
import { describe, expect, it } from "vitest"
import { classifyResponse, parseWwwAuthenticate } from "../../src/protocol/challenge.js"

describe("parseWwwAuthenticate", () => {
  it("parses one Bearer challenge with parameters", () => {
    const [challenge, ...rest] = parseWwwAuthenticate(
      'Bearer realm="mcp", error="invalid_token", resource_metadata="https://rs.example.test/.well-known/oauth-protected-resource"',
    )

    expect(rest).toHaveLength(0)
    expect(challenge?.scheme).toBe("Bearer")
    expect(challenge?.params.realm).toBe("mcp")
    expect(challenge?.params.error).toBe("invalid_token")
    expect(challenge?.params.resource_metadata).toBe(
      "https://rs.example.test/.well-known/oauth-protected-resource",
    )
  })

  it("parses several challenges in one header", () => {
    const challenges = parseWwwAuthenticate(
      'Basic realm="legacy", Bearer realm="mcp", scope="a b", DPoP algs="ES256 PS256"',
    )

    expect(challenges.map((challenge) => challenge.scheme)).toEqual(["Basic", "Bearer", "DPoP"])
    expect(challenges[0]?.params).toEqual({ realm: "legacy" })
    expect(challenges[1]?.params).toEqual({ realm: "mcp", scope: "a b" })
    expect(challenges[2]?.params).toEqual({ algs: "ES256 PS256" })
  })

  it("parses several header values", () => {
    const challenges = parseWwwAuthenticate(['Bearer realm="one"', 'DPoP algs="ES256"'])

    expect(challenges).toHaveLength(2)
    expect(challenges[0]?.scheme).toBe("Bearer")
    expect(challenges[1]?.scheme).toBe("DPoP")
    expect(challenges[1]?.params.algs).toBe("ES256")
  })

  it("lowercases parameter names and keeps the scheme as sent", () => {
    const [challenge] = parseWwwAuthenticate('bEaReR Realm="x", SCOPE="read", Error=invalid_token')

    expect(challenge?.scheme).toBe("bEaReR")
    expect(challenge?.params.realm).toBe("x")
    expect(challenge?.params.scope).toBe("read")
    expect(challenge?.params.error).toBe("invalid_token")
  })

  it("reads an unquoted parameter value", () => {
    const [challenge] = parseWwwAuthenticate("Bearer error=invalid_token")

    expect(challenge?.token68).toBeUndefined()
    expect(challenge?.params.error).toBe("invalid_token")
  })

  it("keeps the first of repeated parameters", () => {
    const [challenge] = parseWwwAuthenticate('Bearer scope="first", scope="second"')

    expect(challenge?.params.scope).toBe("first")
  })

  it("unescapes quoted strings with quotes and commas inside", () => {
    const [challenge] = parseWwwAuthenticate(
      'Bearer error_description="bad \\"token\\", try again", scope="a,b", realm="back\\\\slash"',
    )

    expect(challenge?.params.error_description).toBe('bad "token", try again')
    expect(challenge?.params.scope).toBe("a,b")
    expect(challenge?.params.realm).toBe("back\\slash")
  })

  it("accepts whitespace around the equals sign", () => {
    const [challenge] = parseWwwAuthenticate('Bearer realm = "x" ,  scope="y"')

    expect(challenge?.params.realm).toBe("x")
    expect(challenge?.params.scope).toBe("y")
  })

  it("reads a token68 value", () => {
    const [basic] = parseWwwAuthenticate("Basic dXNlcjpwYXNz")
    const [negotiate] = parseWwwAuthenticate("Negotiate abc==")

    expect(basic?.scheme).toBe("Basic")
    expect(basic?.token68).toBe("dXNlcjpwYXNz")
    expect(basic?.params).toEqual({})
    expect(negotiate?.scheme).toBe("Negotiate")
    expect(negotiate?.token68).toBe("abc==")
  })

  it("reads a challenge after a token68 value", () => {
    const challenges = parseWwwAuthenticate('Negotiate abc==, Bearer realm="mcp"')

    expect(challenges).toHaveLength(2)
    expect(challenges[0]?.token68).toBe("abc==")
    expect(challenges[1]?.scheme).toBe("Bearer")
    expect(challenges[1]?.params.realm).toBe("mcp")
  })

  it("reads a scheme with no parameters", () => {
    const challenges = parseWwwAuthenticate('Bearer, Basic realm="x"')

    expect(challenges.map((challenge) => challenge.scheme)).toEqual(["Bearer", "Basic"])
    expect(challenges[0]?.params).toEqual({})
  })

  it("returns no challenges for empty input", () => {
    expect(parseWwwAuthenticate("")).toEqual([])
    expect(parseWwwAuthenticate([])).toEqual([])
    expect(parseWwwAuthenticate(["", "  ", ","])).toEqual([])
  })

  it("keeps parameters before an unterminated quoted string", () => {
    const [challenge] = parseWwwAuthenticate('Bearer realm="x", scope="never closed')

    expect(challenge?.scheme).toBe("Bearer")
    expect(challenge?.params.realm).toBe("x")
    expect(challenge?.params.scope).toBeUndefined()
  })

  it("never throws on garbage", () => {
    const samples = [
      '"""',
      "=,=,=",
      "Bearer =x",
      'Bearer realm="a" junk junk, scope="b"',
      "\\\\\\",
      "Bearer realm=",
      ",,,Bearer,,,",
      "\u0000\u00ff\ud83d\ude00",
      'Bearer realm="x\\',
    ]
    for (const sample of samples) {
      expect(() => parseWwwAuthenticate(sample), JSON.stringify(sample)).not.toThrow()
    }
  })

  it("never throws on random input", () => {
    const alphabet = 'Bearer DPoP realm="\\ ,=\t;abc123+/'
    let seed = 7
    const next = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648
      return seed
    }
    for (let round = 0; round < 2_000; round++) {
      const length = next() % 40
      let sample = ""
      for (let i = 0; i < length; i++) sample += alphabet[next() % alphabet.length]
      expect(() => parseWwwAuthenticate(sample), JSON.stringify(sample)).not.toThrow()
    }
  })
})

describe("classifyResponse", () => {
  it("asks for sign-in on a 401 with a Bearer challenge", () => {
    const signal = classifyResponse(401, [
      'Bearer error="invalid_token", resource_metadata="https://rs.example.test/prm", scope="mcp"',
    ])

    expect(signal?.kind).toBe("unauthorized")
    expect(signal?.scheme).toBe("Bearer")
    expect(signal?.resourceMetadataUrl).toBe("https://rs.example.test/prm")
    expect(signal?.scope).toBe("mcp")
    expect(signal).toMatchObject({ error: "invalid_token" })
  })

  it("asks for sign-in on a 401 without a challenge", () => {
    const signal = classifyResponse(401, [])

    expect(signal?.kind).toBe("unauthorized")
    expect(signal?.scheme).toBe("Bearer")
    expect(signal?.resourceMetadataUrl).toBeUndefined()
  })

  it("prefers the Bearer challenge over an earlier Basic one", () => {
    const signal = classifyResponse(401, [
      'Basic realm="legacy", Bearer resource_metadata="https://rs.example.test/prm"',
    ])

    expect(signal?.scheme).toBe("Bearer")
    expect(signal?.resourceMetadataUrl).toBe("https://rs.example.test/prm")
  })

  it("matches the scheme case-insensitively", () => {
    const signal = classifyResponse(401, ['basic realm="x", BEARER scope="mcp"'])

    expect(signal?.scheme).toBe("BEARER")
    expect(signal?.scope).toBe("mcp")
  })

  it("asks for step-up on a 403 insufficient_scope", () => {
    const signal = classifyResponse(403, [
      'Bearer error="insufficient_scope", scope="files:write", resource_metadata="https://rs.example.test/prm"',
    ])

    expect(signal?.kind).toBe("insufficient_scope")
    expect(signal?.scope).toBe("files:write")
    expect(signal?.resourceMetadataUrl).toBe("https://rs.example.test/prm")
  })

  it("ignores a 403 with another error", () => {
    expect(classifyResponse(403, ['Bearer error="invalid_token"'])).toBeUndefined()
  })

  it("ignores a 403 without a challenge", () => {
    expect(classifyResponse(403, [])).toBeUndefined()
  })

  it("ignores statuses other than 401 and 403", () => {
    expect(classifyResponse(200, ['Bearer realm="x"'])).toBeUndefined()
    expect(classifyResponse(400, ['Bearer error="invalid_request"'])).toBeUndefined()
    expect(classifyResponse(500, [])).toBeUndefined()
  })

  it("reads a DPoP challenge", () => {
    const unauthorized = classifyResponse(401, ['DPoP algs="ES256", error="invalid_token"'])
    const stepUp = classifyResponse(403, ['DPoP error="insufficient_scope", scope="admin"'])

    expect(unauthorized?.kind).toBe("unauthorized")
    expect(unauthorized?.scheme).toBe("DPoP")
    expect(stepUp?.kind).toBe("insufficient_scope")
    expect(stepUp?.scheme).toBe("DPoP")
    expect(stepUp?.scope).toBe("admin")
  })
})
