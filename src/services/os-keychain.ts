/**
 * The operating system's credential store as a session store, through @napi-rs/keyring: the
 * macOS Keychain, the Windows Credential Manager, or the Secret Service on Linux (gnome-keyring,
 * KWallet). On Linux every entry is pinned to the Secret Service, because @napi-rs/keyring 2.x
 * otherwise falls back to the kernel keyring (keyutils) without saying so, and that keyring
 * loses its contents at reboot.
 *
 * Each key is one credential with service "mcp-auth-engine" and the key as account name. The
 * credential stores offer no listing that honours that pinning, so the store keeps the list of
 * its keys in one more credential, {@link INDEX_ACCOUNT}. Locks are lock files under
 * `<home>/locks`, as in the file store.
 */
import { join } from "node:path"
import { Effect, Either, Layer, Schema, type Scope } from "effect"
import { KeychainError } from "../errors.js"
import {
  defaultHome,
  Keychain,
  type KeychainService,
  makeFileKeychain,
  makeFolderLock,
} from "./keychain.js"

/** The service name of every credential this store writes. */
export const OS_KEYCHAIN_SERVICE = "mcp-auth-engine"
/** The account of the credential that lists the store's keys. */
export const INDEX_ACCOUNT = "__index__"
/** The account the availability probe reads, and writes once when it is missing. */
export const PROBE_ACCOUNT = "__probe__"
/** How long the probe waits for the credential store before calling it unavailable. */
export const PROBE_TIMEOUT_MS = 5_000
/** How long a write waits for another process's update of the key index. */
const INDEX_LOCK_TIMEOUT_MS = 10_000

/**
 * Messages of @napi-rs/keyring 2.1 failures that mean "no usable credential store here": no
 * D-Bus session bus, no Secret Service, a locked keyring whose unlock prompt cannot be shown.
 * Every failure has the code "GenericFailure", so only the message distinguishes them.
 */
const UNAVAILABLE_MESSAGE =
  /Couldn't access platform storage|Platform failure|DBus error|unlock prompt was dismissed/

type KeyringModule = typeof import("@napi-rs/keyring")
type AsyncEntry = InstanceType<KeyringModule["AsyncEntry"]>

let keyringModule: Promise<KeyringModule> | undefined

/** Loads the native module on first use, so a platform without a prebuilt binary can still fall back. */
const loadKeyring = (): Promise<KeyringModule> => {
  keyringModule ??= import("@napi-rs/keyring").catch((error: unknown) => {
    keyringModule = undefined
    throw error
  })
  return keyringModule
}

const messageOf = (cause: unknown): string =>
  (cause instanceof Error ? cause.message : String(cause)).replace(/\s+/g, " ").trim()

/** Tells whether a failure of @napi-rs/keyring means the credential store is unusable here. */
export const isUnavailableFailure = (cause: unknown): boolean =>
  UNAVAILABLE_MESSAGE.test(messageOf(cause)) ||
  (typeof cause === "object" &&
    cause !== null &&
    "code" in cause &&
    (cause.code === "ERR_MODULE_NOT_FOUND" || cause.code === "MODULE_NOT_FOUND"))

/**
 * Turns a store failure into the short reason shown when the engine falls back to the file
 * store, with the usual fix where one is known.
 */
export const describeUnavailable = (
  error: KeychainError,
  env: NodeJS.ProcessEnv = process.env,
): string => {
  const message = messageOf(error.cause ?? error.detail ?? error.message)
  if (/DBus error|Platform failure/.test(message) && env.DBUS_SESSION_BUS_ADDRESS === undefined) {
    return "no D-Bus session bus: DBUS_SESSION_BUS_ADDRESS is not set"
  }
  if (message.includes("unlock prompt was dismissed")) {
    return "the keyring is locked and no unlock prompt can be shown"
  }
  if (message.includes("no result found")) {
    return "the Secret Service has no default keyring"
  }
  if (message.includes("timed out")) return message
  return message === "" ? error.reason : message
}

