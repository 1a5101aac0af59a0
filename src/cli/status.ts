/**
 * `status [<server-url>]`: what the session store holds, read directly from the store without
 * refreshing anything. Tokens are never shown, only whether a refresh token is stored.
 */
import { Args, Command } from "@effect/cli"
import { Effect, Either, Option } from "effect"
import { makeStoreLayer } from "../engine/layers.js"
import { loadSession, storedSessionUrls } from "../protocol/session.js"
import { Keychain } from "../services/keychain.js"
import { formatExpiry } from "./progress.js"
import {
  CliFailure,
  ExitCode,
  jsonOption,
  oneLine,
  printJson,
  printLine,
  storeHome,
  storeOption,
} from "./shared.js"

/** One stored session as `status --json` prints it. */
interface SessionSummary {
  readonly serverUrl: string
  readonly signedIn: boolean
  readonly issuer?: string | null
  readonly scope?: string | null
  /** ISO 8601 expiry of the access token, or null when the token response had no `expires_in`. */
  readonly expiresAt?: string | null
  readonly expired?: boolean
  readonly refreshable?: boolean
  /** The store's name: "keychain", "file" or "memory". */
  readonly store: string
  /** The folder of the file store, or the OS credential store and service name. */
  readonly storeLocation?: string
  /** The error message when the stored record could not be read. */
  readonly error?: string
}

interface StoreInfo {
  readonly store: string
  readonly storeLocation?: string
}

const summarize = (serverUrl: string, store: StoreInfo, now: number) =>
  loadSession(serverUrl).pipe(
    Effect.either,
    Effect.map((result): SessionSummary => {
      if (Either.isLeft(result)) {
        return { serverUrl, signedIn: false, ...store, error: oneLine(result.left.message) }
      }
      const session = result.right
      if (session === undefined) return { serverUrl, signedIn: false, ...store }
      const expiresAt = session.tokens.expiresAt
      return {
        serverUrl: session.serverUrl,
        signedIn: true,
        issuer: session.authorizationServer.issuer,
        scope: session.tokens.scope ?? null,
        expiresAt: expiresAt === undefined ? null : new Date(expiresAt).toISOString(),
        expired: expiresAt !== undefined && expiresAt <= now,
        refreshable: session.tokens.refreshToken !== undefined,
        ...store,
      }
    }),
  )

const describeStore = (store: StoreInfo): string =>
  store.storeLocation === undefined ? store.store : `${store.store} (${store.storeLocation})`

const printSummary = (summary: SessionSummary, now: number) =>
  Effect.gen(function* () {
    yield* printLine(summary.serverUrl)
    if (summary.error !== undefined) {
      yield* printLine(`  error:   ${summary.error}`)
      return
    }
    if (!summary.signedIn) {
      yield* printLine(`  not signed in (store: ${describeStore(summary)})`)
      return
    }
    const expiresAt = summary.expiresAt == null ? undefined : Date.parse(summary.expiresAt)
    const refresh = summary.refreshable ? "refresh token stored" : "no refresh token"
    yield* printLine(`  issuer:  ${summary.issuer}`)
    yield* printLine(`  scope:   ${summary.scope ?? "(none)"}`)
    yield* printLine(`  expires: ${formatExpiry(expiresAt, now)} (${refresh})`)
    yield* printLine(`  store:   ${describeStore(summary)}`)
  })

/** The `status` command. */
export const statusCommand = Command.make(
  "status",
  {
    serverUrl: Args.text({ name: "server-url" }).pipe(
      Args.withDescription("URL of one MCP server. Default: every session in the store."),
      Args.optional,
    ),
    store: storeOption,
    json: jsonOption,
  },
  ({ serverUrl, store, json }) =>
    Effect.gen(function* () {
      const keychain = yield* Keychain
      const storeInfo: StoreInfo =
        keychain.location === undefined
          ? { store: keychain.name }
          : { store: keychain.name, storeLocation: keychain.location }
      const now = Date.now()

      if (Option.isSome(serverUrl)) {
        const summary = yield* summarize(serverUrl.value, storeInfo, now)
        yield* json ? printJson(summary) : printSummary(summary, now)
        return
      }

      const urls = yield* storedSessionUrls
      const summaries = yield* Effect.forEach(urls, (url) => summarize(url, storeInfo, now))
      if (json) {
        yield* printJson(summaries)
        return
      }
      if (summaries.length === 0) {
        yield* printLine(`No stored sessions (store: ${describeStore(storeInfo)}).`)
        return
      }
      for (const [index, summary] of summaries.entries()) {
        if (index > 0) yield* printLine("")
        yield* printSummary(summary, now)
      }
    }).pipe(
      Effect.provide(makeStoreLayer(store, storeHome())),
      Effect.mapError(
        (error) => new CliFailure({ message: oneLine(error.message), exitCode: ExitCode.failure }),
      ),
    ),
).pipe(
  Command.withDescription(
    "Show stored sessions: server, issuer, scope and access token expiry (never tokens).",
  ),
)
