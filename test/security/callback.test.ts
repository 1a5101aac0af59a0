/**
 * The loopback redirect listener against a test authorization server whose `/authorize` never
 * redirects: the test reads `state` and the redirect URI from the URL the engine opens, then
 * sends callback requests itself. Checks the order of callback validation (`state`, then RFC
 * 9207 `iss`, then `error` or `code`), stray requests, and where the listener accepts.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import type { EngineState } from "../../src/index.js"
import { makeRecordingBrowser } from "../support/browsers.js"
import { makeTestLayer, startEffectEngine } from "../support/effect-engine.js"
import {
  type LoopbackAuthorizationServerOptions,
  startLoopbackAuthorizationServer,
} from "../support/loopback-authorization-server.js"
import { canConnect } from "../support/network.js"
import { pollUntil, type Rejection } from "../support/wait.js"

/** Starts a sign-in and waits until the engine has opened the authorization URL. */
const startSignIn = async (options: LoopbackAuthorizationServerOptions = {}) => {
  const server = await startLoopbackAuthorizationServer(options)
  const browser = makeRecordingBrowser()
  const engine = await startEffectEngine(
    { serverUrl: server.mcpUrl, callbackPort: 0 },
    makeTestLayer(browser.layer),
  )
  // Settles with undefined on success or with the error, so no rejection goes unhandled.
  const outcome = engine.run(engine.service.authenticate).then(
    () => undefined,
    (error: unknown) => error as Rejection,
  )
  const call = await browser.nextCall()
  const authorizationUrl = new URL(call.authorizationUrl)
  const redirectUri = new URL(call.redirectUri)
  return {
    server,
    engine,
    outcome,
    authorizationUrl,
    redirectUri,
    state: authorizationUrl.searchParams.get("state") ?? "",
    port: Number(redirectUri.port),
    currentState: (): EngineState => Effect.runSync(engine.service.status).state,
    /** Sends a GET to the redirect URI with `query`. */
    callback: (query: Record<string, string>) =>
      fetch(`${call.redirectUri}?${new URLSearchParams(query)}`),
  }
}

describe("callback validation", () => {
  it("ignores a callback with the wrong state", async () => {
    const signIn = await startSignIn()

    const wrong = await signIn.callback({
      code: "wrong-state-code",
      state: "not-the-state",
      iss: signIn.server.issuer,
    })
    await wrong.arrayBuffer()
    const stateAfterWrong = signIn.currentState()
    const right = await signIn.callback({
      code: "right-code",
      state: signIn.state,
      iss: signIn.server.issuer,
    })
    await right.arrayBuffer()

    expect(wrong.status).toBe(404)
    expect(stateAfterWrong).toBe("awaitingCallback")
    expect(right.status).toBe(200)
    expect(await signIn.outcome).toBeUndefined()
    expect(signIn.currentState()).toBe("authenticated")
    expect(signIn.server.requests.token).toHaveLength(1)
    expect(signIn.server.requests.token[0]?.get("code")).toBe("right-code")
  })

  it.each([
    ["another issuer", "http://127.0.0.1:1", "iss_mismatch"],
    ["the issuer with a trailing slash", "{issuer}/", "iss_mismatch"],
    ["the issuer in upper case", "{ISSUER}", "iss_mismatch"],
  ])("rejects iss of %s", async (_, issTemplate, reason) => {
    const signIn = await startSignIn()
    const iss = issTemplate
      .replace("{issuer}", signIn.server.issuer)
      .replace("{ISSUER}", signIn.server.issuer.toUpperCase())

    const response = await signIn.callback({ code: "some-code", state: signIn.state, iss })
    await response.arrayBuffer()
    const error = await signIn.outcome

    expect(response.status).toBe(400)
    expect(error?._tag).toBe("AuthorizationError")
    expect(error?.reason).toBe(reason)
    expect(error?.received).toBe(iss)
    expect(signIn.currentState()).toBe("failed")
    expect(signIn.server.requests.token).toEqual([])
  })

  it("rejects missing iss when advertised", async () => {
    const signIn = await startSignIn()

    const response = await signIn.callback({ code: "some-code", state: signIn.state })
    await response.arrayBuffer()
    const error = await signIn.outcome

    expect(response.status).toBe(400)
    expect(error?._tag).toBe("AuthorizationError")
    expect(error?.reason).toBe("iss_missing")
    expect(signIn.currentState()).toBe("failed")
    expect(signIn.server.requests.token).toEqual([])
  })

  it("checks iss before reading an error", async () => {
    const signIn = await startSignIn()

    const response = await signIn.callback({
      error: "access_denied",
      state: signIn.state,
      iss: "http://127.0.0.1:1",
    })
    await response.arrayBuffer()
    const error = await signIn.outcome

    expect(error?._tag).toBe("AuthorizationError")
    expect(error?.reason).toBe("iss_mismatch")
  })

  it("accepts missing iss when not advertised", async () => {
    const signIn = await startSignIn({ issParameterSupported: false })

    const response = await signIn.callback({ code: "plain-code", state: signIn.state })
    await response.arrayBuffer()

    expect(response.status).toBe(200)
    expect(await signIn.outcome).toBeUndefined()
    expect(signIn.server.requests.token[0]?.get("code")).toBe("plain-code")
  })

  it("ignores stray requests on the callback port", async () => {
    const signIn = await startSignIn()
    const origin = signIn.redirectUri.origin
    const valid = new URLSearchParams({
      code: "stray-code",
      state: signIn.state,
      iss: signIn.server.issuer,
    })
    const strays: Array<[string, RequestInit]> = [
      [`${origin}/`, {}],
      [`${origin}/favicon.ico`, {}],
      [`${origin}/callback/extra?${valid}`, {}],
      [`${origin}/CALLBACK?${valid}`, {}],
      [`${origin}/callback?${valid}`, { method: "POST" }],
      [`${origin}/callback`, {}],
      [`${origin}/callback?code=stray-code&iss=${encodeURIComponent(signIn.server.issuer)}`, {}],
      [`${origin}/callback?error=access_denied`, {}],
      [`${origin}/callback?error=access_denied&state=`, {}],
    ]

    const statuses: number[] = []
    for (const [url, init] of strays) {
      const response = await fetch(url, init)
      await response.arrayBuffer()
      statuses.push(response.status)
    }
    const stateAfterStrays = signIn.currentState()
    const right = await signIn.callback({
      code: "right-code",
      state: signIn.state,
      iss: signIn.server.issuer,
    })
    await right.arrayBuffer()

    expect(statuses).toEqual(strays.map(() => 404))
    expect(stateAfterStrays).toBe("awaitingCallback")
    expect(right.status).toBe(200)
    expect(await signIn.outcome).toBeUndefined()
    expect(signIn.server.requests.token).toHaveLength(1)
    expect(signIn.server.requests.token[0]?.get("code")).toBe("right-code")
  })
})

