/**
 * The devicemapper graph driver: every layer is a thin device in one thin
 * pool, a child a thin snapshot of its parent's device, each with its own
 * filesystem (the base device's, formatted once). get mounts the layer's
 * device at mnt/<id> and returns mnt/<id>/rootfs; put unmounts it and
 * deactivates the device. Like dockerd, the driver has no diff of its
 * own: withNaiveDiff compares a layer's tree with its parent's.
 *
 * Differences from dockerd 20.10, on purpose:
 * - get/put count references per process, and a mount made by another
 *   process (or a persistent get) is adopted, as overlay2 does here;
 *   dockerd's Put of an unheld layer is a silent no-op, here an error.
 * - remove cannot refuse a layer that has children: thin snapshots do not
 *   depend on their origin, and dockerd records no parent (as with vfs,
 *   the layer store is what refuses).
 * - A layer's files can only be read through its mount. holdDiffFiles
 *   mounts it for as long as the caller reads (dockerd's layer store gets
 *   and puts the layer for the same purpose); diffFilesDir answers only
 *   while the layer is mounted.
 * - A write that fails because the pool is full fails the apply with an
 *   error naming the pool and its usage.
 * - cleanup leaves the pool active (see deviceset.ts); shutdown() removes it.
 */
import { chmodSync, chownSync, closeSync, lstatSync, mkdirSync, openSync, realpathSync, rmdirSync, writeFileSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { StrataError, isErrno } from '../../errors/index.js'
import { withNaiveDiff, type ProtoDriver } from '../naive-diff.js'
import { MountRefCounter } from '../mount-refs.js'
import type { ApplyLayerOptions, DiffOptions, Change, CreateOpts, DiffFiles, DriverFactory, DriverOptions, GetOpts, GraphDriver, LayerApplyResult, ProbeResult, PutOpts } from '../types.js'
import { DeviceSet, type DeviceSetProblem } from './deviceset.js'
import { DRIVER_NAME, DevmapperLayout, ID_FILE_MODE, MNT_DIR_MODE, ROOTFS_MODE, TMP_PREFIX } from './layout.js'
import { parseOptions, parseRamBytes } from './options.js'
import { mountsAt, mountEntries } from '../overlay2/mounts.js'
import { dmAvailable, syncfs } from '../../sys/index.js'
import { KeyedLock } from '../../fs/index.js'

/** Names in metadata/ that are not layers: an id equal to one would be read as the wrong file. */
const RESERVED = new Set(['base', 'deviceset-metadata', 'transaction-metadata'])

function checkId(id: string, what = 'layer id'): void {
  if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id) || id.length > 90 || RESERVED.has(id) || id.startsWith(TMP_PREFIX) || id.endsWith('.migrated')) {
    throw new StrataError('INVALID_ARGUMENT', `Invalid ${what} "${String(id).slice(0, 100)}": a device name part of letters, digits, "_", "." and "-" (at most 90), not a metadata file's name`)
  }
}

/** The size a create asks for (--storage-opt size), or undefined. Unknown keys are refused, as dockerd. */
function sizeOption(id: string, opts: CreateOpts | undefined): number | undefined {
  let size: number | undefined
  for (const [key, value] of Object.entries(opts?.storageOpt ?? {})) {
    if (key.toLowerCase() !== 'size') throw new StrataError('INVALID_ARGUMENT', `Cannot create layer "${id}": unknown devicemapper storage option "${key}" (known: size)`)
    size = parseRamBytes(value, `the size of layer "${id}"`)
  }
  return size
}

export class DevmapperDriver implements ProtoDriver {
  readonly name = DRIVER_NAME
  readonly home: string
  readonly deviceSet: DeviceSet
  readonly #layout: DevmapperLayout
  readonly #refs = new MountRefCounter(DRIVER_NAME)
  /** Per layer: create, remove, get and put of one id never interleave. */
  readonly #locks = new KeyedLock()
  readonly #realMnt: string

