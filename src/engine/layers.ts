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

/** Where sessions are kept: a named store, or a host's own implementation. */
export type StoreOption = "memory" | "file" | KeychainService

/** Which user agent opens the authorization URL. */
export type BrowserOption =
  | "system"
  | "headless"
  | { readonly command: string; readonly args?: ReadonlyArray<string> | undefined }

/** Options that choose the service layers. */
export interface LayerOptions {
  readonly store?: StoreOption | undefined
  readonly browser?: BrowserOption | undefined
  /** The folder of the file store; defaults to `$MCP_AUTH_ENGINE_HOME` or the config folder. */
  readonly home?: string | undefined
}

/** Builds the layer with every service the engine needs. */
export const makeServiceLayer = (options: LayerOptions = {}): Layer.Layer<AuthEnv> => {
  const store = options.store ?? "file"
  const keychain =
    store === "memory"
      ? KeychainMemory
      : store === "file"
        ? KeychainFile(options.home ?? defaultHome())
        : Layer.succeed(Keychain, store)
  const browser = options.browser ?? "system"
  const browserLayer =
    browser === "system"
      ? BrowserSystem
      : browser === "headless"
        ? BrowserHeadless
        : BrowserCommand(browser.command, browser.args ?? [])
  return Layer.mergeAll(HttpLive, keychain, browserLayer, CallbackServerLive)
}
