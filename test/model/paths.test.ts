/**
 * Model-based paths through the engine's statechart. @xstate/graph walks the real machine
 * definition with every event the machine handles (host events, events its actors send, and
 * the done, error and delay events XState would raise), one path per reachable edge. Each path
 * is then replayed on a started actor of the same machine whose actors are inert stubs, so only
 * the path's events move it, and the state after every step must match the model's.
 *
 * The test also counts every transition of the machine and fails until each one was taken in
 * some replay: a new state or transition fails the suite until it is covered here.
 */
import { HttpClient, HttpClientError } from "@effect/platform"
import {
  adjacencyMapToArray,
  getAdjacencyMap,
  getShortestPaths,
  type StatePath,
} from "@xstate/graph"
import { Effect, Layer, ManagedRuntime, Redacted, type Runtime } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type AnyStateNode,
  type AnyTransitionDefinition,
  createActor,
  fromCallback,
  fromPromise,
  type InspectionEvent,
  SimulatedClock,
} from "xstate"
import {
  type AuthContext,
  type AuthEnv,
  type AuthEvent,
  AuthorizationError,
  CallbackServer,
  DiscoveryError,
  Keychain,
  KeychainError,
  makeAuthMachine,
  makeMemoryKeychain,
  RegistrationError,
  TokenError,
} from "../../src/index.js"
import type { MachineInput } from "../../src/machine/machine.js"
import type { AuthorizationAttempt } from "../../src/protocol/authorization.js"
import type { Discovery } from "../../src/protocol/discovery.js"
import type { ClientRegistration, Session } from "../../src/schema/session.js"
import { makeRecordingBrowser } from "../support/browsers.js"

const SERVER_URL = "https://mcp.example/mcp"
const ISSUER = "https://auth.example"
const REDIRECT_URI = "http://127.0.0.1:33418/callback"
const NOW = Date.now()
const HOUR = 3_600_000

type AuthMachine = ReturnType<typeof makeAuthMachine>
type Snapshot = ReturnType<AuthMachine["transition"]>
/** Any event the traversal sends: the machine's own events and XState's done/error/delay events. */
type ModelEvent = AuthEvent | { readonly type: string; readonly [field: string]: unknown }

// ---------------------------------------------------------------------------------------------
// Fixtures: the values the machine's actors would produce.

const authorizationServer = {
  issuer: ISSUER,
  authorization_endpoint: `${ISSUER}/authorize`,
  token_endpoint: `${ISSUER}/token`,
  registration_endpoint: `${ISSUER}/register`,
  code_challenge_methods_supported: ["S256"],
  grant_types_supported: ["authorization_code", "refresh_token", "client_credentials"],
  authorization_response_iss_parameter_supported: true,
}

const discovery: Discovery = {
  serverUrl: SERVER_URL,
  mode: "protected-resource-metadata" as Discovery["mode"],
  resource: SERVER_URL,
  authorizationServer,
}

const registration: ClientRegistration = {
  issuer: ISSUER,
  clientId: "model-client",
  tokenEndpointAuthMethod: "none",
  redirectUri: REDIRECT_URI,
  source: "dynamic",
}

/** A session whose access token expires `expiresIn` ms from now, obtained an hour ago. */
const session = (expiresIn: number, refreshable: boolean): Session => ({
  version: 1,
  serverUrl: SERVER_URL,
  resource: SERVER_URL,
  authorizationServer,
  client: registration,
  tokens: {
    accessToken: Redacted.make("model-access-token"),
    tokenType: "Bearer",
    ...(refreshable ? { refreshToken: Redacted.make("model-refresh-token") } : {}),
    expiresAt: NOW + expiresIn,
    scope: "mcp:tools",
    obtainedAt: NOW - HOUR,
  },
  generation: 1,
})

/** Sessions by how the machine's time guards see them. */
const sessions = {
  fresh: session(HOUR, true),
  /** Inside the refresh skew: the scheduled refresh is due, the token still works. */
  due: session(30_000, true),
  expired: session(-HOUR, true),
  freshWithoutRefresh: session(HOUR, false),
  dueWithoutRefresh: session(30_000, false),
}

