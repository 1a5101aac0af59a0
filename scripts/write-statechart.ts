/**
 * Rewrites the Mermaid diagram in docs/statechart.md from the engine's machine definition.
 *
 * Usage: npx tsx scripts/write-statechart.ts [--check]
 *   (no option)  replace the text between the statechart markers and report whether it changed
 *   --check      write nothing; exit 1 when the document differs from the machine
 */
import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath, pathToFileURL } from "node:url"
import { renderAuthMachineMermaid } from "../src/machine/diagram.js"

export const BEGIN_MARKER = "<!-- statechart:begin -->"
export const END_MARKER = "<!-- statechart:end -->"
export const STATECHART_DOC = fileURLToPath(new URL("../docs/statechart.md", import.meta.url))

/** Wraps Mermaid text in the fenced block that goes between the markers. */
export const mermaidFence = (mermaid: string): string => `\`\`\`mermaid\n${mermaid}\`\`\``

const markerPositions = (document: string): { start: number; end: number } => {
  const begin = document.indexOf(BEGIN_MARKER)
  const end = document.indexOf(END_MARKER)
  if (begin === -1 || end === -1 || end < begin) {
    throw new Error(
      `docs/statechart.md must contain "${BEGIN_MARKER}" followed by "${END_MARKER}"; add them where the diagram goes`,
    )
  }
  return { start: begin + BEGIN_MARKER.length, end }
}

/** Returns the text between the markers, without the surrounding line breaks. */
export const extractGenerated = (document: string): string => {
  const { start, end } = markerPositions(document)
  return document.slice(start, end).trim()
}

/** Returns the document with the text between the markers replaced by `mermaid` in a fence. */
export const replaceGenerated = (document: string, mermaid: string): string => {
  const { start, end } = markerPositions(document)
  return `${document.slice(0, start)}\n${mermaidFence(mermaid)}\n${document.slice(end)}`
}

const main = (args: ReadonlyArray<string>): number => {
  const check = args.includes("--check")
  const current = readFileSync(STATECHART_DOC, "utf8")
  const updated = replaceGenerated(current, renderAuthMachineMermaid())
  if (check) {
    if (updated === current) return 0
    console.error("docs/statechart.md is out of date; run `npm run docs:statechart`")
    return 1
  }
  if (updated === current) {
    console.log("docs/statechart.md is up to date")
    return 0
  }
  writeFileSync(STATECHART_DOC, updated)
  console.log("docs/statechart.md: diagram rewritten from the machine definition")
  return 0
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2))
}
