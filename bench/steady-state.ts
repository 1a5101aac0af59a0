/**
 * Rows 4 to 6, on loopback without the delay proxy: many callers when the access token has
 * expired, the cost of `getAccessToken()` while authenticated, and the cost of the
 * authenticated `fetch` over a plain `fetch`.
 */
import { auth } from "@modelcontextprotocol/sdk/client/auth.js"
import { withOAuth } from "@modelcontextprotocol/sdk/client/middleware.js"
import { Effect } from "effect"
import { type AuthEngineHandle, createAuthEngine, makeMemoryKeychain } from "../src/index.js"
import { runHeadlessUserAgent } from "../src/services/browser.js"
import { type BenchContext, findFreePort, mcpRequestInit, progress, type Row } from "./context.js"
import { MemoryOAuthProvider, sdkFetchWithSignIn } from "./sdk-client.js"
import { median, ms, quantile, ratio, us } from "./stats.js"

/** Concurrent callers in the expiry row. */
const CONCURRENT_CALLERS = 1000
/** Calls timed per variant in the `getAccessToken()` row, after as many warm-up calls. */
const TOKEN_CALLS = 50_000
/** Requests timed per client in the fetch row, after a tenth as many warm-up requests. */
const FETCH_ROUNDS = 500
/** The maximum time a row waits for its callers, in milliseconds. */
const ROW_DEADLINE_MS = 60_000

/** The engine and the SDK, both signed in to the MCP server directly (no proxy). */
export interface SignedInClients {
  readonly engine: AuthEngineHandle
  /** The session record the engine stored, as JSON text, and its store key. */
  readonly storedSession: { readonly key: string; readonly value: string }
  readonly provider: MemoryOAuthProvider
}

/** Signs in once with the Promise facade and once with the SDK. */
export async function signInDirectly(context: BenchContext): Promise<SignedInClients> {
  const store = makeMemoryKeychain()
  const engine = await createAuthEngine({
    serverUrl: context.mcp.url,
    store,
    browser: "headless",
    callbackPort: await findFreePort(),
    callbackTimeoutMs: 30_000,
  })
  const response = await engine.fetch(context.mcp.url, mcpRequestInit())
  await response.arrayBuffer()
  if (response.status !== 200) throw new Error(`engine sign-in ended with ${response.status}`)
  // The store may also contain the client registration. The session's key ends with its URL.
  const keys = await Effect.runPromise(store.keys)
  const sessionKeys = keys.filter((key) => key.endsWith(context.mcp.url))
  const key = sessionKeys[0]
  const value = key === undefined ? undefined : await Effect.runPromise(store.get(key))
  if (key === undefined || value === undefined || sessionKeys.length !== 1) {
    throw new Error(`expected one stored session after the sign-in, found keys ${keys.join(", ")}`)
  }

  const provider = new MemoryOAuthProvider(context.sdkCallbacks.redirectUri, (url, redirectUri) =>
    runHeadlessUserAgent(url.href, redirectUri),
  )
  const sdkResponse = await sdkFetchWithSignIn(
    provider,
    context.sdkCallbacks,
    context.mcp.url,
    mcpRequestInit(),
  )
  await sdkResponse.arrayBuffer()
  if (sdkResponse.status !== 200) throw new Error(`SDK sign-in ended with ${sdkResponse.status}`)
  return { engine, storedSession: { key, value }, provider }
}

