/**
 * The btrfs graph driver: every layer is a btrfs subvolume, a child layer a
 * writable snapshot of its parent's. Snapshots share all unchanged extents
 * with their source, so stacking layers costs only their own changes, and
 * nothing is ever mounted: a layer's full content is simply its directory.
 *
 * Like dockerd's, this driver has no diff of its own (btrfs could compute
 * one with `btrfs send`, dockerd never did): withNaiveDiff supplies diff,
 * changes, applyDiff and diffSize by comparing a layer with its parent.
 *
 * Differences from dockerd 20.10, all deliberate:
 * - remove refuses (IN_USE) a layer that has children, found through the
 *   snapshots' parent_uuid (see #children); dockerd deletes it and leaves
 *   the children intact (snapshots do not depend on their source), relying
 *   on the layer store to never ask. The graphdriver spec wants the refusal
 *   from every driver that can know.
 * - get/put are reference counted (dockerd's btrfs Put is a no-op), so
 *   remove can refuse a layer that is in use and put can catch a bad count.
 *   A persistent get/put is not counted: nothing is mounted, so there is
 *   nothing to keep alive across processes.
 * - Quotas (`--storage-opt size`, `btrfs.min_space`) are NOT_SUPPORTED.
 * - status() reports [["Btrfs", ""]], see there.
 */
