/**
 * Rows 1 to 3: a cold sign-in behind the delay proxy, and a second sign-in after the
 * authorization server revoked every grant, for the engine and for the SDK's `auth()`.
 * Rounds alternate which client goes first, so a drift in machine load hits both.
 */
import { auth } from "@modelcontextprotocol/sdk/client/auth.js"
import { makeMemoryKeychain } from "../src/index.js"
import { runHeadlessUserAgent } from "../src/services/browser.js"
import {
  type BenchContext,
  clientRequests,
  describeRequests,
  findFreePort,
  isFallback,
  mcpRequestInit,
  progress,
  type Row,
} from "./context.js"
import {
  engineLayer,
  proxiedHttp,
  startBenchEngine,
  timedHeadlessBrowser,
  type UserAgentTimer,
} from "./engine-host.js"
import { type ProxiedRequest, routeFetchThroughProxy } from "./proxy.js"
import { completeSdkAuthorization, MemoryOAuthProvider, sdkFetchWithSignIn } from "./sdk-client.js"
import { median, ms, ratio } from "./stats.js"

/** The delay the proxy adds to every request, in milliseconds. */
export const PROXY_DELAY_MS = 20

/** One measured sign-in. */
interface SignInSample {
  /** Wall time minus the time spent in the user agent, in milliseconds. */
  readonly clientMs: number
  readonly userAgentMs: number
  /** `performance.now()` at the start, for the request timeline. */
  readonly startedAt: number
  /** The client library's requests, without the user agent's. */
  readonly requests: ReadonlyArray<ProxiedRequest>
  /** Every request through the proxy, the user agent's included. */
  readonly timeline: ReadonlyArray<ProxiedRequest>
}

interface SignInSamples {
  readonly cold: SignInSample[]
  readonly second: SignInSample[]
}

/** Tells whether a request in a second sign-in repeats discovery or registration. */
const isDiscoveryOrRegistration = (request: ProxiedRequest, registrationPath: string): boolean =>
  request.path.startsWith("/.well-known/") || request.path === registrationPath

const sample = (context: BenchContext, startedAt: number, timer: UserAgentTimer): SignInSample => ({
  clientMs: performance.now() - startedAt - timer.ms,
  userAgentMs: timer.ms,
  startedAt,
  requests: clientRequests(context, context.proxy.log),
  timeline: [...context.proxy.log],
})

/** Signs in with a fresh engine, then signs in again after every grant is revoked. */
async function runEngineRound(
  context: BenchContext,
  hosts: ReadonlySet<string>,
  samples: SignInSamples,
): Promise<void> {
  const timer: UserAgentTimer = { ms: 0 }
  const engine = await startBenchEngine(
    {
      serverUrl: context.mcp.url,
      // A fixed port keeps the redirect URI, so the second sign-in may reuse the registration.
      callbackPort: await findFreePort(),
      callbackTimeoutMs: 30_000,
    },
    engineLayer({
      store: makeMemoryKeychain(),
      browser: timedHeadlessBrowser(timer),
      http: proxiedHttp(context.proxy, hosts),
    }),
  )
  try {
    context.proxy.clearLog()
    let startedAt = performance.now()
    const response = await engine.run(engine.service.fetch(context.mcp.url, mcpRequestInit()))
    await response.arrayBuffer()
    if (response.status !== 200) throw new Error(`engine sign-in ended with ${response.status}`)
    samples.cold.push(sample(context, startedAt, timer))

    await context.authorizationServer.revokeAllGrants()
    timer.ms = 0
    context.proxy.clearLog()
    startedAt = performance.now()
    engine.service.actor.send({ type: "REFRESH" })
    await engine.run(engine.service.getAccessToken({ interactive: true }))
    samples.second.push(sample(context, startedAt, timer))
  } finally {
    await engine.dispose()
  }
}

/** Runs the same two sign-ins with the SDK's `auth()` and a fresh in-memory provider. */
async function runSdkRound(context: BenchContext, samples: SignInSamples): Promise<void> {
  const timer: UserAgentTimer = { ms: 0 }
  const provider = new MemoryOAuthProvider(
    context.sdkCallbacks.redirectUri,
    async (url, redirectUri) => {
      const start = performance.now()
      try {
        await runHeadlessUserAgent(url.href, redirectUri)
      } finally {
        timer.ms += performance.now() - start
      }
    },
  )
  const serverUrl = context.mcp.url

  context.proxy.clearLog()
  let startedAt = performance.now()
  const response = await sdkFetchWithSignIn(
    provider,
    context.sdkCallbacks,
    serverUrl,
    mcpRequestInit(),
  )
  await response.arrayBuffer()
  if (response.status !== 200) throw new Error(`SDK sign-in ended with ${response.status}`)
  samples.cold.push(sample(context, startedAt, timer))

  await context.authorizationServer.revokeAllGrants()
  timer.ms = 0
  context.proxy.clearLog()
  startedAt = performance.now()
  const result = await auth(provider, { serverUrl })
  await completeSdkAuthorization(provider, context.sdkCallbacks, result, { serverUrl })
  samples.second.push(sample(context, startedAt, timer))
}

