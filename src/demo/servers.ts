/**
 * Real loopback servers for the demo (`npm start`), the integration tests and the benchmarks:
 * an OAuth 2.1 authorization server (oidc-provider) and a bearer-protected MCP server (MCP
 * TypeScript SDK). Both are development dependencies, loaded only when a server starts.
 */
export {
  type AuthorizationServerOptions,
  type ConsentMode,
  type DemoAuthorizationServer,
  type RequestLog,
  startAuthorizationServer,
} from "./authorization-server.js"
export {
  type DemoMcpServer,
  type McpRequestLog,
  type McpServerOptions,
  startMcpServer,
} from "./mcp-server.js"
