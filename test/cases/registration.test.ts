/**
 * Client identity exchanges seen in the field, replayed on loopback servers. They cover when a
 * stored registration is reused, when pre-registered credentials are used or rejected, the
 * error when no registration method exists, and how the registered token endpoint
 * authentication method reaches the token request.
 */
import type { HttpClient } from "@effect/platform"
import { Effect, Either, Redacted } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import type { RegistrationError } from "../../src/errors.js"
import { createAttempt, validateCallback } from "../../src/protocol/authorization.js"
import { discover } from "../../src/protocol/discovery.js"
import { type ClientConfig, register } from "../../src/protocol/registration.js"
import { exchangeCode } from "../../src/protocol/token.js"
import type { AuthorizationServerMetadata } from "../../src/schema/metadata.js"
import type { ClientRegistration } from "../../src/schema/session.js"
import { HttpLive } from "../../src/services/http.js"
import { type CaseServer, type RouteTable, startCaseServer } from "../support/case-server.js"

const servers: CaseServer[] = []

const serve = async (routes: RouteTable = {}): Promise<CaseServer> => {
  const server = await startCaseServer(routes)
  servers.push(server)
  return server
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

const runEither = <A, E>(effect: Effect.Effect<A, E, HttpClient.HttpClient>) =>
  Effect.runPromise(Effect.either(Effect.provide(effect, HttpLive)))

const expectRegistration = (
  result: Either.Either<ClientRegistration, RegistrationError>,
): ClientRegistration => {
  if (Either.isLeft(result)) throw new Error(`registration failed: ${result.left.message}`)
  return result.right
}

const expectRegistrationError = (
  result: Either.Either<ClientRegistration, RegistrationError>,
): RegistrationError => {
  if (Either.isRight(result)) throw new Error(`registered client ${result.right.clientId}`)
  return result.left
}

const metadataFor = (
  server: CaseServer,
  extra: Partial<AuthorizationServerMetadata> = {},
): AuthorizationServerMetadata => ({
  issuer: server.origin,
  authorization_endpoint: server.url("/authorize"),
  token_endpoint: server.url("/token"),
  registration_endpoint: server.url("/register"),
  code_challenge_methods_supported: ["S256"],
  token_endpoint_auth_methods_supported: ["none"],
  ...extra,
})

/** Builds a registration endpoint that numbers its clients C1, C2, … and echoes the redirect URIs. */
const numberedRegistration = (): RouteTable => {
  let issued = 0
  return {
    "POST /register": (request) => {
      issued += 1
      const body = JSON.parse(request.body) as { redirect_uris?: string[] }
      return {
        status: 201,
        body: {
          client_id: `C${issued}`,
          redirect_uris: body.redirect_uris,
          token_endpoint_auth_method: "none",
        },
      }
    },
  }
}

const registerWith = (
  authorizationServer: AuthorizationServerMetadata,
  redirectUri: string,
  client: ClientConfig = {},
  cached?: ClientRegistration,
) => runEither(register({ authorizationServer, redirectUri, client, cached }))

const FIRST_REDIRECT = "http://127.0.0.1:51234/callback"
const SECOND_REDIRECT = "http://127.0.0.1:3334/callback"

describe("stored registrations", () => {
  it("reuses a registration when the redirect URI is unchanged", async () => {
    const as = await serve(numberedRegistration())
    const metadata = metadataFor(as)

    const first = expectRegistration(await registerWith(metadata, FIRST_REDIRECT))
    const second = expectRegistration(await registerWith(metadata, FIRST_REDIRECT, {}, first))

    expect(first.clientId).toBe("C1")
    expect(first.redirectUri).toBe(FIRST_REDIRECT)
    expect(second).toBe(first)
    expect(as.requestsTo("POST /register")).toHaveLength(1)
  })

  it("registers again when the redirect URI differs", async () => {
    const as = await serve(numberedRegistration())
    const metadata = metadataFor(as)

    const first = expectRegistration(await registerWith(metadata, FIRST_REDIRECT))
    const second = expectRegistration(await registerWith(metadata, SECOND_REDIRECT, {}, first))

    expect(second.clientId).toBe("C2")
    expect(second.redirectUri).toBe(SECOND_REDIRECT)
    const requests = as.requestsTo("POST /register")
    expect(requests).toHaveLength(2)
    expect(JSON.parse(requests[1]?.body ?? "{}").redirect_uris).toEqual([SECOND_REDIRECT])
  })

  it("registers again when the stored client belongs to another issuer", async () => {
    const as = await serve(numberedRegistration())
    const cached: ClientRegistration = {
      issuer: "https://as.example.test",
      clientId: "OTHER",
      tokenEndpointAuthMethod: "none",
      redirectUri: FIRST_REDIRECT,
      source: "dynamic",
    }

    const registration = expectRegistration(
      await registerWith(metadataFor(as), FIRST_REDIRECT, {}, cached),
    )

    expect(registration.clientId).toBe("C1")
    expect(registration.issuer).toBe(as.origin)
  })

  it("registers again when the stored client secret has expired", async () => {
    const as = await serve(numberedRegistration())
    const cached: ClientRegistration = {
      issuer: as.origin,
      clientId: "EXPIRED",
      clientSecret: Redacted.make("S0"),
      clientSecretExpiresAt: Math.floor(Date.now() / 1000) - 60,
      tokenEndpointAuthMethod: "client_secret_basic",
      redirectUri: FIRST_REDIRECT,
      source: "dynamic",
    }

    const registration = expectRegistration(
      await registerWith(metadataFor(as), FIRST_REDIRECT, {}, cached),
    )

    expect(registration.clientId).toBe("C1")
    expect(as.requestsTo("POST /register")).toHaveLength(1)
  })
})

describe("pre-registered and metadata document clients", () => {
  it("uses a pre-registered client id as given", async () => {
    const as = await serve(numberedRegistration())

    const registration = expectRegistration(
      await registerWith(metadataFor(as), "http://localhost:3118/callback", {
        clientId: "C1",
        issuer: as.origin,
      }),
    )

    expect(registration.clientId).toBe("C1")
    expect(registration.source).toBe("pre-registered")
    expect(registration.redirectUri).toBe("http://localhost:3118/callback")
    expect(as.wasRequested("POST /register")).toBe(false)
  })

  it("refuses a pre-registered client bound to another issuer", async () => {
    const as = await serve(numberedRegistration())

    const error = expectRegistrationError(
      await registerWith(metadataFor(as), FIRST_REDIRECT, {
        clientId: "C1",
        issuer: "https://idp.example.test",
      }),
    )

    expect(error.reason).toBe("wrong_issuer")
    expect(error.message).toContain("https://idp.example.test")
    expect(error.message).toContain(as.origin)
    expect(as.wasRequested("POST /register")).toBe(false)
  })

  it("accepts a configured issuer that differs by one trailing slash", async () => {
    const as = await serve(numberedRegistration())

    const registration = expectRegistration(
      await registerWith(metadataFor(as), FIRST_REDIRECT, {
        clientId: "C1",
        issuer: `${as.origin}/`,
      }),
    )

    expect(registration.clientId).toBe("C1")
  })

  it("uses the metadata document URL when the server supports it", async () => {
    const as = await serve(numberedRegistration())
    const metadata = metadataFor(as, { client_id_metadata_document_supported: true })

    const registration = expectRegistration(
      await registerWith(metadata, FIRST_REDIRECT, {
        clientMetadataUrl: "https://client.example.test/metadata.json",
      }),
    )

    expect(registration.clientId).toBe("https://client.example.test/metadata.json")
    expect(registration.source).toBe("client-metadata-document")
    expect(as.wasRequested("POST /register")).toBe(false)
  })

  it("falls back to registration when metadata documents are unsupported", async () => {
    const as = await serve(numberedRegistration())

    const registration = expectRegistration(
      await registerWith(metadataFor(as), FIRST_REDIRECT, {
        clientMetadataUrl: "https://client.example.test/metadata.json",
      }),
    )

    expect(registration.clientId).toBe("C1")
    expect(registration.source).toBe("dynamic")
  })
})

describe("servers without a registration endpoint", () => {
  /** Starts an identity provider that publishes only OpenID configuration, with S256 and no DCR. */
  const openIdOnly = async () => {
    const idp = await serve({
      "GET /.well-known/openid-configuration": {
        status: 200,
        body: {
          issuer: "{BASE}",
          authorization_endpoint: "{BASE}/o/oauth2/v2/auth",
          token_endpoint: "{BASE}/token",
          code_challenge_methods_supported: ["plain", "S256"],
        },
      },
    })
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [idp.origin] },
      },
    })
    const discovered = await runEither(
      discover({ serverUrl: rs.url("/mcp"), protocolVersion: "2025-11-25" }),
    )
    if (Either.isLeft(discovered)) throw new Error(discovered.left.message)
    return { idp, discovery: discovered.right }
  }

  it("fails with no_registration_method without a client id", async () => {
    const { discovery } = await openIdOnly()

    const error = expectRegistrationError(
      await registerWith(discovery.authorizationServer, FIRST_REDIRECT),
    )

    expect(error._tag).toBe("RegistrationError")
    expect(error.reason).toBe("no_registration_method")
    expect(error.message).toContain("pre-registered client")
  })

  it("fails with no_registration_method when only a metadata document is configured", async () => {
    const { discovery } = await openIdOnly()

    const error = expectRegistrationError(
      await registerWith(discovery.authorizationServer, FIRST_REDIRECT, {
        clientMetadataUrl: "https://client.example.test/metadata.json",
      }),
    )

    expect(error.reason).toBe("no_registration_method")
  })

  it("uses a pre-registered client id", async () => {
    const { idp, discovery } = await openIdOnly()

    const registration = expectRegistration(
      await registerWith(discovery.authorizationServer, FIRST_REDIRECT, { clientId: "C1" }),
    )

    expect(registration.clientId).toBe("C1")
    expect(idp.wasRequested("POST /register")).toBe(false)
  })

  it("registers at the registration endpoint of OpenID configuration", async () => {
    const idp = await serve({
      "GET /.well-known/openid-configuration": {
        status: 200,
        body: {
          issuer: "{BASE}",
          authorization_endpoint: "{BASE}/oauth/authorize",
          token_endpoint: "{BASE}/oauth/token",
          registration_endpoint: "{BASE}/oauth/register",
          code_challenge_methods_supported: ["S256"],
        },
      },
      "POST /oauth/register": { status: 201, body: { client_id: "UAA1" } },
    })
    const rs = await serve({
      "GET /.well-known/oauth-protected-resource/mcp": {
        status: 200,
        body: { resource: "{BASE}/mcp", authorization_servers: [idp.origin] },
      },
    })
    const discovered = await runEither(
      discover({ serverUrl: rs.url("/mcp"), protocolVersion: "2025-11-25" }),
    )
    if (Either.isLeft(discovered)) throw new Error(discovered.left.message)

    const registration = expectRegistration(
      await registerWith(discovered.right.authorizationServer, FIRST_REDIRECT),
    )

    expect(registration.clientId).toBe("UAA1")
    expect(idp.requestsTo("POST /oauth/register")).toHaveLength(1)
  })
})

