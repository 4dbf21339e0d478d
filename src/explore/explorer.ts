/**
 * The explorer: read-only questions about the images of an opened Store,
 * answered from the layer store's tar-split metadata (see layer-index.ts).
 *
 * Layer indexes are kept by chainID (content-addressed: a chainID's files
 * never change), image trees by image ID, both in small LRU caches, so
 * that expanding directories and switching layers costs nothing after the
 * first question about an image. A layer that fails is not cached: the next
 * question tries it again.
 *
 * @example
 * const explorer = new Explorer(store)
 * const image = await explorer.image('busybox')
 * const root = await explorer.listDir('busybox', image.layers.length - 1, '/')
 */
import { join } from 'node:path'
import { existsSync } from 'node:fs'
import { chainIds } from '../digest/index.js'
import { StrataError, isStrataError } from '../errors/index.js'
import { familiarString, type Image } from '../image/index.js'
import { LAYER_FILES, type LayerInfo } from '../layer/index.js'
import type { Store } from '../store/index.js'
import { compareImages } from './compare.js'
import { diveEfficiency } from './efficiency.js'
import { ImageTree, type TreeNode } from './image-tree.js'
import { indexFromTar, indexFromTarSplit } from './layer-index.js'
import type {
  DirListing,
  ExploreImage,
  ExploreImageSummary,
  ExploreLayer,
  ImageAnalysis,
  ImageComparison,
  LayerIndex,
  LayerProblem,
  Page,
  PathHistory,
  SearchResult,
  TreeEntry,
  TreeFilter,
} from './types.js'

export interface ExplorerOptions {
  /** Image trees kept in memory (default 4). */
  imageCacheSize?: number
  /** Layer index entries kept in memory over all cached layers (default 2,000,000). */
  layerCacheEntries?: number
}

interface LayerLoad {
  index: LayerIndex | null
  problem?: LayerProblem
}

function problemOf(err: unknown): LayerProblem {
  if (err instanceof StrataError) return { code: err.code, message: err.message }
  return { code: 'CORRUPT', message: (err as Error).message ?? String(err) }
}

export class Explorer {
  readonly store: Store
  readonly #imageCacheSize: number
  readonly #layerCacheEntries: number
  readonly #trees = new Map<string, Promise<ImageTree>>()
  readonly #layers = new Map<string, { index: LayerIndex; size: number }>()
  readonly #loading = new Map<string, Promise<LayerLoad>>()
  /** Sorted children of recent listings, per tree (a tree rebuilt after a failure has nodes of its own). */
  readonly #listings = new WeakMap<ImageTree, Map<string, TreeNode[]>>()
  #layerEntries = 0

  constructor(store: Store, opts: ExplorerOptions = {}) {
    this.store = store
    this.#imageCacheSize = opts.imageCacheSize ?? 4
    this.#layerCacheEntries = opts.layerCacheEntries ?? 2_000_000
  }