  constructor(deviceSet: DeviceSet) {
    this.deviceSet = deviceSet
    this.#layout = deviceSet.layout
    this.home = this.#layout.home
    mkdirSync(this.#layout.mntDir, { recursive: true, mode: MNT_DIR_MODE })
    this.#realMnt = realpathSync(this.#layout.mntDir)
  }

  #locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    return this.#locks.withLock(id, fn)
  }

  #live(id: string): boolean {
    const info = this.deviceSet.lookup(id)
    return info !== undefined && !info.deleted
  }

  #requireLayer(id: string): void {
    if (!this.#live(id)) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`)
  }

  async create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    checkId(id)
    if (parent !== null) checkId(parent, 'parent layer id')
    const size = sizeOption(id, opts)
    await this.#locked(id, async () => {
      if (parent !== null && !this.#live(parent)) throw new StrataError('NOT_FOUND', `Cannot create layer "${id}": its parent layer "${parent}" does not exist`)
      await this.deviceSet.addDevice(id, parent ?? '', size)
    })
  }

  /** dockerd makes no difference: a container's layer is a thin snapshot like an image's. */
  async createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    await this.create(id, parent, opts)
  }

  async remove(id: string): Promise<void> {
    checkId(id)
    await this.#locked(id, async () => {
      this.#requireLayer(id)
      this.#refs.refuseRemoveIfHeld(id)
      if (await this.#isMounted(id)) {
        throw new StrataError('IN_USE', `Cannot remove layer "${id}": it is mounted at "${this.#layout.mountPoint(id)}" by another process or a persistent get; release it with a persistent put first`)
      }
      await this.deviceSet.deleteDevice(id)
      removeMountPoint(this.#layout.mountPoint(id))
    })
  }

  async #isMounted(id: string): Promise<boolean> {
    return (await mountsAt(`${this.#realMnt}/${id}`)).length > 0
  }

  /**
   * Mounts the layer's device at mnt/<id> on the first get and returns
   * mnt/<id>/rootfs, made 0755 root:root if missing, with the `id` file
   * written if missing (dockerd's Get).
   */
  async get(id: string, opts?: GetOpts): Promise<string> {
    checkId(id)
    const persistent = opts?.persistent === true
    return this.#locked(id, async () => {
      this.#requireLayer(id)
      const mp = this.#layout.mountPoint(id)
      const rootfs = this.#layout.rootfs(id)
      await this.#refs.holdMounted(id, persistent, { isMounted: () => this.#isMounted(id), mount: () => this.#mount(id, mp, rootfs) })
      return rootfs
    })
  }

  /** Mounts the layer's device at `mp` and readies its rootfs (dockerd's Get); the device is unmounted again when that fails. */
  async #mount(id: string, mp: string, rootfs: string): Promise<void> {
    mkdirSync(this.#layout.mntDir, { recursive: true, mode: MNT_DIR_MODE })
    try {
      mkdirSync(mp, MNT_DIR_MODE)
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err
    }
    await this.deviceSet.mountDevice(id, mp)
    try {
      prepareRoot(mp, rootfs, this.#layout.idFile(id), id)
    } catch (err) {
      await this.deviceSet.unmountDevice(id, mp).catch(() => {})
      throw err
    }
  }

  async #unmount(id: string): Promise<void> {
    const mp = this.#layout.mountPoint(id)
    await this.deviceSet.unmountDevice(id, mp)
    removeMountPoint(mp)
  }

  async put(id: string, opts?: PutOpts): Promise<void> {
    checkId(id)
    if (opts?.persistent === true) return this.#putPersistent(id)
    await this.#locked(id, async () => {
      if (this.#refs.peek(id) === undefined) this.#requireLayer(id)
      await this.#refs.release(id, () => this.#unmount(id))
    })
  }

  /** Releases a persistent get, of any process: unmounts unless this instance still holds the layer (then its last put does). */
  async #putPersistent(id: string): Promise<void> {
    await this.#locked(id, async () => {
      this.#requireLayer(id)
      await this.#refs.releasePersistent(id, () => this.#isMounted(id), () => this.#unmount(id))
    })
  }

  async mountedLayers(): Promise<string[]> {
    const ids = new Set<string>()
    for (const { mountPoint } of await mountEntries()) {
      const slash = mountPoint.lastIndexOf('/')
      if (mountPoint.slice(0, slash) === this.#realMnt) ids.add(mountPoint.slice(slash + 1))
    }
    return [...ids].sort()
  }

  async exists(id: string): Promise<boolean> {
    try {
      checkId(id)
    } catch {
      return false
    }
    return this.#live(id)
  }

  async status(): Promise<Array<[string, string]>> {
    return this.deviceSet.statusLines()
  }

  async getMetadata(id: string): Promise<Record<string, string>> {
    checkId(id)
    this.#requireLayer(id)
    return this.deviceSet.deviceMetadata(id)
  }

  /** The layer's rootfs while it is mounted (by a get of any process); NOT_SUPPORTED otherwise: use holdDiffFiles. */
  async diffFilesDir(id: string): Promise<string> {
    checkId(id)
    this.#requireLayer(id)
    if (await this.#isMounted(id)) return this.#layout.rootfs(id)
    throw new StrataError('NOT_SUPPORTED', `The files of devicemapper layer "${id}" can only be read while it is mounted; use holdDiffFiles (or get) first`)
  }

  /** Mounts the layer (a counted get) for as long as its files are read. */
  async holdDiffFiles(id: string): Promise<DiffFiles> {
    const dir = await this.get(id)
    let released = false
    return {
      dir,
      release: async () => {
        if (released) return
        released = true
        await this.put(id)
      },
    }
  }

  /** Unmounts what this instance mounted and still holds; the pool stays up (see deviceset.ts). */
  async cleanup(): Promise<void> {
    await this.#locks.settled()
    await this.#refs.unmountAll((id) => this.#unmount(id))
  }

  /** cleanup, then removes the pool if this root made it on loop files and nothing else uses it. */
  async shutdown(): Promise<void> {
    await this.cleanup()
    await this.deviceSet.shutdown()
  }

  /** The pool against the metadata files (see DeviceSet.check). */
  check(): Promise<DeviceSetProblem[]> {
    return this.deviceSet.check()
  }
}

/** mnt/<id>/rootfs (0755 root:root) and mnt/<id>/id (0600) when missing, as dockerd's Get makes them. */
function prepareRoot(mp: string, rootfs: string, idFile: string, id: string): void {
  try {
    mkdirSync(rootfs, ROOTFS_MODE)
    chmodSync(rootfs, ROOTFS_MODE)
    chownSync(rootfs, 0, 0)
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err
  }
  try {
    lstatSync(idFile)
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) throw err
    writeFileSync(idFile, id, { mode: ID_FILE_MODE })
  }
  void mp
}

