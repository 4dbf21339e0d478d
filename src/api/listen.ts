/**
 * Where the server listens, with dockerd's rules: `-H unix:///path` (the
 * default, /run/strata.sock) or `-H tcp://HOST:PORT`. A unix socket is
 * made mode 0660, owned by root and the socket group (`docker` when it
 * exists and none was asked for, as dockerd's default `--group docker`);
 * a stale socket file nobody answers on is replaced, a live one is
 * refused. TCP is served only on loopback: without TLS, anyone reaching
 * the port would be root on the machine (dockerd refuses a non-loopback
 * TCP host without --tls the same way since 20.10's deprecation warning
 * became an error).
 */
import { connect, isIP, type Server } from 'node:net'
import { chmod, chown, lstat, readFile, unlink } from 'node:fs/promises'
import { StrataError, isErrno } from '../errors/index.js'
import type { ListenAddress } from './types.js'

export const DEFAULT_HOST = 'unix:///run/strata.sock'
/** dockerd's default port for plain-HTTP TCP. */
export const DEFAULT_TCP_PORT = 2375
/** dockerd's default socket group. */
export const DEFAULT_SOCKET_GROUP = 'docker'

/** Parses a `-H` value. */
export function parseListenAddress(spec: string): ListenAddress {
  if (spec.startsWith('unix://')) {
    const path = spec.slice('unix://'.length)
    if (!path.startsWith('/')) throw new StrataError('INVALID_ARGUMENT', `Invalid host "${spec}": a unix socket path must be absolute`)
    return { kind: 'unix', path }
  }
  if (spec.startsWith('tcp://')) {
    let url: URL
    try {
      url = new URL(`http://${spec.slice('tcp://'.length)}`)
    } catch (err) {
      throw new StrataError('INVALID_ARGUMENT', `Invalid host "${spec}": expected tcp://HOST:PORT`, { cause: err })
    }
    if (url.pathname !== '/' || url.search !== '' || url.username !== '') throw new StrataError('INVALID_ARGUMENT', `Invalid host "${spec}": expected tcp://HOST:PORT`)
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
    const port = url.port === '' ? DEFAULT_TCP_PORT : Number(url.port)
    if (!isLoopbackListenHost(host)) {
      throw new StrataError('NOT_SUPPORTED', `Refusing to listen on ${spec}: strata serves TCP only on loopback (127.0.0.1, ::1, localhost)`, {
        hint: 'strata has no TLS; anyone who reaches the API is root on this machine. Use a unix socket, or a loopback address with an SSH tunnel',
      })
    }
    return { kind: 'tcp', host: host === 'localhost' ? '127.0.0.1' : host, port }
  }
  throw new StrataError('INVALID_ARGUMENT', `Invalid host "${spec}": expected unix:///PATH or tcp://HOST:PORT`)
}

function isLoopbackListenHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true
  return isIP(host) === 4 && host.startsWith('127.')
}

/** A listen address as a `-H` value again (for messages and DOCKER_HOST). */
export function formatListenAddress(a: ListenAddress): string {
  return a.kind === 'unix' ? `unix://${a.path}` : `tcp://${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`
}

/** The gid for `group` (a name from /etc/group or a number); undefined when the name is unknown. */
export async function resolveGroup(group: string): Promise<number | undefined> {
  if (/^\d+$/.test(group)) return Number(group)
  let text: string
  try {
    text = await readFile('/etc/group', 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw err
  }
  for (const line of text.split('\n')) {
    const [name, , gid] = line.split(':')
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) return Number(gid)
  }
  return undefined
}

/** Whether something answers on the unix socket at `path`. */
function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

/** Removes a stale socket file at `path`; IN_USE when a server answers there, INVALID_ARGUMENT when it is not a socket. */
async function clearStaleSocket(path: string): Promise<void> {
  let st
  try {
    st = await lstat(path)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return
    throw err
  }
  if (!st.isSocket()) throw new StrataError('INVALID_ARGUMENT', `Cannot listen on ${path}: it exists and is not a socket`)
  if (await socketAnswers(path)) throw new StrataError('IN_USE', `Cannot listen on ${path}: another server is answering on it`, { hint: 'stop it, or choose another socket with -H' })
  await unlink(path)
}

/** Starts `server` listening on `address`; for a unix socket, with the permissions the file header describes. */
export async function listenOn(server: Server, address: ListenAddress, socketGroup: string | undefined): Promise<void> {
  let gid = 0
  if (address.kind === 'unix') {
    const wanted = socketGroup ?? DEFAULT_SOCKET_GROUP
    const resolved = await resolveGroup(wanted)
    if (resolved === undefined && socketGroup !== undefined) {
      throw new StrataError('NOT_FOUND', `Group "${socketGroup}" does not exist (for the socket ${address.path})`, { hint: 'name an existing group or gid with --group' })
    }
    gid = resolved ?? 0
    await clearStaleSocket(address.path)
  }
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = formatListenAddress(address)
      if (err.code === 'EADDRINUSE') reject(new StrataError('IN_USE', `Cannot listen on ${where}: the address is in use`, { cause: err }))
      else reject(new StrataError('INVALID_ARGUMENT', `Cannot listen on ${where}: ${err.message}`, { cause: err }))
    }
    server.once('error', onError)
    const done = (): void => {
      server.off('error', onError)
      resolve()
    }
    if (address.kind === 'unix') server.listen(address.path, done)
    else server.listen(address.port, address.host, done)
  })
  if (address.kind === 'unix') {
    // Between listen() and these calls the socket has the umask's mode; root owns it either way.
    await chown(address.path, 0, gid)
    await chmod(address.path, 0o660)
  }
}
