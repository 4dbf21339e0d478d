/**
 * Locks between strata processes sharing a data root, on flock(2):
 *
 * - DataRootLock: one exclusive lock on `<root>/strata.lock` for short
 *   metadata steps (commit, delete, tag, recovery, every atomic write in
 *   the data root). Calls in one process queue behind each other first (a
 *   KeyedLock), so the process waits on the kernel for at most one of them
 *   and never deadlocks on itself. Not reentrant: code running under it
 *   must not ask for it again.
 *   API: `new DataRootLock(root)`, `withLock(fn)`, `path`. It is a
 *   FileLock, the same lock on any file (devicemapper's pool lock).
 * - StoreLock: what a store needs of it (withLock only), so callers can
 *   wrap it, e.g. to observe when it is held.
 * - DirLock: a flock on a directory (a layer's layerdb dir, a transaction
 *   dir, a container record being built). Held shared by the live users of
 *   the directory; a deleter or recovery that can take it exclusively
 *   without waiting knows nobody alive uses it. The lock stays with the
 *   directory's inode across renames, which is what lets a transaction dir
 *   become the layer dir with its lock still held.
 *   API: `DirLock.tryAcquire(dir, 'shared'|'exclusive')` (undefined when
 *   someone holds a conflicting lock, NOT_FOUND for a missing dir),
 *   `DirLock.isHeld(dir)`, `held`, `close()`.
 */
import { closeSync, openSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { StrataError, isErrno } from '../errors/index.js'
import { flock, tryFlock, type LockMode } from '../sys/index.js'
import { KeyedLock } from './keyed-lock.js'

/** The data-root lock's file name, directly under the data root. */
export const DATA_ROOT_LOCK_FILE = 'strata.lock'

/**
 * An exclusive flock on one file, taken by one caller of this process at
 * a time (the others queue on a KeyedLock first, so the process waits on
 * the kernel for at most one of them). The file is created (mode 0600) on
 * first use, and its directory with `dirMode` if missing. Not reentrant.
 */
export class FileLock {
  readonly path: string
  readonly #dirMode: number
  readonly #queue = new KeyedLock()

  constructor(path: string, opts: { dirMode?: number } = {}) {
    this.path = path
    this.#dirMode = opts.dirMode ?? 0o700
  }

  /** Runs `fn` holding the lock exclusively. */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    return this.#queue.withLock(this.path, async () => {
      const fd = await this.#openLockFile()
      try {
        await flock(fd, 'exclusive', this.path)
        return await fn()
      } finally {
        closeSync(fd)
      }
    })
  }

  // A plain descriptor (openSync), closed with closeSync: a FileHandle's
  // .fd closed behind its back makes its garbage collection fail (EBADF),
  // which kills the process.
  async #openLockFile(): Promise<number> {
    try {
      return openSync(this.path, 'a', 0o600)
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err
      await mkdir(dirname(this.path), { recursive: true, mode: this.#dirMode })
      return openSync(this.path, 'a', 0o600)
    }
  }
}

/** The data-root lock: `<root>/strata.lock` (the root made 0711, as dockerd makes it, if missing). */
export class DataRootLock extends FileLock {
  constructor(root: string) {
    super(join(root, DATA_ROOT_LOCK_FILE), { dirMode: 0o711 })
  }
}

/** The part of DataRootLock the stores use. */
export type StoreLock = Pick<DataRootLock, 'withLock'>

/** A flock held on a directory; close() releases it. */
export class DirLock {
  readonly path: string
  #fd: number | undefined

  private constructor(path: string, fd: number) {
    this.path = path
    this.#fd = fd
  }

  /**
   * Takes `mode` on `dir` without waiting. Returns undefined when someone
   * holds a conflicting lock; NOT_FOUND when the directory does not exist.
   */
  static tryAcquire(dir: string, mode: LockMode): DirLock | undefined {
    let fd: number
    try {
      fd = openSync(dir, 'r')
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new StrataError('NOT_FOUND', `"${dir}" does not exist`, { cause: err })
      throw err
    }
    try {
      if (tryFlock(fd, mode, dir)) return new DirLock(dir, fd)
    } catch (err) {
      closeSync(fd)
      throw err
    }
    closeSync(fd)
    return undefined
  }

  /** Whether anyone alive holds a lock on `dir` (false for a missing dir). */
  static isHeld(dir: string): boolean {
    let probe: DirLock | undefined
    try {
      probe = DirLock.tryAcquire(dir, 'exclusive')
    } catch (err) {
      if (err instanceof StrataError && err.code === 'NOT_FOUND') return false
      throw err
    }
    if (probe === undefined) return true
    probe.close()
    return false
  }

  get held(): boolean {
    return this.#fd !== undefined
  }

  close(): void {
    if (this.#fd === undefined) return
    closeSync(this.#fd)
    this.#fd = undefined
  }
}
