/**
 * `docker image prune [-a]`: deletes unused images as dockerd 20.10's
 * ImagesPrune does, through the same removeImage as `rmi` (not forced, with
 * pruning of parents), so its rules hold:
 * - default (dangling only): images without children and without tags
 *   (digest references alone do not count as tags; they are removed);
 * - `all`: every image except intermediate ones (untagged, with children),
 *   tagged or not; an image a container uses stays (the conflict skips it),
 *   and so does one whose children remain;
 * - SpaceReclaimed: the `size` of every layer deleted on the way.
 * Conflicts skip an image silently, as in docker. Images are visited newest
 * first so that children go before the parents they free.
 */
import { isStrataError } from '../errors/index.js'
import { referenceString, type ImageID } from '../image/index.js'
import type { ChainID } from '../layer/index.js'
import type { Store } from './index.js'
import { unixSeconds } from '../fs/index.js'
import { byCreatedDesc, containersOf, snapshot, type ContainerUsageOptions } from './image-query.js'
import { removeImage, type ImageDeleteItem } from './image-remove.js'

export interface PruneImagesOptions extends ContainerUsageOptions {
  /** `-a`: all unused images, not only dangling ones. */
  all?: boolean
}

/** docker's types.ImagesPruneReport. */
export interface ImagesPruneReport {
  ImagesDeleted: ImageDeleteItem[]
  /** Bytes: the sizes of the layers deleted. */
  SpaceReclaimed: number
}

export async function pruneImages(store: Store, opts: PruneImagesOptions = {}): Promise<ImagesPruneReport> {
  const all = opts.all === true
  const using = opts.containersUsing ?? containersOf(store)
  const snap = await snapshot(store)
  const candidates: Array<{ id: ImageID; created: number }> = []
  for (const [id, image] of snap.images) {
    const children = snap.childCount.get(id) ?? 0
    const refs = snap.refs.get(id) ?? []
    if (!all && children > 0) continue // only heads
    if (refs.length === 0 && children > 0) continue // intermediate image
    candidates.push({ id, created: unixSeconds(image.config.created) })
  }
  candidates.sort(byCreatedDesc)

  const deleted: ImageDeleteItem[] = []
  for (const { id } of candidates) {
    if (!(await store.images.exists(id))) continue // went with a child before it
    const refs = await store.references.referencesTo(id)
    const targets: string[] = []
    if (refs.length > 0) {
      const hasTag = refs.some((r) => r.digest === undefined && r.tag !== undefined)
      if (all || !hasTag) targets.push(...refs.map(referenceString))
    } else targets.push(id)
    for (const target of targets) {
      try {
        deleted.push(...(await removeImage(store, target, { containersUsing: using })))
      } catch (err) {
        // A conflict, or the image went meanwhile: skip it, as docker does.
        if (isStrataError(err, 'IN_USE') || isStrataError(err, 'NOT_FOUND')) continue
        throw err
      }
    }
  }
  let reclaimed = 0
  for (const d of deleted) {
    const layer = d.Deleted === undefined ? undefined : snap.layers.get(d.Deleted as ChainID)
    if (layer !== undefined) reclaimed += layer.size
  }
  return { ImagesDeleted: deleted, SpaceReclaimed: reclaimed }
}