const attempt: AuthorizationAttempt = {
  state: Redacted.make("model-state"),
  codeVerifier: Redacted.make("model-verifier"),
  codeChallenge: "model-challenge",
  issuer: ISSUER,
  issRequired: true,
  clientId: registration.clientId,
  redirectUri: REDIRECT_URI,
  resource: SERVER_URL,
  scope: "mcp:tools",
  authorizationUrl: Redacted.make(`${ISSUER}/authorize?state=model-state`),
}

const callbackParams = (fields: Record<string, string>) =>
  Redacted.make(new URLSearchParams({ state: "model-state", iss: ISSUER, ...fields }))

const challenge = {
  scheme: "Bearer",
  resourceMetadataUrl: `https://mcp.example/.well-known/oauth-protected-resource/mcp`,
}

// ---------------------------------------------------------------------------------------------
// Events, each with a label so the traversal distinguishes variants of one type.

const labels = new WeakMap<object, string>()
const labelled = <E extends ModelEvent>(label: string, event: E): E => {
  labels.set(event, label)
  return event
}
const done = (id: string, label: string, output: unknown) =>
  labelled(`done ${id} ${label}`, { type: `xstate.done.actor.${id}`, output, actorId: id })
const failure = (id: string, label: string, error: unknown) =>
  labelled(`error ${id} ${label}`, { type: `xstate.error.actor.${id}`, error, actorId: id })

const hostEvents: ReadonlyArray<ModelEvent> = [
  labelled("AUTHENTICATE", { type: "AUTHENTICATE" }),
  labelled("CANCEL", { type: "CANCEL" }),
  labelled("LOGOUT", { type: "LOGOUT" }),
  labelled("RETRY", { type: "RETRY" }),
  labelled("REFRESH", { type: "REFRESH" }),
  labelled("UNAUTHORIZED", { type: "UNAUTHORIZED", challenge }),
  labelled("INSUFFICIENT_SCOPE", {
    type: "INSUFFICIENT_SCOPE",
    challenge: { ...challenge, scope: "mcp:admin" },
  }),
]

const stepEvents: ReadonlyArray<ModelEvent> = [
  labelled("LISTENING", { type: "LISTENING", redirectUri: REDIRECT_URI }),
  labelled("LOCKED", { type: "LOCKED" }),
  labelled("SESSION_FOUND", { type: "SESSION_FOUND", session: sessions.fresh }),
  labelled("AUTHORIZATION_STARTED", { type: "AUTHORIZATION_STARTED", attempt }),
  labelled("CALLBACK code", { type: "CALLBACK", params: callbackParams({ code: "model-code" }) }),
  labelled("CALLBACK denied", {
    type: "CALLBACK",
    params: callbackParams({ error: "access_denied" }),
  }),
  labelled("STEP_FAILED", {
    type: "STEP_FAILED",
    error: new AuthorizationError({ reason: "browser_failed", detail: "model" }),
  }),
  labelled("after refreshDelay", { type: "xstate.after.refreshDelay.mcpAuth.authenticated" }),
  labelled("after callbackTimeout", {
    type: "xstate.after.callbackTimeout.mcpAuth.authorizing.awaitingCallback",
  }),
]

const keychainError = new KeychainError({ reason: "read_failed", store: "memory" })
const tokenError = (reason: "invalid_grant" | "network") =>
  new TokenError({ reason, grant: "refresh_token", endpoint: `${ISSUER}/token` })

const actorEvents = (sessionOutputs: Record<string, Session | undefined>): ModelEvent[] => [
  ...Object.entries(sessionOutputs).map(([label, output]) => done("loadSession", label, output)),
  failure("loadSession", "keychain", keychainError),
  done("discover", "metadata", discovery),
  failure(
    "discover",
    "not found",
    new DiscoveryError({ reason: "metadata_not_found", url: SERVER_URL }),
  ),
  done("register", "client", registration),
  failure("register", "rejected", new RegistrationError({ reason: "rejected" })),
  done("exchange", "fresh", sessions.fresh),
  failure(
    "exchange",
    "invalid_grant",
    new TokenError({ reason: "invalid_grant", grant: "authorization_code", endpoint: ISSUER }),
  ),
  done("refresh", "fresh", sessions.fresh),
  done("refresh", "expired", sessions.expired),
  failure(
    "refresh",
    "server moved",
    new DiscoveryError({ reason: "authorization_server_changed", url: SERVER_URL }),
  ),
  failure("refresh", "invalid_grant", tokenError("invalid_grant")),
  failure("refresh", "network", tokenError("network")),
  done("logout", "deleted", undefined),
  failure("logout", "keychain", keychainError),
]

