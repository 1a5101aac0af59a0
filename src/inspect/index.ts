/**
 * Watching an engine: the redacted inspection stream, the live view server with its statechart
 * SVG, and the adapter for `@statelyai/inspect` inspectors.
 */
export {
  type ActorInspectionEvent,
  type EngineInspectionEvent,
  type EventInspectionEvent,
  type InspectedActor,
  type InspectedEventObject,
  type InspectionObserver,
  type SnapshotInspectionEvent,
  toEngineInspectionEvent,
} from "./events.js"
export { REDACTED, type RedactedError, redactError, redactText, redactValue } from "./redact.js"
export {
  type InspectableEngine,
  LIVE_VIEW_HOST,
  type LiveView,
  type LiveViewOptions,
  startLiveView,
} from "./server.js"
export { type StatelyInspectorLike, type StatelySnapshot, toStatelyObserver } from "./stately.js"
export { renderStatechartSvg } from "./svg.js"
