/**
 * `mcp-auth-engine/testing`: what a host needs to drive an engine in its own tests without a
 * browser or a real clock. It provides a memory session store, the headless user agent, a
 * clock the test advances by hand, and a scripted loopback authorization server and resource.
 */
import { Layer } from "effect"
import type { EngineClock } from "../engine/engine.js"
import {
  type AuthEngineHandle,
  type CreateAuthEngineOptions,
  createAuthEngine,
} from "../engine/promise.js"
import type { AuthEnv } from "../machine/steps.js"
import { BrowserHeadless } from "../services/browser.js"
import { CallbackServerLive } from "../services/callback-server.js"
import { HttpLive } from "../services/http.js"
import { Keychain, type KeychainService, makeMemoryKeychain } from "../services/keychain.js"

export { BrowserHeadless, runHeadlessUserAgent } from "../services/browser.js"
export { KeychainMemory, makeMemoryKeychain } from "../services/keychain.js"
export { ScriptedClock } from "./clock.js"
export {
  type ResourceResponse,
  type ScriptedRequestLog,
  type ScriptedServer,
  type ScriptedServerOptions,
  startScriptedServer,
} from "./server.js"
export type { EngineClock }

/**
 * Every service an engine needs, for tests: real HTTP and a real loopback callback listener,
 * `keychain` as the session store (a fresh memory store by default) and the headless user agent,
 * which follows the authorization server's redirects without a page.
 */
export const testServices = (
  keychain: KeychainService = makeMemoryKeychain(),
): Layer.Layer<AuthEnv> =>
  Layer.mergeAll(HttpLive, Layer.succeed(Keychain, keychain), BrowserHeadless, CallbackServerLive)

/** Options of {@link createTestEngine}: those of `createAuthEngine` with test defaults. */
export interface TestEngineOptions extends Omit<CreateAuthEngineOptions, "clock"> {
  /** The clock of the engine's timers; pass a {@link ScriptedClock} to move time by hand. */
  readonly clock?: EngineClock | undefined
}

/**
 * Creates an engine on the Promise API with test defaults: a memory store, the headless user
 * agent, any free callback port and no log output (failures still reach the caller as typed
 * errors). Every option can be overridden.
 */
export const createTestEngine = (options: TestEngineOptions): Promise<AuthEngineHandle> =>
  createAuthEngine({
    store: "memory",
    browser: "headless",
    callbackPort: 0,
    logLevel: "None",
    ...options,
  })