  /** Every image of the store (intermediate ones included), newest first. */
  async listImages(): Promise<ExploreImageSummary[]> {
    const out: ExploreImageSummary[] = []
    for (const id of await this.store.images.list()) {
      let image: Image
      try {
        image = await this.store.images.get(id)
      } catch (err) {
        if (isStrataError(err, 'NOT_FOUND')) continue // deleted meanwhile by another process
        throw err
      }
      out.push(await this.#summary(image))
    }
    return out.sort((a, b) => (a.created === b.created ? (a.id < b.id ? -1 : 1) : a.created < b.created ? 1 : -1))
  }

  /** An image by ID, short ID or reference, with its layers and history. */
  async image(nameOrId: string): Promise<ExploreImage> {
    const image = await this.#get(nameOrId)
    const summary = await this.#summary(image)
    const config = image.config
    const history = (config.history ?? []).map((h) => ({ created: h.created ?? '', createdBy: h.created_by ?? '', comment: h.comment ?? '', emptyLayer: h.empty_layer === true }))
    const steps = history.filter((h) => !h.emptyLayer)
    const diffIds = config.rootfs.diff_ids
    const chains = chainIds(diffIds)
    const layers: ExploreLayer[] = []
    for (let i = 0; i < diffIds.length; i++) {
      const step = steps[i]
      const layer: ExploreLayer = { index: i, chainId: chains[i]!, diffId: diffIds[i]!, size: -1, createdBy: step?.createdBy ?? '', created: step?.created ?? '', comment: step?.comment ?? '' }
      try {
        layer.size = (await this.store.layers.info(chains[i]!)).size
      } catch (err) {
        layer.problem = problemOf(err)
      }
      layers.push(layer)
    }
    const c = config.config ?? {}
    return {
      ...summary,
      os: config.os ?? '',
      architecture: config.architecture ?? '',
      command: [...((c.Entrypoint as string[] | null | undefined) ?? []), ...((c.Cmd as string[] | null | undefined) ?? [])],
      layers,
      history,
    }
  }

  /** What each layer changed and wasted, and dive's efficiency of the image. */
  async analysis(nameOrId: string, opts: { limit?: number } = {}): Promise<ImageAnalysis> {
    const image = await this.#get(nameOrId)
    const tree = await this.#tree(image)
    const layers = tree.indexes.map((index, i) => {
      const counts = tree.view(i).counts
      const problem = tree.problems[i]
      return {
        index: i,
        added: counts.added,
        modified: counts.modified,
        removed: counts.removed,
        members: index === null ? 0 : index.entries.length + index.whiteouts.length + index.opaque.length,
        wastedBytes: counts.wastedBytes,
        contentSize: index?.contentSize ?? 0,
        ...(problem === undefined ? {} : { problem }),
      }
    })
    return { id: image.id, layers, efficiency: diveEfficiency(tree, opts.limit ?? 100), incomplete: tree.incomplete }
  }

  /** The entries of directory `path` in the view at `layer`, directories first, then by name. */
  async listDir(nameOrId: string, layer: number, path: string, filter: TreeFilter = {}, page: Page = {}): Promise<DirListing> {
    const image = await this.#get(nameOrId)
    const tree = await this.#tree(image)
    const view = this.#view(tree, layer)
    const node = tree.find(path)
    if (node === undefined || !tree.isListed(view, node)) throw new StrataError('NOT_FOUND', `No path "${path}" in the image at layer ${layer}`)
    // The sorted children are kept for the last few listings: the pages of a long one then cost a slice.
    const key = `${layer} ${node.id} ${filter.onlyChanges === true} ${filter.minSize ?? 0}`
    let listings = this.#listings.get(tree)
    if (listings === undefined) this.#listings.set(tree, (listings = new Map()))
    let children = listings.get(key)
    if (children === undefined) {
      const kept: Array<{ node: TreeNode; dir: boolean }> = []
      for (const child of node.children?.values() ?? []) {
        if (!tree.isListed(view, child)) continue
        if (filter.minSize !== undefined && filter.minSize > 0 && view.maxSize[child.id]! < filter.minSize) continue
        if (filter.onlyChanges === true && tree.isUnchanged(view, child) && view.changeCount[child.id] === 0) continue
        kept.push({ node: child, dir: tree.shownEntry(view, child).kind === 'dir' })
      }
      kept.sort((a, b) => (a.dir !== b.dir ? (a.dir ? -1 : 1) : a.node.name < b.node.name ? -1 : a.node.name > b.node.name ? 1 : 0))
      children = kept.map((k) => k.node)
      listings.set(key, children)
      if (listings.size > 16) listings.delete(listings.keys().next().value!)
    }
    const offset = Math.min(page.offset ?? 0, children.length)
    const end = page.limit === undefined ? children.length : Math.min(children.length, offset + page.limit)
    const entries = children.slice(offset, end).map((child) => tree.treeEntry(view, child))
    return { path: node.path, layer, total: children.length, offset, entries, incomplete: tree.incompleteAt(layer) }
  }

  /** Paths whose name contains `query` (case-insensitive) in the view at `layer`, at most `limit`. */
  async search(nameOrId: string, layer: number, query: string, filter: TreeFilter = {}, limit = 500): Promise<SearchResult> {
    const tree = await this.#tree(await this.#get(nameOrId))
    const view = this.#view(tree, layer)
    const needle = query.toLowerCase()
    const entries: TreeEntry[] = []
    let total = 0
    const minSize = filter.minSize ?? 0
    const walk = (node: TreeNode): void => {
      for (const child of node.children?.values() ?? []) {
        if (!tree.isListed(view, child)) continue
        if (minSize > 0 && view.maxSize[child.id]! < minSize) continue
        if (filter.onlyChanges === true && view.changeCount[child.id] === 0 && tree.isUnchanged(view, child)) continue
        if (child.name.toLowerCase().includes(needle)) {
          const entry = tree.treeEntry(view, child)
          const sizeOk = minSize <= 0 || (entry.kind === 'file' && entry.size >= minSize)
          if (sizeOk && (filter.onlyChanges !== true || entry.mark !== 'unchanged')) {
            total++
            if (entries.length < limit) entries.push(entry)
          }
        }
        walk(child)
      }
    }
    if (needle !== '') walk(tree.root)
    return { layer, query, entries, total, incomplete: tree.incompleteAt(layer) }
  }

  /** Every layer's version of one path. */
  async pathHistory(nameOrId: string, path: string): Promise<PathHistory> {
    const tree = await this.#tree(await this.#get(nameOrId))
    const node = tree.find(path)
    if (node === undefined) throw new StrataError('NOT_FOUND', `No layer of the image names "${path}"`)
    const versions: PathHistory['versions'] = []
    for (const v of node.versions) {
      const e = v.entry
      versions.push(
        e === null
          ? { layer: v.layer, kind: 'whiteout', size: 0, mode: 0, uid: 0, gid: 0, mtime: 0, link: '' }
          : { layer: v.layer, kind: e.kind, size: e.size, mode: e.mode, uid: e.uid, gid: e.gid, mtime: e.mtime, link: e.link },
      )
    }
    for (const l of node.opaqueAt ?? []) versions.push({ layer: l, kind: 'opaque', size: 0, mode: 0, uid: 0, gid: 0, mtime: 0, link: '' })
    versions.sort((a, b) => a.layer - b.layer)
    return { path: node.path, versions }
  }

  /** The layers two images share and how their files differ. */
  async compare(a: string, b: string, opts: { limit?: number } = {}): Promise<ImageComparison> {
    const [ia, ib] = [await this.#get(a), await this.#get(b)]
    const side = async (image: Image): Promise<Parameters<typeof compareImages>[0]> => {
      const described = await this.image(image.id)
      return { id: image.id, tree: await this.#tree(image), layers: described.layers.map((l) => ({ chainId: l.chainId, diffId: l.diffId, size: l.size })) }
    }
    return compareImages(await side(ia), await side(ib), opts.limit)
  }

  /** A layer's index (cached), or why it cannot be had. */
  async layerIndex(chainId: LayerInfo['chainId']): Promise<LayerIndex> {
    const load = await this.#loadLayer(chainId)
    if (load.index === null) throw new StrataError(load.problem!.code as 'CORRUPT', load.problem!.message)
    return load.index
  }

  #view(tree: ImageTree, layer: number): ReturnType<ImageTree['view']> {
    if (!Number.isInteger(layer) || layer < 0 || layer >= tree.layerCount) {
      throw new StrataError('INVALID_ARGUMENT', `Layer ${layer} is out of range: the image has ${tree.layerCount} layer(s)`)
    }
    return tree.view(layer)
  }

  async #get(nameOrId: string): Promise<Image> {
    return this.store.images.get(await this.store.findImage(nameOrId))
  }

  async #summary(image: Image): Promise<ExploreImageSummary> {
    const refs = await this.store.references.referencesTo(image.id)
    let size = 0
    for (const chain of chainIds(image.config.rootfs.diff_ids)) {
      try {
        size += (await this.store.layers.info(chain)).size
      } catch {
        size = -1
        break
      }
    }
    return {
      id: image.id,
      tags: refs.filter((r) => r.digest === undefined && r.tag !== undefined).map(familiarString),
      digests: refs.filter((r) => r.digest !== undefined).map(familiarString),
      created: image.config.created ?? '',
      size,
      layerCount: image.config.rootfs.diff_ids.length,
    }
  }

