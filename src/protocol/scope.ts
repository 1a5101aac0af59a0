/**
 * Scope selection: the challenge's `scope`, else every scope the resource metadata lists, else
 * none; and the union with already granted scopes on step-up (scopes are space-separated,
 * case-sensitive and unordered, RFC 6749 §3.3).
 */

/** Splits a scope string into its scope tokens. */
export const splitScope = (scope: string | undefined): string[] =>
  scope === undefined ? [] : scope.split(/\s+/).filter((token) => token !== "")

/** Joins scope lists into one scope string without duplicates, keeping first-seen order. */
export const unionScopes = (...scopes: ReadonlyArray<string | undefined>): string | undefined => {
  const tokens = [...new Set(scopes.flatMap(splitScope))]
  return tokens.length === 0 ? undefined : tokens.join(" ")
}

/** Inputs of the initial scope choice. */
export interface ScopeSources {
  /** A scope the host configured, which takes precedence over the servers' scopes. */
  readonly configured?: string | undefined
  /** `scope` from the server's `WWW-Authenticate` challenge. */
  readonly challenged?: string | undefined
  /** `scopes_supported` of the protected resource metadata. */
  readonly resourceScopes?: ReadonlyArray<string> | undefined
}

/**
 * Adds `offline_access` (a refresh token for later use) to a non-empty scope when the
 * authorization server lists it in `scopes_supported`; never to an omitted scope, and never
 * when the server does not list it.
 */
export const withOfflineAccess = (
  scope: string | undefined,
  serverScopes: ReadonlyArray<string> | undefined,
): string | undefined =>
  scope !== undefined && serverScopes?.includes("offline_access") === true
    ? unionScopes(scope, "offline_access")
    : scope

/** Chooses the scope to request; undefined means the `scope` parameter is omitted. */
export const selectScope = (sources: ScopeSources): string | undefined => {
  if (sources.configured !== undefined && sources.configured.trim() !== "") {
    return unionScopes(sources.configured)
  }
  if (sources.challenged !== undefined && sources.challenged.trim() !== "") {
    return unionScopes(sources.challenged)
  }
  if (sources.resourceScopes !== undefined && sources.resourceScopes.length > 0) {
    return unionScopes(sources.resourceScopes.join(" "))
  }
  return undefined
}