describe("registered token endpoint authentication", () => {
  /** Registers, then exchanges a code at the loopback token endpoint; returns its request. */
  const registerAndExchange = async (registrationResponse: object, supported: string[]) => {
    const as = await serve({
      "POST /register": { status: 201, body: registrationResponse },
      "POST /token": {
        status: 200,
        body: { access_token: "AT", token_type: "Bearer", expires_in: 3600 },
      },
    })
    const metadata = metadataFor(as, { token_endpoint_auth_methods_supported: supported })
    const registration = expectRegistration(await registerWith(metadata, FIRST_REDIRECT))
    const attempt = await Effect.runPromise(
      createAttempt({
        authorizationServer: metadata,
        clientId: registration.clientId,
        redirectUri: registration.redirectUri ?? FIRST_REDIRECT,
        resource: "https://rs.example.test/mcp",
      }),
    )
    const callback = validateCallback(
      new URLSearchParams({ code: "CODE", state: Redacted.value(attempt.state) }),
      attempt,
    )
    if (Either.isLeft(callback)) throw new Error(callback.left.message)
    const tokens = await runEither(
      exchangeCode({
        authorizationServer: metadata,
        registration,
        attempt,
        callback: callback.right,
      }),
    )
    if (Either.isLeft(tokens)) throw new Error(tokens.left.message)
    const [request] = as.requestsTo("POST /token")
    if (request === undefined) throw new Error("no token request was sent")
    return { registration, attempt, request, body: new URLSearchParams(request.body) }
  }

  it("sends body credentials for client_secret_post", async () => {
    const { registration, attempt, request, body } = await registerAndExchange(
      { client_id: "C1", client_secret: "S1", token_endpoint_auth_method: "client_secret_post" },
      ["client_secret_basic", "client_secret_post"],
    )

    expect(registration.tokenEndpointAuthMethod).toBe("client_secret_post")
    expect(request.headers.authorization).toBeUndefined()
    expect(body.get("client_id")).toBe("C1")
    expect(body.get("client_secret")).toBe("S1")
    expect(body.get("grant_type")).toBe("authorization_code")
    expect(body.get("code")).toBe("CODE")
    expect(body.get("code_verifier")).toBe(Redacted.value(attempt.codeVerifier))
    expect(body.get("redirect_uri")).toBe(FIRST_REDIRECT)
    expect(body.get("resource")).toBe("https://rs.example.test/mcp")
  })

  it("sends Basic credentials when registration states no method", async () => {
    const { registration, request, body } = await registerAndExchange(
      { client_id: "C1", client_secret: "S1" },
      ["client_secret_basic", "client_secret_post"],
    )

    expect(registration.tokenEndpointAuthMethod).toBe("client_secret_basic")
    expect(request.headers.authorization).toBe(`Basic ${Buffer.from("C1:S1").toString("base64")}`)
    expect(body.get("client_secret")).toBeNull()
  })

  it("sends only the client id for a public client", async () => {
    const { registration, request, body } = await registerAndExchange(
      { client_id: "C1", token_endpoint_auth_method: "none" },
      ["none"],
    )

    expect(registration.tokenEndpointAuthMethod).toBe("none")
    expect(request.headers.authorization).toBeUndefined()
    expect(body.get("client_id")).toBe("C1")
    expect(body.get("client_secret")).toBeNull()
  })
})