const KeyIndex = Schema.parseJson(
  Schema.Struct({ version: Schema.Literal(1), keys: Schema.Array(Schema.String) }),
)

/** Options of {@link makeOsKeychain}. */
export interface OsKeychainOptions {
  /** The engine home; lock files go to `<home>/locks`. */
  readonly home: string
  /** The credentials' service name. Default: {@link OS_KEYCHAIN_SERVICE}. */
  readonly service?: string | undefined
}

/** The OS keychain store, with the probe that checks whether it works here. */
export interface OsKeychain extends KeychainService {
  /**
   * Reads {@link PROBE_ACCOUNT}, and writes it when missing: a store that can be read but not
   * written (a Secret Service without a default keyring) counts as unavailable.
   */
  readonly probe: Effect.Effect<void, KeychainError>
}

const platformStoreName = (): string => {
  switch (process.platform) {
    case "darwin":
      return "macOS Keychain"
    case "win32":
      return "Windows Credential Manager"
    default:
      return "Secret Service"
  }
}

/** Builds the OS keychain store. Nothing is contacted until the first operation. */
export const makeOsKeychain = (options: OsKeychainOptions): OsKeychain => {
  const service = options.service ?? OS_KEYCHAIN_SERVICE
  const lockDirectory = join(options.home, "locks")
  const lock = makeFolderLock(lockDirectory, "keychain")

  const entryCall = <A>(
    account: string,
    operation: "read" | "write",
    run: (entry: AsyncEntry, signal: AbortSignal) => Promise<A>,
  ): Effect.Effect<A, KeychainError> =>
    Effect.tryPromise({
      try: async (signal) => {
        const keyring = await loadKeyring()
        // The constructor already fails when the pinned store is unreachable (no D-Bus).
        const entry = new keyring.AsyncEntry(service, account, {
          linux: { store: "secret-service" },
        })
        return run(entry, signal)
      },
      catch: (cause) =>
        new KeychainError({
          reason: isUnavailableFailure(cause)
            ? "unavailable"
            : operation === "read"
              ? "read_failed"
              : "write_failed",
          store: "keychain",
          detail: `cannot ${operation} ${JSON.stringify(account)} in the ${platformStoreName()}: ${messageOf(cause)}`,
          cause,
        }),
    })

  const readEntry = (account: string) =>
    entryCall(account, "read", (entry, signal) => entry.getPassword(signal)).pipe(
      Effect.map((value) => value ?? undefined),
    )
  const writeEntry = (account: string, value: string) =>
    entryCall(account, "write", (entry, signal) => entry.setPassword(value, signal))
  const deleteEntry = (account: string) =>
    entryCall(account, "write", (entry, signal) => entry.deletePassword(signal)).pipe(Effect.asVoid)

  // NOTE: an index that does not decode counts as empty and is replaced on the next write, so
  // keys stored before that write are no longer listed (their credentials stay in the keychain).
  const readIndex = readEntry(INDEX_ACCOUNT).pipe(
    Effect.map((text) =>
      text === undefined
        ? []
        : Either.match(Schema.decodeUnknownEither(KeyIndex)(text), {
            onLeft: () => [],
            onRight: (index) => index.keys,
          }),
    ),
  )

  /** Changes the index under its lock, so two processes never drop each other's keys. */
  const updateIndex = (
    change: (keys: ReadonlyArray<string>) => ReadonlyArray<string> | undefined,
  ) =>
    Effect.scoped(
      Effect.gen(function* () {
        yield* lock(INDEX_ACCOUNT, INDEX_LOCK_TIMEOUT_MS)
        const keys = yield* readIndex
        const next = change(keys)
        if (next === undefined) return
        yield* writeEntry(INDEX_ACCOUNT, JSON.stringify({ version: 1, keys: next }))
      }),
    )

  const rejectReserved = (key: string) =>
    key === INDEX_ACCOUNT || key === PROBE_ACCOUNT
      ? Effect.fail(
          new KeychainError({
            reason: "write_failed",
            store: "keychain",
            detail: `${JSON.stringify(key)} is reserved by the keychain store`,
          }),
        )
      : Effect.void

  return {
    name: "keychain",
    location: `${platformStoreName()}, service "${service}"`,
    get: (key) => readEntry(key),
    set: (key, value) =>
      Effect.gen(function* () {
        yield* rejectReserved(key)
        // The index is written first: a crash in between leaves a listed key without a value,
        // which `keys` skips, rather than a value no listing shows. It is read on every write
        // (another process may have removed the key), but locked and written only to add it.
        if (!(yield* readIndex).includes(key)) {
          yield* updateIndex((keys) => (keys.includes(key) ? undefined : [...keys, key]))
        }
        yield* writeEntry(key, value)
      }),
    remove: (key) =>
      Effect.gen(function* () {
        yield* rejectReserved(key)
        yield* deleteEntry(key)
        yield* updateIndex((keys) =>
          keys.includes(key) ? keys.filter((listed) => listed !== key) : undefined,
        )
      }),
    keys: Effect.gen(function* () {
      const listed = yield* readIndex
      const present: string[] = []
      for (const key of listed) {
        if ((yield* readEntry(key)) !== undefined) present.push(key)
      }
      return present
    }),
    lock: (key: string, timeoutMs: number): Effect.Effect<void, KeychainError, Scope.Scope> =>
      lock(key, timeoutMs),
    probe: Effect.gen(function* () {
      const found = yield* readEntry(PROBE_ACCOUNT)
      if (found === undefined) yield* writeEntry(PROBE_ACCOUNT, "ok")
    }).pipe(
      Effect.timeoutFail({
        duration: PROBE_TIMEOUT_MS,
        onTimeout: () =>
          new KeychainError({
            reason: "unavailable",
            store: "keychain",
            detail: `the ${platformStoreName()} did not respond: timed out after ${PROBE_TIMEOUT_MS} ms`,
          }),
      }),
    ),
  }
}

