/**
 * The engine's redacted stream through `@statelyai/inspect` over loopback: a WebSocket
 * inspector in this process sends to a relay on 127.0.0.1, and a WebSocket receiver reads the
 * events back. The receiver has no close() and would keep vitest from exiting, so the relay
 * and the receiver run in a child process (fixtures/stately-receiver.mjs) that the test ends.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { createWebSocketInspector } from "@statelyai/inspect"
import { describe, expect, it, onTestFinished } from "vitest"
import { toStatelyObserver } from "../../src/inspect/stately.js"
import { createTestEngine, startScriptedServer } from "../../src/testing/index.js"
import { withDeadline } from "../support/wait.js"

const RECEIVER = fileURLToPath(new URL("fixtures/stately-receiver.mjs", import.meta.url))

interface ReceivedEvent {
  readonly type: string
  readonly sessionId?: string
  readonly snapshot?: { readonly value?: unknown; readonly context?: unknown }
  readonly event?: { readonly type?: string }
}

/** Starts the relay and receiver; resolves with the port and the lines received so far. */
const startReceiver = async () => {
  const child: ChildProcess = spawn(process.execPath, [RECEIVER], {
    stdio: ["ignore", "pipe", "inherit"],
  })
  onTestFinished(() => {
    child.kill()
  })
  const lines: string[] = []
  const waiters = new Set<() => void>()
  const reader = createInterface({ input: child.stdout! })
  const port = await withDeadline(
    new Promise<number>((resolve) => {
      reader.on("line", (line) => {
        const listening = /^listening (\d+)$/.exec(line)
        if (listening !== null) {
          resolve(Number(listening[1]))
          return
        }
        lines.push(line)
        for (const waiter of [...waiters]) waiter()
      })
    }),
    "the relay and receiver to start",
  )
  /** Resolves once a received event satisfies `predicate`. */
  const waitFor = (description: string, predicate: (event: ReceivedEvent) => boolean) =>
    withDeadline(
      new Promise<void>((resolve) => {
        const check = () => {
          if (lines.some((line) => predicate(JSON.parse(line) as ReceivedEvent))) {
            waiters.delete(check)
            resolve()
          }
        }
        waiters.add(check)
        check()
      }),
      description,
    )
  return { port, lines, waitFor }
}

describe("@statelyai/inspect over a loopback WebSocket", () => {
  it("relays redacted events to a receiver", async () => {
    const receiver = await startReceiver()
    const inspector = createWebSocketInspector({ url: `ws://127.0.0.1:${receiver.port}` })
    onTestFinished(() => inspector.stop())
    const server = await startScriptedServer()
    onTestFinished(() => server.close())
    const engine = await createTestEngine({ serverUrl: server.mcpUrl })
    onTestFinished(() => engine.dispose())
    const unsubscribe = engine.inspect(toStatelyObserver(inspector))

    await engine.authenticate()
    const accessToken = await engine.getAccessToken()
    await receiver.waitFor(
      "an authenticated snapshot",
      (event) => event.type === "@xstate.snapshot" && event.snapshot?.value === "authenticated",
    )
    unsubscribe()
    const types = new Set(receiver.lines.map((line) => (JSON.parse(line) as ReceivedEvent).type))

    expect(types).toEqual(new Set(["@xstate.actor", "@xstate.event", "@xstate.snapshot"]))
    expect(receiver.lines.some((line) => line.includes('"AUTHORIZATION_STARTED"'))).toBe(true)
    expect(receiver.lines.some((line) => line.includes("<redacted>"))).toBe(true)
    expect(receiver.lines.filter((line) => line.includes(accessToken))).toEqual([])
  })
})
