// Loopback-only network guard, preloaded with `node --import=<this file>` into the
// conformance harness and into the client under test.
//
// Some conformance scenarios embed non-loopback URLs on purpose (a fixed client-metadata
// document URL, attacker hosts in the issuer-mismatch scenarios). Test traffic must stay on
// this machine, so this module makes the following fail for any host outside 127.0.0.0/8,
// ::1 and `localhost`, before a DNS query or a packet is sent:
//   - the global fetch(),
//   - dns.lookup() and dns.promises.lookup() (used by node:http, node:net and undici),
//   - net.Socket#connect() (which also covers node:tls, node:http and undici sockets).
// A blocked call fails the way an unreachable host does, and writes one line to stderr.
//
// NOTE: dns.resolve*(), dns.Resolver and UDP sockets (node:dgram) are not intercepted.
import dns from "node:dns"
import { syncBuiltinESMExports } from "node:module"
import net from "node:net"

const GUARD_INSTALLED_KEY = Symbol.for("mcp-auth-engine.loopback-guard")

const loopbackAddresses = new net.BlockList()
loopbackAddresses.addSubnet("127.0.0.0", 8, "ipv4")
loopbackAddresses.addAddress("::1", "ipv6")
loopbackAddresses.addSubnet("::ffff:127.0.0.0", 104, "ipv6")

/**
 * Returns true when `host` names this machine: `localhost`, an address in 127.0.0.0/8, ::1,
 * or an IPv4-mapped form of a 127.x address. Any other name is treated as remote, because
 * resolving it could already send a DNS query off the machine.
 */
export function isLoopbackHost(host) {
  // node:net connects to localhost when no host is given.
  if (host === undefined || host === null || host === "") return true
  if (typeof host !== "string") return false

  let name = host.toLowerCase()
  if (name.startsWith("[") && name.endsWith("]")) name = name.slice(1, -1)
  if (name.endsWith(".")) name = name.slice(0, -1)
  if (name === "localhost") return true

  const family = net.isIP(name)
  if (family === 4) return loopbackAddresses.check(name, "ipv4")
  if (family === 6) {
    try {
      return loopbackAddresses.check(name, "ipv6")
    } catch {
      // An address with a zone id (fe80::1%eth0) is link-local, never loopback.
      return false
    }
  }
  return false
}

function reportBlocked(operation, host) {
  process.stderr.write(`[loopback-guard] blocked ${operation} to non-loopback host ${host}\n`)
}

// Same shape as the error getaddrinfo() gives for a name that does not resolve.
function lookupError(host) {
  const error = new Error(`getaddrinfo ENOTFOUND ${host} (blocked by loopback-guard)`)
  error.code = "ENOTFOUND"
  error.errno = dns.NOTFOUND
  error.syscall = "getaddrinfo"
  error.hostname = host
  return error
}

// Same shape as the error connect() gives when no route to the host exists.
function unreachableError(host) {
  const error = new Error(`connect EHOSTUNREACH ${host} (blocked by loopback-guard)`)
  error.code = "EHOSTUNREACH"
  error.syscall = "connect"
  error.address = host
  return error
}

function requestUrl(input) {
  if (typeof input === "string" || input instanceof URL) return new URL(String(input))
  if (input !== null && typeof input === "object" && typeof input.url === "string") {
    return new URL(input.url)
  }
  return undefined
}

function guardFetch() {
  const originalFetch = globalThis.fetch
  if (typeof originalFetch !== "function") return

  globalThis.fetch = function fetch(input, init) {
    let url
    try {
      url = requestUrl(input)
    } catch {
      // An unparsable URL makes the real fetch reject with its usual error.
      return originalFetch.call(this, input, init)
    }
    const isNetworkUrl =
      url !== undefined && (url.protocol === "http:" || url.protocol === "https:")
    if (isNetworkUrl && !isLoopbackHost(url.hostname)) {
      reportBlocked("fetch", url.hostname)
      // undici rejects with this TypeError and puts the socket error in `cause`.
      return Promise.reject(
        new TypeError("fetch failed", { cause: unreachableError(url.hostname) }),
      )
    }
    return originalFetch.call(this, input, init)
  }
}

function guardLookup() {
  const originalLookup = dns.lookup
  dns.lookup = function lookup(hostname, options, callback) {
    const done = typeof options === "function" ? options : callback
    if (typeof done === "function" && !isLoopbackHost(hostname)) {
      reportBlocked("dns.lookup", hostname)
      process.nextTick(done, lookupError(hostname))
      return {}
    }
    return originalLookup.call(this, hostname, options, callback)
  }

  // dns.promises is the same object that node:dns/promises exports.
  const originalPromisesLookup = dns.promises.lookup
  dns.promises.lookup = function lookup(hostname, options) {
    if (!isLoopbackHost(hostname)) {
      reportBlocked("dns.promises.lookup", hostname)
      return Promise.reject(lookupError(hostname))
    }
    return originalPromisesLookup.call(this, hostname, options)
  }
}

// Finds the host of a net.Socket#connect() call. Its forms are (options[, cb]),
// (port[, host][, cb]), (path[, cb]), and the [options, cb] array that net.connect() passes.
// A unix socket path is local, so it counts as `localhost`. Like node:net, only a truthy
// `path` selects a unix socket: node:http and node:tls pass `path: null` for TCP.
function connectHost(args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0]
  if (first !== null && typeof first === "object") {
    return first.path ? "localhost" : first.host
  }
  const isPort = typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))
  if (!isPort) return "localhost"
  return typeof args[1] === "string" ? args[1] : undefined
}

function guardSocketConnect() {
  const originalConnect = net.Socket.prototype.connect
  net.Socket.prototype.connect = function connect(...args) {
    const host = connectHost(args)
    if (!isLoopbackHost(host)) {
      reportBlocked("connect", host)
      process.nextTick(() => this.destroy(unreachableError(host)))
      return this
    }
    return originalConnect.apply(this, args)
  }
}

// The module may be preloaded twice (by --import and by NODE_OPTIONS), so patch only once.
if (!globalThis[GUARD_INSTALLED_KEY]) {
  globalThis[GUARD_INSTALLED_KEY] = true
  guardFetch()
  guardLookup()
  guardSocketConnect()
  // ES modules that import { lookup } from 'node:dns' would otherwise keep the unpatched functions.
  syncBuiltinESMExports()
}
