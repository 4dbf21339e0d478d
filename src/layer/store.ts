/**
 * LayerStore: dockerd 20.10's layer store (layer/layer_store.go) without a
 * daemon. Read-only layers keyed by chainID and containers' mounted layers
 * in `<root>/image/<driver>/layerdb/`, byte-compatible with dockerd's;
 * references and locks as types.ts describes, so several strata processes
 * can share a data root.
 *
 * This class only wires the verbs to the modules that implement them:
 * register.ts, refs.ts (handles, GC), mounts.ts, export.ts, recover.ts,
 * check.ts. It never closes the driver: whoever opened it does.
 *
 * @example
 * const driver = await openDriver(root)
 * const layers = await LayerStore.open({ root, driver })
 * const { layer } = await layers.register(createReadStream('layer.tar.gz'), null)
 * const { stream } = await layers.export(layer.chainId)
 * await layer.release()
 */
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import type { Change } from '../archive/index.js'
import { chainId as chainIdOf, parseDigest } from '../digest/index.js'
import { StrataError, isStrataError } from '../errors/index.js'
import type { GraphDriver } from '../graphdriver/index.js'
import { checkStore, type CheckOptions } from './check.js'
import type { StoreContext } from './context.js'
import { exportLayer, planLayerFileExport } from './export.js'
import { DataRootLock } from '../fs/index.js'
import { readLayerInfo } from './metadata.js'
import {
  createMount,
  getMount,
  listMounts,
  mountChanges,
  mountDiff,
  mountLayer,
  mountSize,
  removeMount,
  unmountLayer,
  type RemoveMountOptions,
} from './mounts.js'
import { HEX64_RE, LAYERDB_DIR_MODE, LayerDbPaths, MOUNTS_DIR_MODE, SHA256_DIR_MODE, TMP_DIR_MODE } from './paths.js'
import { recoverUnderLock, type RecoveryReport } from './recover.js'
import { collectGarbage, getHandle, listDir } from './refs.js'
import { registerLayer } from './register.js'
import { registerChain } from './register-chain.js'
import type {
  ChainID,
  ChainLayerSource,
  CheckProblem,
  CreateMountOptions,
  DiffID,
  ImageReferences,
  LayerExport,
  LayerFileExport,
  LayerHandle,
  LayerInfo,
  MountInfo,
  RegisterOptions,
  RegisterResult,
  RegisterChainOptions,
} from './types.js'

export interface LayerStoreOptions {
  /** The data root (`/var/lib/strata`). */
  root: string
  /** An opened graph driver on that root; the store never closes it. */
  driver: GraphDriver
  /** Which chainIDs images keep alive; called under the data-root lock, so it must not take it. */
  imageReferences?: ImageReferences
  /** Run the crash recovery on open (default true); false for a store opened to read (see Store.open's `reading`). */
  recover?: boolean
}

async function mkdirMode(dir: string, mode: number): Promise<void> {
  // Only a missing directory gets the mode; an existing one (dockerd's) keeps its own.
  await mkdir(dir, { recursive: true, mode })
}

export class LayerStore {
  readonly root: string
  readonly driver: GraphDriver
  /** The data-root lock; the image store shares it. */
  readonly lock: DataRootLock
  readonly paths: LayerDbPaths
  /** What the recovery run by open() did. */
  lastRecovery: RecoveryReport | undefined
  readonly #ctx: StoreContext

  private constructor(opts: LayerStoreOptions) {
    this.root = opts.root
    this.driver = opts.driver
    this.lock = new DataRootLock(opts.root)
    this.paths = new LayerDbPaths(opts.root, opts.driver.name)
    this.#ctx = { root: opts.root, driver: opts.driver, paths: this.paths, lock: this.lock, imageReferences: opts.imageReferences }
  }

  /** Opens (creating its directories) the layer store of `driver` on `root`, and recovers from crashes. */
  static async open(opts: LayerStoreOptions): Promise<LayerStore> {
    const store = new LayerStore(opts)
    if (opts.recover === false && LayerStore.exists(opts.root, opts.driver.name)) return store
    await mkdirMode(store.paths.root, LAYERDB_DIR_MODE)
    await mkdirMode(store.paths.sha256, SHA256_DIR_MODE)
    await mkdirMode(store.paths.mounts, MOUNTS_DIR_MODE)
    await mkdirMode(store.paths.tmp, TMP_DIR_MODE)
    store.lastRecovery = await store.recover()
    return store
  }

  /** Whether the layer store of driver `driverName` exists on `root` (its layerdb/tmp, made last by open). */
  static exists(root: string, driverName: string): boolean {
    return existsSync(new LayerDbPaths(root, driverName).tmp)
  }

  /** Sets the image references later (the image store is usually built after the layer store). */
  setImageReferences(refs: ImageReferences | undefined): void {
    this.#ctx.imageReferences = refs
  }

