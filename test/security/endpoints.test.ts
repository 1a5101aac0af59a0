/**
 * Unsafe URLs never reach a user agent: an `authorization_endpoint` that is neither https nor
 * loopback http fails discovery before registration or any browser call, and each Browser
 * layer rejects such a URL itself before it starts anything.
 */
import { readFile } from "node:fs/promises"
import { join } from "node:path"
import { Effect, Exit, type Layer } from "effect"
import { describe, expect, it } from "vitest"
import {
  Browser,
  BrowserCommand,
  BrowserHeadless,
  BrowserSystem,
  makeMemoryKeychain,
} from "../../src/index.js"
import { makeRecordingBrowser } from "../support/browsers.js"
import { makeTemporaryDirectory } from "../support/demo.js"
import { makeTestLayer, startEffectEngine } from "../support/effect-engine.js"
import { startLoopbackAuthorizationServer } from "../support/loopback-authorization-server.js"
import { pollUntil, rejectionOf } from "../support/wait.js"

const UNSAFE_AUTHORIZATION_ENDPOINTS = [
  "javascript:alert(1)",
  "file:///etc/passwd",
  "http://example.test/authorize",
  "a:$(whoami)",
  "data:text/html,<script>alert(1)</script>",
  "http://127.0.0.1.example.test/authorize",
  "https://user:password@127.0.0.1/authorize",
  "/authorize",
]

describe("unsafe authorization endpoint", () => {
  it.each(UNSAFE_AUTHORIZATION_ENDPOINTS)("fails discovery for %s", async (endpoint) => {
    const server = await startLoopbackAuthorizationServer({ authorizationEndpoint: endpoint })
    const browser = makeRecordingBrowser()
    const { service, run } = await startEffectEngine(
      { serverUrl: server.mcpUrl, callbackPort: 0 },
      makeTestLayer(browser.layer, makeMemoryKeychain()),
    )

    const error = await rejectionOf(run(service.authenticate))
    const status = await run(service.status)

    expect(error._tag).toBe("DiscoveryError")
    expect(error.reason).toBe("insecure_endpoint")
    expect(error.received).toBe(endpoint)
    expect(status.state).toBe("failed")
    expect(browser.calls).toEqual([])
    expect(server.requests.registration).toBe(0)
    expect(server.requests.authorization).toBe(0)
  })
})

const openWith = (layer: Layer.Layer<Browser>, url: string) =>
  Effect.runPromiseExit(
    Effect.flatMap(Browser, (browser) => browser.open(url, "http://127.0.0.1:9/callback")).pipe(
      Effect.provide(layer),
    ),
  )

const failureReason = (exit: Exit.Exit<void, { readonly reason: string }>) =>
  Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.reason : undefined

describe("browser layers", () => {
  it("never spawn a command for an unsafe URL", async () => {
    const directory = await makeTemporaryDirectory()
    const log = join(directory, "opened.txt")
    // The recording program appends its last argument, the URL, to the log file.
    const command = BrowserCommand(process.execPath, [
      "-e",
      "require('node:fs').appendFileSync(process.argv[1], process.argv[2] + '\\n')",
      log,
    ])

    const rejected: Array<string | undefined> = []
    for (const url of ["file:///etc/passwd", "javascript:alert(1)", "http://example.test/"]) {
      rejected.push(failureReason(await openWith(command, url)))
    }
    // A safe URL afterwards shows that the program records what it is given.
    const safeUrl = "http://127.0.0.1:9/authorize?client_id=test"
    const safeExit = await openWith(command, safeUrl)
    await pollUntil(
      () =>
        readFile(log, "utf8").then(
          (text) => text.includes(safeUrl),
          () => false,
        ),
      "the browser command to record the safe URL",
    )

    expect(rejected).toEqual(["insecure_endpoint", "insecure_endpoint", "insecure_endpoint"])
    expect(Exit.isSuccess(safeExit)).toBe(true)
    expect(await readFile(log, "utf8")).toBe(`${safeUrl}\n`)
  })

  it.each([
    ["headless", BrowserHeadless],
    ["system", BrowserSystem],
  ])("%s rejects file: and javascript: URLs", async (_, layer) => {
    const fileExit = await openWith(layer, "file:///etc/passwd")
    const scriptExit = await openWith(layer, "javascript:alert(1)")

    expect(failureReason(fileExit)).toBe("insecure_endpoint")
    expect(failureReason(scriptExit)).toBe("insecure_endpoint")
  })
})
