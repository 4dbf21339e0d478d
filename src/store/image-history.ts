/**
 * `docker history`: the image's build steps from its config's `history`,
 * newest first, as dockerd 20.10's ImageHistory gives them (the API's
 * image.HistoryResponseItem):
 * - a step that made a layer (no `empty_layer`) carries that layer's size
 *   (its layerdb `size`), matched to the diff_ids in order;
 * - IDs: the image's own on the newest step, then its parent's on the next,
 *   and so on while parent images are recorded and present (a local build);
 *   `<missing>` for the rest (a pulled or loaded image has no parents);
 * - Tags: the image's tags on the rows carrying an image ID.
 */
import { chainId } from '../digest/index.js'
import { StrataError, isStrataError } from '../errors/index.js'
import { familiarString, type Image, type ImageID } from '../image/index.js'
import type { Store } from './index.js'
import { unixSeconds } from '../fs/index.js'

/** docker's image.HistoryResponseItem. */
export interface ImageHistoryItem {
  Comment: string
  /** Unix seconds (Go's zero time when the step has none). */
  Created: number
  CreatedBy: string
  /** An image ID, or `<missing>`. */
  Id: string
  /** Bytes of the layer the step made (0 for an empty_layer step). */
  Size: number
  /** The tags of the image on this row; null when none. */
  Tags: string[] | null
}

export const MISSING_ID = '<missing>'

/** The history of an image by ID, short ID or reference, newest step first. */
export async function imageHistory(store: Store, nameOrId: string): Promise<ImageHistoryItem[]> {
  const image = await store.images.get(await store.findImage(nameOrId))
  const diffIds = image.config.rootfs.diff_ids
  const rows: ImageHistoryItem[] = []
  let layerIndex = 0
  for (const h of image.config.history ?? []) {
    let size = 0
    if (h.empty_layer !== true) {
      if (layerIndex >= diffIds.length) {
        throw new StrataError('CORRUPT', `Image ${image.id}: too many non-empty layers in History section`)
      }
      size = (await store.layers.info(chainId(diffIds.slice(0, layerIndex + 1)))).size
      layerIndex++
    }
    rows.unshift({ Comment: h.comment ?? '', Created: unixSeconds(h.created), CreatedBy: h.created_by ?? '', Id: MISSING_ID, Size: size, Tags: null })
  }
  // Walk up the parent chain, one image per row from the top.
  let current: Image | undefined = image
  for (const row of rows) {
    if (current === undefined) break
    row.Id = current.id
    const tags = (await store.references.referencesTo(current.id)).filter((r) => r.digest === undefined && r.tag !== undefined).map(familiarString)
    row.Tags = tags.length > 0 ? tags : null
    current = current.parent === undefined ? undefined : await getIfPresent(store, current.parent)
  }
  return rows
}

async function getIfPresent(store: Store, id: ImageID): Promise<Image | undefined> {
  try {
    return await store.images.get(id)
  } catch (err) {
    if (isStrataError(err, 'NOT_FOUND')) return undefined
    throw err
  }
}
