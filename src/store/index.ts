/**
 * src/store: one data root opened whole. The graph driver, the layer store
 * on it, the image, reference and distribution stores in
 * `<root>/image/<driver>/` and the container records in `<root>/containers/`,
 * wired together the way dockerd's daemon wires
 * them: images keep their top layers alive (the layer store asks the image
 * store which chainIDs those are before it deletes anything), every store
 * shares the one data-root lock, and opening runs the layer store's
 * recovery.
 *
 * @example
 * import { Store } from 'strata'
 * const store = await Store.open({ root: '/var/lib/strata' })
 * try {
 *   for (const id of await store.images.list()) console.log(id)
 * } finally {
 *   await store.close()
 * }
 */
import { ContainerStore } from '../containerdb/index.js'
import { StrataError } from '../errors/index.js'
import { openDriver, type GraphDriver } from '../graphdriver/index.js'
import { DistributionMetadataStore, ImageStore, ReferenceStore, parseImageId, type ImageID } from '../image/index.js'
import { LayerStore, type CheckProblem } from '../layer/index.js'
import { assertNoMigrationInProgress } from './migration-guard.js'
import { prepareRoot } from './root.js'
import { debrisOfRecovery, sweepDebris, type DebrisItem } from './debris.js'
import { join } from 'node:path'

export interface OpenStoreOptions {
  /** The data root (dockerd's --data-root). */
  root: string
  /** A driver name; default: the root's prior driver, else the first that works of overlay2, btrfs, vfs. */
  driver?: string
  /** `--storage-opt k=v` pairs for the driver. */
  driverOptions?: Record<string, string>
  /**
   * Open to read (images, inspect, ps, history, version): the crash
   * recovery and the debris sweep are left to the next opener that writes
   * (ensureRecovered() runs them if this one has to write after all).
   * What dead processes leave is invisible to reads: layer transactions
   * live in layerdb/tmp until a rename publishes them, a deletion renames
   * a layer dir to `-removing` before it removes anything, half-written
   * files are `.tmp-*` names, and the listings skip all of these. A root
   * whose layer store does not exist yet is opened as for writing.
   * Recovery is what made every command take the data-root lock and probe
   * every layer's and mount's lock (koffi's flock) on open.
   */
  reading?: boolean
}

export interface StoreCheckOptions {
  /** Remove what cannot be trusted (see LayerStore.check, ImageStore.check, ReferenceStore.check). */
  repair?: boolean
}

export class Store {
  readonly root: string
  readonly driver: GraphDriver
  readonly layers: LayerStore
  readonly images: ImageStore
  readonly references: ReferenceStore
  readonly distribution: DistributionMetadataStore
  /** Container records (`<root>/containers/`). */
  readonly containers: ContainerStore
  /** What dead processes had left and open() removed (debris.ts); check() reports it. */
  readonly debris: DebrisItem[]
  /** Set while a store opened for reading has not run recovery (ensureRecovered). */
  #recovery: (() => Promise<DebrisItem[]>) | undefined
  #recovering: Promise<void> | undefined

  private constructor(parts: {
    root: string
    driver: GraphDriver
    layers: LayerStore
    images: ImageStore
    references: ReferenceStore
    distribution: DistributionMetadataStore
    containers: ContainerStore
    debris: DebrisItem[]
    recovery?: () => Promise<DebrisItem[]>
  }) {
    this.root = parts.root
    this.driver = parts.driver
    this.layers = parts.layers
    this.images = parts.images
    this.references = parts.references
    this.distribution = parts.distribution
    this.containers = parts.containers
    this.debris = parts.debris
    this.#recovery = parts.recovery
  }

  static async open(opts: OpenStoreOptions): Promise<Store> {
    // Validated once, before anything reads or writes in it (root.ts).
    prepareRoot(opts.root)
    // A root strata migrate is working on belongs to it (src/store/migration-guard.ts).
    assertNoMigrationInProgress(opts.root)
    const driver = await openDriver(opts.root, opts.driver, opts.driverOptions)
    try {
      const reading = opts.reading === true && LayerStore.exists(opts.root, driver.name)
      const layers = await LayerStore.open({ root: opts.root, driver, recover: !reading })
      const common = { root: opts.root, driverName: driver.name, lock: layers.lock }
      const images = await ImageStore.open({ root: opts.root, driverName: driver.name, layers })
      layers.setImageReferences(() => images.topChainIds())
      const references = await ReferenceStore.open(common)
      const distribution = await DistributionMetadataStore.open(common)
      const containers = await ContainerStore.open({ root: opts.root, layers })
      const imageHome = join(opts.root, 'image', driver.name)
      const recovery = async (): Promise<DebrisItem[]> => {
        if (layers.lastRecovery === undefined) layers.lastRecovery = await layers.recover()
        return [
          ...(driver.sweptOnOpen ?? []).map((subject) => ({ subject, what: `${driver.name} probe scratch of a process that died` })),
          ...debrisOfRecovery(layers.lastRecovery, layers.paths.tmp),
          ...(await sweepDebris(opts.root, [imageHome, join(imageHome, 'imagedb', 'content', 'sha256')], layers.lock)),
        ]
      }
      const parts = { root: opts.root, driver, layers, images, references, distribution, containers }
      if (reading) return new Store({ ...parts, debris: [], recovery })
      return new Store({ ...parts, debris: await recovery() })
    } catch (err) {
      await driver.cleanup().catch(() => {})
      throw err
    }
  }

