/**
 * An image's merged root filesystem as the strata store presents it, for
 * comparing with what a peer unpacks or runs: a mounted layer (no init
 * layer, so none of Docker's container files) on the image's top chainID,
 * snapshotted with tree.ts, then unmounted and removed whatever happened.
 */
import { randomBytes } from 'node:crypto'
import { chainId, parseDigest } from '../../src/digest/index.js'
import { Store } from '../../src/store/index.js'
import { snapshotTree, type SnapshotOptions, type TreeEntry } from './tree.js'

/** Snapshot of `image` (a name or ID) in the store at `root` (driver: the root's own, or `driver`: vfs is never picked by itself). */
export async function snapshotImage(root: string, image: string, opts: SnapshotOptions = {}, driver?: string): Promise<Map<string, TreeEntry>> {
  const store = await Store.open(driver === undefined ? { root } : { root, driver })
  try {
    const id = await store.findImage(image)
    const { config } = await store.images.get(id)
    const diffIds = config.rootfs.diff_ids.map((d) => parseDigest(d))
    if (diffIds.length === 0) throw new Error(`image ${image} has no layers`)
    const name = `strata-test-view-${randomBytes(8).toString('hex')}`
    await store.layers.createMount(name, chainId(diffIds), { init: false })
    try {
      const rootfs = await store.layers.mount(name)
      try {
        return await snapshotTree(rootfs, opts)
      } finally {
        await store.layers.unmount(name)
      }
    } finally {
      await store.layers.removeMount(name, { force: true })
    }
  } finally {
    await store.close()
  }
}

/** The image ID and diffIDs the strata data root at `root` has for `ref` (the store opened and closed around the lookup). */
export async function storedImage(root: string, ref: string): Promise<{ id: string; diffIds: string[] }> {
  const store = await Store.open({ root })
  try {
    const id = await store.findImage(ref)
    return { id, diffIds: (await store.images.get(id)).config.rootfs.diff_ids }
  } finally {
    await store.close()
  }
}
