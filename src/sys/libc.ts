/**
 * Loading libc through koffi and turning a failed call into a SysError.
 *
 * Why koffi and not a compiled addon: it ships its binary inside the npm
 * package, so `npm ci` needs no compiler for it, and every call is a plain
 * C prototype that reads like the man page.
 *
 * koffi is loaded, and each prototype bound, on the first call, not at
 * import: loading the addon and libc costs ~10 ms of a command's start
 * (node --cpu-prof of `strata images`), and the read-only verbs (images,
 * inspect, ps, version) make no libc call at all.
 */
import { createRequire } from 'node:module'
import { constants } from 'node:os'
import type * as Koffi from 'koffi'

type KoffiModule = typeof Koffi
type Bound = ReturnType<ReturnType<KoffiModule['load']>['func']>

let koffiModule: KoffiModule | undefined
let libcHandle: ReturnType<KoffiModule['load']> | undefined

/** The koffi module, loaded on first use. */
export function koffi(): KoffiModule {
  koffiModule ??= createRequire(import.meta.url)('koffi') as KoffiModule
  return koffiModule
}

/** A libc function: called as the prototype says; `.async(...args, callback)` runs it on libuv's thread pool. */
export interface LibcFunction {
  (...args: unknown[]): unknown
  async: (...args: unknown[]) => void
}

export const libc = {
  /** Declares `prototype` (a C declaration koffi parses); the symbol is looked up on the first call. */
  func(prototype: string): LibcFunction {
    let bound: Bound | undefined
    const get = (): Bound => {
      libcHandle ??= koffi().load('libc.so.6')
      bound ??= libcHandle.func(prototype)
      return bound
    }
    const f = ((...args: unknown[]): unknown => get()(...args)) as LibcFunction
    f.async = (...args: unknown[]): void => void get().async(...args)
    return f
  },
}

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
  return koffi().errno()
}

/** Throws a SysError when a libc call returned a negative value. */
export function check(ret: unknown, syscall: string, path?: string): number {
  const n = Number(ret)
  if (n < 0) throw new SysError(syscall, lastErrno(), path)
  return n
}