// ---------------------------------------------------------------------------------------------
// The two inputs: the browser flow, and a grant without a browser (client credentials).

const baseInput: MachineInput = {
  serverUrl: SERVER_URL,
  client: {},
  protocolVersion: "2025-11-25",
  callbackPort: 0,
  callbackTimeoutMs: 300_000,
  grant: { type: "authorization_code" },
  dpop: "never",
}

interface Model {
  readonly name: string
  readonly input: MachineInput
  readonly events: ReadonlyArray<ModelEvent>
}

const models: ReadonlyArray<Model> = [
  {
    name: "browser sign-in",
    input: baseInput,
    events: [
      ...hostEvents,
      ...stepEvents,
      ...actorEvents({
        none: undefined,
        fresh: sessions.fresh,
        due: sessions.due,
        dueWithoutRefresh: sessions.dueWithoutRefresh,
        expired: sessions.expired,
      }),
    ],
  },
  {
    name: "client credentials",
    input: {
      ...baseInput,
      client: { clientId: "model-client", clientSecret: Redacted.make("model-secret") },
      grant: { type: "client_credentials" },
    },
    events: [
      ...hostEvents,
      ...stepEvents,
      ...actorEvents({
        freshWithoutRefresh: sessions.freshWithoutRefresh,
        dueWithoutRefresh: sessions.dueWithoutRefresh,
      }),
    ],
  },
]

// ---------------------------------------------------------------------------------------------
// State serialization: the state value and the context flags the guards read.

const sessionKind = (value: Session | undefined): string => {
  if (value === undefined) return "none"
  const expiresAt = value.tokens.expiresAt ?? Number.POSITIVE_INFINITY
  const refresh = value.tokens.refreshToken === undefined ? "" : "+refresh"
  if (expiresAt <= NOW) return `expired${refresh}`
  // Within a minute of expiry the scheduled refresh is due (REFRESH_SKEW_MS).
  if (expiresAt - NOW < 60_000) return `due${refresh}`
  return `fresh${refresh}`
}

const flags = (context: AuthContext) => ({
  grant: context.grant.type,
  session: sessionKind(context.session),
  listening: context.redirectUri !== undefined,
  attempt: context.attempt !== undefined,
  stepUps: context.stepUp?.attempts ?? 0,
})

const serializeState = (snapshot: Snapshot): string =>
  JSON.stringify({ value: snapshot.value, ...flags(snapshot.context) })

const serializeEvent = (event: ModelEvent): string => labels.get(event) ?? event.type

// ---------------------------------------------------------------------------------------------
// Transitions: every transition of the machine, named by source state, event and position.

const transitionKey = (transition: AnyTransitionDefinition): string => {
  const source = transition.source
  if (transition.eventType === "") {
    return `${source.id} always #${(source.always ?? []).indexOf(transition)}`
  }
  const list = source.transitions.get(transition.eventType) ?? []
  return `${source.id} ${transition.eventType} #${list.indexOf(transition)}`
}

const allTransitionKeys = (machine: AuthMachine): string[] => {
  const keys: string[] = []
  const visit = (node: AnyStateNode) => {
    for (const list of node.transitions.values()) {
      for (const transition of list) keys.push(transitionKey(transition))
    }
    for (const transition of node.always ?? []) keys.push(transitionKey(transition))
    for (const child of Object.values(node.states)) visit(child)
  }
  visit(machine.root)
  return keys
}

// ---------------------------------------------------------------------------------------------
// The runtime: the engine's services as test layers. The stubs below never call them.

const refusingHttp = HttpClient.make((request) =>
  Effect.fail(
    new HttpClientError.RequestError({
      request,
      reason: "Transport",
      description: "model-based tests send no HTTP requests",
    }),
  ),
)

