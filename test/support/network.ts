/** A socket probe for tests that check which addresses a listener accepts. */
import { connect } from "node:net"

/** Tells whether a TCP connection to `host`:`port` opens; any socket error means no. */
export const canConnect = (host: string, port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host, port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => {
      socket.destroy()
      resolve(false)
    })
  })
