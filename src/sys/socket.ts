/**
 * What Node's net and child_process cannot do for a terminal: receive a
 * file descriptor over a unix socket (SCM_RIGHTS: runc's --console-socket
 * hands over the pty master that way), set a terminal's window size, open
 * a pty pair, become a child subreaper and reap a child that Node did not
 * spawn. Sockets here are non-blocking: callers poll (the event loop must
 * not sit in accept or recvmsg).
 */
import { constants } from 'node:os'
import { check, koffi, lastErrno, libc, SysError } from './libc.js'

const AF_UNIX = 1
const SOCK_STREAM = 1
const SOCK_NONBLOCK = 0o4000
const SOCK_CLOEXEC = 0o2000000
const SOL_SOCKET = 1
const SCM_RIGHTS = 1
const MSG_DONTWAIT = 0x40
const MSG_CMSG_CLOEXEC = 0x40000000
const { EAGAIN, EINTR, ECHILD } = constants.errno
const TIOCSWINSZ = 0x5414
const TIOCGWINSZ = 0x5413
const PR_SET_CHILD_SUBREAPER = 36
const WNOHANG = 1
/** sizeof(sockaddr_un.sun_path): a longer path cannot be bound. */
export const UNIX_PATH_MAX = 108

/** recvmsg's struct types, declared to koffi before its prototype is first bound (koffi loads lazily). */
let structsDeclared = false
function declareStructs(): void {
  if (structsDeclared) return
  koffi().struct('strata_iovec', { iov_base: 'void *', iov_len: 'size_t' })
  koffi().struct('strata_msghdr', {
    msg_name: 'void *',
    msg_namelen: 'uint32_t',
    msg_iov: 'strata_iovec *',
    msg_iovlen: 'size_t',
    msg_control: 'void *',
    msg_controllen: 'size_t',
    msg_flags: 'int',
  })
  structsDeclared = true
}

const socketC = libc.func('int socket(int domain, int type, int protocol)')
const bindC = libc.func('int bind(int fd, const void *addr, uint32_t len)')
const listenC = libc.func('int listen(int fd, int backlog)')
const accept4C = libc.func('int accept4(int fd, void *addr, void *len, int flags)')
const recvmsgC = libc.func('long recvmsg(int fd, _Inout_ strata_msghdr *msg, int flags)')
const closeC = libc.func('int close(int fd)')
const ioctlInC = libc.func('int ioctl(int fd, unsigned long request, const void *arg)')
const ioctlOutC = libc.func('int ioctl(int fd, unsigned long request, _Out_ void *arg)')
const prctlC = libc.func('int prctl(int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5)')
const waitpidC = libc.func('int waitpid(int pid, _Out_ int *status, int options)')
const posixOpenptC = libc.func('int posix_openpt(int flags)')
const grantptC = libc.func('int grantpt(int fd)')
const unlockptC = libc.func('int unlockpt(int fd)')
const ptsnameC = libc.func('int ptsname_r(int fd, _Out_ char *buf, size_t len)')

function sockaddrUn(path: string): Buffer {
  const bytes = Buffer.from(path)
  if (bytes.length >= UNIX_PATH_MAX) throw new SysError('bind', 36 /* ENAMETOOLONG */, path)
  const addr = Buffer.alloc(2 + UNIX_PATH_MAX)
  addr.writeUInt16LE(AF_UNIX, 0)
  bytes.copy(addr, 2)
  return addr
}

/** A non-blocking, close-on-exec unix stream socket bound to `path` and listening. */
export function unixListen(path: string): number {
  const fd = check(socketC(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), 'socket', path)
  try {
    const addr = sockaddrUn(path)
    check(bindC(fd, addr, addr.length), 'bind', path)
    check(listenC(fd, 4), 'listen', path)
    return fd
  } catch (err) {
    closeC(fd)
    throw err
  }
}

/** accept4 on a non-blocking listener: the connection's fd (non-blocking, close-on-exec), or undefined when nobody is waiting. */
export function acceptNow(fd: number): number | undefined {
  for (;;) {
    const r = Number(accept4C(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC))
    if (r >= 0) return r
    const errno = lastErrno()
    if (errno === EINTR) continue
    if (errno === EAGAIN) return undefined
    throw new SysError('accept4', errno)
  }
}

export interface ReceivedFd {
  /** The descriptor passed (close-on-exec here). */
  fd: number
  /** The bytes sent with it (runc: the console's name). */
  data: Buffer
}

/**
 * One message with one passed descriptor, read without blocking: undefined
 * when nothing arrived yet; an error when the peer closed without sending
 * one. Extra descriptors in the message are closed.
 */
