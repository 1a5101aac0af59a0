/**
 * Where sessions are kept. The `Keychain` service stores opaque strings under string keys;
 * this module gives an in-memory store and a file store (one file per key, mode 0600, written
 * by atomic rename so a crash never leaves a half-written session).
 */
import { createHash, randomBytes } from "node:crypto"
import { promises as fs } from "node:fs"
import { homedir } from "node:os"
import { join } from "node:path"
import { Context, Effect, Layer, type Scope } from "effect"
import { KeychainError } from "../errors.js"

/** A string store for session records. */
export interface KeychainService {
  /** A short name shown in status output: "memory", "file". */
  readonly name: string
  /** The folder or service holding the store's data, for status output; undefined for memory. */
  readonly location?: string | undefined
  readonly get: (key: string) => Effect.Effect<string | undefined, KeychainError>
  readonly set: (key: string, value: string) => Effect.Effect<void, KeychainError>
  readonly remove: (key: string) => Effect.Effect<void, KeychainError>
  readonly keys: Effect.Effect<ReadonlyArray<string>, KeychainError>
  /**
   * Holds an exclusive lock on `key` until the scope closes, waiting up to `timeoutMs` for it.
   * Stores shared between processes lock across processes; the others lock within this one.
   * When absent, {@link lockKey} uses an in-process lock.
   */
  readonly lock?: (
    key: string,
    timeoutMs: number,
  ) => Effect.Effect<void, KeychainError, Scope.Scope>
}

const inProcessLocks = new Map<string, Effect.Semaphore>()

/** Locks `key` exclusively among the engines of this process. */
export const inProcessLock = (key: string): Effect.Effect<void, never, Scope.Scope> => {
  let semaphore = inProcessLocks.get(key)
  if (semaphore === undefined) {
    semaphore = Effect.unsafeMakeSemaphore(1)
    inProcessLocks.set(key, semaphore)
  }
  const held = semaphore
  return Effect.acquireRelease(held.take(1), () => held.release(1)).pipe(Effect.asVoid)
}

/**
 * Locks `key` in the store, in this process first so engines of one process queue without
 * polling, then in the store itself when it locks across processes.
 */
export const lockKey = (
  keychain: KeychainService,
  key: string,
  timeoutMs: number,
): Effect.Effect<void, KeychainError, Scope.Scope> =>
  Effect.zipRight(
    inProcessLock(`${keychain.name}:${keychain.location ?? ""}:${key}`),
    keychain.lock === undefined ? Effect.void : keychain.lock(key, timeoutMs),
  )

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

/** How often a waiting process looks at a lock file again. */
const LOCK_POLL_MS = 25
/**
 * Age after which a lock file counts as abandoned even if its process id is alive (the id may
 * have been reused). Longer than any sign-in the engine waits for.
 */
export const STALE_LOCK_MS = 10 * 60_000

interface LockOwner {
  readonly pid: number
  readonly token: string
  readonly acquiredAt: number
}

const isProcessAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (cause) {
    // EPERM: the process exists but belongs to someone else.
    return typeof cause === "object" && cause !== null && "code" in cause && cause.code === "EPERM"
  }
}

const readOwner = async (path: string): Promise<LockOwner | undefined> => {
  try {
    const owner = JSON.parse(await fs.readFile(path, "utf8")) as Partial<LockOwner>
    return typeof owner.pid === "number" &&
      typeof owner.token === "string" &&
      typeof owner.acquiredAt === "number"
      ? (owner as LockOwner)
      : undefined
  } catch {
    return undefined
  }
}

const errorCode = (cause: unknown): unknown =>
  typeof cause === "object" && cause !== null && "code" in cause ? cause.code : undefined

/** A name next to `path` for a file only this process writes: `<path>.<pid>.<random>.<suffix>`. */
const privateName = (path: string, suffix: "tmp" | "stale"): string =>
  `${path}.${process.pid}.${randomBytes(6).toString("hex")}.${suffix}`

/**
 * Minimum age of a lock file without a readable owner before it counts as abandoned. Lock files
 * are created complete (see {@link createLockFile}), so only a file damaged outside the engine,
 * or one an older release of the engine is still writing, lacks an owner. Such a writer needs
 * far less than this.
 */
const UNREADABLE_LOCK_GRACE_MS = 5_000

/**
 * Creates the lock file at `path` holding `owner`, or returns false when it exists. The owner
 * is written to a private file that is then hard-linked to `path`, so no process ever reads a
 * lock file without its owner, even when the creator is killed halfway.
 */
const createLockFile = async (path: string, owner: LockOwner): Promise<boolean> => {
  const temporary = privateName(path, "tmp")
  await fs.writeFile(temporary, JSON.stringify(owner), { flag: "wx", mode: 0o600 })
  try {
    await fs.link(temporary, path)
    return true
  } catch (cause) {
    if (errorCode(cause) === "EEXIST") return false
    // A file system without hard links: an exclusive create is the best it offers.
    if (errorCode(cause) === "EPERM" || errorCode(cause) === "ENOTSUP") {
      try {
        await fs.writeFile(path, JSON.stringify(owner), { flag: "wx", mode: 0o600 })
        return true
      } catch (fallbackCause) {
        if (errorCode(fallbackCause) === "EEXIST") return false
        throw fallbackCause
      }
    }
    throw cause
  } finally {
    await fs.rm(temporary, { force: true })
  }
}

