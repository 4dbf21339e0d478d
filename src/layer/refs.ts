/**
 * References and garbage collection of read-only layers (see types.ts for
 * the model).
 *
 * A handle is a shared flock on the layer's directory, taken under the
 * data-root lock so it cannot race a deletion. Releasing the last one
 * starts a collection at that layer: under the data-root lock, a layer
 * nobody holds (an exclusive try-lock succeeds), that no live layer has as
 * parent, no mount has as parent and no image references is renamed to
 * `<hex>-<random>-removing` (dockerd's orphan convention) while that
 * exclusive lock is kept; then its parent is considered the same way. The
 * driver data and the renamed directories are removed after the data-root
 * lock is released, children first (drivers refuse to remove a parent
 * first); whoever finds a `-removing` directory nobody holds (a deleter
 * that crashed) finishes it in recovery.
 */
import { readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { parseDigest } from '../digest/index.js'
import { StrataError, isErrno, isStrataError } from '../errors/index.js'
import type { StoreContext } from './context.js'
import { removeDriverLayer } from './driver-layers.js'
import { fsyncPath, readTextIfExists, DirLock } from '../fs/index.js'
import { MOUNT_FILES, readCacheIdIfAny, readLayerInfo, readParentIfAny } from './metadata.js'
import { HEX64_RE } from './paths.js'
import type { ChainID, LayerHandle, LayerInfo } from './types.js'

/**
 * Takes a shared lock on `chain`'s directory and reads it. Call under the
 * data-root lock. NOT_FOUND when the layer does not exist.
 */
export async function acquireLayer(ctx: StoreContext, chain: ChainID): Promise<{ info: LayerInfo; lock: DirLock }> {
  const dir = ctx.paths.layerDir(chain)
  let lock: DirLock | undefined
  try {
    lock = DirLock.tryAcquire(dir, 'shared')
  } catch (err) {
    if (isStrataError(err, 'NOT_FOUND')) throw new StrataError('NOT_FOUND', `Layer ${chain} does not exist`, { cause: err, details: { chainId: chain } })
    throw err
  }
  // Exclusive holders probe or delete only under the data-root lock, which we hold.
  if (lock === undefined) throw new StrataError('IN_USE', `Layer ${chain} is being deleted by another process`, { details: { chainId: chain } })
  try {
    return { info: await readLayerInfo(dir, chain), lock }
  } catch (err) {
    lock.close()
    throw err
  }
}

/** A live reference; see LayerHandle. */
export class Handle implements LayerHandle {
  readonly chainId: ChainID
  readonly diffId: LayerInfo['diffId']
  readonly parent: ChainID | null
  readonly cacheId: string
  readonly size: number
  readonly hasTarSplit: boolean
  readonly #ctx: StoreContext
  readonly #collect: boolean
  #lock: DirLock | undefined

  /**
   * `collect` false makes a protective hold (export, check): its release
   * only unlocks, it never deletes a layer nothing else refers to.
   */
  constructor(ctx: StoreContext, info: LayerInfo, lock: DirLock, collect = true) {
    this.chainId = info.chainId
    this.diffId = info.diffId
    this.parent = info.parent
    this.cacheId = info.cacheId
    this.size = info.size
    this.hasTarSplit = info.hasTarSplit
    this.#ctx = ctx
    this.#collect = collect
    this.#lock = lock
  }

  get released(): boolean {
    return this.#lock === undefined
  }

  /**
   * Drops the reference without collecting anything: for a failed
   * operation that must leave the store exactly as it found it, even a
   * layer nothing else refers to.
   */
  unlock(): void {
    this.#lock?.close()
    this.#lock = undefined
  }

  /** Drops the reference (a second call does nothing) and collects what nothing refers to any more. */
  async release(): Promise<void> {
    const lock = this.#lock
    if (lock === undefined) return
    this.#lock = undefined
    if (!this.#collect) {
      lock.close()
      return
    }
    // Let go under the data-root lock, in the same hold as the collection: released
    // first, the layer would be unreferenced and unheld for a moment, and a check
    // looking then would take it for an orphan.
    const doomed = await this.#ctx.lock.withLock(() => {
      lock.close()
      return markUnreferenced(this.#ctx, this.chainId)
    })
    await deleteDoomed(this.#ctx, doomed)
  }

  toJSON(): LayerInfo {
    const { chainId, diffId, parent, cacheId, size, hasTarSplit } = this
    return { chainId, diffId, parent, cacheId, size, hasTarSplit }
  }
}

export async function getHandle(ctx: StoreContext, chain: ChainID, collect = true): Promise<Handle> {
  const { info, lock } = await ctx.lock.withLock(() => acquireLayer(ctx, chain))
  return new Handle(ctx, info, lock, collect)
}

/** Who refers to which layer on disk, as of one scan (taken under the data-root lock). */
class References {
  readonly #children = new Map<ChainID, number>()
  readonly #mountParents = new Set<ChainID>()
  readonly #images: ReadonlySet<ChainID>

  private constructor(images: ReadonlySet<ChainID>) {
    this.#images = images
  }

  static async scan(ctx: StoreContext): Promise<References> {
    const refs = new References((await ctx.imageReferences?.()) ?? new Set())
    for (const name of await listDir(ctx.paths.sha256)) {
      if (!HEX64_RE.test(name)) continue
      const parent = await readParentIfAny(join(ctx.paths.sha256, name))
      if (parent) refs.#children.set(parent, (refs.#children.get(parent) ?? 0) + 1)
    }
    for (const name of await listDir(ctx.paths.mounts)) {
      const text = await readTextIfExists(join(ctx.paths.mounts, name, MOUNT_FILES.parent))
      if (text === undefined) continue
      try {
        refs.#mountParents.add(parseDigest(text.trim()))
      } catch {
        // A malformed record refers to nothing we can name; check() reports it.
      }
    }
    return refs
  }

  has(chain: ChainID): boolean {
    return (this.#children.get(chain) ?? 0) > 0 || this.#mountParents.has(chain) || this.#images.has(chain)
  }

  /** `child` is gone: it no longer keeps `parent`. */
  dropChild(parent: ChainID): void {
    const n = this.#children.get(parent) ?? 0
    if (n > 1) this.#children.set(parent, n - 1)
    else this.#children.delete(parent)
  }
}

/**
 * Layers nothing refers to (no image, no mount, no child layer) and no
 * live process holds. Call under the data-root lock.
 */
export async function unreferencedLayers(ctx: StoreContext): Promise<ChainID[]> {
  const refs = await References.scan(ctx)
  const out: ChainID[] = []
  for (const name of await listDir(ctx.paths.sha256)) {
    if (!HEX64_RE.test(name)) continue
    const chain = parseDigest(name)
    if (refs.has(chain) || DirLock.isHeld(ctx.paths.layerDir(chain))) continue
    out.push(chain)
  }
  return out
}

/** Sorted entries of `dir`; none when it is missing or not a directory. */
export async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort()
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return []
    throw err
  }
}

