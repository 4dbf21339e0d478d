/**
 * Mounted layers: a container's read-write layer on top of an image's top
 * layer, with Docker's init layer between them (dockerd's mountedLayer and
 * CreateRWLayer/ReleaseRWLayer), recorded in `layerdb/mounts/<name>/`.
 *
 * - create: a handle on the parent keeps it alive meanwhile; the record's
 *   files (mount-id, init-id, parent) are written into a transaction
 *   directory BEFORE the driver layers exist (recovery undoes a crash from
 *   them), then the init layer (`<mount-id>-init`, init files written
 *   through a driver get/put) and the RW layer are created, then the
 *   transaction is renamed to `mounts/<name>` (0755) under the data-root
 *   lock: a crash never leaves half a record.
 * - mount/unmount: `mount-count` (strata's own file; dockerd ignores it)
 *   counts outstanding `strata mount`s across processes, changed under the
 *   data-root lock by an atomic replace. The driver mount is persistent:
 *   made on the first, dropped on the last.
 * - changes/diff/size take a shared lock on the record's directory for
 *   their duration, so removal (which needs it exclusively) waits for them.
 * - remove: refused (IN_USE) while mounted unless forced; the record is
 *   moved to `tmp/removing-mount-<random>` (locked) under the data-root
 *   lock, the driver layers are removed (RW, then init), the directory
 *   deleted, and the parent chain collected like a released handle.
 */
import { rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import type { Change } from '../archive/index.js'
import { StrataError, isStrataError } from '../errors/index.js'
import type { StoreContext } from './context.js'
import { removeDriverLayer, removeDriverLayers } from './driver-layers.js'
import { pathExists, atomicWriteFile, DirLock } from '../fs/index.js'
import { setupInitLayer } from './initlayer.js'
import { driverIdsIn, MOUNT_FILES, readLayerInfo, readMountRecord } from './metadata.js'
import { FILE_MODE, MOUNT_DIR_MODE, REMOVING_MOUNT_PREFIX, newRandomId, validateMountName } from './paths.js'
import { acquireLayer, getHandle, Handle, listDir } from './refs.js'
import { Transaction } from './transaction.js'
import type { ChainID, CreateMountOptions, MountInfo } from './types.js'

export async function createMount(ctx: StoreContext, name: string, parent: ChainID | null, opts: CreateMountOptions = {}): Promise<MountInfo> {
  validateMountName(name)
  const dir = ctx.paths.mountDir(name)
  if (await pathExists(dir)) throw alreadyExists(name)
  let parentHandle: Handle | undefined
  if (parent !== null) {
    try {
      parentHandle = await getHandle(ctx, parent)
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND')) {
        throw new StrataError('NOT_FOUND', `Cannot create mount "${name}" on ${parent}: the layer does not exist`, { cause: err, details: { name, parent } })
      }
      throw err
    }
  }
  let info: MountInfo
  try {
    const tx = await Transaction.start(ctx.paths.tmp, ctx.lock)
    const mountId = newRandomId()
    // dockerd's name for the init layer, which drivers expect.
    const initId = opts.init === false ? null : `${mountId}-init`
    const created: string[] = []
    let synced: Promise<void> | undefined
    try {
      // The ids are on disk (in the page cache) before the driver layers they name exist: that is
      // what recovery and live processes read (transaction.ts, Durability).
      await tx.setMode(MOUNT_DIR_MODE)
      await Promise.all([
        tx.writeFile(MOUNT_FILES.mountId, mountId),
        initId === null ? undefined : tx.writeFile(MOUNT_FILES.initId, initId),
        parent === null ? undefined : tx.writeFile(MOUNT_FILES.parent, parent),
      ])
      // Made durable (the files and the directory, one round) while the driver builds the layers: the
      // wait for the disk overlaps the init layer's own fsyncs instead of adding two rounds of its own.
      // It only has to be done before the commit below publishes the record.
      synced = tx.sync()
      synced.catch(() => {}) // awaited below, or on failure before the cleanup

      let below = parentHandle?.cacheId ?? null
      if (initId !== null) {
        await ctx.driver.createReadWrite(initId, below)
        created.push(initId)
        // volatile: its put fsyncs the init layer's few files instead of the unmount syncing the whole filesystem (GetOpts.volatile).
        const rootfs = await ctx.driver.get(initId, { volatile: true })
        try {
          await setupInitLayer(rootfs)
          await opts.initContent?.(rootfs)
        } finally {
          await ctx.driver.put(initId)
        }
        below = initId
      }
      await ctx.driver.createReadWrite(mountId, below)
      created.push(mountId)

      await synced
      const conflict = await ctx.lock.withLock(async () => {
        if (await pathExists(dir)) return true
        await tx.commit(dir)
        return false
      })
      if (conflict) throw alreadyExists(name)
      tx.close()
      info = { name, mountId, initId, parent, mountCount: 0 }
    } catch (err) {
      await synced?.catch(() => {})
      for (const id of created.reverse()) await removeDriverLayer(ctx.driver, id).catch(() => {})
      await tx.cancel().catch(() => {})
      throw err
    }
  } catch (err) {
    // As found: an unreferenced parent stays (a release here would collect it).
    parentHandle?.unlock()
    throw err
  }
  // The record refers to the parent on disk now, so this collects nothing.
  await parentHandle?.release()
  return info
}

