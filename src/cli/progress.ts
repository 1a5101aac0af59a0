/**
 * Progress output on stderr: a spinner line when stderr is a terminal, otherwise one plain
 * line per state change so logs and CI output stay readable.
 */
import type { EngineStatus } from "../engine/status.js"

const SPINNER_FRAMES = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
const SPINNER_INTERVAL_MS = 80

/** Describes an engine status as one line of progress text. */
export const describeStatus = (status: EngineStatus): string => {
  const server = status.authorizationServer
  switch (status.state) {
    case "idle":
      return "Loading the stored session…"
    case "authRequired":
      return "Sign-in required"
    case "waitingForLock":
      // Usually instant; it lasts only while another process signs in to the same server.
      return "Starting the sign-in…"
    case "discovering":
      return `Discovering the authorization server of ${status.serverUrl}…`
    case "registering":
      return `Identifying the client at ${server ?? "the authorization server"}…`
    case "awaitingCallback":
      return `Waiting for authorization… (authorization server ${server ?? "unknown"})`
    case "exchanging":
      return "Exchanging the authorization code for tokens…"
    case "refreshing":
      return "Refreshing the access token…"
    case "authenticated":
      return "Authenticated"
    case "failed":
      return "Failed"
    case "loggingOut":
      return "Signing out…"
  }
}

/** Reports status changes on stderr until `stop` is called. */
export interface ProgressReporter {
  readonly update: (status: EngineStatus) => void
  /** Clears the spinner line, if any. */
  readonly stop: () => void
}

/** Builds a reporter that draws a spinner on a terminal and prints plain lines elsewhere. */
export const makeProgressReporter = (
  stream: NodeJS.WriteStream = process.stderr,
): ProgressReporter => {
  let lastState: string | undefined
  if (!stream.isTTY) {
    return {
      update: (status) => {
        if (status.state === lastState) return
        lastState = status.state
        stream.write(`${describeStatus(status)}\n`)
      },
      stop: () => {},
    }
  }

  let text = ""
  let frame = 0
  const draw = () => {
    stream.write(`\r\x1b[2K${SPINNER_FRAMES[frame % SPINNER_FRAMES.length]} ${text}`)
    frame++
  }
  const timer = setInterval(draw, SPINNER_INTERVAL_MS)
  // The spinner alone must not keep the process running.
  timer.unref()
  return {
    update: (status) => {
      text = describeStatus(status)
      draw()
    },
    stop: () => {
      clearInterval(timer)
      stream.write("\r\x1b[2K")
    },
  }
}

/** Formats the time until (or since) `at` for humans: "in 4 min", "expired 2 h ago". */
export const formatExpiry = (at: number | undefined, now: number): string => {
  if (at === undefined) return "unknown"
  const seconds = Math.round((at - now) / 1000)
  const amount = formatDuration(Math.abs(seconds))
  return seconds >= 0 ? `in ${amount}` : `expired ${amount} ago`
}

const formatDuration = (seconds: number): string => {
  if (seconds < 60) return `${seconds} s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min`
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return `${hours} h`
  return `${Math.floor(hours / 24)} d`
}
