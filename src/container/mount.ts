/**
 * Mounting a container's rootfs and undoing it (strata mount / umount),
 * apart from lifecycle.ts's other verbs, whose modules (the archive
 * writer for export, the process verbs for remove) a cold `strata mount`
 * would otherwise initialise.
 */
import { StrataError, isStrataError } from '../errors/index.js'
import type { Store } from '../store/index.js'

/** Mounts the container's rootfs (counted across processes) and returns its path. */
export async function mountContainer(store: Store, ref: string): Promise<string> {
  const c = await store.containers.get(ref)
  return store.layers.mount(c.id)
}

/** Drops one mountContainer(); the last one unmounts. INVALID_ARGUMENT when not mounted. */
export async function unmountContainer(store: Store, ref: string): Promise<void> {
  const c = await store.containers.get(ref)
  try {
    await store.layers.unmount(c.id)
  } catch (err) {
    // The layer store names its mount (the container's full ID); the user named the container.
    if (isStrataError(err, 'INVALID_ARGUMENT') && err.details.name === c.id) {
      throw new StrataError('INVALID_ARGUMENT', `Container ${ref === c.id ? c.id.slice(0, 12) : `"${ref}"`} is not mounted`, { cause: err, details: { id: c.id } })
    }
    throw err
  }
}