/** dockerd 20.10 removes the mount point once the device is unmounted. */
function removeMountPoint(mp: string): void {
  try {
    rmdirSync(mp)
  } catch (err) {
    if (!isErrno(err, 'ENOENT', 'EBUSY', 'ENOTEMPTY')) throw err
  }
}

/**
 * The full GraphDriver: the naive diff around the driver, plus
 * holdDiffFiles, and applies whose failure is explained by a full pool
 * reported as such.
 */
class DevmapperGraphDriver implements GraphDriver {
  readonly #inner: GraphDriver
  readonly driver: DevmapperDriver

  constructor(driver: DevmapperDriver) {
    this.driver = driver
    this.#inner = withNaiveDiff(driver)
  }

  get name(): string {
    return this.#inner.name
  }

  get home(): string {
    return this.#inner.home
  }

  create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    return this.#inner.create(id, parent, opts)
  }

  createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    return this.#inner.createReadWrite(id, parent, opts)
  }

  remove(id: string): Promise<void> {
    return this.#inner.remove(id)
  }

  get(id: string, opts?: GetOpts): Promise<string> {
    return this.#inner.get(id, opts)
  }

  put(id: string, opts?: PutOpts): Promise<void> {
    return this.#inner.put(id, opts)
  }

  mountedLayers(): Promise<string[]> {
    return this.#inner.mountedLayers()
  }

  exists(id: string): Promise<boolean> {
    return this.#inner.exists(id)
  }

  status(): Promise<Array<[string, string]>> {
    return this.#inner.status()
  }

  getMetadata(id: string): Promise<Record<string, string>> {
    return this.#inner.getMetadata(id)
  }

  cleanup(): Promise<void> {
    return this.#inner.cleanup()
  }

  diff(id: string, parent: string | null, opts?: DiffOptions): Promise<Readable> {
    return this.#inner.diff(id, parent, opts)
  }

  changes(id: string, parent: string | null): Promise<Change[]> {
    return this.#inner.changes(id, parent)
  }

  diffFilesDir(id: string): Promise<string> {
    return this.#inner.diffFilesDir(id)
  }

  holdDiffFiles(id: string): Promise<DiffFiles> {
    return this.driver.holdDiffFiles(id)
  }

  diffSize(id: string, parent: string | null): Promise<number> {
    return this.#inner.diffSize(id, parent)
  }

  async applyDiff(id: string, parent: string | null, tar: Readable): Promise<number> {
    return (await this.applyLayer(id, parent, tar)).size
  }

  /**
   * The naive apply, then a syncfs of the layer's filesystem before it is
   * unmounted: a thin pool that runs out of space fails the writeback, not
   * the write(2) calls, and only a sync reports that (an unmount drops it).
   */
  async applyLayer(id: string, parent: string | null, source: Readable, opts?: ApplyLayerOptions): Promise<LayerApplyResult> {
    const dir = await this.#inner.get(id)
    try {
      const result = await this.#inner.applyLayer(id, parent, source, opts)
      const fd = openSync(dir, 'r')
      try {
        syncfs(fd, dir)
      } finally {
        closeSync(fd)
      }
      return result
    } catch (err) {
      if (this.driver.deviceSet.isFull()) throw this.driver.deviceSet.fullError(err, `Cannot apply layer "${id}"`)
      throw err
    } finally {
      await this.#inner.put(id)
    }
  }

  shutdown(): Promise<void> {
    return this.driver.shutdown()
  }

  check(): Promise<DeviceSetProblem[]> {
    return this.driver.check()
  }
}