/** Rejects when `promise` takes longer than `ROW_DEADLINE_MS`. */
const withDeadline = <A>(promise: Promise<A>, what: string): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} took longer than ${ROW_DEADLINE_MS} ms`)),
      ROW_DEADLINE_MS,
    )
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

const tokenRequestCount = (context: BenchContext): number =>
  Object.values(context.authorizationServer.requests.token).reduce((sum, n) => sum + n, 0)

/**
 * Replaces `Date.now` with a function that adds `offsetMs`, which starts at 0. Code that
 * captures `Date.now` after this call, as the engine does when it is created, also gets later
 * offsets. Returns the control object and the function that restores the system clock.
 */
function installShiftableClock(): { clock: { offsetMs: number }; restore: () => void } {
  const systemNow = Date.now
  const clock = { offsetMs: 0 }
  Date.now = () => systemNow() + clock.offsetMs
  return {
    clock,
    restore: () => {
      Date.now = systemNow
    },
  }
}

/**
 * Measures row 4. A new engine restores the signed-in session. Then the process clock jumps
 * past the access token's expiry, as after a laptop wakes up, so no scheduled refresh has run.
 * The authorization server runs in this process and sees the same clock. Then every caller
 * requests a token at once. The SDK checks no expiry, because a transport learns of it from a
 * 401 and calls `auth()`. So its side is as many concurrent `auth()` calls on one provider,
 * with `redirectToAuthorization` only counted.
 */
export async function measureExpiry(
  context: BenchContext,
  clients: SignedInClients,
  accessTokenTtlSeconds: number,
): Promise<Row> {
  const { clock, restore } = installShiftableClock()
  let engineMs: number
  let engineTokenRequests: number
  try {
    const store = makeMemoryKeychain()
    await Effect.runPromise(store.set(clients.storedSession.key, clients.storedSession.value))
    const engine = await createAuthEngine({
      serverUrl: context.mcp.url,
      store,
      browser: "headless",
      callbackPort: await findFreePort(),
    })
    try {
      const before = await engine.getAccessToken({ interactive: false })
      clock.offsetMs = (accessTokenTtlSeconds + 60) * 1000
      context.authorizationServer.requests.reset()
      const startedAt = performance.now()
      const tokens = await withDeadline(
        Promise.all(Array.from({ length: CONCURRENT_CALLERS }, () => engine.getAccessToken())),
        "the engine's concurrent callers",
      )
      engineMs = performance.now() - startedAt
      engineTokenRequests = tokenRequestCount(context)
      const distinct = new Set(tokens)
      if (distinct.size !== 1 || distinct.has(before)) {
        throw new Error(`the engine's callers got ${distinct.size} tokens, expected one new token`)
      }
    } finally {
      await engine.dispose()
    }
  } finally {
    restore()
  }

  const provider = clients.provider
  // A caller that falls back to a new sign-in is counted but not run, to keep the row bounded.
  provider.redirectHandler = undefined
  provider.redirectCount = 0
  context.authorizationServer.requests.reset()
  const startedAt = performance.now()
  const outcomes = await withDeadline(
    Promise.allSettled(
      Array.from({ length: CONCURRENT_CALLERS }, () =>
        auth(provider, { serverUrl: context.mcp.url }),
      ),
    ),
    "the SDK's concurrent auth() calls",
  )
  const sdkMs = performance.now() - startedAt
  const sdkTokenRequests = tokenRequestCount(context)
  const authorized = outcomes.filter(
    (outcome) => outcome.status === "fulfilled" && outcome.value === "AUTHORIZED",
  ).length
  const failed = outcomes.filter((outcome) => outcome.status === "rejected").length
  const tokensKept = (await provider.tokens()) !== undefined
  progress(
    `expiry: SDK auth() outcomes: ${authorized} AUTHORIZED, ${CONCURRENT_CALLERS - authorized - failed} REDIRECT, ${failed} rejected; token requests by grant: ${JSON.stringify(context.authorizationServer.requests.token)}; the provider ${tokensKept ? "still has" : "no longer has"} tokens`,
  )
  const callers = CONCURRENT_CALLERS.toLocaleString("en")
  return {
    measure: `${callers} concurrent callers when the access token expires: token requests sent, time until all hold a token (no proxy)`,
    engine: `${engineTokenRequests} token request${engineTokenRequests === 1 ? "" : "s"}, ${ms(engineMs)}; ${engineTokenRequests === 1 ? "met" : "missed"}`,
    sdk: `${callers} concurrent \`auth()\` calls on one provider: ${sdkTokenRequests} token requests, ${ms(sdkMs)} until all settled; ${authorized} of ${callers} got a token, the others need a new sign-in${tokensKept ? "" : ", and the provider has no tokens left"}`,
    ratio: `${ratio(engineTokenRequests, sdkTokenRequests)} requests`,
  }
}

/** Times `count` awaited calls one by one, in microseconds each, after `count` warm-up calls. */
async function timeAsyncCalls(count: number, call: () => unknown): Promise<Float64Array> {
  for (let i = 0; i < count; i++) await call()
  const samples = new Float64Array(count)
  for (let i = 0; i < count; i++) {
    const start = process.hrtime.bigint()
    await call()
    samples[i] = Number(process.hrtime.bigint() - start) / 1000
  }
  return samples
}

