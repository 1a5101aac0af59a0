/**
 * The client registration outlives its tokens: after `invalid_grant` and a restart the next
 * sign-in reuses it without Dynamic Client Registration, while a client the server rejects
 * (`invalid_client`) or whose secret expired is registered anew. Engines run in this process on
 * a file store, each started afresh as after a restart, against the real oidc-provider.
 */
import { Effect, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import {
  loadRegistration,
  registrationKey,
  saveRegistration,
  saveSession,
  sessionKey,
} from "../../src/protocol/session.js"
import { encodeRegistration } from "../../src/schema/session.js"
import { Keychain } from "../../src/services/keychain.js"
import {
  callWhoami,
  makeTemporaryDirectory,
  startDemoServers,
  startEngine,
} from "../support/demo.js"
import { rejectionOf } from "../support/wait.js"
import {
  expireStoredSession,
  fileStoreOf,
  findFreePort,
  readSession,
  signInHere,
} from "./support.js"

const inStore = <A, E>(home: string, effect: Effect.Effect<A, E, Keychain>) =>
  Effect.runPromise(Effect.provideService(effect, Keychain, fileStoreOf(home)))

describe("client registration reuse", () => {
  it("survives invalid_grant and a restart", async () => {
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: 600,
    })
    const home = await makeTemporaryDirectory()
    const callbackPort = await findFreePort()
    await signInHere(mcpServer.url, home, callbackPort)
    const first = await readSession(home, mcpServer.url)
    expect(authorizationServer.requests.registration).toBe(1)

    // The grant is gone at the server; the next engine refreshes at start and is refused.
    await authorizationServer.revokeAllGrants()
    await expireStoredSession(home, mcpServer.url)
    const refused = await startEngine(mcpServer.url, { store: "file", home, callbackPort })
    const error = await rejectionOf(refused.handle.getAccessToken({ interactive: false }))
    expect(error._tag).toBe("SignInRequired")
    expect(String(error.message)).toContain("invalid_grant")
    await refused.handle.dispose()
    expect(await readSession(home, mcpServer.url)).toBeUndefined()
    const kept = await inStore(
      home,
      loadRegistration(authorizationServer.issuer, first?.client.redirectUri),
    )
    expect(kept?.clientId).toBe(first?.client.clientId)

    // A restart, then a sign-in: the stored client is used again.
    const restarted = await startEngine(mcpServer.url, { store: "file", home, callbackPort })
    await restarted.handle.authenticate()
    const token = await restarted.handle.getAccessToken()

    expect(authorizationServer.requests.registration).toBe(1)
    expect(authorizationServer.requests.authorization).toBe(2)
    expect((await readSession(home, mcpServer.url))?.client.clientId).toBe(first?.client.clientId)
    expect((await callWhoami(mcpServer.url, token)).status).toBe(200)
  })

  it("registers anew after invalid_client", async () => {
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: 600,
    })
    const home = await makeTemporaryDirectory()
    const callbackPort = await findFreePort()
    await signInHere(mcpServer.url, home, callbackPort)
    const signedIn = await readSession(home, mcpServer.url)
    if (signedIn === undefined) throw new Error("no session after the sign-in")

    // The server has no record of the stored client, as after it purged its registrations.
    const unknownClient = { ...signedIn.client, clientId: "client-the-server-forgot" }
    await inStore(home, saveRegistration(unknownClient))
    await inStore(home, saveSession({ ...signedIn, client: unknownClient }))
    await expireStoredSession(home, mcpServer.url)

    const { handle } = await startEngine(mcpServer.url, { store: "file", home, callbackPort })
    const error = await rejectionOf(handle.getAccessToken({ interactive: false }))
    expect(String(error.message)).toContain("invalid_client")
    expect(
      await inStore(
        home,
        loadRegistration(authorizationServer.issuer, signedIn.client.redirectUri),
      ),
    ).toBeUndefined()

    await handle.authenticate()
    const token = await handle.getAccessToken()
    const renewed = await readSession(home, mcpServer.url)

    expect(authorizationServer.requests.registration).toBe(2)
    expect(renewed?.client.clientId).not.toBe("client-the-server-forgot")
    expect(renewed?.client.clientId).not.toBe(signedIn.client.clientId)
    expect(
      (
        await inStore(
          home,
          loadRegistration(authorizationServer.issuer, signedIn.client.redirectUri),
        )
      )?.clientId,
    ).toBe(renewed?.client.clientId)
    expect((await callWhoami(mcpServer.url, token)).status).toBe(200)
  })

  it("registers anew when the client secret expired", async () => {
    const { authorizationServer, mcpServer } = await startDemoServers({
      accessTokenTtlSeconds: 600,
    })
    const home = await makeTemporaryDirectory()
    const callbackPort = await findFreePort()
    await signInHere(mcpServer.url, home, callbackPort)
    const signedIn = await readSession(home, mcpServer.url)
    if (signedIn === undefined) throw new Error("no session after the sign-in")

    // The stored client's secret expired an hour ago (`client_secret_expires_at`, in seconds).
    const store = fileStoreOf(home)
    const expired = {
      ...signedIn.client,
      clientSecret: Redacted.make("expired-secret"),
      clientSecretExpiresAt: Math.floor(Date.now() / 1000) - 3600,
    }
    await Effect.runPromise(
      store.set(
        registrationKey(expired.issuer, expired.redirectUri),
        encodeRegistration({ version: 1, registration: expired, storedAt: Date.now() }),
      ),
    )
    await Effect.runPromise(store.remove(sessionKey(mcpServer.url)))

    const { handle } = await startEngine(mcpServer.url, { store: "file", home, callbackPort })
    await handle.authenticate()

    expect(authorizationServer.requests.registration).toBe(2)
    expect((await readSession(home, mcpServer.url))?.client.clientId).not.toBe(
      signedIn.client.clientId,
    )
  })
})