function alreadyExists(name: string): StrataError {
  return new StrataError('ALREADY_EXISTS', `Mount "${name}" already exists`, { details: { name } })
}

export async function getMount(ctx: StoreContext, name: string): Promise<MountInfo> {
  validateMountName(name)
  return readMountRecord(ctx.paths.mountDir(name), name)
}

/** Every mount record that reads well (check() reports the others). */
export async function listMounts(ctx: StoreContext): Promise<MountInfo[]> {
  const out: MountInfo[] = []
  for (const name of await listDir(ctx.paths.mounts)) {
    try {
      out.push(await readMountRecord(join(ctx.paths.mounts, name), name))
    } catch (err) {
      if (!isStrataError(err, 'CORRUPT') && !isStrataError(err, 'NOT_FOUND')) throw err
    }
  }
  return out
}

async function writeCount(ctx: StoreContext, name: string, count: number): Promise<void> {
  await atomicWriteFile(join(ctx.paths.mountDir(name), MOUNT_FILES.count), String(count), FILE_MODE)
}

/** Mounts the container's rootfs (persistently) and returns its path; counted in mount-count. */
export async function mountLayer(ctx: StoreContext, name: string): Promise<string> {
  validateMountName(name)
  return ctx.lock.withLock(async () => {
    const info = await readMountRecord(ctx.paths.mountDir(name), name)
    // A persistent get is not counted by the driver: mount-count is the count.
    const path = await ctx.driver.get(info.mountId, { persistent: true })
    try {
      await writeCount(ctx, name, info.mountCount + 1)
    } catch (err) {
      if (info.mountCount === 0) await ctx.driver.put(info.mountId, { persistent: true }).catch(() => {})
      throw err
    }
    return path
  })
}

/** Drops one mount(); the last one unmounts. INVALID_ARGUMENT when not mounted. */
export async function unmountLayer(ctx: StoreContext, name: string): Promise<void> {
  validateMountName(name)
  await ctx.lock.withLock(async () => {
    const info = await readMountRecord(ctx.paths.mountDir(name), name)
    if (info.mountCount === 0) {
      throw new StrataError('INVALID_ARGUMENT', `Mount "${name}" is not mounted`, { details: { name } })
    }
    if (info.mountCount === 1) await ctx.driver.put(info.mountId, { persistent: true })
    await writeCount(ctx, name, info.mountCount - 1)
  })
}

/** The driver layer a mount's changes are taken against: the init layer, else the image's top layer. */
async function cacheParent(ctx: StoreContext, info: MountInfo): Promise<string | null> {
  if (info.initId !== null) return info.initId
  if (info.parent === null) return null
  return (await readLayerInfo(ctx.paths.layerDir(info.parent), info.parent)).cacheId
}

/** A mount record held (shared lock on its directory) for an operation. */
async function holdMount(ctx: StoreContext, name: string): Promise<{ info: MountInfo; lock: DirLock; below: string | null }> {
  validateMountName(name)
  return ctx.lock.withLock(async () => {
    const dir = ctx.paths.mountDir(name)
    const info = await readMountRecord(dir, name)
    const lock = DirLock.tryAcquire(dir, 'shared')
    if (lock === undefined) throw new StrataError('IN_USE', `Mount "${name}" is being removed`, { details: { name } })
    try {
      return { info, lock, below: await cacheParent(ctx, info) }
    } catch (err) {
      lock.close()
      throw err
    }
  })
}

