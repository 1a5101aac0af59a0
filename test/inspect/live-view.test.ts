/**
 * The live view in a real browser: headless Chromium (Debian's package) opens the page, the
 * demo runs in this process with the view attached, and the page must highlight each state the
 * engine passes through, the scheduled refresh included. A screenshot of the page is saved to
 * test-artifacts/inspect.png. The browser test is skipped only when /usr/bin/chromium is absent.
 */
import { existsSync } from "node:fs"
import { mkdir, mkdtemp, rm } from "node:fs/promises"
import { get as httpGet } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Logger, LogLevel } from "effect"
import { chromium } from "playwright-core"
import { describe, expect, it, onTestFinished } from "vitest"
import { runDemo } from "../../src/demo/run.js"
import { startLiveView } from "../../src/inspect/server.js"

const CHROMIUM = "/usr/bin/chromium"
const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
]
const SCREENSHOT = join("test-artifacts", "inspect.png")

/** Tells whether `states` contains `sequence` in order, other states allowed in between. */
const containsInOrder = (states: ReadonlyArray<string>, sequence: ReadonlyArray<string>) => {
  let next = 0
  for (const state of states) if (state === sequence[next]) next++
  return next === sequence.length
}

/** GETs `url` with another `Host` header, as a page behind DNS rebinding would; returns the status. */
const requestWithHost = (url: string, host: string) =>
  new Promise<number>((resolve, reject) => {
    const request = httpGet(url, { headers: { host } }, (response) => {
      response.resume()
      resolve(response.statusCode ?? 0)
    })
    request.once("error", reject)
  })

const chromiumInstalled = existsSync(CHROMIUM)
const browserTest = chromiumInstalled ? it : it.skip

describe("live view", () => {
  it("serves the page, the SVG and the event stream on loopback", async () => {
    const view = await startLiveView()
    onTestFinished(() => view.close())

    const page = await fetch(view.url)
    const html = await page.text()
    const svg = await (await fetch(new URL("statechart.svg", view.url))).text()
    const foreign = await requestWithHost(view.url, "attacker.example")

    expect(new URL(view.url).hostname).toBe("127.0.0.1")
    expect(page.status).toBe(200)
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'")
    // Offline: nothing is loaded from another origin (the SVG namespace URI is only a name).
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|url\((?!#)|@import/)
    expect(html.replaceAll("http://www.w3.org/2000/svg", "")).not.toMatch(/https?:\/\//)
    expect(svg).toContain('data-state="authorizing.awaitingCallback"')
    expect(svg).toContain('data-source="authenticated" data-target="refreshing"')
    expect(foreign).toBe(421)
  })

  browserTest(
    chromiumInstalled
      ? "follows a demo run in Chromium"
      : "follows a demo run in Chromium (skipped: /usr/bin/chromium is not installed)",
    async () => {
      const view = await startLiveView({ title: "mcp-auth-engine demo" })
      onTestFinished(() => view.close())
      const profile = await mkdtemp(join(tmpdir(), "mcp-auth-engine-chromium-"))
      onTestFinished(() => rm(profile, { recursive: true, force: true }))
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_FLAGS,
        viewport: { width: 1500, height: 900 },
      })
      onTestFinished(() => context.close())
      const page = context.pages()[0] ?? (await context.newPage())
      const pageErrors: string[] = []
      page.on("pageerror", (error) => pageErrors.push(error.message))

      await page.goto(view.url)
      await page.waitForSelector("#connection.open")
      // Record every state element that gains the `active` class, in order.
      await page.evaluate(() => {
        const highlighted: string[] = []
        Object.assign(window, { highlighted })
        new MutationObserver((records) => {
          for (const record of records) {
            const target = record.target as Element
            if (target.classList.contains("active") && !target.classList.contains("compound")) {
              highlighted.push(target.getAttribute("data-state") ?? "")
            }
          }
        }).observe(document.querySelector("svg.statechart")!, {
          subtree: true,
          attributes: true,
          attributeFilter: ["class"],
        })
      })

      await Effect.runPromise(
        runDemo({
          accessTokenTtlSeconds: 4,
          print: () => {},
          onEngineStarted: (engine) => void view.attach(engine),
        }).pipe(Logger.withMinimumLogLevel(LogLevel.Warning)),
      )
      await page.waitForSelector('.state.active[data-state="idle"]')
      await page.waitForFunction(() => document.querySelectorAll("#history li").length >= 10)
      const highlighted = await page.evaluate(
        () => (window as unknown as { highlighted: string[] }).highlighted,
      )
      await mkdir("test-artifacts", { recursive: true })
      await page.screenshot({ path: SCREENSHOT, fullPage: true })

      expect(pageErrors).toEqual([])
      expect(
        containsInOrder(highlighted, [
          "authRequired",
          "authorizing.discovering",
          "authorizing.awaitingCallback",
          "authorizing.exchanging",
          "authenticated",
          "refreshing",
          "authenticated",
          "loggingOut",
          "idle",
        ]),
        `highlighted: ${highlighted.join(", ")}`,
      ).toBe(true)
      expect(existsSync(SCREENSHOT)).toBe(true)
    },
  )
})
