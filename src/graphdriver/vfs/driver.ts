/**
 * The vfs driver: every layer is a plain directory holding a full copy of
 * its parent plus its own changes (layout.ts). No mounts, no kernel
 * features, works on any filesystem; the price is a full copy per layer,
 * made cheap only where FICLONE shares extents (btrfs, xfs with reflink).
 * Diffs come from comparing trees (withNaiveDiff).
 *
 * Behaviour follows dockerd 20.10's vfs driver, with these choices:
 * - Layers appear atomically: a layer is built under a `.tmp-` name in
 *   `dir/` and renamed to `dir/<id>` (RENAME_NOREPLACE) only when complete,
 *   and removal renames it away before deleting. dockerd creates `dir/<id>`
 *   first and copies into it, so a crash leaves a half-copied layer that
 *   looks whole; here it leaves a `.tmp-` directory, deleted on open.
 * - get/put are reference counted in memory, though nothing is mounted, so
 *   that remove can refuse a layer in use (IN_USE) and a put without a get
 *   is reported, as the GraphDriver contract asks of every driver. dockerd's
 *   vfs Put does nothing. A persistent get/put (GetOpts.persistent) has
 *   nothing to keep alive across processes: it only checks the layer.
 * - remove does NOT refuse a layer that has children. vfs cannot know: a
 *   child is an independent copy, and nothing on disk links it to its
 *   parent (dockerd does not know either). Keeping a record of our own
 *   would be a file dockerd does not have, and would know nothing about
 *   layers dockerd created. Removing a parent does not harm its children
 *   (they are full copies); the layer store, which records parents, is
 *   what refuses to remove a layer that has children.
 * - remove of a layer that does not exist succeeds, like dockerd's
 *   (EnsureRemoveAll), so an interrupted removal can be retried.
 * - Quotas (the `size` option) are not implemented: a non-zero size is
 *   NOT_SUPPORTED, as dockerd says when the filesystem has no project quota.
 */
