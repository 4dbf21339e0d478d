/**
 * What the image verbs (list, inspect, history, rmi, prune, df) share: a
 * snapshot of every image with its children counted, the layers with their
 * sizes, an image's chain and size, and the extension point through which
 * containers take part.
 *
 * dockerd answers these from memory; strata reads the store's files each
 * time, so a snapshot is taken once per call and the verbs work from it.
 */
import { chainIds, type Digest } from '../digest/index.js'
import { imageUsers, type Container, type ImageUser } from '../containerdb/index.js'
import { isStrataError } from '../errors/index.js'
import type { Image, ImageID, Reference } from '../image/index.js'
import type { ChainID, LayerInfo } from '../layer/index.js'
import type { Store } from './index.js'

/**
 * Which containers use image `id`: rmi refuses an image a container uses
 * unless forced (a running one even then), prune skips it, df counts it
 * as active. The verbs take their answers from `store.containers`
 * (containersOf); a caller may pass its own (ContainerUsageOptions).
 */
export type ContainersUsing = (id: ImageID) => Promise<ImageUser[]>

export interface ContainerUsageOptions {
  /** Which containers use an image; default: containersOf(store). */
  containersUsing?: ContainersUsing
}

/** The default ContainersUsing: the store's container records, read once per verb. */
export function containersOf(store: Store): ContainersUsing {
  let all: Promise<Container[]> | undefined
  return async (id) => imageUsers(await (all ??= store.containers.list()), id)
}

/** The chainID of every layer of the image, base first. */
export function chainOf(image: Image): ChainID[] {
  return chainIds(image.config.rootfs.diff_ids)
}

export function topChainOf(image: Image): ChainID | null {
  return chainOf(image).at(-1) ?? null
}

/** Every image in the store, read once, with what the verbs ask of it. */
export interface ImageSnapshot {
  images: Map<ImageID, Image>
  /** How many images name each image as their parent. */
  childCount: Map<ImageID, number>
  /** Every layer by chainID. */
  layers: Map<ChainID, LayerInfo>
  /** Every reference to each image, as ReferenceStore.all() sorts them. */
  refs: Map<ImageID, Reference[]>
}

/**
 * Reads every image, layer and reference. Images that cannot be read (a
 * damaged config; `strata check` reports it) or were deleted meanwhile are
 * left out, as dockerd never loads them.
 */
export async function snapshot(store: Store): Promise<ImageSnapshot> {
  const images = new Map<ImageID, Image>()
  for (const id of await store.images.list()) {
    try {
      images.set(id, await store.images.get(id))
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND') || isStrataError(err, 'CORRUPT')) continue
      throw err
    }
  }
  const childCount = new Map<ImageID, number>()
  for (const image of images.values()) {
    if (image.parent !== undefined && images.has(image.parent)) childCount.set(image.parent, (childCount.get(image.parent) ?? 0) + 1)
  }
  const layers = new Map<ChainID, LayerInfo>()
  for (const l of await store.layers.list()) layers.set(l.chainId, l)
  const refs = new Map<ImageID, Reference[]>()
  for (const { ref, id } of await store.references.all()) {
    const list = refs.get(id) ?? []
    list.push(ref)
    refs.set(id, list)
  }
  return { images, childCount, layers, refs }
}

/**
 * The image's size as docker reports it (the top layer's Size(): the `size`
 * of every layer of its chain added up); undefined when a layer is missing.
 */
export function imageSize(image: Image, layers: ReadonlyMap<ChainID, LayerInfo>): number | undefined {
  let total = 0
  for (const chain of chainOf(image)) {
    const info = layers.get(chain)
    if (info === undefined) return undefined
    total += info.size
  }
  return total
}

/** Newest first, as dockerd sorts its image list (by created, then ID so that ties come out the same every time). */
export function byCreatedDesc(a: { created: number; id: Digest }, b: { created: number; id: Digest }): number {
  return b.created - a.created || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}