export function receiveFdNow(fd: number): ReceivedFd | undefined {
  const data = Buffer.alloc(4096)
  const control = Buffer.alloc(256)
  const msg = { msg_name: null, msg_namelen: 0, msg_iov: [{ iov_base: data, iov_len: data.length }], msg_iovlen: 1, msg_control: control, msg_controllen: control.length, msg_flags: 0 }
  declareStructs()
  let n: number
  for (;;) {
    n = Number(recvmsgC(fd, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC))
    if (n >= 0) break
    const errno = lastErrno()
    if (errno === EINTR) continue
    if (errno === EAGAIN) return undefined
    throw new SysError('recvmsg', errno)
  }
  // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; data }, each aligned to 8 bytes.
  const fds: number[] = []
  let at = 0
  while (at + 16 <= msg.msg_controllen) {
    const len = Number(control.readBigUInt64LE(at))
    if (len < 16) break
    if (control.readInt32LE(at + 8) === SOL_SOCKET && control.readInt32LE(at + 12) === SCM_RIGHTS) {
      for (let p = at + 16; p + 4 <= at + len; p += 4) fds.push(control.readInt32LE(p))
    }
    at += (len + 7) & ~7
  }
  if (fds.length === 0) {
    if (n === 0) throw new SysError('recvmsg', 104 /* ECONNRESET */)
    throw new SysError('recvmsg', 22 /* EINVAL: a message without a descriptor */)
  }
  for (const extra of fds.slice(1)) closeC(extra)
  return { fd: fds[0]!, data: data.subarray(0, n) }
}

export function closeFd(fd: number): void {
  closeC(fd)
}

/** TIOCSWINSZ: the terminal's size (the foreground process group gets SIGWINCH). */
export function setWindowSize(fd: number, rows: number, cols: number): void {
  const ws = Buffer.alloc(8)
  ws.writeUInt16LE(rows & 0xffff, 0)
  ws.writeUInt16LE(cols & 0xffff, 2)
  check(ioctlInC(fd, TIOCSWINSZ, ws), 'ioctl(TIOCSWINSZ)')
}

export function getWindowSize(fd: number): { rows: number; cols: number } {
  const ws = Buffer.alloc(8)
  check(ioctlOutC(fd, TIOCGWINSZ, ws), 'ioctl(TIOCGWINSZ)')
  return { rows: ws.readUInt16LE(0), cols: ws.readUInt16LE(2) }
}

/** A new pty: the master (close-on-exec, no controlling terminal taken) and the slave's path. */
export function openPty(): { master: number; slavePath: string } {
  const master = check(posixOpenptC(0o2 | 0o400 | 0o2000000 /* O_RDWR | O_NOCTTY | O_CLOEXEC */), 'posix_openpt')
  try {
    check(grantptC(master), 'grantpt')
    check(unlockptC(master), 'unlockpt')
    const name = Buffer.alloc(128)
    const r = Number(ptsnameC(master, name, name.length))
    if (r !== 0) throw new SysError('ptsname_r', r)
    return { master, slavePath: name.subarray(0, name.indexOf(0)).toString() }
  } catch (err) {
    closeC(master)
    throw err
  }
}

/** prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants (a container's init once `runc create` exits) become this process's children. */
export function becomeSubreaper(): void {
  check(prctlC(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 'prctl(PR_SET_CHILD_SUBREAPER)')
}

/**
 * waitpid(pid, WNOHANG) for a child Node did not spawn: its exit status as
 * a shell reports it (the code, or 128 + the signal), undefined while it
 * runs, null when it is not (or not yet) this process's child.
 */
export function reapNow(pid: number): number | undefined | null {
  const status = [0]
  for (;;) {
    const r = Number(waitpidC(pid, status, WNOHANG))
    if (r === pid) {
      const s = status[0]!
      const sig = s & 0x7f
      return sig === 0 ? (s >> 8) & 0xff : 128 + sig
    }
    if (r === 0) return undefined
    const errno = lastErrno()
    if (errno === EINTR) continue
    if (errno === ECHILD) return null
    throw new SysError('waitpid', errno)
  }
}

const tcgetattrC = libc.func('int tcgetattr(int fd, _Out_ void *termios)')
const tcsetattrC = libc.func('int tcsetattr(int fd, int when, const void *termios)')
const cfmakerawC = libc.func('void cfmakeraw(_Inout_ void *termios)')

/**
 * cfmakeraw on a terminal, as docker's client does (moby/term MakeRaw):
 * Node's setRawMode leaves output processing on (libuv keeps ONLCR), so a
 * container terminal's "\r\n" would reach the screen as "\r\r\n". Call it
 * after setRawMode(true): setRawMode(false) and Node's exit then restore
 * what libuv saved first.
 */
export function makeRaw(fd: number): void {
  const t = Buffer.alloc(64)
  check(tcgetattrC(fd, t), 'tcgetattr')
  cfmakerawC(t)
  check(tcsetattrC(fd, 0, t), 'tcsetattr')
}
