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
 *
 * Durability: files are written without an fsync each; sync() (which
 * commit() runs if anything is left) fsyncs every file written since and
 * the directory in one round, side by side, before the rename publishes
 * them. That is all a crash needs:
 * - a killed process (kill -9) loses nothing it wrote: the page cache
 *   keeps the files, so recovery and live processes read cache-id,
 *   mount-id and init-id as soon as they are written (before the driver
 *   layers they name exist, as before);
 * - a machine crash (power loss) before the sync round finished loses an
 *   unpublished transaction only: its directory, files and driver layers
 *   may be partly gone or empty, and recovery removes the directory (no
 *   live process holds it) and every driver layer nothing published
 *   refers to (recover.ts, step 5), which covers the ones whose ids did
 *   not reach the disk. Nothing is published before the round completes.
 * The fsyncs used to run in three rounds (the id files before the driver
 * layers, the layer's files after the apply, the directory at commit);
 * each round waits for a journal commit, which a busy disk makes 5-20 ms.
 */
import { chmod, mkdtemp, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { createTarSplitFile, type TarSplitFile } from '../archive/index.js'
import { StrataError } from '../errors/index.js'
import { faultPoint } from '../sys/index.js'
import { fsyncInOneRound, fsyncPath, writeFileWithMode, DirLock, type DataRootLock } from '../fs/index.js'
import { FILE_MODE, WRITE_SET_PREFIX } from './paths.js'

export class Transaction {
  #dir: string
  #lock: DirLock | undefined
  /** Files written since the last sync, and whether the directory changed since. */
  readonly #unsynced = new Set<string>()
  #dirty = true

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

  /** A file in the transaction, 0644; made durable by sync() or commit() (see the header). */
  async writeFile(name: string, data: string): Promise<void> {
    this.#dirty = true
    await writeFileWithMode(join(this.#dir, name), data, FILE_MODE)
    this.#unsynced.add(name)
  }

  /** The directory's own mode (a mount record's 0755), set before the sync that makes it durable. */
  async setMode(mode: number): Promise<void> {
    this.#dirty = true
    await chmod(this.#dir, mode)
  }

  /** A gzip'd tar-split file being written in the transaction; see finishTarSplit. */
  tarSplitFile(name: string): TarSplitFile {
    return createTarSplitFile(join(this.#dir, name))
  }

  /** After the tar-split file's close(): gives it dockerd's mode; made durable by sync() or commit(). */
  async finishFile(name: string): Promise<void> {
    this.#dirty = true
    await chmod(join(this.#dir, name), FILE_MODE)
    this.#unsynced.add(name)
  }

  /**
   * fsyncs the files written since the last sync and the directory, all
   * side by side: one wait for the disk. Call it when every file is
   * written (the directory's fsync covers the entries that exist when it
   * runs); outside the data-root lock, so that commit() holds the lock
   * for the rename alone. A failure leaves the files to sync again.
   */
  async sync(): Promise<void> {
    const names = [...this.#unsynced]
    this.#unsynced.clear()
    this.#dirty = false
    try {
      await fsyncInOneRound(this.#dir, names)
    } catch (err) {
      for (const name of names) this.#unsynced.add(name)
      this.#dirty = true
      throw err
    }
  }

  /**
   * Publishes the transaction as `finalDir`: sync() if anything changed
   * since the last one, the rename, then an fsync of both parents. Call
   * under the data-root lock. The caller decides whether the lock stays
   * (takeLock) or is dropped (cancel/close).
   */
  async commit(finalDir: string): Promise<void> {
    if (this.#dirty || this.#unsynced.size > 0) await this.sync()
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