/** Runs `rounds` rounds for each client and returns rows 1 to 3. */
export async function measureSignIns(
  context: BenchContext,
  rounds: number,
  registrationPath: string,
): Promise<Row[]> {
  const servers = [context.authorizationServer.issuer, context.mcp.url].map((url) => new URL(url))
  const hosts = new Set(servers.map((url) => url.host))
  const restoreFetch = routeFetchThroughProxy(
    context.proxy,
    new Set(servers.map((url) => url.origin)),
  )
  const engine: SignInSamples = { cold: [], second: [] }
  const sdk: SignInSamples = { cold: [], second: [] }
  try {
    for (let round = 0; round < rounds; round++) {
      if (round % 2 === 0) {
        await runEngineRound(context, hosts, engine)
        await runSdkRound(context, sdk)
      } else {
        await runSdkRound(context, sdk)
        await runEngineRound(context, hosts, engine)
      }
      progress(`sign-in round ${round + 1} of ${rounds} done`)
    }
  } finally {
    restoreFetch()
  }

  for (const [name, samples] of [
    ["engine cold", engine.cold],
    ["engine second", engine.second],
    ["SDK cold", sdk.cold],
    ["SDK second", sdk.second],
  ] as const) {
    const last = samples.at(-1)
    if (last === undefined) continue
    progress(
      `${name} sign-in, every round, excluding the user agent: ${samples.map((s) => ms(s.clientMs)).join(", ")}`,
    )
    progress(
      `${name} sign-in, last round, user agent ${ms(last.userAgentMs)}: ${describeRequests(context, last.timeline, last.startedAt)}`,
    )
  }

  return [
    coldTimeRow(engine, sdk),
    requestCountRow(engine, sdk),
    secondSignInRow(engine, sdk, registrationPath),
  ]
}

/**
 * The minimum number of requests this server layout allows for a cold sign-in: the 401 challenge, the
 * resource metadata (its path-inserted location serves it), the authorization server metadata
 * (its RFC 8414 location serves it), registration, the token request, and the retried MCP
 * request.
 */
const COLD_SIGN_IN_FLOOR = 6

const countOf = (samples: ReadonlyArray<SignInSample>) => {
  const first = samples[0]?.requests ?? []
  const total = first.length
  const fallbacks = first.filter(isFallback).length
  // Every round should send the same requests, and the row says so when they differ.
  const stable = samples.every((s) => s.requests.length === total)
  return { total, fallbacks, stable }
}

const verdict = (met: boolean): string => (met ? "met" : "missed")

function coldTimeRow(engine: SignInSamples, sdk: SignInSamples): Row {
  const engineMs = median(engine.cold.map((s) => s.clientMs))
  const sdkMs = median(sdk.cold.map((s) => s.clientMs))
  const engineCount = countOf(engine.cold)
  return {
    measure: `cold sign-in, wall time excluding the user agent, ${PROXY_DELAY_MS} ms added per request (median of ${engine.cold.length})`,
    engine: `${ms(engineMs)}; ${verdict(engineCount.total <= COLD_SIGN_IN_FLOOR)} (${engineCount.total} requests, the floor is ${COLD_SIGN_IN_FLOOR})`,
    sdk: ms(sdkMs),
    ratio: ratio(engineMs, sdkMs),
  }
}

function requestCountRow(engine: SignInSamples, sdk: SignInSamples): Row {
  const engineCount = countOf(engine.cold)
  const sdkCount = countOf(sdk.cold)
  const describe = (count: ReturnType<typeof countOf>) =>
    `${count.total} (${count.fallbacks} fallback${count.fallbacks === 1 ? "" : "s"})${count.stable ? "" : ", varied between rounds"}`
  return {
    measure: "HTTP requests in that sign-in (and how many were fallbacks)",
    engine: `${describe(engineCount)}; ${verdict(engineCount.total <= COLD_SIGN_IN_FLOOR)}`,
    sdk: describe(sdkCount),
    ratio: ratio(engineCount.total, sdkCount.total),
  }
}

function secondSignInRow(engine: SignInSamples, sdk: SignInSamples, registrationPath: string): Row {
  const summarize = (samples: ReadonlyArray<SignInSample>) => {
    const requests = samples[0]?.requests ?? []
    const repeated = requests.filter((r) => isDiscoveryOrRegistration(r, registrationPath))
    return {
      clientMs: median(samples.map((s) => s.clientMs)),
      total: requests.length,
      repeated: repeated.length,
    }
  }
  const e = summarize(engine.second)
  const s = summarize(sdk.second)
  const describe = (summary: typeof e) =>
    `${ms(summary.clientMs)}, ${summary.total} requests (${summary.repeated} for discovery or registration)`
  return {
    measure: `second sign-in after the refresh token is revoked (metadata and registration known), ${PROXY_DELAY_MS} ms added per request`,
    engine: `${describe(e)}; ${verdict(e.repeated === 0)}`,
    sdk: describe(s),
    ratio: ratio(e.clientMs, s.clientMs),
  }
}
