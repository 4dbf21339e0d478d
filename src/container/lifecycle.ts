/**
 * The verbs on an existing container that only need its layer: mount,
 * unmount, changes (docker diff), export (docker export) and remove.
 * Each resolves the container first (ID, prefix or name), so errors name
 * what the caller typed.
 */
import { Readable } from 'node:stream'
import { sortChanges, exportOverlayUpper, type Change } from '../archive/index.js'
import { StrataError, isStrataError } from '../errors/index.js'
import type { Store } from '../store/index.js'
import { getContainer, killContainer, waitContainer } from './process.js'
import type { RemoveContainerOptions } from './types.js'

// mount and unmount live in mount.ts (a `strata mount` loads nothing else of this file's); re-exported here.
export { mountContainer, unmountContainer } from './mount.js'

/**
 * What the container changed, as `docker diff` lists it: against the init
 * layer, so Docker's init files are never listed, sorted by path.
 */
export async function containerChanges(store: Store, ref: string): Promise<Change[]> {
  const c = await store.containers.get(ref)
  return sortChanges(await store.layers.mountChanges(c.id))
}

/** `docker diff` lines: "A /path", "C /path", "D /path". */
export function formatChangeLines(changes: readonly Change[]): string {
  return changes.map((c) => `${c.kind} ${c.path}\n`).join('')
}

/**
 * The container's whole filesystem as a tar (docker export): the merged
 * rootfs, init files included, walked in byte order, the root dir itself
 * not an entry. The rootfs stays mounted until the stream ends or is
 * destroyed.
 */
export async function exportContainer(store: Store, ref: string): Promise<Readable> {
  const c = await store.containers.get(ref)
  const rootfs = await store.layers.mount(c.id)
  // The stream ends only after the unmount (a generator's finally runs
  // before it reports done), and destroying it runs the finally too.
  async function* generate(): AsyncGenerator<Buffer, void, undefined> {
    try {
      // The merged view shows no overlay whiteouts or opaque xattrs, so the
      // upper-dir walker is a plain tree walker here.
      for await (const chunk of exportOverlayUpper(rootfs)) yield chunk as Buffer
    } finally {
      await store.layers.unmount(c.id)
    }
  }
  return Readable.from(generate(), { objectMode: false })
}

/**
 * Removes a container: its layer (IN_USE while mounted unless force), then
 * its record. A running container is refused unless force, which kills it
 * and waits for its monitor to finish with it first (docker rm -f).
 */
export async function removeContainer(store: Store, ref: string, opts: RemoveContainerOptions = {}): Promise<string> {
  const c = await getContainer(store, ref)
  if (c.running) {
    if (opts.force !== true) {
      throw new StrataError('IN_USE', `You cannot remove a running container ${c.id}. Stop the container before attempting removal or force remove`, {
        details: { id: c.id },
      })
    }
    try {
      await killContainer(store, c.id, 'KILL')
    } catch (err) {
      // It stopped in between: fine.
      if (!isStrataError(err, 'IN_USE')) throw err
    }
    await waitContainer(store, c.id)
  }
  try {
    await store.layers.removeMount(c.id, { force: opts.force === true })
  } catch (err) {
    // A record whose layer is already gone (a crash mid-removal) is still removed.
    if (!isStrataError(err, 'NOT_FOUND')) throw err
  }
  try {
    await store.containers.remove(c.id)
  } catch (err) {
    // Removed meanwhile (its monitor's --rm): what was asked.
    if (!isStrataError(err, 'NOT_FOUND')) throw err
  }
  return c.id
}