/** The OS keychain store; its failures reach the engine as `KeychainError`s. */
export const KeychainOs = (
  home: string = defaultHome(),
  options: Omit<OsKeychainOptions, "home"> = {},
): Layer.Layer<Keychain> => Layer.sync(Keychain, () => makeOsKeychain({ ...options, home }))

/** Options of {@link chooseSessionStore}. */
export interface AutoStoreOptions {
  readonly service?: string | undefined
  /** Receives the one-line fallback notice on every fallback. Default: stderr, once per process. */
  readonly announce?: ((line: string) => void) | undefined
}

let fallbackAnnounced = false

/**
 * Chooses the session store: the OS keychain when its probe succeeds, else the file store
 * under `<home>/sessions`, announced once per process.
 */
export const chooseSessionStore = (
  home: string,
  options: AutoStoreOptions = {},
): Effect.Effect<KeychainService> =>
  Effect.gen(function* () {
    const keychain = makeOsKeychain({ home, service: options.service })
    const probe = yield* Effect.either(keychain.probe)
    if (Either.isRight(probe)) return keychain

    const folder = join(home, "sessions")
    const notice = `OS keychain unavailable (${describeUnavailable(probe.left)}); storing sessions in ${folder} (file mode 0600)`
    if (options.announce !== undefined) {
      options.announce(notice)
    } else if (!fallbackAnnounced) {
      fallbackAnnounced = true
      process.stderr.write(`${notice}\n`)
    }
    return makeFileKeychain(folder)
  })

/** The OS keychain when it works here, else the file store (see {@link chooseSessionStore}). */
export const KeychainAuto = (
  home: string = defaultHome(),
  options: AutoStoreOptions = {},
): Layer.Layer<Keychain> => Layer.effect(Keychain, chooseSessionStore(home, options))
