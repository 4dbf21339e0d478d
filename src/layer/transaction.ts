/**
 * A metadata transaction: a directory in layerdb/tmp where a layer's (or a
 * mount's) files are written before it is published with one rename, like
 * dockerd's AtomicWriteSet (`tmp/write-set-<random>`, 0700).
 *
 * The directory is flock'd (shared) by its creator from the moment it
 * exists: recovery treats a tmp directory nobody holds as the leftover of a
 * crash and removes it together with the driver layers its cache-id,
 * mount-id and init-id files name. That is why those files are written
 * before the driver layers are created, and why the directory is made and
 * locked in one step under the data-root lock (recovery runs under it too).
 * The lock follows the directory's inode across the commit rename, so a
 * registration's lock becomes the new layer's handle without a gap.
 */
import { chmod, mkdtemp, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { createTarSplitFile, type TarSplitFile } from '../archive/index.js'
import { StrataError } from '../errors/index.js'
import { faultPoint } from '../sys/index.js'
import { fsyncPath, writeFileDurable, DirLock, type DataRootLock } from '../fs/index.js'
import { FILE_MODE, WRITE_SET_PREFIX } from './paths.js'

export class Transaction {
  #dir: string
  #lock: DirLock | undefined

  private constructor(dir: string, lock: DirLock) {
    this.#dir = dir
    this.#lock = lock
  }

  /** Makes `<tmpDir>/<prefix><random>` and locks it, under the data-root lock. */
  static async start(tmpDir: string, rootLock: DataRootLock, prefix = WRITE_SET_PREFIX): Promise<Transaction> {
    return rootLock.withLock(async () => {
      const dir = await mkdtemp(join(tmpDir, prefix))
      const lock = DirLock.tryAcquire(dir, 'shared')
      if (lock === undefined) {
        // Nobody can know a name mkdtemp just made; this is not a race we can lose.
        await rm(dir, { recursive: true, force: true })
        throw new StrataError('IN_USE', `Transaction directory "${dir}" is locked by someone else`)
      }
      return new Transaction(dir, lock)
    })
  }

  /** Where the transaction's files are (its final place after commit). */
  get dir(): string {
    return this.#dir
  }

  /** A file in the transaction, 0644 and fsynced. */
  async writeFile(name: string, data: string): Promise<void> {
    await writeFileDurable(join(this.#dir, name), data, FILE_MODE)
  }

  /** A gzip'd tar-split file being written in the transaction; see finishTarSplit. */
  tarSplitFile(name: string): TarSplitFile {
    return createTarSplitFile(join(this.#dir, name))
  }

  /** After the tar-split file's close(): gives it dockerd's mode and makes it durable. */
  async finishFile(name: string): Promise<void> {
    const p = join(this.#dir, name)
    await chmod(p, FILE_MODE)
    await fsyncPath(p)
  }

  /**
   * Publishes the transaction as `finalDir` (rename, then fsync of both
   * parents). Call under the data-root lock. The caller decides whether
   * the lock stays (takeLock) or is dropped (cancel/close).
   */
  async commit(finalDir: string, mode?: number): Promise<void> {
    if (mode !== undefined) await chmod(this.#dir, mode)
    await fsyncPath(this.#dir)
    faultPoint('rename', finalDir)
    await rename(this.#dir, finalDir)
    const from = dirname(this.#dir)
    this.#dir = finalDir
    // Both parents side by side: one journal commit on ext4, where one after the other waited for two.
    await Promise.all([fsyncPath(dirname(finalDir)), from === dirname(finalDir) ? undefined : fsyncPath(from)])
  }

  /** Hands over the directory's lock (a committed layer's handle keeps it). */
  takeLock(): DirLock {
    const lock = this.#lock
    if (lock === undefined) throw new StrataError('INVALID_ARGUMENT', `Transaction "${basename(this.#dir)}" has no lock to hand over`)
    this.#lock = undefined
    return lock
  }

  /** Drops the lock without touching the directory (after commit, when nobody keeps it). */
  close(): void {
    this.#lock?.close()
    this.#lock = undefined
  }

  /** Removes the uncommitted directory and drops its lock. */
  async cancel(): Promise<void> {
    try {
      await rm(this.#dir, { recursive: true, force: true })
    } finally {
      this.close()
    }
  }
}