/** Opens the device set on `root` and the driver over it (the bare driver, without diff methods). */
export async function openDevmapperDriver(opts: DriverOptions): Promise<DevmapperDriver> {
  const options = parseOptions(opts.options)
  return new DevmapperDriver(await DeviceSet.open(opts.root, options))
}

/**
 * Whether device-mapper answers here. dockerd never picks devicemapper by
 * itself unless the data root already uses it (it is last in its priority
 * list, after vfs); the registry leaves it out of the automatic choice the
 * same way, and finds it through the prior-state scan.
 */
export async function probeDevmapper(): Promise<ProbeResult> {
  if (dmAvailable()) return { ok: true }
  return { ok: false, reason: 'device-mapper is not available on this kernel (no /dev/mapper/control answering; the devicemapper driver needs dm_mod and dm_thin_pool)' }
}

export type DevmapperGraph = Omit<GraphDriver, 'check'> & { shutdown(): Promise<void>; check(): Promise<DeviceSetProblem[]>; readonly driver: DevmapperDriver }

export const devicemapperFactory: DriverFactory = {
  name: DRIVER_NAME,
  probe: probeDevmapper,
  async open(opts: DriverOptions): Promise<GraphDriver> {
    return new DevmapperGraphDriver(await openDevmapperDriver(opts))
  },
}

/** Opens the full driver with its devicemapper-only methods (shutdown, check) typed. */
export async function openDevmapperGraph(opts: DriverOptions): Promise<DevmapperGraph> {
  return new DevmapperGraphDriver(await openDevmapperDriver(opts))
}
