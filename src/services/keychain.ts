/**
 * Where sessions are kept. The `Keychain` service stores opaque strings under string keys;
 * this module gives an in-memory store and a file store (one file per key, mode 0600, written
 * by atomic rename so a crash never leaves a half-written session).
 */
import { createHash, randomBytes } from "node:crypto"
import { promises as fs } from "node:fs"
import { homedir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer } from "effect"
import { KeychainError } from "../errors.js"

/** A string store for session records. */
export interface KeychainService {
  /** A short name shown in status output: "memory", "file". */
  readonly name: string
  /** Where the store keeps its data, for status output; undefined for memory. */
  readonly location?: string | undefined
  readonly get: (key: string) => Effect.Effect<string | undefined, KeychainError>
  readonly set: (key: string, value: string) => Effect.Effect<void, KeychainError>
  readonly remove: (key: string) => Effect.Effect<void, KeychainError>
  readonly keys: Effect.Effect<ReadonlyArray<string>, KeychainError>
}

/** The session store service. */
export class Keychain extends Context.Tag("mcp-auth-engine/Keychain")<
  Keychain,
  KeychainService
>() {}

/** Builds an in-memory store; its contents end with the process. */
export const makeMemoryKeychain = (): KeychainService => {
  const entries = new Map<string, string>()
  return {
    name: "memory",
    get: (key) => Effect.sync(() => entries.get(key)),
    set: (key, value) => Effect.sync(() => void entries.set(key, value)),
    remove: (key) => Effect.sync(() => void entries.delete(key)),
    keys: Effect.sync(() => [...entries.keys()]),
  }
}

/** A fresh in-memory store per layer build. */
export const KeychainMemory: Layer.Layer<Keychain> = Layer.sync(Keychain, makeMemoryKeychain)

/**
 * The engine's home folder: `$MCP_AUTH_ENGINE_HOME`, else `$XDG_CONFIG_HOME/mcp-auth-engine`,
 * else `~/.config/mcp-auth-engine`.
 */
export const defaultHome = (env: NodeJS.ProcessEnv = process.env): string =>
  env.MCP_AUTH_ENGINE_HOME ??
  join(env.XDG_CONFIG_HOME ?? join(homedir(), ".config"), "mcp-auth-engine")

interface StoredEntry {
  readonly key: string
  readonly value: string
}

const fileNameFor = (key: string): string =>
  `${createHash("sha256").update(key).digest("hex").slice(0, 32)}.json`

const isMissing = (cause: unknown): boolean =>
  typeof cause === "object" && cause !== null && "code" in cause && cause.code === "ENOENT"

/**
 * Builds a file store under `directory`: one JSON file per key, named by a hash of the key.
 * Files are created with mode 0600 in a 0700 folder and replaced by rename.
 */
export const makeFileKeychain = (directory: string): KeychainService => {
  const fail = (reason: KeychainError["reason"], detail: string) => (cause: unknown) =>
    new KeychainError({ reason, store: "file", detail, cause })

  const readEntry = (file: string) =>
    Effect.tryPromise({
      try: async () => {
        try {
          return JSON.parse(await fs.readFile(join(directory, file), "utf8")) as StoredEntry
        } catch (cause) {
          if (isMissing(cause)) return undefined
          throw cause
        }
      },
      catch: fail("read_failed", `cannot read ${join(directory, file)}`),
    })

  return {
    name: "file",
    location: directory,
    get: (key) =>
      readEntry(fileNameFor(key)).pipe(
        Effect.map((entry) => (entry?.key === key ? entry.value : undefined)),
      ),
    set: (key, value) =>
      Effect.tryPromise({
        try: async () => {
          await fs.mkdir(directory, { recursive: true, mode: 0o700 })
          const target = join(directory, fileNameFor(key))
          const temporary = `${target}.${randomBytes(6).toString("hex")}.tmp`
          const entry: StoredEntry = { key, value }
          await fs.writeFile(temporary, JSON.stringify(entry), { mode: 0o600, flag: "wx" })
          try {
            await fs.rename(temporary, target)
          } catch (cause) {
            await fs.rm(temporary, { force: true })
            throw cause
          }
        },
        catch: fail("write_failed", `cannot write to ${directory}`),
      }),
    remove: (key) =>
      Effect.tryPromise({
        try: () => fs.rm(join(directory, fileNameFor(key)), { force: true }),
        catch: fail("write_failed", `cannot delete from ${directory}`),
      }),
    keys: Effect.gen(function* () {
      const files = yield* Effect.tryPromise({
        try: async () => {
          try {
            return await fs.readdir(directory)
          } catch (cause) {
            if (isMissing(cause)) return []
            throw cause
          }
        },
        catch: fail("read_failed", `cannot list ${directory}`),
      })
      const keys: string[] = []
      for (const file of files.filter((name) => name.endsWith(".json"))) {
        const entry = yield* readEntry(file).pipe(Effect.orElseSucceed(() => undefined))
        if (entry !== undefined && typeof entry.key === "string") keys.push(entry.key)
      }
      return keys
    }),
  }
}

/** A file store under `<home>/sessions`. */
export const KeychainFile = (home: string = defaultHome()): Layer.Layer<Keychain> =>
  Layer.sync(Keychain, () => makeFileKeychain(join(home, "sessions")))
