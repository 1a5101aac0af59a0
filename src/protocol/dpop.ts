/**
 * RFC 9449 DPoP: a key pair per engine, proofs for token requests and for every request to the
 * MCP server, and the server-supplied nonces those proofs must carry.
 */
import { createHash, randomUUID } from "node:crypto"
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from "jose"

/** The signature algorithm of DPoP proofs; ES256 is the one every server must accept. */
export const DPOP_ALGORITHM = "ES256"

/** A DPoP key pair with its public JWK and RFC 7638 thumbprint (the `cnf.jkt` of bound tokens). */
export interface DpopKey {
  readonly privateKey: CryptoKey
  readonly publicJwk: JWK
  readonly thumbprint: string
}

/** Generates an ES256 key pair for DPoP proofs. */
export const generateDpopKey = async (): Promise<DpopKey> => {
  const { privateKey, publicKey } = await generateKeyPair(DPOP_ALGORITHM, { extractable: true })
  const publicJwk = await exportJWK(publicKey)
  return { privateKey, publicJwk, thumbprint: await calculateJwkThumbprint(publicJwk) }
}

/** Returns the `htu` of a proof: the request URL without query and fragment (RFC 9449 §4.2). */
export const proofTarget = (url: string): string => {
  const parsed = new URL(url)
  return `${parsed.origin}${parsed.pathname}`
}

/** Inputs of one proof. */
export interface ProofInput {
  readonly key: DpopKey
  readonly method: string
  readonly url: string
  /** The access token the request carries; adds `ath`. */
  readonly accessToken?: string | undefined
  readonly nonce?: string | undefined
}

/** Signs a fresh proof: new `jti`, current `iat`, `htm` and `htu`, and `ath` with a token. */
export const createDpopProof = async (input: ProofInput): Promise<string> => {
  const claims: Record<string, string> = {
    jti: randomUUID(),
    htm: input.method.toUpperCase(),
    htu: proofTarget(input.url),
  }
  if (input.accessToken !== undefined) {
    claims.ath = createHash("sha256").update(input.accessToken).digest("base64url")
  }
  if (input.nonce !== undefined) claims.nonce = input.nonce
  return new SignJWT(claims)
    .setProtectedHeader({ typ: "dpop+jwt", alg: DPOP_ALGORITHM, jwk: input.key.publicJwk })
    .setIssuedAt()
    .sign(input.key.privateKey)
}

/** The nonces servers handed out with `DPoP-Nonce`, by origin, reused on later proofs. */
export class DpopNonces {
  readonly #byOrigin = new Map<string, string>()

  /** Returns the last nonce of the origin of `url`. */
  get(url: string): string | undefined {
    return this.#byOrigin.get(new URL(url).origin)
  }

  /** Keeps the `DPoP-Nonce` header of a response, if any; returns whether one was present. */
  remember(url: string, headers: Headers): boolean {
    const nonce = headers.get("dpop-nonce")
    if (nonce === null || nonce === "") return false
    this.#byOrigin.set(new URL(url).origin, nonce)
    return true
  }
}