import { chmod, lstat, mkdir, rm, stat } from 'node:fs/promises'
import { readdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { StrataError, isErrno } from '../../errors/index.js'
import { FS_MAGIC, fsName, statfs } from '../../sys/index.js'
import { withNaiveDiff, type ProtoDriver } from '../naive-diff.js'
import { KeyedLock } from '../../fs/index.js'
import { RefCounter } from '../refcount.js'
import type { CreateOpts, DriverFactory, DriverOptions, GetOpts, GraphDriver, ProbeResult, PutOpts } from '../types.js'
import { createSubvolume, deleteSubvolume, isSubvolume, snapshotSubvolume, subvolumeInfo } from './ioctl.js'
import { BtrfsLayout, DATA_ROOT_MODE, DIR_MODE, DRIVER_NAME, LAYER_ROOT_MODE } from './layout.js'

/**
 * Checks that `id` can name a layer: one path component a btrfs directory
 * entry can hold. Anything else could escape `subvolumes/` or be cut short
 * by the kernel.
 */
function checkId(id: string, what = 'layer id'): void {
  if (typeof id !== 'string' || id === '' || id === '.' || id === '..' || id.includes('/') || id.includes('\0')) {
    throw new StrataError('INVALID_ARGUMENT', `Invalid ${what} "${id}": it must be a single path component`)
  }
  if (Buffer.byteLength(id) > 255) {
    throw new StrataError('INVALID_ARGUMENT', `Invalid ${what} "${id.slice(0, 32)}...": longer than the 255 bytes btrfs allows in a name`)
  }
}

/** Turns a failed system call into the StrataError a caller can act on. */
function syscallError(err: unknown, message: string): StrataError {
  const code = (err as { code?: unknown }).code
  return new StrataError('SYSCALL', `${message}: ${err instanceof Error ? err.message : String(err)}`, {
    cause: err,
    details: typeof code === 'string' ? { errno: code } : {},
  })
}

/**
 * Rejects --storage-opt on create. dockerd knows exactly one, `size` (a
 * btrfs qgroup limit), and refuses any other key.
 */
function checkStorageOpt(id: string, opts: CreateOpts | undefined): void {
  for (const key of Object.keys(opts?.storageOpt ?? {})) {
    if (key.toLowerCase() === 'size') {
      throw new StrataError('NOT_SUPPORTED', `Cannot create layer "${id}" with storage option "size": btrfs quotas are not supported by strata yet`)
    }
    throw new StrataError('INVALID_ARGUMENT', `Cannot create layer "${id}": unknown btrfs storage option "${key}" (the btrfs driver knows only "size")`)
  }
}

/**
 * Makes `path` (and missing ancestors) a directory with `mode` exactly when
 * it has to create it; an existing directory keeps its mode, as with
 * dockerd's MkdirAllAndChown. chmod after mkdir because mkdir honours the
 * umask.
 */
async function ensureDir(path: string, mode: number): Promise<void> {
  try {
    await mkdir(path, mode)
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return
    if (!isErrno(err, 'ENOENT') || dirname(path) === path) throw err
    await ensureDir(dirname(path), mode)
    try {
      await mkdir(path, mode)
    } catch (err2) {
      if (isErrno(err2, 'EEXIST')) return
      throw err2
    }
  }
  await chmod(path, mode)
}

/**
 * Where the filesystem under `root` is decided: `<root>/btrfs` if it exists
 * (it may be a separate mount), else the nearest existing ancestor of
 * `root`. dockerd checks home, then its parent; walking further up lets a
 * probe answer for a data root that does not exist yet.
 */
async function probePath(root: string): Promise<string> {
  const home = new BtrfsLayout(root).home
  for (let p = home; ; p = dirname(p)) {
    try {
      await stat(p)
      return p
    } catch (err) {
      if (!isErrno(err, 'ENOENT', 'ENOTDIR') || dirname(p) === p) throw err
    }
  }
}

/** Whether `root` is on btrfs; the reason sentence when not. */
async function checkFilesystem(root: string): Promise<ProbeResult> {
  let path: string
  let type: number
  try {
    path = await probePath(root)
    type = statfs(path).type
  } catch (err) {
    const code = (err as { code?: unknown }).code
    return { ok: false, reason: `cannot tell which filesystem "${root}" is on (${typeof code === 'string' ? code : String(err)}); the btrfs driver needs its data root on a btrfs filesystem` }
  }
  if (type === FS_MAGIC.btrfs) return { ok: true }
  return { ok: false, reason: `"${root}" is on ${fsName(type)}, not btrfs; the btrfs driver needs its data root on a btrfs filesystem` }
}

/**
 * Layers as btrfs subvolumes under `<root>/btrfs/subvolumes`. Construct it
 * through btrfsFactory.open, which checks the filesystem and wraps it with
 * the naive diff; the class alone has no diff methods.
 */
/** How far inode times (coarse clock) may lag a snapshot's otime (fine clock): a few ticks at HZ=100. */
const COARSE_CLOCK_MARGIN_NS = 50_000_000n

export class BtrfsDriver implements ProtoDriver {
  readonly name = DRIVER_NAME
  readonly home: string
  readonly #layout: BtrfsLayout
  /** get() counts per layer. Nothing is mounted; the count is what lets remove refuse a layer in use. */
  readonly #refs = new RefCounter(DRIVER_NAME)
  /** Per-layer queue: create, remove, get and put of one id never interleave. */
  readonly #locks = new KeyedLock()

  constructor(opts: DriverOptions) {
    this.#layout = new BtrfsLayout(opts.root)
    this.home = this.#layout.home
  }

  /** The layer's directory after checking it exists; NOT_FOUND otherwise. */
  async #existing(id: string): Promise<string> {
    const path = this.#layout.subvolume(id)
    let st
    try {
      st = await lstat(path)
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist (no subvolume "${path}")`)
      throw syscallError(err, `Cannot stat layer "${id}" at "${path}"`)
    }
    if (!st.isDirectory()) throw new StrataError('CORRUPT', `Layer "${id}" is not a directory: "${path}" is a ${st.isSymbolicLink() ? 'symlink' : 'file'}`)
    return path
  }

  async create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    checkId(id)
    if (parent !== null) checkId(parent, 'parent layer id')
    checkStorageOpt(id, opts)
    await this.#locks.withLock(id, async () => {
      const subvolumes = this.#layout.subvolumes
      const path = this.#layout.subvolume(id)
      await ensureDir(this.home, DIR_MODE)
      await ensureDir(subvolumes, DIR_MODE)
      if (await this.#present(id)) throw new StrataError('ALREADY_EXISTS', `Cannot create layer "${id}": it already exists at "${path}"`)
      if (parent === null) {
        try {
          createSubvolume(subvolumes, id)
        } catch (err) {
          throw this.#createError(err, id, path, 'create subvolume')
        }
        // The kernel applied our umask to the new root; dockerd's layers have 0755.
        await chmod(path, LAYER_ROOT_MODE)
        return
      }
      let parentPath: string
      try {
        parentPath = await this.#existing(parent)
      } catch (err) {
        if (err instanceof StrataError && err.code === 'NOT_FOUND') {
          throw new StrataError('NOT_FOUND', `Cannot create layer "${id}": its parent layer "${parent}" does not exist`, { cause: err })
        }
        throw err
      }
      if (!isSubvolume(parentPath)) {
        throw new StrataError('CORRUPT', `Cannot create layer "${id}": its parent "${parentPath}" is a plain directory, not a btrfs subvolume`)
      }
      try {
        snapshotSubvolume(parentPath, subvolumes, id)
      } catch (err) {
        throw this.#createError(err, id, path, `snapshot "${parentPath}" as`)
      }
    })
  }

  #createError(err: unknown, id: string, path: string, what: string): StrataError {
    if (isErrno(err, 'EEXIST')) return new StrataError('ALREADY_EXISTS', `Cannot create layer "${id}": it already exists at "${path}"`, { cause: err })
    return syscallError(err, `Cannot ${what} "${path}" for layer "${id}"`)
  }

  /** dockerd makes no difference between image and container layers on btrfs: both are subvolumes. */
  async createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    await this.create(id, parent, opts)
  }

  async #present(id: string): Promise<boolean> {
    try {
      await lstat(this.#layout.subvolume(id))
      return true
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false
      throw syscallError(err, `Cannot stat layer "${id}" at "${this.#layout.subvolume(id)}"`)
    }
  }

  /**
   * For a layer that is a snapshot: the time before which nothing in it was
   * touched, for the naive diff (NaiveChangesOptions.untouchedBefore). The
   * snapshot's otime comes from the fine-grained clock, inode ctimes from
   * the coarse one, which lags by up to a tick: hence the margin.
   */
  untouchedBefore(id: string): bigint | undefined {
    const path = this.#layout.subvolume(id)
    if (!isSubvolume(path)) return undefined
    const info = subvolumeInfo(path)
    if (info.parentUuid === null) return undefined
    return info.otimeSec * 1_000_000_000n + BigInt(info.otimeNsec) - COARSE_CLOCK_MARGIN_NS
  }

  /**
   * The layers that are snapshots of `id`'s subvolume: the subvolumes in
   * `subvolumes/` whose parent_uuid is `id`'s uuid. One open and one ioctl
   * per layer; remove is rare enough for that. A layer whose data dockerd
   * created is found the same way, since dockerd snapshots too.
   */
  #children(id: string, path: string): string[] {
    if (!isSubvolume(path)) return []
    const uuid = subvolumeInfo(path).uuid
    const children: string[] = []
    for (const entry of readdirSync(this.#layout.subvolumes, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === id) continue
      const other = this.#layout.subvolume(entry.name)
      try {
        if (!isSubvolume(other)) continue
        if (subvolumeInfo(other).parentUuid === uuid) children.push(entry.name)
      } catch (err) {
        // Removed while we looked: not a child any more.
        if (isErrno(err, 'ENOENT')) continue
        throw err
      }
    }
    return children.sort()
  }

  /**
   * Deletes the layer's subvolume (nested subvolumes first). Refuses while
   * it is held by get or has children. The children check and a create on
   * this layer as parent are not atomic with each other; the layer store
   * never runs them concurrently for the same layer.
   */
  async remove(id: string): Promise<void> {
    checkId(id)
    await this.#locks.withLock(id, async () => {
      const path = await this.#existing(id)
      this.#refs.refuseRemoveIfHeld(id)
      let children: string[]
      try {
        children = this.#children(id, path)
      } catch (err) {
        throw syscallError(err, `Cannot remove layer "${id}": looking for snapshots of "${path}" failed`)
      }
      if (children.length > 0) {
        const names = children.slice(0, 5).map((c) => `"${c}"`).join(', ') + (children.length > 5 ? `, and ${children.length - 5} more` : '')
        throw new StrataError('IN_USE', `Cannot remove layer "${id}": it has child layers (${names}); remove them first`, { details: { children } })
      }
      // A quota record belongs to no layer once the layer is gone (dockerd removes it first, too).
      await rm(this.#layout.quota(id), { force: true })
      try {
        await deleteSubvolume(this.#layout.subvolumes, id)
      } catch (err) {
        // Not a subvolume: a plain directory (a copied data root, an
        // interrupted create by other means). dockerd falls back to
        // removing the tree too.
        if (!isErrno(err, 'EINVAL') || isSubvolume(path)) throw syscallError(err, `Cannot delete subvolume "${path}" of layer "${id}"`)
        await rm(path, { recursive: true, force: true })
      }
    })
  }

  async get(id: string, opts?: GetOpts): Promise<string> {
    checkId(id)
    return this.#locks.withLock(id, async () => {
      const path = await this.#existing(id)
      if (opts?.persistent !== true) this.#refs.increment(id)
      return path
    })
  }

  /** Drops one get; with `persistent`, only checks the layer exists (no mount to release). */
  async put(id: string, opts?: PutOpts): Promise<void> {
    checkId(id)
    await this.#locks.withLock(id, async () => {
      if (opts?.persistent === true) {
        await this.#existing(id)
        return
      }
      // INVALID_ARGUMENT whether or not the layer exists: either way the
      // caller's count is wrong, which is what the drivers agree to report.
      this.#refs.decrement(id)
    })
  }

  /** btrfs mounts nothing per layer. */
  async mountedLayers(): Promise<string[]> {
    return []
  }

  /** The layer's subvolume: its own files are in it (with its parent's). */
  async diffFilesDir(id: string): Promise<string> {
    checkId(id)
    return this.#existing(id)
  }

  async exists(id: string): Promise<boolean> {
    checkId(id)
    return this.#present(id)
  }

  /**
   * dockerd 20.10 reports "Build Version" and "Library Version" here: the
   * btrfs-progs headers and libbtrfs it was compiled against, facts about
   * the build host, not this one. strata links no libbtrfs and has no such
   * versions; it reports what moby does since 23.0, one "Btrfs" line, so
   * `info` still shows the driver section.
   */
  async status(): Promise<Array<[string, string]>> {
    return [['Btrfs', '']]
  }

  /** No paths to show: the layer is its directory (dockerd returns nothing as well). */
  async getMetadata(id: string): Promise<Record<string, string>> {
    checkId(id)
    await this.#existing(id)
    return {}
  }

  /** Nothing is mounted; forget the reference counts, as unmounting would. */
  async cleanup(): Promise<void> {
    this.#refs.clear()
  }
}

/** Checks the driver options dockerd's btrfs driver accepts. */
function checkDriverOptions(options: Record<string, string> | undefined): void {
  for (const key of Object.keys(options ?? {})) {
    if (key.toLowerCase() === 'btrfs.min_space') {
      throw new StrataError('NOT_SUPPORTED', `The btrfs driver option "${key}" needs btrfs quotas, which strata does not support yet`)
    }
    throw new StrataError('INVALID_ARGUMENT', `Unknown btrfs driver option "${key}" (the btrfs driver knows only "btrfs.min_space")`)
  }
}

/**
 * Opens the driver after the same checks dockerd makes (btrfs underneath,
 * known options) and creates the data root and home if missing. The bare
 * driver, without the diff methods: btrfsFactory.open adds them.
 */
export async function openBtrfsDriver(opts: DriverOptions): Promise<BtrfsDriver> {
  const probe = await checkFilesystem(opts.root)
  if (!probe.ok) throw new StrataError('NOT_SUPPORTED', probe.reason ?? `"${opts.root}" is not on btrfs`)
  checkDriverOptions(opts.options)
  const driver = new BtrfsDriver(opts)
  await ensureDir(opts.root, DATA_ROOT_MODE)
  await ensureDir(driver.home, DIR_MODE)
  return driver
}

/** Probes whether the btrfs driver can run on `root`: only when it is on btrfs. */
export async function probeBtrfs(root: string): Promise<ProbeResult> {
  return checkFilesystem(root)
}

/**
 * The btrfs driver kind. open() gives the full GraphDriver: BtrfsDriver
 * completed by withNaiveDiff, as dockerd wraps its btrfs driver in
 * NaiveDiffDriver.
 */
export const btrfsFactory: DriverFactory = {
  name: DRIVER_NAME,
  probe: probeBtrfs,
  async open(opts: DriverOptions): Promise<GraphDriver> {
    // A child is a snapshot of its parent: files untouched since keep their
    // inode and an older ctime, and their content need not be compared.
    const driver = await openBtrfsDriver(opts)
    return withNaiveDiff(driver, (id) => {
      const before = driver.untouchedBefore(id)
      return before === undefined ? {} : { untouchedBefore: before }
    })
  },
}