  /**
   * Runs the recovery and debris sweep a store opened for reading left
   * out (see OpenStoreOptions.reading), once; a no-op otherwise. Call it
   * before writing through such a store.
   */
  async ensureRecovered(): Promise<void> {
    const recovery = this.#recovery
    if (recovery === undefined) return
    this.#recovering ??= recovery().then((items) => {
      this.debris.push(...items)
      this.#recovery = undefined
    })
    await this.#recovering
  }

  /**
   * Finds an image the way docker's CLI does: a full or short image ID
   * (`sha256:` optional), else a reference (`busybox` is
   * `docker.io/library/busybox:latest`).
   */
  async findImage(nameOrId: string): Promise<ImageID> {
    if (/^(sha256:)?[a-f0-9]{64}$/.test(nameOrId)) {
      const id = parseImageId(nameOrId)
      if (await this.images.exists(id)) return id
    }
    let byRef: ImageID | undefined
    try {
      byRef = await this.references.get(nameOrId)
    } catch (err) {
      // Not a valid reference: it can still be a short ID.
      if (!(err instanceof StrataError) || err.code !== 'INVALID_ARGUMENT') throw err
    }
    if (byRef !== undefined) return byRef
    if (/^(sha256:)?[a-f0-9]{1,63}$/.test(nameOrId)) {
      try {
        return await this.images.resolvePrefix(nameOrId.replace(/^sha256:/, ''))
      } catch (err) {
        if (!(err instanceof StrataError) || err.code !== 'NOT_FOUND') throw err
      }
    }
    throw new StrataError('NOT_FOUND', `No such image: ${nameOrId}`)
  }

  /**
   * Verifies the whole store: every layer against its diffID (rebuilding
   * its tar), every image against its ID and its layers, every reference
   * against the images. With repair, removes what cannot be trusted, layers
   * first so that images on removed layers are found missing.
   */
  async check(opts: StoreCheckOptions = {}): Promise<CheckProblem[]> {
    const repair = opts.repair === true
    const problems: CheckProblem[] = []
    // What dead processes left, removed when this store was opened.
    for (const d of this.debris) problems.push({ kind: 'debris', subject: d.subject, message: `Left by a process that died: ${d.what}`, repaired: 'removed when the store was opened' })
    // The driver's own records first (devicemapper: the pool against its metadata files).
    for (const p of (await this.driver.check?.()) ?? []) problems.push({ kind: 'driver', subject: p.subject, message: p.message })
    problems.push(...(await this.layers.check({ repair })))
    problems.push(...(await this.images.check({ repair })))
    problems.push(...(await this.references.check({ repair, imageExists: (id) => this.images.exists(id) })))
    return problems
  }

  /** Releases what this process holds (driver mounts it made and still holds). Persistent mounts stay. */
  async close(): Promise<void> {
    await this.layers.close()
    await this.driver.cleanup()
  }
}

export type { CheckProblem }
export { ROOT_DIR_MODE, prepareRoot } from './root.js'
export { SCRATCH_DIR, scratchDir, type DebrisItem } from './debris.js'
export {
  MIGRATION_DIR,
  MIGRATION_JOURNAL,
  MIGRATION_LOCK,
  assertNoMigrationInProgress,
  migrationRunning,
  readMigrationHead,
  type MigrationJournalHead,
  type MigrationState,
} from './migration-guard.js'

// Docker's image verbs on a store (images, inspect, history, tag, rmi,
// image prune, system df, info counts): functions taking a Store, one module
// each, so that the CLI and a later API server only format their results.
export { containersOf, type ContainersUsing, type ContainerUsageOptions } from './image-query.js'
export { ImageView } from './image-view.js'
export { NONE_DIGEST, NONE_TAG, isDanglingSummary, listImages, type ImageSummary, type ListImagesOptions } from './image-list.js'
export { goContainerConfig, inspectImage, type GoContainerConfig, type ImageInspect } from './image-inspect.js'
export { MISSING_ID, imageHistory, type ImageHistoryItem } from './image-history.js'
export { tagImage, type TagImageResult } from './image-tag.js'
export { isImageIdPrefix, removeImage, type ImageDeleteItem, type RemoveImageOptions } from './image-remove.js'
export { pruneImages, type ImagesPruneReport, type PruneImagesOptions } from './image-prune.js'
export { diskUsage, storeCounts, type ContainerDiskUsage, type DiskUsage, type StoreCounts } from './disk-usage.js'
export { readImageFile, readLayerFile, type LayerFile } from './image-files.js'