const testLayer: Layer.Layer<AuthEnv> = Layer.mergeAll(
  Layer.succeed(HttpClient.HttpClient, refusingHttp),
  Layer.succeed(Keychain, makeMemoryKeychain()),
  makeRecordingBrowser().layer,
  Layer.succeed(CallbackServer, {
    listen: () =>
      Effect.fail(
        new AuthorizationError({
          reason: "callback_server_failed",
          detail: "model-based tests bind no port",
        }),
      ),
  }),
)

/** Actors that never finish on their own: the path's events are the only input. */
const inertActors = {
  loadSession: fromPromise(() => new Promise<never>(() => {})),
  discover: fromPromise(() => new Promise<never>(() => {})),
  register: fromPromise(() => new Promise<never>(() => {})),
  exchange: fromPromise(() => new Promise<never>(() => {})),
  refresh: fromPromise(() => new Promise<never>(() => {})),
  logout: fromPromise(() => new Promise<never>(() => {})),
  callbackListener: fromCallback(() => () => {}),
  authorize: fromCallback(() => () => {}),
  signInLock: fromCallback(() => () => {}),
}

// ---------------------------------------------------------------------------------------------

interface EdgePath {
  readonly model: Model
  readonly description: string
  readonly path: StatePath<Snapshot, ModelEvent>
}

/** Builds one path per edge of the model: the shortest path to its source state, then the edge. */
const edgePaths = (machine: AuthMachine, model: Model): EdgePath[] => {
  const options = {
    input: model.input,
    serializeState,
    serializeEvent,
    events: (snapshot: Snapshot) =>
      model.events.filter((event) => snapshot.can(event as AuthEvent)) as AuthEvent[],
  }
  const shortest = new Map(
    getShortestPaths(machine, options).map((path) => [serializeState(path.state), path]),
  )
  const edges = adjacencyMapToArray(getAdjacencyMap(machine, options))
  return edges.map(({ state, event, nextState }) => {
    const head = shortest.get(serializeState(state))
    if (head === undefined) throw new Error(`no path to ${serializeState(state)}`)
    const path: StatePath<Snapshot, ModelEvent> = {
      state: nextState,
      steps: [...head.steps, { state: nextState, event }],
      weight: head.weight + 1,
    }
    const description = path.steps.map((step) => serializeEvent(step.event)).join(" → ")
    return { model, description, path }
  })
}

let runtime: ManagedRuntime.ManagedRuntime<AuthEnv, never>
let machine: AuthMachine
let stubbed: AuthMachine
const covered = new Set<string>()

beforeAll(async () => {
  runtime = ManagedRuntime.make(testLayer)
  machine = makeAuthMachine((await runtime.runtime()) as Runtime.Runtime<AuthEnv>)
  // The stubs never produce output, so their types cannot match the real actors' outputs.
  stubbed = machine.provide({ actors: inertActors } as unknown as Parameters<
    AuthMachine["provide"]
  >[0])
})

afterAll(async () => {
  await runtime.dispose()
})

/** Replays a path on a started actor and returns the serialized state after every step. */
const replay = (model: Model, path: StatePath<Snapshot, ModelEvent>) => {
  const actor = createActor(stubbed, {
    input: model.input,
    clock: new SimulatedClock(),
    inspect: (event: InspectionEvent) => {
      if (event.type !== "@xstate.microstep") return
      for (const transition of event._transitions) covered.add(transitionKey(transition))
    },
  })
  actor.start()
  const reached: string[] = []
  for (const step of path.steps) {
    actor.send(step.event as AuthEvent)
    reached.push(serializeState(actor.getSnapshot()))
  }
  actor.stop()
  return reached
}

describe("statechart paths", () => {
  it("replay every model edge on the real machine", () => {
    let replayed = 0
    for (const model of models) {
      const paths = edgePaths(machine, model)
      expect(paths.length).toBeGreaterThan(0)
      for (const { description, path } of paths) {
        const expected = path.steps.map((step) => serializeState(step.state))
        expect(replay(model, path), `${model.name}: ${description}`).toEqual(expected)
        replayed++
      }
    }
    console.log(`replayed ${replayed} paths`)
  })

  it("cover every transition of the machine", () => {
    const all = allTransitionKeys(machine)
    const missing = all.filter((key) => !covered.has(key))
    console.log(`transitions covered: ${all.length - missing.length}/${all.length}`)
    expect(missing).toEqual([])
  })
})
