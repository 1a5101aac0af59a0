/**
 * `WWW-Authenticate` parsing (RFC 9110 §11.6.1) and the classification of an MCP server's
 * response as a sign-in request (401), a step-up request (403 `insufficient_scope`, RFC 6750
 * §3.1) or no auth matter at all.
 */

/** One challenge: a scheme and either auth-params or a token68 value. */
export interface Challenge {
  /** The auth-scheme as sent; compare it case-insensitively. */
  readonly scheme: string
  /** Parameters by lowercased name; quoted-string values are unescaped. */
  readonly params: Readonly<Record<string, string>>
  readonly token68?: string | undefined
}

const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/=]/

/**
 * Parses every challenge of one or more `WWW-Authenticate` field values. Malformed parts are
 * skipped rather than thrown on, because a header is attacker-controlled input.
 */
export const parseWwwAuthenticate = (headerValues: string | ReadonlyArray<string>): Challenge[] => {
  const values = typeof headerValues === "string" ? [headerValues] : headerValues
  return values.flatMap(parseFieldValue)
}

const parseFieldValue = (input: string): Challenge[] => {
  const challenges: Challenge[] = []
  let position = 0

  const skipWhitespace = () => {
    while (position < input.length && (input[position] === " " || input[position] === "\t"))
      position++
  }
  const skipSeparators = () => {
    while (position < input.length && /[\s,]/.test(input[position] ?? "")) position++
  }
  const readToken = (): string => {
    const start = position
    while (position < input.length && TCHAR.test(input[position] ?? "")) position++
    return input.slice(start, position)
  }
  const readQuoted = (): string | undefined => {
    // Called on the opening quote; returns undefined when the string never closes.
    position++
    let value = ""
    while (position < input.length) {
      const char = input[position]
      if (char === "\\") {
        value += input[position + 1] ?? ""
        position += 2
        continue
      }
      if (char === '"') {
        position++
        return value
      }
      value += char
      position++
    }
    return undefined
  }

  while (position < input.length) {
    skipSeparators()
    const scheme = readToken()
    if (scheme === "") {
      // Not a challenge start: skip one character so parsing always advances.
      if (position < input.length) position++
      continue
    }
    const params: Record<string, string> = {}
    let token68: string | undefined
    skipWhitespace()

    // token68 form: characters up to the end or a comma, with no "=" followed by a value.
    const rest = input.slice(position)
    const token68Match = /^([A-Za-z0-9\-._~+/]+=*)\s*(,|$)/.exec(rest)
    if (token68Match?.[1] && !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*=\s*[^=\s,]/.test(rest)) {
      token68 = token68Match[1]
      position += token68Match[1].length
      challenges.push({ scheme, params, token68 })
      continue
    }

    // auth-param list: name = value, separated by commas, until a token not followed by "=".
    while (position < input.length) {
      skipSeparators()
      const save = position
      const name = readToken()
      skipWhitespace()
      if (name === "" || input[position] !== "=") {
        position = save
        break
      }
      position++
      skipWhitespace()
      let value: string | undefined
      if (input[position] === '"') value = readQuoted()
      else {
        const start = position
        while (position < input.length && TOKEN68_CHAR.test(input[position] ?? "")) position++
        value = input.slice(start, position)
      }
      if (value === undefined) break
      const key = name.toLowerCase()
      if (!(key in params)) params[key] = value
      skipWhitespace()
      if (position < input.length && input[position] !== ",") {
        // Garbage after a value: resynchronise on the next comma.
        while (position < input.length && input[position] !== ",") position++
      }
    }
    challenges.push({ scheme, params, token68 })
  }
  return challenges
}

/** The action an MCP server's response requests of the client. */
export type AuthSignal =
  | {
      readonly kind: "unauthorized"
      readonly scheme: string
      readonly resourceMetadataUrl?: string | undefined
      readonly scope?: string | undefined
      readonly error?: string | undefined
    }
  | {
      readonly kind: "insufficient_scope"
      readonly scheme: string
      readonly resourceMetadataUrl?: string | undefined
      readonly scope?: string | undefined
    }

const SCHEMES = new Set(["bearer", "dpop"])

/**
 * Classifies a response: 401 means sign in (or refresh); 403 with `error="insufficient_scope"`
 * means step up; anything else is not an auth matter and returns undefined. The first Bearer or
 * DPoP challenge wins; a 401 without any challenge still asks for sign-in.
 */
export const classifyResponse = (
  status: number,
  wwwAuthenticate: ReadonlyArray<string>,
): AuthSignal | undefined => {
  if (status !== 401 && status !== 403) return undefined
  const challenges = parseWwwAuthenticate(wwwAuthenticate)
  const challenge = challenges.find((c) => SCHEMES.has(c.scheme.toLowerCase())) ?? challenges[0]
  const params = challenge?.params ?? {}
  const base = {
    scheme: challenge?.scheme ?? "Bearer",
    resourceMetadataUrl: params.resource_metadata,
    scope: params.scope,
  }
  if (status === 401) return { kind: "unauthorized", ...base, error: params.error }
  if (params.error === "insufficient_scope") return { kind: "insufficient_scope", ...base }
  return undefined
}
