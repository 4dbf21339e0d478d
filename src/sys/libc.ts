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
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { constants } from 'node:os'
import type * as Koffi from 'koffi'

type KoffiModule = typeof Koffi
type Bound = ReturnType<ReturnType<KoffiModule['load']>['func']>

let koffiModule: KoffiModule | undefined
let libcHandle: ReturnType<KoffiModule['load']> | undefined

/** The directory name of musl's dynamic loader, by process.arch, where koffi ships a musl build. */
const MUSL_ARCH: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', arm: 'armhf', ia32: 'i386', riscv64: 'riscv64' }

/**
 * The koffi module, loaded on first use. On glibc Linux its prebuilt
 * binary is required directly from the package koffi ships it in
 * (`@koromix/koffi-linux-<arch>`, an optional dependency pinned to
 * koffi's version), which is what koffi's own index ends up loading:
 * the index first tries a require of that package (a second module
 * resolution), reads node's ELF header twice to tell glibc from musl and
 * wraps the binary's exports in deprecation shims this code never calls:
 * 13-14 ms of CPU against 6 ms for the binary alone, paid by each thread
 * that calls libc (a load: the main thread and every apply worker).
 * Anywhere else (a musl system: its loader is in /lib; another layout of
 * node_modules; another platform), or when that require fails, koffi's
 * index loads it.
 */
export function koffi(): KoffiModule {
  koffiModule ??= loadKoffi()
  return koffiModule
}

function loadKoffi(): KoffiModule {
  const require = createRequire(import.meta.url)
  const musl = MUSL_ARCH[process.arch]
  if (process.platform === 'linux' && musl !== undefined && !existsSync(`/lib/ld-musl-${musl}.so.1`)) {
    try {
      const native = require(`@koromix/koffi-linux-${process.arch}/linux_${process.arch}/koffi.node`) as Partial<KoffiModule>
      if (typeof native.load === 'function' && typeof native.errno === 'function') return native as KoffiModule
    } catch {
      // koffi's index below finds it (or says why not).
    }
  }
  return require('koffi') as KoffiModule
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