/** A layer taken out of sha256/ whose driver data and directory are still to be removed. */
export interface Doomed {
  chainId: ChainID
  cacheId: string | undefined
  /** The `-removing` directory. */
  dir: string
  /** Exclusive, so recovery leaves the directory to us. */
  lock: DirLock
}

/** Renames `dir` to a fresh `-removing` name of `chain` (retrying a name that happens to exist). */
export async function renameToRemoving(ctx: StoreContext, chain: ChainID, dir: string): Promise<string> {
  for (;;) {
    const target = ctx.paths.removingDir(chain)
    try {
      await rename(dir, target)
      return target
    } catch (err) {
      if (!isErrno(err, 'EEXIST', 'ENOTEMPTY')) throw err
    }
  }
}

/**
 * The metadata half of a collection, under the data-root lock: from
 * `start` down the parent chain, every layer nothing refers to is renamed
 * to `-removing` and returned, child first.
 */
async function markUnreferenced(ctx: StoreContext, start: ChainID): Promise<Doomed[]> {
  const doomed: Doomed[] = []
  let refs: References | undefined
  let chain: ChainID | null = start
  try {
    while (chain !== null) {
      const dir = ctx.paths.layerDir(chain)
      let probe: DirLock | undefined
      try {
        probe = DirLock.tryAcquire(dir, 'exclusive')
      } catch (err) {
        if (isStrataError(err, 'NOT_FOUND')) break
        throw err
      }
      if (probe === undefined) break // a live handle
      let removing: string
      let parent: ChainID | null | undefined
      let cacheId: string | undefined
      try {
        refs ??= await References.scan(ctx)
        if (refs.has(chain)) {
          probe.close()
          break
        }
        parent = await readParentIfAny(dir)
        cacheId = await readCacheIdIfAny(dir)
        removing = await renameToRemoving(ctx, chain, dir)
      } catch (err) {
        probe.close()
        throw err
      }
      doomed.push({ chainId: chain, cacheId, dir: removing, lock: probe })
      // An unreadable parent file (undefined) ends the walk: we cannot tell whose child this was.
      if (parent) refs.dropChild(parent)
      chain = parent ?? null
    }
    if (doomed.length > 0) await fsyncPath(ctx.paths.sha256)
  } catch (err) {
    // What was renamed already stays `-removing`; recovery finishes it.
    for (const d of doomed) d.lock.close()
    throw err
  }
  return doomed
}

/**
 * The heavy half, without the data-root lock: driver data, then the
 * directory, child first. Stops at the first failure (the parents would
 * fail too, having a child); what is left stays `-removing` for recovery.
 */
export async function deleteDoomed(ctx: StoreContext, doomed: Doomed[]): Promise<void> {
  for (let i = 0; i < doomed.length; i++) {
    const d = doomed[i]!
    try {
      if (d.cacheId !== undefined) await removeDriverLayer(ctx.driver, d.cacheId)
      await rm(d.dir, { recursive: true, force: true })
    } catch (err) {
      for (const rest of doomed.slice(i)) rest.lock.close()
      throw new StrataError('SYSCALL', `Deleting layer ${d.chainId} failed: ${(err as Error).message}`, {
        cause: err,
        hint: 'the layer is out of use; the next open of the store finishes deleting it',
        details: { chainId: d.chainId, cacheId: d.cacheId, dir: d.dir },
      })
    }
    d.lock.close()
  }
}

/** Deletes `start` and then its ancestors for as long as nothing refers to them; returns the chainIDs deleted. */
export async function collectGarbage(ctx: StoreContext, start: ChainID | null): Promise<ChainID[]> {
  if (start === null) return []
  const doomed = await ctx.lock.withLock(() => markUnreferenced(ctx, start))
  await deleteDoomed(ctx, doomed)
  return doomed.map((d) => d.chainId)
}
