/**
 * Redaction of values that leave the engine through its inspection stream. The walk copies a
 * value into plain JSON data and removes everything that could carry a credential on the way.
 */
import { Redacted } from "effect"
import { isAuthError } from "../errors.js"

/** The marker that replaces a removed secret. */
export const REDACTED = "<redacted>"

/**
 * Field names whose values are always replaced: tokens, authorization codes, PKCE verifiers,
 * `state`, client secrets, keys and assertions, and the objects that bundle them (an
 * authorization attempt, a token set, a callback query).
 */
const SECRET_FIELDS: ReadonlySet<string> = new Set(
  [
    "accessToken",
    "access_token",
    "refreshToken",
    "refresh_token",
    "idToken",
    "id_token",
    "code",
    "codeVerifier",
    "code_verifier",
    "state",
    "clientSecret",
    "client_secret",
    "privateKey",
    "private_key",
    "pem",
    "assertion",
    "subjectToken",
    "subject_token",
    "password",
    "authorization",
    "dpop",
    "tokens",
    "attempt",
    "callbackParams",
    "authorizationUrl",
    "cookie",
    "set-cookie",
  ].map((name) => name.toLowerCase()),
)

/** Deeper values are replaced by a marker; machine contexts are about six levels deep. */
const MAX_DEPTH = 12

// A URL inside any text, up to the next space or quote, with its punctuation after it.
const URL_IN_TEXT = /\bhttps?:\/\/[^\s"'<>]*/gi
const TRAILING_PUNCTUATION = /[,.;:!)\]]+$/

/** Removes the query and fragment of every http(s) URL in `text`. */
export const redactText = (text: string): string =>
  text.replace(URL_IN_TEXT, (url) => {
    const trailing = TRAILING_PUNCTUATION.exec(url)?.[0] ?? ""
    const bare = url.slice(0, url.length - trailing.length)
    const end = bare.search(/[?#]/)
    return `${end === -1 ? bare : bare.slice(0, end)}${trailing}`
  })

/** Tells whether a field name is one whose value is never shown. */
export const isSecretField = (name: string): boolean => SECRET_FIELDS.has(name.toLowerCase())

/** A host-facing summary of an error: its class, reason and message, never its cause. */
export interface RedactedError {
  readonly name: string
  readonly tag?: string | undefined
  readonly reason?: string | undefined
  readonly message: string
}

/** Summarizes an error without its cause chain, which may hold a failed request. */
export const redactError = (error: unknown): RedactedError => {
  if (isAuthError(error)) {
    // ConfigError has no reason; the option it names plays that part.
    let reason: string | undefined
    if ("reason" in error) reason = error.reason
    else if (error._tag === "ConfigError") reason = error.option
    return { name: error._tag, tag: error._tag, reason, message: redactText(error.message) }
  }
  if (error instanceof Error) {
    // A library's message may quote a request, so only the class name is kept.
    return { name: error.name, message: error.name }
  }
  return { name: typeof error, message: typeof error }
}

const isPlainObject = (value: object): boolean => {
  const prototype = Object.getPrototypeOf(value)
  return prototype === Object.prototype || prototype === null
}

/**
 * Copies `value` into JSON data with every secret removed:
 * - `Redacted` values, and the values of the fields listed above, become `"<redacted>"`;
 * - `URLSearchParams` become the list of their parameter names;
 * - strings keep their text, but every URL in them loses its query and fragment;
 * - errors become {@link RedactedError}, without their cause;
 * - functions, symbols and actor references are dropped; class instances other than `Date`,
 *   `URL`, `Map`, `Set` and arrays become their class name.
 */
export const redactValue = (value: unknown): unknown => walk(value, 0, new WeakSet())

const walk = (value: unknown, depth: number, seen: WeakSet<object>): unknown => {
  if (value === null || value === undefined) return value
  switch (typeof value) {
    case "string":
      return redactText(value)
    case "number":
    case "boolean":
      return value
    case "bigint":
      return value.toString()
    case "function":
    case "symbol":
      return undefined
  }

  const object = value as object
  if (Redacted.isRedacted(object)) return REDACTED
  if (object instanceof URLSearchParams) return { parameters: [...new Set(object.keys())] }
  if (object instanceof URL) return redactText(object.href)
  if (object instanceof Date) return Number.isNaN(object.getTime()) ? null : object.toISOString()
  if (object instanceof Error || isAuthError(object)) return redactError(object)

  if (depth >= MAX_DEPTH) return "<depth limit>"
  if (seen.has(object)) return "<cycle>"
  seen.add(object)
  try {
    if (Array.isArray(object)) return object.map((item) => walk(item, depth + 1, seen) ?? null)
    if (object instanceof Map) {
      return Object.fromEntries(
        [...object].map(([key, item]) => [
          String(key),
          isSecretField(String(key)) ? REDACTED : walk(item, depth + 1, seen),
        ]),
      )
    }
    if (object instanceof Set) return [...object].map((item) => walk(item, depth + 1, seen) ?? null)
    if (!isPlainObject(object)) return `<${object.constructor?.name ?? "object"}>`

    const copy: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(object)) {
      if (isSecretField(key)) {
        if (item !== undefined) copy[key] = REDACTED
        continue
      }
      const redacted = walk(item, depth + 1, seen)
      if (redacted !== undefined) copy[key] = redacted
    }
    return copy
  } finally {
    seen.delete(object)
  }
}
