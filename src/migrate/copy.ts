/**
 * Moving one read-only layer, or one container's mount, from the source
 * driver to the target driver in the stage, verifying it, and staging its
 * layerdb entry (the rules are in types.ts). Each step first records the
 * target ids it is about to create as pending, so a crash leaves nothing
 * the next run cannot find and remove.
 */
import { randomBytes } from 'node:crypto'
import { chmod, copyFile, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { assembleTar, createTarSplitFile, directoryFileGetter, readTarSplit } from '../archive/index.js'
import type { Digest } from '../digest/index.js'
import { StrataError, isErrno, isStrataError } from '../errors/index.js'
import { pathExists } from '../fs/index.js'
import type { DiffFiles, GraphDriver } from '../graphdriver/index.js'
import { LAYER_FILES, MOUNT_FILES, type LayerDbPaths } from '../layer/index.js'
import { clearPending, markPending, type MigrationPaths } from './journal.js'
import type { MigrateProgress, PlannedLayer, PlannedMount } from './types.js'
import { compareViews } from './verify-view.js'

export interface CopyContext {
  paths: MigrationPaths
  source: GraphDriver
  target: GraphDriver
  /** The source's layerdb (in the root) and the stage's. */
  sourceDb: LayerDbPaths
  stageDb: LayerDbPaths
  /** Target ids of staged layers, by chainID; filled as layers are staged. */
  stagedLayers: Map<Digest, string>
  /** Target ids of layers applied but not yet verified and staged (their children are applied on them meanwhile). */
  appliedLayers: Map<Digest, string>
  onProgress: (event: MigrateProgress) => void
}

const FILE_MODE = 0o644
const LAYER_DIR_MODE = 0o700
const MOUNT_DIR_MODE = 0o755

const newId = (): string => randomBytes(32).toString('hex')

/** A layer's files, readable until released (GraphDriver.holdDiffFiles where the driver must mount them, else diffFilesDir). */
export async function holdFiles(driver: GraphDriver, id: string): Promise<DiffFiles> {
  if (driver.holdDiffFiles !== undefined) return driver.holdDiffFiles(id)
  return { dir: await driver.diffFilesDir(id), release: async () => {} }
}

/** Yields `gen`'s chunks, then (or when the consumer stops early) releases the files they were read from. */
async function* releasing(gen: AsyncIterable<Buffer>, files: DiffFiles): AsyncGenerator<Buffer> {
  try {
    yield* gen
  } finally {
    await files.release()
  }
}

/** A pass-through that reports the bytes that went by. */
function counting(onBytes: (total: number) => void): Transform {
  let total = 0
  let last = 0
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      total += chunk.length
      // Progress at most every 1 MiB: bars need no more.
      if (total - last >= 1 << 20) {
        last = total
        onBytes(total)
      }
      done(null, chunk)
    },
    flush(done) {
      onBytes(total)
      done()
    },
  })
}