export async function mountChanges(ctx: StoreContext, name: string): Promise<Change[]> {
  const { info, lock, below } = await holdMount(ctx, name)
  try {
    return await ctx.driver.changes(info.mountId, below)
  } finally {
    lock.close()
  }
}

export async function mountSize(ctx: StoreContext, name: string): Promise<number> {
  const { info, lock, below } = await holdMount(ctx, name)
  try {
    return await ctx.driver.diffSize(info.mountId, below)
  } finally {
    lock.close()
  }
}

/** A layer tar of the container's changes; the record stays held until the stream ends or is destroyed. */
export async function mountDiff(ctx: StoreContext, name: string): Promise<Readable> {
  const { info, lock, below } = await holdMount(ctx, name)
  let stream: Readable
  try {
    stream = await ctx.driver.diff(info.mountId, below)
  } catch (err) {
    lock.close()
    throw err
  }
  stream.once('close', () => lock.close())
  return stream
}

export interface RemoveMountOptions {
  /** Unmount first when mounted (else IN_USE). */
  force?: boolean
}

/** `collect: false` (check's repair) leaves the parent chain alone instead of collecting it. */
export async function removeMount(ctx: StoreContext, name: string, opts: RemoveMountOptions & { collect?: boolean } = {}): Promise<void> {
  validateMountName(name)
  const dir = ctx.paths.mountDir(name)
  const taken = await ctx.lock.withLock(async () => {
    let info: MountInfo | undefined
    try {
      info = await readMountRecord(dir, name)
    } catch (err) {
      // A record too broken to read is removed only on request.
      if (!(isStrataError(err, 'CORRUPT') && opts.force === true)) throw err
    }
    if (info !== undefined && info.mountCount > 0 && opts.force !== true) {
      throw new StrataError('IN_USE', `Mount "${name}" is mounted (${info.mountCount} time${info.mountCount === 1 ? '' : 's'}); unmount it first`, {
        hint: 'or remove it with force',
        details: { name, mountCount: info.mountCount },
      })
    }
    const lock = DirLock.tryAcquire(dir, 'exclusive')
    if (lock === undefined) throw new StrataError('IN_USE', `Mount "${name}" is in use by another process`, { details: { name } })
    try {
      if (info !== undefined && info.mountCount > 0) {
        await ctx.driver.put(info.mountId, { persistent: true })
        await writeCount(ctx, name, 0)
      }
      // The parent stays referenced until the driver layers on it are gone.
      let parent: Handle | undefined
      if (info?.parent != null) {
        try {
          const held = await acquireLayer(ctx, info.parent)
          parent = new Handle(ctx, held.info, held.lock, opts.collect !== false)
        } catch (err) {
          if (!isStrataError(err, 'NOT_FOUND') && !isStrataError(err, 'CORRUPT')) throw err
        }
      }
      const moved = join(ctx.paths.tmp, `${REMOVING_MOUNT_PREFIX}${newRandomId().slice(0, 16)}`)
      await rename(dir, moved)
      return { info, lock, parent, moved }
    } catch (err) {
      lock.close()
      throw err
    }
  })
  const { info, lock, parent, moved } = taken
  try {
    if (info !== undefined) {
      try {
        await removeDriverLayer(ctx.driver, info.mountId)
      } catch (err) {
        // Nothing is lost yet: put the record back as it was.
        await ctx.lock.withLock(() => rename(moved, dir)).catch(() => {})
        throw err
      }
      if (info.initId !== null) await removeDriverLayer(ctx.driver, info.initId)
    } else {
      // A damaged record: whatever driver ids it still names go with it.
      const outcome = await removeDriverLayers(ctx.driver, await driverIdsIn(moved))
      if (outcome.failed.length > 0) throw outcome.failed[0]!.error
    }
    await rm(moved, { recursive: true, force: true })
  } finally {
    lock.close()
    await parent?.release()
  }
}
