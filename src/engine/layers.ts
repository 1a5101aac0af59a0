/**
 * Ready-made service layers, chosen by name: where sessions are kept and which user agent
 * opens the authorization URL.
 */
import { Layer } from "effect"
import type { AuthEnv } from "../machine/steps.js"
import { BrowserCommand, BrowserHeadless, BrowserSystem } from "../services/browser.js"
import { CallbackServerLive } from "../services/callback-server.js"
import { HttpLive } from "../services/http.js"
import {
  defaultHome,
  Keychain,
  KeychainFile,
  KeychainMemory,
  type KeychainService,
} from "../services/keychain.js"
import { KeychainAuto, KeychainOs } from "../services/os-keychain.js"

/** The named session stores. */
export type StoreName = "auto" | "keychain" | "file" | "memory"

/**
 * The session store: "auto" (the OS keychain when it works here, else the file store,
 * announced once on stderr), "keychain" (the OS keychain, failing when it is unavailable),
 * "file", "memory", or a host's own implementation.
 */
export type StoreOption = StoreName | KeychainService

/** Which user agent opens the authorization URL. */
export type BrowserOption =
  | "system"
  | "headless"
  | { readonly command: string; readonly args?: ReadonlyArray<string> | undefined }

/** Options that choose the service layers. */
export interface LayerOptions {
  /** Default: "auto". */
  readonly store?: StoreOption | undefined
  readonly browser?: BrowserOption | undefined
  /**
   * The engine home: the file store keeps sessions in `<home>/sessions` and the OS keychain
   * store its lock files in `<home>/locks`. Defaults to `$MCP_AUTH_ENGINE_HOME`, else
   * `$XDG_CONFIG_HOME/mcp-auth-engine`, else `~/.config/mcp-auth-engine`.
   */
  readonly home?: string | undefined
}

/** Builds the session store layer for a store option. */
export const makeStoreLayer = (
  store: StoreOption = "auto",
  home: string = defaultHome(),
): Layer.Layer<Keychain> => {
  switch (store) {
    case "auto":
      return KeychainAuto(home)
    case "keychain":
      return KeychainOs(home)
    case "file":
      return KeychainFile(home)
    case "memory":
      return KeychainMemory
    default:
      return Layer.succeed(Keychain, store)
  }
}

/** Builds the layer with every service the engine needs. */
export const makeServiceLayer = (options: LayerOptions = {}): Layer.Layer<AuthEnv> => {
  const keychain = makeStoreLayer(options.store ?? "auto", options.home ?? defaultHome())
  const browser = options.browser ?? "system"
  const browserLayer =
    browser === "system"
      ? BrowserSystem
      : browser === "headless"
        ? BrowserHeadless
        : BrowserCommand(browser.command, browser.args ?? [])
  return Layer.mergeAll(HttpLive, keychain, browserLayer, CallbackServerLive)
}
