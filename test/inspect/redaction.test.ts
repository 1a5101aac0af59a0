/**
 * The engine's inspection stream carries no secret. A full demo run uses oidc-provider and the
 * MCP SDK server from src/demo/servers.ts: sign-in, a tool call, the scheduled refresh, another
 * call and logout. The run is observed twice. The machine's own snapshots give every secret of
 * the run (tokens, the authorization code, the PKCE verifier, `state`). `engine.inspect` gives
 * the redacted events, which are serialized and searched for each of those secrets. The live
 * view's history, which a browser receives, is searched too.
 */
import { Effect, Logger, LogLevel, Redacted } from "effect"
import { describe, expect, it, onTestFinished } from "vitest"
import { runDemo } from "../../src/demo/run.js"
import type { AuthContext, EngineInspectionEvent } from "../../src/index.js"
import { REDACTED, redactValue } from "../../src/inspect/redact.js"
import { startLiveView } from "../../src/inspect/server.js"

/** Secret values seen in machine contexts during a run, by kind. */
class SecretLog {
  readonly values = new Map<string, Set<string>>()

  add(kind: string, value: string | null | undefined): void {
    if (value === undefined || value === null || value === "") return
    const set = this.values.get(kind) ?? new Set<string>()
    set.add(value)
    this.values.set(kind, set)
  }

  count(kind: string): number {
    return this.values.get(kind)?.size ?? 0
  }

  collect(context: AuthContext): void {
    const tokens = context.session?.tokens
    if (tokens !== undefined) {
      this.add("access token", Redacted.value(tokens.accessToken))
      if (tokens.refreshToken !== undefined) {
        this.add("refresh token", Redacted.value(tokens.refreshToken))
      }
    }
    if (context.attempt !== undefined) {
      this.add("state", Redacted.value(context.attempt.state))
      this.add("PKCE verifier", Redacted.value(context.attempt.codeVerifier))
      this.add("authorization URL", Redacted.value(context.attempt.authorizationUrl))
    }
    if (context.callbackParams !== undefined) {
      const params = Redacted.value(context.callbackParams)
      this.add("authorization code", params.get("code"))
      this.add("state", params.get("state"))
    }
  }

  /** Lists each secret found in `texts`, with the secret masked in the excerpt. */
  findIn(texts: ReadonlyArray<string>): string[] {
    const found: string[] = []
    for (const [kind, values] of this.values) {
      for (const value of values) {
        texts.forEach((text, index) => {
          const at = text.indexOf(value)
          if (at === -1) return
          const excerpt = text.slice(Math.max(0, at - 50), at + value.length + 50)
          found.push(`${kind} in text ${index}: ${excerpt.replaceAll(value, `<${kind}>`)}`)
        })
      }
    }
    return found
  }
}

describe("inspection redaction", () => {
  it("keeps a demo run's secrets out of inspection events", async () => {
    const secrets = new SecretLog()
    const events: EngineInspectionEvent[] = []
    const output: string[] = []
    const view = await startLiveView()
    onTestFinished(() => view.close())

    await Effect.runPromise(
      runDemo({
        accessTokenTtlSeconds: 4,
        print: (line) => output.push(line),
        onEngineStarted: (engine) => {
          engine.actor.subscribe((snapshot) => secrets.collect(snapshot.context))
          engine.inspect((event) => events.push(event))
          view.attach(engine)
        },
      }).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)),
    )
    const serialized = events.map((event) => JSON.stringify(event))
    const history = await (await fetch(new URL("history.json", view.url))).text()
    const states = events.flatMap((event) =>
      event.type === "snapshot" && event.machine ? [event.state] : [],
    )

    expect(output.at(-1)).toContain("Demo finished")
    expect(states).toContain("awaitingCallback")
    expect(states).toContain("refreshing")
    expect(states).toContain("loggingOut")
    expect(events.some((event) => event.type === "actor")).toBe(true)
    expect(events.some((event) => event.type === "event")).toBe(true)
    // Two token sets: the sign-in's and the refreshed one.
    expect(secrets.count("access token")).toBe(2)
    expect(secrets.count("refresh token")).toBe(2)
    expect(secrets.count("authorization code")).toBe(1)
    expect(secrets.count("PKCE verifier")).toBe(1)
    expect(secrets.count("state")).toBe(1)
    expect(serialized.some((text) => text.includes(REDACTED))).toBe(true)
    expect(secrets.findIn(serialized)).toEqual([])
    expect(secrets.findIn([history])).toEqual([])
    expect(secrets.findIn(output)).toEqual([])
  })
})

describe("redactValue", () => {
  it("replaces Redacted values and secret fields", () => {
    const value = redactValue({
      token: Redacted.make("one"),
      attempt: { state: "two", codeVerifier: "three" },
      client: { clientId: "public", clientSecret: "four" },
      nested: { refresh_token: "five", state: "six" },
    })

    expect(value).toEqual({
      token: REDACTED,
      attempt: REDACTED,
      client: { clientId: "public", clientSecret: REDACTED },
      nested: { refresh_token: REDACTED, state: REDACTED },
    })
  })

  it("keeps only parameter names of a query", () => {
    const params = new URLSearchParams({ code: "secret-code", state: "secret-state" })

    expect(redactValue({ params })).toEqual({ params: { parameters: ["code", "state"] } })
  })

  it("drops the query of URLs in text", () => {
    const text = "redirected to http://127.0.0.1:1/callback?code=abc&state=def, then stopped"

    expect(redactValue(text)).toBe("redirected to http://127.0.0.1:1/callback, then stopped")
    expect(redactValue(new URL("https://as.example/authorize?state=x#y"))).toBe(
      "https://as.example/authorize",
    )
  })

  it("summarizes errors without their cause", () => {
    const error = new Error("request with refresh_token=abc failed", {
      cause: { body: "refresh_token=abc" },
    })

    expect(redactValue({ error })).toEqual({ error: { name: "Error", message: "Error" } })
  })

  it("drops functions and marks cycles", () => {
    const cyclic: Record<string, unknown> = { name: "root", run: () => 1 }
    cyclic.self = cyclic

    expect(redactValue(cyclic)).toEqual({ name: "root", self: "<cycle>" })
  })
})
