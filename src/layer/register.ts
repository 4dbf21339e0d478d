/**
 * Registering a read-only layer from a layer tar (plain, gzip or zstd), as
 * dockerd's layerStore.Register does, in a transaction:
 *
 *  1. a handle on the parent for the whole registration (it cannot be
 *     deleted under us);
 *  2. `tmp/write-set-<random>/` made and locked, `cache-id` and `parent`
 *     written BEFORE the driver layer is created, so a crash leaves a
 *     transaction that recovery can undo completely;
 *  3. driver.create + driver.applyLayer (one pass: diffID, compressed
 *     digest, applied size, tar-split lines into tar-split.json.gz);
 *  4. `diff` and `size`, everything fsynced;
 *  5. under the data-root lock: if the chainID exists already (another
 *     registration won), ours is discarded and a handle on the existing
 *     one is returned (created: false); else the transaction directory is
 *     renamed to `sha256/<chainID hex>` and its lock becomes the handle.
 *
 * Any failure undoes everything (driver layer, transaction) before the
 * error is rethrown: the store is exactly as it was.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { chainId as chainIdOf, type Digest } from '../digest/index.js'
import { StrataError, isStrataError } from '../errors/index.js'
import type { TarSplitFile } from '../archive/tarsplit/index.js'
import type { StoreContext } from './context.js'
import { removeDriverLayer } from './driver-layers.js'
import { pathExists } from './files.js'
import { LAYER_FILES } from './metadata.js'
import { newRandomId } from './paths.js'
import { acquireLayer, getHandle, Handle } from './refs.js'
import { Transaction } from './transaction.js'
import type { ChainID, RegisterOptions, RegisterResult } from './types.js'

/** Counts the bytes flowing from `source` for onProgress. */
function counting(source: Readable, onProgress: (bytesRead: number) => void): Readable {
  let total = 0
  const counter = new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
      total += chunk.length
      try {
        onProgress(total)
      } catch (err) {
        cb(err as Error)
        return
      }
      cb(null, chunk)
    },
  })
  source.on('error', (err) => counter.destroy(err))
  return source.pipe(counter)
}

/** The chainID of a layer with diffID `diffId` on `parent`. */
export function childChainId(parent: ChainID | null, diffId: Digest): ChainID {
  return parent === null ? diffId : chainIdOf([parent, diffId])
}

export async function registerLayer(ctx: StoreContext, source: Readable, parent: ChainID | null, opts: RegisterOptions = {}): Promise<RegisterResult> {
  // docker load's shortcut: a layer we already have is not read again.
  if (opts.expectedDiffId !== undefined) {
    const known = childChainId(parent, opts.expectedDiffId)
    try {
      const layer = await getHandle(ctx, known)
      source.destroy()
      return { layer, created: false, digest: opts.expectedDiffId, compressedSize: 0, compression: 'none', sourceRead: false }
    } catch (err) {
      if (!isStrataError(err, 'NOT_FOUND')) {
        source.destroy()
        throw err
      }
    }
  }

  let parentHandle: Handle | undefined
  if (parent !== null) {
    try {
      parentHandle = await getHandle(ctx, parent)
    } catch (err) {
      source.destroy()
      if (isStrataError(err, 'NOT_FOUND')) {
        throw new StrataError('NOT_FOUND', `Cannot register a layer on ${parent}: the parent layer does not exist`, { cause: err, details: { parent } })
      }
      throw err
    }
  }

  let result: RegisterResult
  try {
    result = await registerInTransaction(ctx, source, parent, parentHandle?.cacheId ?? null, opts)
  } catch (err) {
    source.destroy()
    // As found: an unreferenced parent stays (a release here would collect it).
    parentHandle?.unlock()
    throw err
  }
  // The new layer refers to the parent on disk now, so this collects nothing.
  await parentHandle?.release()
  return result
}

async function registerInTransaction(
  ctx: StoreContext,
  source: Readable,
  parent: ChainID | null,
  parentCacheId: string | null,
  opts: RegisterOptions,
): Promise<RegisterResult> {
  const tx = await Transaction.start(ctx.paths.tmp, ctx.lock)
  const cacheId = newRandomId()
  let created = false
  let tarSplit: TarSplitFile | undefined
  try {
    await tx.writeFile(LAYER_FILES.cacheId, cacheId)
    if (parent !== null) await tx.writeFile(LAYER_FILES.parent, parent)

    await ctx.driver.create(cacheId, parentCacheId)
    created = true

    tarSplit = tx.tarSplitFile(LAYER_FILES.tarSplit)
    const input = opts.onProgress === undefined ? source : counting(source, opts.onProgress)
    const applied = await ctx.driver.applyLayer(cacheId, parentCacheId, input, {
      tarSplit: tarSplit.sink,
      ...(opts.expectedDiffId === undefined ? {} : { expectedDiffId: opts.expectedDiffId }),
    })
    const ts = tarSplit
    tarSplit = undefined
    await ts.close()
    await tx.finishFile(LAYER_FILES.tarSplit)
    await tx.writeFile(LAYER_FILES.diff, applied.diffId)
    await tx.writeFile(LAYER_FILES.size, String(applied.size))

    const chain = childChainId(parent, applied.diffId)
    const outcome = await ctx.lock.withLock(async () => {
      const dir = ctx.paths.layerDir(chain)
      if (await pathExists(dir)) return { existing: await acquireLayer(ctx, chain) }
      await tx.commit(dir)
      return { existing: undefined }
    })
    const base = { digest: applied.digest, compressedSize: applied.compressedSize, compression: applied.compression, sourceRead: true }
    if (outcome.existing !== undefined) {
      // Someone registered the same chainID meanwhile: theirs stays, ours goes.
      const layer = new Handle(ctx, outcome.existing.info, outcome.existing.lock)
      try {
        await removeDriverLayer(ctx.driver, cacheId)
        await tx.cancel()
      } catch (err) {
        await layer.release().catch(() => {})
        throw err
      }
      return { layer, created: false, ...base }
    }
    const info = {
      chainId: chain,
      diffId: applied.diffId,
      parent,
      cacheId,
      size: applied.size,
      hasTarSplit: true,
    }
    return { layer: new Handle(ctx, info, tx.takeLock()), created: true, ...base }
  } catch (err) {
    tarSplit?.abort()
    const cleanup: unknown[] = []
    if (created) await removeDriverLayer(ctx.driver, cacheId).catch((e: unknown) => cleanup.push(e))
    await tx.cancel().catch((e: unknown) => cleanup.push(e))
    if (cleanup.length > 0 && err instanceof StrataError) {
      err.details.cleanupFailures = cleanup.map((e) => (e as Error).message)
    }
    throw err
  }
}