  /** Cleans up after crashed processes (see recover.ts); open() runs it. */
  recover(): Promise<RecoveryReport> {
    return this.lock.withLock(() => recoverUnderLock(this.#ctx))
  }

  // Read-only layers

  /** Registers a layer tar (plain, gzip or zstd) on `parent`; see register.ts. */
  register(source: Readable, parent: ChainID | null, opts?: RegisterOptions): Promise<RegisterResult> {
    return registerLayer(this.#ctx, source, parent, opts)
  }

  /**
   * Registers a stack of layers bottom-up on `parent`, as an image load
   * does, applying them at the same time where the driver allows it (see
   * register-chain.ts). All or nothing: when one fails, nothing this call
   * created is kept and the store is as it was. Returns a handle per
   * layer, in order.
   */
  registerChain(layers: readonly ChainLayerSource[], parent: ChainID | null, opts: RegisterChainOptions = {}): Promise<RegisterResult[]> {
    return registerChain(this.#ctx, layers, parent, opts)
  }

  /** A handle on an existing layer (NOT_FOUND). */
  get(chainId: ChainID): Promise<LayerHandle> {
    return getHandle(this.#ctx, chainId)
  }

  /** What a layer's metadata says, without taking a reference (NOT_FOUND, CORRUPT). */
  info(chainId: ChainID): Promise<LayerInfo> {
    return readLayerInfo(this.paths.layerDir(chainId), chainId)
  }

  async has(chainId: ChainID): Promise<boolean> {
    try {
      await this.info(chainId)
      return true
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND')) return false
      throw err
    }
  }

  /** Every layer whose metadata reads well, sorted by chainID (check() reports the others). */
  async list(): Promise<LayerInfo[]> {
    const out: LayerInfo[] = []
    for (const name of await listDir(this.paths.sha256)) {
      if (!HEX64_RE.test(name)) continue
      try {
        out.push(await this.info(parseDigest(name)))
      } catch (err) {
        if (!isStrataError(err, 'CORRUPT') && !isStrataError(err, 'NOT_FOUND')) throw err
      }
    }
    return out
  }

  async diffIdOf(chainId: ChainID): Promise<DiffID> {
    return (await this.info(chainId)).diffId
  }

  /** The diffIDs of the stack ending at `chainId`, base first (an image's rootfs.diff_ids). */
  async diffIdsOf(chainId: ChainID): Promise<DiffID[]> {
    const out: DiffID[] = []
    for (let c: ChainID | null = chainId; c !== null; ) {
      const info = await this.info(c)
      out.unshift(info.diffId)
      c = info.parent
      if (out.length > 10_000) throw new StrataError('CORRUPT', `Layer ${chainId} has a parent loop`)
    }
    return out
  }

  /** The chainID of a stack of diffIDs (base first). */
  chainOf(diffIds: readonly DiffID[]): ChainID {
    return chainIdOf(diffIds)
  }

  /** The layer tar, byte-identical to the registered one when tar-split was recorded; see export.ts. */
  export(chainId: ChainID): Promise<LayerExport> {
    return exportLayer(this.#ctx, chainId)
  }

  /**
   * The layer tar planned for writing into a file at a position (save's
   * fast path), or undefined when the layer has no tar-split; see export.ts.
   */
  planFileExport(chainId: ChainID): Promise<LayerFileExport | undefined> {
    return planLayerFileExport(this.#ctx, chainId)
  }

  /**
   * Deletes `chainId` and its ancestors as far as nothing refers to them
   * (what release() does after dropping its own reference). For callers
   * that dropped an on-disk reference themselves, e.g. the image store
   * after deleting an image. Returns the chainIDs deleted.
   */
  collect(chainId: ChainID): Promise<ChainID[]> {
    return collectGarbage(this.#ctx, chainId)
  }

  // Mounted layers

  createMount(name: string, parent: ChainID | null, opts?: CreateMountOptions): Promise<MountInfo> {
    return createMount(this.#ctx, name, parent, opts)
  }

  getMount(name: string): Promise<MountInfo> {
    return getMount(this.#ctx, name)
  }

  listMounts(): Promise<MountInfo[]> {
    return listMounts(this.#ctx)
  }

  /** The names in layerdb/mounts/, sorted, without reading the records (listMounts reads four files each). */
  listMountNames(): Promise<string[]> {
    return listDir(this.paths.mounts)
  }

  /** Mounts the container's rootfs and returns its path; counted across processes. */
  mount(name: string): Promise<string> {
    return mountLayer(this.#ctx, name)
  }

  /** Undoes one mount(); the last one unmounts. INVALID_ARGUMENT when not mounted. */
  unmount(name: string): Promise<void> {
    return unmountLayer(this.#ctx, name)
  }

  mountChanges(name: string): Promise<Change[]> {
    return mountChanges(this.#ctx, name)
  }

  /** A layer tar of the container's changes (what commit registers). */
  mountDiff(name: string): Promise<Readable> {
    return mountDiff(this.#ctx, name)
  }

  mountSize(name: string): Promise<number> {
    return mountSize(this.#ctx, name)
  }

  /** Removes a mount and its driver layers, then collects its parent chain. IN_USE while mounted unless force. */
  removeMount(name: string, opts?: RemoveMountOptions): Promise<void> {
    return removeMount(this.#ctx, name, opts)
  }

  // Maintenance

  check(opts?: CheckOptions): Promise<CheckProblem[]> {
    return checkStore(this.#ctx, opts)
  }

  /** Nothing to release: handles are the callers', and the driver is its opener's. */
  async close(): Promise<void> {}
}
