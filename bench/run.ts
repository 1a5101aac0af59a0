/**
 * `npm run bench`: the engine side by side with the MCP TypeScript SDK's client auth, against
 * a real oidc-provider authorization server and an MCP server on loopback. Prints one markdown
 * table on stdout and progress on stderr. Everything it writes goes to one temporary folder,
 * removed at the end.
 */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startAuthorizationServer, startMcpServer } from "../src/demo/servers.js"
import { measureCliToken } from "./cli.js"
import { type BenchContext, progress, type Row } from "./context.js"
import { startDelayProxy } from "./proxy.js"
import { measureRestore } from "./restore.js"
import { startSdkCallbackServer } from "./sdk-client.js"
import { measureSignIns, PROXY_DELAY_MS } from "./sign-in.js"
import {
  measureExpiry,
  measureFetchOverhead,
  measureGetAccessToken,
  signInDirectly,
} from "./steady-state.js"

/** Sign-in rounds per client. Each round is one cold and one second sign-in. */
const SIGN_IN_ROUNDS = 7
/**
 * Access token lifetime on the benchmark's authorization server. An hour keeps stored
 * sessions valid for the whole run, so only the rows that move the clock see an expiry.
 */
const ACCESS_TOKEN_TTL_SECONDS = 3600

const renderTable = (rows: ReadonlyArray<Row>): string =>
  [
    "| measure | engine | SDK | ratio |",
    "|---|---|---|---|",
    ...rows.map((row) => `| ${row.measure} | ${row.engine} | ${row.sdk} | ${row.ratio} |`),
  ].join("\n")

/** Reads the authorization server's metadata for the paths that tell requests apart. */
async function readEndpointPaths(issuer: string) {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`)
  const metadata = (await response.json()) as Record<string, unknown>
  const pathOf = (name: string) => {
    const value = metadata[name]
    if (typeof value !== "string")
      throw new Error(`the metadata at ${issuer} has no string "${name}"`)
    return new URL(value).pathname
  }
  return {
    authorizationPath: pathOf("authorization_endpoint"),
    registrationPath: pathOf("registration_endpoint"),
  }
}

/**
 * Runs every measurement and returns the table's rows. Each server or engine it starts adds
 * its close function to `cleanups`.
 */
async function measureAll(tmp: string, cleanups: Array<() => Promise<void>>): Promise<Row[]> {
  const authorizationServer = await startAuthorizationServer({
    accessTokenTtlSeconds: ACCESS_TOKEN_TTL_SECONDS,
  })
  cleanups.push(() => authorizationServer.close())
  const mcp = await startMcpServer({ authorizationServer })
  cleanups.push(() => mcp.close())
  const proxy = await startDelayProxy({
    delayMs: PROXY_DELAY_MS,
    upstreams: new Set([new URL(authorizationServer.issuer).host, new URL(mcp.url).host]),
  })
  cleanups.push(() => proxy.close())
  const sdkCallbacks = await startSdkCallbackServer()
  cleanups.push(() => sdkCallbacks.close())

  const paths = await readEndpointPaths(authorizationServer.issuer)
  const context: BenchContext = {
    tmp,
    authorizationServer,
    mcp,
    proxy,
    sdkCallbacks,
    authorizationPath: paths.authorizationPath,
  }
  const rows: Row[] = []
  progress(`sign-ins behind the ${PROXY_DELAY_MS} ms proxy, ${SIGN_IN_ROUNDS} rounds`)
  rows.push(...(await measureSignIns(context, SIGN_IN_ROUNDS, paths.registrationPath)))

  progress("signing in directly for the steady-state rows")
  const clients = await signInDirectly(context)
  cleanups.push(() => clients.engine.dispose())
  progress("getAccessToken() while authenticated")
  const tokenRow = await measureGetAccessToken(clients)
  progress("authenticated fetch overhead")
  const fetchRow = await measureFetchOverhead(context, clients)
  progress("concurrent callers at expiry")
  rows.push(await measureExpiry(context, clients, ACCESS_TOKEN_TTL_SECONDS), tokenRow, fetchRow)
  rows.push(await measureRestore(context, clients.storedSession, mcp.url))
  progress("CLI token")
  rows.push(await measureCliToken(context, clients.storedSession))
  return rows
}

async function main(): Promise<void> {
  const tmp = await mkdtemp(join(tmpdir(), "mcp-auth-engine-bench-"))
  const cleanups: Array<() => Promise<void>> = []
  try {
    const rows = await measureAll(tmp, cleanups)
    process.stdout.write(`${renderTable(rows)}\n`)
  } finally {
    // Closed in reverse order of starting: clients before the servers they talk to.
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => progress(`cleanup failed: ${String(error)}`))
    }
    await rm(tmp, { recursive: true, force: true })
  }
}

await main()