/** Times `count` synchronous calls one by one, in microseconds each, after a warm-up. */
function timeSyncCalls(count: number, call: () => unknown): Float64Array {
  for (let i = 0; i < count; i++) call()
  const samples = new Float64Array(count)
  for (let i = 0; i < count; i++) {
    const start = process.hrtime.bigint()
    call()
    samples[i] = Number(process.hrtime.bigint() - start) / 1000
  }
  return samples
}

const medianAndP99 = (samples: Float64Array) =>
  `${us(median(samples))} / ${us(quantile(samples, 0.99))}`

/**
 * Measures row 5: a token from an authenticated engine through each API, and the SDK host
 * reading its provider.
 */
export async function measureGetAccessToken(clients: SignedInClients): Promise<Row> {
  const { engine, provider } = clients
  const facade = await timeAsyncCalls(TOKEN_CALLS, () => engine.getAccessToken())
  const effect = await timeAsyncCalls(TOKEN_CALLS, () =>
    Effect.runPromise(engine.service.getAccessToken()),
  )
  // `getAccessToken` resumes at once when a token is usable, so `runSync` can run it.
  // `runSync` throws when the effect would have to wait.
  const runSync = timeSyncCalls(TOKEN_CALLS, () =>
    Effect.runSync(engine.service.getAccessToken({ interactive: false })),
  )
  const status = timeSyncCalls(TOKEN_CALLS, () => engine.status())
  const sdk = await timeAsyncCalls(TOKEN_CALLS, () => provider.tokens())
  const facadeMedian = median(facade)
  const effectMedian = median(effect)
  const met = facadeMedian < 2 && effectMedian < 2
  return {
    measure: `\`getAccessToken()\` while authenticated: median / p99 of ${TOKEN_CALLS.toLocaleString("en")} calls`,
    engine: `Promise facade ${medianAndP99(facade)}; Effect \`runPromise\` ${medianAndP99(effect)}; Effect \`runSync\` ${medianAndP99(runSync)}; \`status()\` ${medianAndP99(status)}; ${met ? "met" : "missed"}`,
    sdk: `\`await provider.tokens()\` (the host's in-memory provider, as the transport reads it) ${medianAndP99(sdk)}`,
    ratio: ratio(facadeMedian, median(sdk)),
  }
}

/**
 * Measures row 6: the authenticated fetch of each client, as a GET of the MCP endpoint. The
 * server checks the token and responds with 405 (its stateless mode takes only POST), so the
 * response shows the token was sent while the server does little work. The engine sends tokens only to its
 * server's origin, so a separate echo server cannot stand in.
 */
export async function measureFetchOverhead(
  context: BenchContext,
  clients: SignedInClients,
): Promise<Row> {
  const url = context.mcp.url
  const token = await clients.engine.getAccessToken()
  const sdkFetch = withOAuth(clients.provider, url)(fetch)
  const variants: ReadonlyArray<[string, () => Promise<Response>]> = [
    ["plain", () => fetch(url, { headers: { authorization: `Bearer ${token}` } })],
    ["engine", () => clients.engine.fetch(url)],
    ["sdk", () => sdkFetch(url)],
  ]
  const samples = new Map(variants.map(([name]) => [name, new Float64Array(FETCH_ROUNDS)]))
  const warmUp = Math.ceil(FETCH_ROUNDS / 10)
  for (let round = -warmUp; round < FETCH_ROUNDS; round++) {
    // Rotating the order spreads connection reuse and timer effects over all three.
    for (let k = 0; k < variants.length; k++) {
      const [name, send] = variants[(Math.abs(round) + k) % variants.length]!
      const start = process.hrtime.bigint()
      const response = await send()
      await response.arrayBuffer()
      const elapsed = Number(process.hrtime.bigint() - start) / 1000
      if (response.status !== 405) {
        throw new Error(`${name} fetch returned ${response.status}, expected 405`)
      }
      if (round >= 0) samples.get(name)![round] = elapsed
    }
  }
  const plain = median(samples.get("plain")!)
  const engineOverhead = median(samples.get("engine")!) - plain
  const sdkOverhead = median(samples.get("sdk")!) - plain
  return {
    measure: `authenticated fetch overhead over plain \`fetch\` on loopback: difference of medians over ${FETCH_ROUNDS} requests each (plain: ${us(plain)})`,
    engine: `+${us(engineOverhead)} (\`handle.fetch\`)`,
    sdk: `+${us(sdkOverhead)} (\`withOAuth(provider)(fetch)\`)`,
    ratio: ratio(engineOverhead, sdkOverhead),
  }
}
