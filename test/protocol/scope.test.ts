/**
 * Scope selection for the first authorization request and the union used on step-up.
 */
import { describe, expect, it } from "vitest"
import { selectScope, splitScope, unionScopes } from "../../src/protocol/scope.js"

describe("splitScope", () => {
  it("splits on any whitespace and drops empty tokens", () => {
    expect(splitScope("  a\tb \n c  ")).toEqual(["a", "b", "c"])
  })

  it("returns no tokens for undefined or blank input", () => {
    expect(splitScope(undefined)).toEqual([])
    expect(splitScope("   ")).toEqual([])
  })
})

describe("unionScopes", () => {
  it("keeps first-seen order without duplicates", () => {
    expect(unionScopes("mcp:connect mcp:tools:read", "mcp:tools:write mcp:connect")).toBe(
      "mcp:connect mcp:tools:read mcp:tools:write",
    )
  })

  it("treats scopes as case-sensitive", () => {
    expect(unionScopes("Read", "read")).toBe("Read read")
  })

  it("skips undefined and blank inputs", () => {
    expect(unionScopes(undefined, "a", "  ", undefined)).toBe("a")
  })

  it("returns undefined when no scope remains", () => {
    expect(unionScopes()).toBeUndefined()
    expect(unionScopes(undefined, " ")).toBeUndefined()
  })

  it("normalises whitespace of a single input", () => {
    expect(unionScopes("  a   b ")).toBe("a b")
  })
})

describe("selectScope", () => {
  it("prefers the configured scope", () => {
    expect(
      selectScope({ configured: "host", challenged: "challenge", resourceScopes: ["metadata"] }),
    ).toBe("host")
  })

  it("uses the challenge scope without a configured one", () => {
    expect(selectScope({ challenged: "files:read files:read", resourceScopes: ["x"] })).toBe(
      "files:read",
    )
  })

  it("uses every resource metadata scope without a challenge", () => {
    expect(selectScope({ resourceScopes: ["a", "b", "a"] })).toBe("a b")
  })

  it("ignores blank configured and challenge scopes", () => {
    expect(selectScope({ configured: " ", challenged: "", resourceScopes: ["a"] })).toBe("a")
  })

  it("omits the scope when no source has one", () => {
    expect(selectScope({})).toBeUndefined()
    expect(selectScope({ resourceScopes: [] })).toBeUndefined()
  })
})
