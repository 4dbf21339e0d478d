/**
 * Who may talk to the explorer: only this machine, and only a page that
 * knows it is talking to this machine.
 *
 * - The peer address must be loopback (127.0.0.0/8, ::1, or 127.x mapped
 *   into IPv6). The server binds 127.0.0.1 anyway; the check keeps that true
 *   when the handler is mounted in a server that listens more widely.
 * - The Host header must name localhost, 127.0.0.1 or [::1] (any port).
 *   A page on a hostile domain that re-points its DNS name to 127.0.0.1
 *   ("DNS rebinding") reaches our port, but its requests still carry its own
 *   domain in Host: they are refused, so it can never read the store.
 */
import { isIP } from 'node:net'

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false
  if (address === '::1') return true
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  return isIP(v4) === 4 && v4.startsWith('127.')
}

/** The host name of a Host header (`localhost:8080` → `localhost`, `[::1]:80` → `[::1]`), lower-cased. */
export function hostName(header: string | undefined): string | undefined {
  if (header === undefined || header === '') return undefined
  const h = header.trim().toLowerCase()
  if (h.startsWith('[')) {
    const end = h.indexOf(']')
    return end < 0 ? undefined : h.slice(0, end + 1)
  }
  const colon = h.indexOf(':')
  return colon < 0 ? h : h.slice(0, colon)
}

export function isLoopbackHost(header: string | undefined): boolean {
  const name = hostName(header)
  return name !== undefined && LOOPBACK_HOSTS.has(name)
}