describe("callback listener address", () => {
  it("listens on 127.0.0.1 only", async () => {
    const signIn = await startSignIn()

    expect(signIn.redirectUri.hostname).toBe("127.0.0.1")
    expect(signIn.redirectUri.pathname).toBe("/callback")
    expect(signIn.authorizationUrl.searchParams.get("redirect_uri")).toBe(signIn.redirectUri.href)
    expect(await canConnect("127.0.0.1", signIn.port)).toBe(true)
    // A wildcard or dual-stack listener would also accept these two loopback addresses.
    expect(await canConnect("127.0.0.2", signIn.port)).toBe(false)
    expect(await canConnect("::1", signIn.port)).toBe(false)
  })

  it("closes the port after a sign-in", async () => {
    const signIn = await startSignIn()

    const response = await signIn.callback({
      code: "some-code",
      state: signIn.state,
      iss: signIn.server.issuer,
    })
    await response.arrayBuffer()
    await signIn.outcome

    await pollUntil(
      async () => !(await canConnect("127.0.0.1", signIn.port)),
      "the callback port to close",
    )
    expect(signIn.currentState()).toBe("authenticated")
    expect(await canConnect("127.0.0.1", signIn.port)).toBe(false)
  })

  it("closes the port after a rejected callback", async () => {
    const signIn = await startSignIn()

    const response = await signIn.callback({ code: "some-code", state: signIn.state })
    await response.arrayBuffer()
    await signIn.outcome

    await pollUntil(
      async () => !(await canConnect("127.0.0.1", signIn.port)),
      "the callback port to close",
    )
    expect(signIn.currentState()).toBe("failed")
    expect(await canConnect("127.0.0.1", signIn.port)).toBe(false)
  })

  it("closes the port on cancel", async () => {
    const signIn = await startSignIn()

    await signIn.engine.run(signIn.engine.service.cancel)
    const error = await signIn.outcome

    await pollUntil(
      async () => !(await canConnect("127.0.0.1", signIn.port)),
      "the callback port to close",
    )
    expect(error?._tag).toBe("SignInRequired")
    expect(error?.reason).toBe("cancelled")
    expect(signIn.currentState()).toBe("authRequired")
    expect(await canConnect("127.0.0.1", signIn.port)).toBe(false)
  })
})
