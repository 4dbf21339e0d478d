/**
 * Loading libc through koffi and turning a failed call into a SysError.
 *
 * Why koffi and not a compiled addon: it ships its binary inside the npm
 * package, so `npm ci` needs no compiler for it, and every call is a plain
 * C prototype that reads like the man page.
 */
import koffi from 'koffi'
import { constants } from 'node:os'

export const libc = koffi.load('libc.so.6')

const errnoNames = new Map<number, string>()
for (const [name, value] of Object.entries(constants.errno)) errnoNames.set(value, name)

/** A failed system call: `code` is the errno name (ENOENT), as on Node's own errors. */
export class SysError extends Error {
  readonly code: string
  readonly errno: number
  readonly syscall: string
  readonly path: string | undefined

  constructor(syscall: string, errno: number, path?: string) {
    const code = errnoNames.get(errno) ?? `E${errno}`
    super(`${syscall}${path === undefined ? '' : ` "${path}"`} failed: ${code}`)
    this.name = 'SysError'
    this.code = code
    this.errno = errno
    this.syscall = syscall
    this.path = path
  }
}

/** The errno of the last koffi call on this thread. */
export function lastErrno(): number {
  return koffi.errno()
}

/** Throws a SysError when a libc call returned a negative value. */
export function check(ret: number | bigint, syscall: string, path?: string): number {
  const n = Number(ret)
  if (n < 0) throw new SysError(syscall, lastErrno(), path)
  return n
}

export { koffi }
