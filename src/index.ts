/**
 * mcp-auth-engine: the client side of MCP authorization (OAuth 2.1 with PKCE, RFC 9728 and
 * RFC 8414 discovery, client registration, refresh) as an XState statechart running Effect
 * programs. Hosts use {@link createAuthEngine} (Promises) or the {@link AuthEngine} service.
 */

export {
  AuthEngine,
  type AuthEngineConfig,
  AuthEngineLayer,
  type AuthEngineService,
  DEFAULT_CALLBACK_PORT,
  DEFAULT_PROTOCOL_VERSION,
  type EngineClock,
  makeAuthEngine,
  type TokenOptions,
} from "./engine/engine.js"
export {
  type BrowserOption,
  type LayerOptions,
  makeServiceLayer,
  type StoreOption,
} from "./engine/layers.js"
export {
  type AuthEngineHandle,
  type CreateAuthEngineOptions,
  createAuthEngine,
  type GrantOption,
} from "./engine/promise.js"
export type {
  EngineAction,
  EngineErrorSummary,
  EngineState,
  EngineStatus,
  EngineView,
  EngineViewKind,
} from "./engine/status.js"
export * from "./errors.js"
export * from "./inspect/index.js"
export {
  describeMachine,
  type MachineDescription,
  renderAuthMachineJson,
  renderAuthMachineMermaid,
  renderJson,
  renderMermaid,
} from "./machine/diagram.js"
export {
  type AuthContext,
  type AuthEvent,
  type AuthMachine,
  DEFAULT_CALLBACK_TIMEOUT_MS,
  MAX_STEP_UP_ATTEMPTS,
  makeAuthMachine,
  REFRESH_SKEW_MS,
} from "./machine/machine.js"
export type { AuthEnv } from "./machine/steps.js"
export {
  type AuthSignal,
  type Challenge,
  classifyResponse,
  parseWwwAuthenticate,
} from "./protocol/challenge.js"
export { type Discovery, type DiscoveryInput, discover } from "./protocol/discovery.js"
export {
  chooseGrant,
  type GrantConfig,
  type GrantType,
  type IdentityProviderConfig,
} from "./protocol/grants.js"
export type { ClientConfig } from "./protocol/registration.js"
export { selectScope, unionScopes } from "./protocol/scope.js"
export type { ClientPrivateKey } from "./protocol/token.js"
export type { ClientRegistration, Session, TokenSet } from "./schema/session.js"
export { Browser, BrowserCommand, BrowserHeadless, BrowserSystem } from "./services/browser.js"
export { CallbackServer, CallbackServerLive } from "./services/callback-server.js"
export { HttpLive } from "./services/http.js"
export {
  defaultHome,
  Keychain,
  KeychainFile,
  KeychainMemory,
  type KeychainService,
  makeFileKeychain,
  makeMemoryKeychain,
} from "./services/keychain.js"
