/**
 * renameContainer: docker rename. The container (ID, prefix or name) gets
 * `name`; the record store checks it is valid and free under its lock.
 */
import type { Store } from '../store/index.js'

/** Renames a container; NOT_FOUND, INVALID_ARGUMENT (bad or same name), ALREADY_EXISTS (taken). */
export async function renameContainer(store: Store, ref: string, name: string): Promise<void> {
  const c = await store.containers.get(ref)
  await store.containers.rename(c.id, name)
}