/**
 * Moves an abandoned lock file aside. The rename is atomic, so of two processes breaking the
 * same lock only one succeeds. If what was moved turns out to be a fresh lock taken meanwhile,
 * it is linked back (link fails if a newer lock exists, which then wins).
 */
const breakStaleLock = async (path: string, stale: LockOwner | undefined): Promise<void> => {
  const aside = privateName(path, "stale")
  try {
    await fs.rename(path, aside)
  } catch {
    return
  }
  const moved = await readOwner(aside)
  if (moved !== undefined && moved.token !== stale?.token) {
    await fs.link(aside, path).catch(() => undefined)
  }
  await fs.rm(aside, { force: true })
}

/** Tells whether the lock file at `path`, held by `holder` if readable, may be broken. */
const isAbandoned = async (path: string, holder: LockOwner | undefined): Promise<boolean> => {
  if (holder !== undefined) {
    return !isProcessAlive(holder.pid) || Date.now() - holder.acquiredAt > STALE_LOCK_MS
  }
  const modifiedAt = await fs.stat(path).then(
    (stats) => stats.mtimeMs,
    () => undefined,
  )
  return modifiedAt !== undefined && Date.now() - modifiedAt > UNREADABLE_LOCK_GRACE_MS
}

/** Takes the lock file at `path`, waiting while a live process holds it. */
const acquireFileLock = async (path: string, timeoutMs: number): Promise<string> => {
  const token = randomBytes(12).toString("hex")
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await createLockFile(path, { pid: process.pid, token, acquiredAt: Date.now() })) {
      return token
    }
    const holder = await readOwner(path)
    if (await isAbandoned(path, holder)) {
      await breakStaleLock(path, holder)
      continue
    }
    if (Date.now() >= deadline) {
      const owner = holder === undefined ? "" : ` held by pid ${holder.pid}`
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${path}${owner}`)
    }
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS))
  }
}

const releaseFileLock = async (path: string, token: string): Promise<void> => {
  const owner = await readOwner(path)
  if (owner?.token === token) await fs.rm(path, { force: true })
}

/** Names made by {@link privateName} for store and lock files; the first group is the pid. */
const PRIVATE_FILE = /^[0-9a-f]{32}\.(?:json|lock)\.(\d+)\.[0-9a-f]{12}\.(?:tmp|stale)$/

/**
 * Deletes private files whose writer process no longer exists. A writer killed between writing
 * its temporary file and renaming it leaves one, and for a session that file contains a full record.
 */
const removeAbandonedFiles = async (directory: string): Promise<void> => {
  const files = await fs.readdir(directory).catch(() => [] as string[])
  for (const file of files) {
    const pid = PRIVATE_FILE.exec(file)?.[1]
    if (pid !== undefined && !isProcessAlive(Number(pid))) {
      await fs.rm(join(directory, file), { force: true })
    }
  }
}

/**
 * Builds a cross-process lock over lock files in `directory`: one `<hash of key>.lock` file per
 * key, holding the owner's pid. A lock whose owner died, or that is older than
 * {@link STALE_LOCK_MS}, is broken. `store` names the store in errors.
 */
export const makeFolderLock =
  (directory: string, store: string) =>
  (key: string, timeoutMs: number): Effect.Effect<void, KeychainError, Scope.Scope> =>
    Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          await fs.mkdir(directory, { recursive: true, mode: 0o700 })
          const path = join(directory, fileNameFor(key).replace(/\.json$/, ".lock"))
          const token = await acquireFileLock(path, timeoutMs)
          await removeAbandonedFiles(directory)
          return { path, token }
        },
        catch: (cause) =>
          new KeychainError({
            reason: "unavailable",
            store,
            detail: `cannot lock ${JSON.stringify(key)} in ${directory}: ${
              cause instanceof Error ? cause.message : String(cause)
            }`,
            cause,
          }),
      }),
      ({ path, token }) => Effect.promise(() => releaseFileLock(path, token)),
    ).pipe(Effect.asVoid)

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
    lock: makeFolderLock(directory, "file"),
    get: (key) =>
      readEntry(fileNameFor(key)).pipe(
        Effect.map((entry) => (entry?.key === key ? entry.value : undefined)),
      ),
    set: (key, value) =>
      Effect.tryPromise({
        try: async () => {
          await fs.mkdir(directory, { recursive: true, mode: 0o700 })
          const target = join(directory, fileNameFor(key))
          // The writer's pid in the name lets a later write delete what a killed writer left.
          const temporary = privateName(target, "tmp")
          const entry: StoredEntry = { key, value }
          await fs.writeFile(temporary, JSON.stringify(entry), { mode: 0o600, flag: "wx" })
          try {
            await fs.rename(temporary, target)
          } catch (cause) {
            await fs.rm(temporary, { force: true })
            throw cause
          }
          await removeAbandonedFiles(directory)
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