  async #tree(image: Image): Promise<ImageTree> {
    const cached = this.#trees.get(image.id)
    if (cached !== undefined) {
      this.#trees.delete(image.id)
      this.#trees.set(image.id, cached)
      return cached
    }
    const building = this.#buildTree(image)
    this.#trees.set(image.id, building)
    try {
      const tree = await building
      // Keep only complete trees: a broken layer may be repaired, or its read may have raced a writer.
      if (tree.incomplete) this.#trees.delete(image.id)
      while (this.#trees.size > this.#imageCacheSize) this.#trees.delete(this.#trees.keys().next().value!)
      return tree
    } catch (err) {
      this.#trees.delete(image.id)
      throw err
    }
  }

  async #buildTree(image: Image): Promise<ImageTree> {
    const loads: LayerLoad[] = []
    for (const chain of chainIds(image.config.rootfs.diff_ids)) loads.push(await this.#loadLayer(chain))
    return new ImageTree(
      loads.map((l) => l.index),
      loads.map((l) => l.problem),
    )
  }

  #loadLayer(chain: LayerInfo['chainId']): Promise<LayerLoad> {
    const cached = this.#layers.get(chain)
    if (cached !== undefined) {
      this.#layers.delete(chain)
      this.#layers.set(chain, cached)
      return Promise.resolve({ index: cached.index })
    }
    let loading = this.#loading.get(chain)
    if (loading === undefined) {
      loading = this.#readLayer(chain).finally(() => this.#loading.delete(chain))
      this.#loading.set(chain, loading)
    }
    return loading
  }

  async #readLayer(chain: LayerInfo['chainId']): Promise<LayerLoad> {
    try {
      const index = await readLayerIndex(this.store, chain)
      const size = index.entries.length + index.whiteouts.length + 1
      this.#layers.set(chain, { index, size })
      this.#layerEntries += size
      while (this.#layerEntries > this.#layerCacheEntries && this.#layers.size > 1) {
        const [oldest, { size: s }] = this.#layers.entries().next().value!
        this.#layers.delete(oldest)
        this.#layerEntries -= s
      }
      return { index }
    } catch (err) {
      return { index: null, problem: problemOf(err) }
    }
  }
}

/**
 * One layer's index straight from the store: its metadata, then its
 * tar-split file (or, for a layer stored without one, the tar its driver
 * generates). The driver's files must be there too: a layer whose files are
 * gone is reported even though its tar-split alone could be listed, since
 * nothing could be run or exported from it.
 */
export async function readLayerIndex(store: Store, chain: LayerInfo['chainId']): Promise<LayerIndex> {
  const info = await store.layers.info(chain)
  const what = `layer ${chain}`
  if (!(await store.driver.exists(info.cacheId))) {
    throw new StrataError('NOT_FOUND', `The files of ${what} are missing: the ${store.driver.name} driver has no layer "${info.cacheId}"`, {
      hint: 'strata check reports (and --repair removes) what cannot be trusted',
    })
  }
  if (info.hasTarSplit) {
    const path = join(store.layers.paths.layerDir(chain), LAYER_FILES.tarSplit)
    if (!existsSync(path)) throw new StrataError('NOT_FOUND', `The tar-split metadata of ${what} is missing ("${path}")`)
    return indexFromTarSplit(path, what)
  }
  const exported = await store.layers.export(chain)
  exported.verified.catch(() => {})
  return indexFromTar(exported.stream, what)
}