import { chmodSync, closeSync, lchownSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { StrataError, isErrno, isStrataError } from '../../errors/index.js'
import { KeyedLock, TEMP_PREFIX, isTempName } from '../../fs/index.js'
import { RENAME_NOREPLACE, renameat2, tryFlock } from '../../sys/index.js'
import { copyTree } from '../copy.js'
import { RefCounter } from '../refcount.js'
import { withNaiveDiff, type ProtoDriver } from '../naive-diff.js'
import type { CreateOpts, DriverFactory, DriverOptions, GetOpts, GraphDriver, PutOpts } from '../types.js'
import { layerDir, layersDir, tmpDir, VFS_NAME, vfsHome } from './layout.js'

/** Longest id accepted, in bytes: leaves room for the `.tmp-` name within NAME_MAX (255). */
const MAX_ID_BYTES = 200

/**
 * Refuses ids that are not one plain path component (they would name
 * something outside `dir/`), and the reserved `.tmp-` prefix.
 */
function checkId(id: string, what = 'layer id'): void {
  if (typeof id !== 'string' || id === '') throw new StrataError('INVALID_ARGUMENT', `The ${what} is empty`)
  if (id === '.' || id === '..' || id.includes('/')) {
    throw new StrataError('UNSAFE_PATH', `The ${what} "${id}" is not a plain name: it would point outside the vfs layer directory`, { details: { id } })
  }
  if (id.includes('\0')) throw new StrataError('INVALID_ARGUMENT', `The ${what} ${JSON.stringify(id)} contains a NUL byte`, { details: { id } })
  if (isTempName(id)) throw new StrataError('INVALID_ARGUMENT', `The ${what} "${id}" starts with "${TEMP_PREFIX}", which the vfs driver reserves for its temporary directories`, { details: { id } })
  if (Buffer.byteLength(id) > MAX_ID_BYTES) throw new StrataError('INVALID_ARGUMENT', `The ${what} "${id.slice(0, 40)}..." is longer than ${MAX_ID_BYTES} bytes`, { details: { id } })
}

/** docker's units.RAMInBytes, enough to tell a zero size from a non-zero one: "0", "10G", "512m", "1.5GB". */
function parseSize(key: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?$/i.exec(value.trim())
  if (m === null) throw new StrataError('INVALID_ARGUMENT', `Invalid size "${value}" for the vfs option "${key}" (expected e.g. "10G")`, { details: { key, value } })
  const exp = ' kmgtp'.indexOf((m[2] ?? '').toLowerCase() || ' ')
  return Number(m[1]) * 1024 ** exp
}

/** Checks the driver option `size` (the default quota of dockerd's vfs): quotas are not implemented, so only a zero size is accepted. */
function checkSizeOption(key: string, value: string, where: string): void {
  if (parseSize(key, value) > 0) {
    throw new StrataError('NOT_SUPPORTED', `The vfs option "${key}=${value}" (${where}) needs project quotas, which strata's vfs driver does not implement`, {
      details: { key, value },
    })
  }
}

/** Creates `dir` with exactly `mode` (not through the umask) when it is missing; leaves an existing one as it is, as dockerd's MkdirAllAndChown. */
function ensureDir(dir: string, mode: number): void {
  try {
    mkdirSync(dir, mode)
  } catch (err) {
    if (isErrno(err, 'EEXIST')) {
      if (!statSync(dir).isDirectory()) throw new StrataError('CORRUPT', `"${dir}" exists and is not a directory`, { details: { path: dir } })
      return
    }
    throw new StrataError('SYSCALL', `Cannot create the vfs directory "${dir}": ${(err as Error).message}`, { cause: err, details: { path: dir } })
  }
  chmodSync(dir, mode)
}

const LOCK_SUFFIX = '.lock'

/**
 * Marks the temp dir `tmp` as in use until the returned function runs: a
 * flock on `<tmp>.lock`, made under another name and renamed into place
 * already locked, so an opening process never sees it unlocked.
 */
function lockTemp(tmp: string): () => void {
  const lockPath = `${tmp}${LOCK_SUFFIX}`
  const staging = `${lockPath}-${process.pid}`
  const fd = openSync(staging, 'w', 0o600)
  tryFlock(fd, 'exclusive', staging)
  renameSync(staging, lockPath)
  return () => {
    rmSync(lockPath, { force: true })
    closeSync(fd)
  }
}

/** A vfs driver without the diff methods; open it through vfsFactory (or wrap it with withNaiveDiff). */
export class VfsDriver implements ProtoDriver {
  readonly name = VFS_NAME
  readonly home: string
  /** gets without a put, per layer id. */
  readonly #refs = new RefCounter(VFS_NAME)
  /**
   * Per layer id: a create (a long copy) and a remove of one id run one
   * after the other, so a remove that comes during the copy removes the
   * layer the copy made instead of finding nothing and returning. get and
   * put need no lock: their bodies do not await.
   */
  readonly #locks = new KeyedLock()

  private constructor(home: string) {
    this.home = home
  }

  /**
   * Opens (creating if needed) the driver's home `<root>/vfs`, and deletes
   * the `.tmp-` directories a crashed process left in `dir/`. Accepts the
   * dockerd vfs driver option `size` (only 0: quotas are not implemented).
   */
  static async open(opts: DriverOptions): Promise<VfsDriver> {
    for (const [key, value] of Object.entries(opts.options ?? {})) {
      if (key === 'size') checkSizeOption(key, value, 'driver option')
      else throw new StrataError('INVALID_ARGUMENT', `Unknown option "${key}" for the vfs storage driver (known: size)`, { details: { key } })
    }
    const home = vfsHome(opts.root)
    mkdirSync(opts.root, { recursive: true })
    ensureDir(home, 0o700)
    const dir = layersDir(home)
    ensureDir(dir, 0o700)
    // Temp dirs of creates that died; a live create holds a flock on its
    // `<tmp>.lock` file (see #lockTemp), so concurrent processes' are kept.
    for (const name of readdirSync(dir)) {
      if (!isTempName(name) || name.includes(LOCK_SUFFIX)) continue
      const lockPath = join(dir, `${name}${LOCK_SUFFIX}`)
      let fd: number | undefined
      try {
        fd = openSync(lockPath, 'r')
      } catch {
        // no lock file: nobody is working on it
      }
      try {
        if (fd !== undefined && !tryFlock(fd, 'exclusive', lockPath)) continue
        rmSync(join(dir, name), { recursive: true, force: true })
        rmSync(lockPath, { force: true })
      } finally {
        if (fd !== undefined) closeSync(fd)
      }
    }
    return new VfsDriver(home)
  }

  async create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    // dockerd refuses any --storage-opt on an image layer.
    const keys = Object.keys(opts?.storageOpt ?? {})
    if (keys.length > 0) {
      throw new StrataError('NOT_SUPPORTED', `Storage options (${keys.join(', ')}) are not supported by vfs on read-only layers (layer "${id}")`, { details: { id, keys } })
    }
    await this.#create(id, parent)
  }

  async createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    for (const [key, value] of Object.entries(opts?.storageOpt ?? {})) {
      // Any size, even 0, as dockerd: it is a quota request, and there are no quotas here.
      if (key === 'size') throw new StrataError('NOT_SUPPORTED', `The storage option "size=${value}" (layer "${id}") needs project quotas, which strata's vfs driver does not implement`, { details: { id, key, value } })
      else throw new StrataError('INVALID_ARGUMENT', `Storage option "${key}" is not supported by vfs (layer "${id}"; known: size)`, { details: { id, key } })
    }
    await this.#create(id, parent)
  }

  /**
   * Builds the layer under a temporary name (an empty 0755 root:root dir,
   * or a copy of the parent, whose root metadata it then has, as dockerd's
   * CopyDir gives it) and renames it into place. The parent is held (get)
   * during the copy so it cannot be removed underneath.
   */
  async #create(id: string, parent: string | null): Promise<void> {
    checkId(id)
    if (parent !== null) checkId(parent, 'parent layer id')
    await this.#locks.withLock(id, () => this.#createLocked(id, parent))
  }

  async #createLocked(id: string, parent: string | null): Promise<void> {
    const final = layerDir(this.home, id)
    if (await this.exists(id)) throw new StrataError('ALREADY_EXISTS', `Layer "${id}" already exists in the vfs driver ("${final}")`, { details: { id } })

    let parentDir: string | undefined
    if (parent !== null) {
      try {
        parentDir = await this.get(parent)
      } catch (err) {
        if (isStrataError(err, 'NOT_FOUND')) {
          throw new StrataError('NOT_FOUND', `Cannot create layer "${id}": its parent layer "${parent}" does not exist`, { cause: err, details: { id, parent } })
        }
        throw err
      }
    }
    const tmp = tmpDir(this.home, id)
    const unlock = lockTemp(tmp)
    try {
      if (parentDir === undefined) {
        mkdirSync(tmp, 0o755)
        lchownSync(tmp, 0, 0)
        chmodSync(tmp, 0o755)
      } else {
        await copyTree(parentDir, tmp, { reflink: 'auto' })
      }
      try {
        renameat2(tmp, final, RENAME_NOREPLACE)
      } catch (err) {
        // Someone created the same id while we copied.
        if (isErrno(err, 'EEXIST', 'ENOTEMPTY')) throw new StrataError('ALREADY_EXISTS', `Layer "${id}" already exists in the vfs driver ("${final}")`, { cause: err, details: { id } })
        throw err
      }
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true })
      if (isStrataError(err)) throw err
      throw new StrataError('SYSCALL', `Cannot create vfs layer "${id}"${parent === null ? '' : ` on "${parent}"`}: ${(err as Error).message}`, {
        cause: err,
        details: { id, parent },
      })
    } finally {
      unlock()
      if (parent !== null) await this.put(parent)
    }
  }

  async remove(id: string): Promise<void> {
    checkId(id)
    await this.#locks.withLock(id, () => this.#removeLocked(id))
  }

  async #removeLocked(id: string): Promise<void> {
    this.#refs.refuseRemoveIfHeld(id)
    const dir = layerDir(this.home, id)
    // Renamed away first, so an interrupted removal never leaves a
    // half-deleted tree under the layer's name.
    const doomed = tmpDir(this.home, id)
    try {
      renameSync(dir, doomed)
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return
      throw new StrataError('SYSCALL', `Cannot remove vfs layer "${id}" ("${dir}"): ${(err as Error).message}`, { cause: err, details: { id } })
    }
    try {
      await rm(doomed, { recursive: true, force: true })
    } catch (err) {
      throw new StrataError('SYSCALL', `Cannot delete the files of removed vfs layer "${id}" ("${doomed}", deleted again on the next open): ${(err as Error).message}`, {
        cause: err,
        details: { id, path: doomed },
      })
    }
  }

  /**
   * The layer's directory. Nothing to mount; the count only guards remove
   * and put. A persistent get is not counted (nothing outlives the process).
   */
  async get(id: string, opts?: GetOpts): Promise<string> {
    // mountLabel: no SELinux here, and vfs mounts nothing to label
    checkId(id)
    const dir = this.#existing(id)
    if (opts?.persistent !== true) this.#refs.increment(id)
    return dir
  }

  /** Drops one get; with `persistent`, only checks the layer exists (no mount to release). */
  async put(id: string, opts?: PutOpts): Promise<void> {
    if (opts?.persistent === true) {
      checkId(id)
      this.#existing(id)
      return
    }
    this.#refs.decrement(id)
  }

  /** vfs mounts nothing. */
  async mountedLayers(): Promise<string[]> {
    return []
  }

  /** The layer's full copy: its own files are in it (with its parent's). */
  async diffFilesDir(id: string): Promise<string> {
    checkId(id)
    return this.#existing(id)
  }

  /** The directory of an existing layer; NOT_FOUND, or CORRUPT when it is not a directory. */
  #existing(id: string): string {
    const dir = layerDir(this.home, id)
    let isDir: boolean
    try {
      isDir = statSync(dir).isDirectory()
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in the vfs driver ("${dir}")`, { cause: err, details: { id } })
      throw new StrataError('SYSCALL', `Cannot look up vfs layer "${id}" ("${dir}"): ${(err as Error).message}`, { cause: err, details: { id } })
    }
    if (!isDir) throw new StrataError('CORRUPT', `vfs layer "${id}" ("${dir}") is not a directory`, { details: { id } })
    return dir
  }

  async exists(id: string): Promise<boolean> {
    checkId(id)
    try {
      return statSync(layerDir(this.home, id)).isDirectory()
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false
      throw err
    }
  }

  /** dockerd's vfs reports no status lines (`docker info` shows only "Storage Driver: vfs"). */
  async status(): Promise<Array<[string, string]>> {
    return []
  }

  /** dockerd's vfs has no metadata to show (GetMetadata returns nil). */
  async getMetadata(id: string): Promise<Record<string, string>> {
    if (!(await this.exists(id))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in the vfs driver`, { details: { id } })
    return {}
  }

  /** Nothing is mounted; forgets every reference, as a mounting driver's cleanup releases its mounts. */
  async cleanup(): Promise<void> {
    await this.#locks.settled()
    this.#refs.clear()
  }
}

/** vfs runs anywhere, so its probe always succeeds. */
export const vfsFactory: DriverFactory = {
  name: VFS_NAME,
  async probe() {
    return { ok: true }
  },
  async open(opts: DriverOptions): Promise<GraphDriver> {
    // Metadata only, as dockerd and containers-storage compare: a vfs child is
    // a plain copy, so nothing but reading every byte of both trees could tell
    // an untouched file from one rewritten with its size and ns mtime restored.
    return withNaiveDiff(await VfsDriver.open(opts), () => ({ compareContent: false }))
  },
}
