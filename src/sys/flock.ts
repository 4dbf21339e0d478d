/**
 * flock(2): advisory whole-file locks between processes. The kernel drops a
 * process's locks when it dies, which is what makes them the right tool for
 * "is the process that started this still alive?": a transaction directory
 * whose lock can be taken exclusively belongs to nobody any more.
 *
 * Locks belong to the open file description: take them on a descriptor from
 * fs.open (a directory opened read-only works too) and close it to release.
 */
import { libc, check, lastErrno, SysError } from './libc.js'

const flockC = libc.func('int flock(int fd, int operation)')

export const LOCK_SH = 1
export const LOCK_EX = 2
export const LOCK_NB = 4
export const LOCK_UN = 8

const EWOULDBLOCK = 11
const EINTR = 4

export type LockMode = 'shared' | 'exclusive'

function op(mode: LockMode): number {
  return mode === 'shared' ? LOCK_SH : LOCK_EX
}

/** Takes the lock if nobody holds a conflicting one; false when somebody does. Never blocks. */
export function tryFlock(fd: number, mode: LockMode, path?: string): boolean {
  for (;;) {
    if (Number(flockC(fd, op(mode) | LOCK_NB)) === 0) return true
    const errno = lastErrno()
    if (errno === EWOULDBLOCK) return false
    if (errno !== EINTR) throw new SysError('flock', errno, path)
  }
}

/**
 * Takes the lock, waiting for conflicting holders to let go. The wait runs
 * on libuv's thread pool (koffi's async call), so the event loop goes on.
 */
export async function flock(fd: number, mode: LockMode, path?: string): Promise<void> {
  if (tryFlock(fd, mode, path)) return
  for (;;) {
    const ret = await new Promise<number>((resolve, reject) => {
      flockC.async(fd, op(mode), (err: unknown, res: number) => (err ? reject(err) : resolve(Number(res))))
    })
    if (ret === 0) return
    // errno of the pool thread is not ours to read; retry without blocking
    // to learn it (EINTR and a lock released meanwhile both end here).
    if (tryFlock(fd, mode, path)) return
  }
}

/** Drops the lock held on `fd` (closing the descriptor does the same). */
export function funlock(fd: number, path?: string): void {
  check(flockC(fd, LOCK_UN), 'flock', path)
}
