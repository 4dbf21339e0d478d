/**
 * Which images containers use, for image removal: docker rmi refuses an
 * image a container was created from ("image is being used by stopped
 * container ...") unless forced. The layers themselves are safe either way
 * (a container's mounted layer references its chain on disk); this is
 * about the image's config and tags.
 */
import type { ImageID } from '../image/index.js'
import type { ContainersUsing, Store } from '../store/index.js'
import { listContainers, listRecords } from './records.js'
import type { Container } from './types.js'

/** IDs of the containers created from `imageId` (empty when none). */
export async function containersUsingImage(store: Store, imageId: ImageID | string): Promise<string[]> {
  const id = imageId.startsWith('sha256:') ? imageId : `sha256:${imageId}`
  return (await listRecords(store.root)).filter((r) => r.Image === id).map((r) => r.ID)
}

/** Whether any container was created from `imageId`: the hook for rmi's isUsedByContainer. */
export async function imageInUse(store: Store, imageId: ImageID | string): Promise<boolean> {
  return (await containersUsingImage(store, imageId)).length > 0
}

/**
 * The store's ContainersUsing hook from container records: rmi refuses an
 * image a container was created from (a running one even with -f), prune
 * keeps it, `system df` counts it. Containers are listed once per verb.
 */
export function containersFromRecords(store: Store): ContainersUsing {
  let all: Promise<Container[]> | undefined
  return async (imageId) => {
    all ??= listContainers(store)
    return (await all).filter((c) => c.record.Image === imageId).map((c) => ({ id: c.id, running: c.running }))
  }
}