/** Builds an entry directory under the stage's layerdb tmp/ and renames it into place: staged, or not at all. */
async function stageEntry(db: LayerDbPaths, final: string, mode: number, fill: (dir: string) => Promise<void>): Promise<void> {
  await mkdir(db.tmp, { recursive: true, mode: 0o755 })
  const tmp = join(db.tmp, `write-set-${randomBytes(8).toString('hex')}`)
  await mkdir(tmp, { mode })
  try {
    await fill(tmp)
    await chmod(tmp, mode)
    await syncDir(tmp)
    await rename(tmp, final)
  } catch (err) {
    await rm(tmp, { recursive: true, force: true })
    throw err
  }
  await syncDir(join(final, '..'))
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

async function writeMeta(dir: string, name: string, content: string): Promise<void> {
  await writeFile(join(dir, name), content, { mode: FILE_MODE })
  await chmod(join(dir, name), FILE_MODE)
}

async function copyMeta(from: string, dir: string, name: string): Promise<boolean> {
  try {
    await copyFile(join(from, name), join(dir, name))
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false
    throw err
  }
  await chmod(join(dir, name), FILE_MODE)
  return true
}

/** Removes a target layer a failed step created; a removal that fails is left to the pending marker. */
async function undo(ctx: CopyContext, ids: readonly string[]): Promise<void> {
  for (const id of [...ids].reverse()) {
    try {
      if (await ctx.target.exists(id)) await ctx.target.remove(id)
      await clearPending(ctx.paths, id)
    } catch {
      // the marker stays: the next run removes the layer
    }
  }
}

/** An error of a step, said in the migration's terms (a full disk named as such), keeping its code. */
function stepFailed(err: unknown, what: string): StrataError {
  const e = err as Error & { code?: string }
  const full = isErrno(err, 'ENOSPC', 'EDQUOT') || /no space left|quota exceeded/i.test(e.message ?? '')
  const code = isStrataError(err) ? err.code : 'SYSCALL'
  return new StrataError(code, `Migrating ${what} failed: ${full ? 'no space left on the device' : e.message}`, {
    cause: err,
    hint: full ? 'free some space on the data root\'s filesystem, then run the same `strata migrate` again: it continues where it stopped' : 'run the same `strata migrate` again to retry; what is done stays done',
    details: { ...(isStrataError(err) ? err.details : {}), noSpace: full },
  })
}

/** A layer applied to the target and not yet verified: verify() checks and stages it, undo() removes it. */
export interface AppliedLayer {
  verify(): Promise<void>
  undo(): Promise<void>
}

/**
 * Copies read-only layer `layer` (parents are applied first): the source's
 * tar rebuilt from tar-split (checked against the diffID while it streams)
 * or from its diff, applied to a new target layer. The returned verify()
 * rebuilds the tar again from the target's files, checks it and stages the
 * layer with a copy of the source's metadata and the new cache-id and size;
 * the migration runs it while the next layer is applied, so the second read
 * of each layer overlaps the next one's write. The target id is known to
 * the children (ctx.appliedLayers) as soon as the apply is done.
 */
export async function applyLayerCopy(ctx: CopyContext, layer: PlannedLayer, index: number, total: number): Promise<AppliedLayer> {
  const progress = (step: 'copy' | 'verify' | 'done', bytes: number): void =>
    ctx.onProgress({ kind: 'layer', index, total, chainId: layer.chainId, diffId: layer.diffId, step, bytes, totalBytes: layer.size })
  const what = `layer ${layer.chainId} (${index + 1} of ${total})`
  const parentTarget = layer.parent === null ? null : ctx.appliedLayers.get(layer.parent) ?? ctx.stagedLayers.get(layer.parent)
  if (parentTarget === undefined) throw new StrataError('CORRUPT', `Cannot migrate ${what}: its parent ${layer.parent} was not migrated`)
  const parentSource = layer.parent === null ? null : await readCacheId(ctx.sourceDb, layer.parent)
  const srcDir = ctx.sourceDb.layerDir(layer.chainId)
  const srcTarSplit = join(srcDir, LAYER_FILES.tarSplit)
  const hasTarSplit = await pathExists(srcTarSplit)
  const id = newId()
  await markPending(ctx.paths, id, layer.chainId)
  const newTarSplit = join(ctx.paths.pending, `${id}.tar-split.json.gz`)
  const undoAll = async (): Promise<void> => {
    ctx.appliedLayers.delete(layer.chainId)
    await rm(newTarSplit, { force: true })
    await undo(ctx, [id])
  }
  let applied: { size: number; tarSize: number }
  try {
    progress('copy', 0)
    await ctx.target.create(id, parentTarget)
    let source: Readable
    if (hasTarSplit) {
      const files = await holdFiles(ctx.source, layer.cacheId)
      // Not hashed here: applyLayer's expectedDiffId checks these same bytes.
      source = Readable.from(releasing(assembleTar(readTarSplit(srcTarSplit), directoryFileGetter(files.dir), { what: `${what} in ${ctx.source.name}` }), files))
    } else {
      source = await ctx.source.diff(layer.cacheId, parentSource)
    }
    const recorder = hasTarSplit ? undefined : createTarSplitFile(newTarSplit)
    try {
      applied = await ctx.target.applyLayer(id, parentTarget, source.pipe(counting((n) => progress('copy', n))), { expectedDiffId: layer.diffId, tarSplit: recorder?.sink })
      await recorder?.close()
    } catch (err) {
      recorder?.abort()
      throw err
    }
  } catch (err) {
    await undoAll()
    throw stepFailed(err, what)
  }
  ctx.appliedLayers.set(layer.chainId, id)

  const verify = async (): Promise<void> => {
    try {
      progress('verify', applied.tarSize)
      const tarSplit = hasTarSplit ? srcTarSplit : newTarSplit
      const files = await holdFiles(ctx.target, id)
      // assembleTar hashes what it rebuilds and throws DIGEST_MISMATCH when it is not the diffID.
      for await (const chunk of releasing(assembleTar(readTarSplit(tarSplit), directoryFileGetter(files.dir), { expectedDigest: layer.diffId, what: `the migrated copy of ${what} in ${ctx.target.name}` }), files)) void chunk
      await stageEntry(ctx.stageDb, ctx.stageDb.layerDir(layer.chainId), LAYER_DIR_MODE, async (dir) => {
        await copyMeta(srcDir, dir, LAYER_FILES.diff)
        await copyMeta(srcDir, dir, LAYER_FILES.parent)
        await writeMeta(dir, LAYER_FILES.size, String(applied.size))
        await writeMeta(dir, LAYER_FILES.cacheId, id)
        await copyFile(tarSplit, join(dir, LAYER_FILES.tarSplit))
        await chmod(join(dir, LAYER_FILES.tarSplit), FILE_MODE)
      })
      ctx.stagedLayers.set(layer.chainId, id)
      ctx.appliedLayers.delete(layer.chainId)
      await rm(newTarSplit, { force: true })
      await clearPending(ctx.paths, id)
      progress('done', applied.tarSize)
    } catch (err) {
      await undoAll()
      throw stepFailed(err, what)
    }
  }
  return { verify, undo: undoAll }
}

/**
 * Copies a container's mount: its init layer and read-write layer as the
 * source driver's diffs, applied to new target layers on the migrated
 * image layer, verified by comparing the container's filesystem as both
 * drivers mount it, then staged with the new mount-id and init-id, which
 * is returned.
 */
export async function copyMount(ctx: CopyContext, mount: PlannedMount, index: number, total: number): Promise<string> {
  let moved = 0
  const progress = (step: 'copy' | 'verify' | 'done'): void => ctx.onProgress({ kind: 'mount', index, total, name: mount.name, step, bytes: moved, totalBytes: mount.size })
  const what = `the mount of container ${mount.name} (${index + 1} of ${total})`
  const parentTarget = mount.parent === null ? null : ctx.stagedLayers.get(mount.parent)
  if (parentTarget === undefined) throw new StrataError('CORRUPT', `Cannot migrate ${what}: its image layer ${mount.parent} was not migrated`)
  const parentSource = mount.parent === null ? null : await readCacheId(ctx.sourceDb, mount.parent)
  const mountId = newId()
  const initId = mount.initId === null ? null : `${mountId}-init`
  const created: string[] = []
  try {
    progress('copy')
    const applyAs = async (id: string, below: string | null, sourceId: string, sourceBelow: string | null): Promise<void> => {
      await markPending(ctx.paths, id, mount.name)
      created.push(id)
      await ctx.target.createReadWrite(id, below)
      const before = moved
      // Lossless: a container's files move with their nanosecond mtimes and every xattr.
      const tar = await ctx.source.diff(sourceId, sourceBelow, { headers: 'lossless' })
      await ctx.target.applyDiff(id, below, tar.pipe(counting((n) => {
        moved = before + n
        progress('copy')
      })))
    }
    if (initId !== null) await applyAs(initId, parentTarget, mount.initId!, parentSource)
    await applyAs(mountId, initId ?? parentTarget, mount.mountId, mount.initId ?? parentSource)

    progress('verify')
    const changed = new Set<string>()
    for (const c of await ctx.source.changes(mount.mountId, mount.initId ?? parentSource)) if (c.kind !== 'D') changed.add(c.path)
    if (mount.initId !== null) for (const c of await ctx.source.changes(mount.initId, parentSource)) if (c.kind !== 'D') changed.add(c.path)
    const sourceView = await ctx.source.get(mount.mountId)
    try {
      const targetView = await ctx.target.get(mountId)
      try {
        await compareViews(sourceView, targetView, changed, `container ${mount.name}`)
      } finally {
        await ctx.target.put(mountId)
      }
    } finally {
      await ctx.source.put(mount.mountId)
    }

    const srcDir = ctx.sourceDb.mountDir(mount.name)
    await stageEntry(ctx.stageDb, ctx.stageDb.mountDir(mount.name), MOUNT_DIR_MODE, async (dir) => {
      await writeMeta(dir, MOUNT_FILES.mountId, mountId)
      if (initId !== null) await writeMeta(dir, MOUNT_FILES.initId, initId)
      await copyMeta(srcDir, dir, MOUNT_FILES.parent)
      await copyMeta(srcDir, dir, MOUNT_FILES.count)
    })
    for (const id of created) await clearPending(ctx.paths, id)
    progress('done')
    return mountId
  } catch (err) {
    await undo(ctx, created)
    throw stepFailed(err, what)
  }
}

async function readCacheId(db: LayerDbPaths, chain: Digest): Promise<string> {
  return (await readFile(join(db.layerDir(chain), LAYER_FILES.cacheId), 'utf8')).trim()
}
