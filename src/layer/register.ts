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
 *  4. `diff` and `size`, then every file and the directory fsynced in one
 *     round (transaction.ts, Durability);
 *  5. under the data-root lock: if the chainID exists already (another
 *     registration won), ours is discarded and a handle on the existing
 *     one is returned (created: false); else the transaction directory is
 *     renamed to `sha256/<chainID hex>` and its lock becomes the handle.
 *
 * Any failure undoes everything (driver layer, transaction) before the
 * error is rethrown: the store is exactly as it was.
 */
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream'
import { chainId as chainIdOf, type Digest } from '../digest/index.js'
import { StrataError, isStrataError } from '../errors/index.js'
import { fileRangeOf, withFileRange, type TarSplitFile } from '../archive/index.js'
import type { LayerApplyResult } from '../graphdriver/index.js'
import type { StoreContext } from './context.js'
import { removeDriverLayer } from './driver-layers.js'
import { pathExists } from '../fs/index.js'
import { LAYER_FILES } from './metadata.js'
import { newRandomId } from './paths.js'
import { acquireLayer, getHandle, Handle } from './refs.js'
import { Transaction } from './transaction.js'
import type { ChainID, RegisterOptions, RegisterResult } from './types.js'

/**
 * Counts the bytes flowing from `source` for onProgress. A source marked
 * as a file's range (src/archive/file-source.ts) stays one, counted by
 * whoever reads the file, and is read only when the result is.
 */
export function counting(source: Readable, onProgress: (bytesRead: number) => void): Readable {
  const range = fileRangeOf(source)
  if (range !== undefined) {
    const counted = Readable.from(
      (async function* () {
        let total = 0
        for await (const chunk of source as AsyncIterable<Buffer>) {
          total += chunk.length
          onProgress(total)
          yield chunk
        }
      })(),
      { objectMode: false },
    )
    counted.once('close', () => source.destroy())
    return withFileRange(counted, { ...range, onRead: (n) => (range.onRead?.(n), onProgress(n)) })
  }
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
  // pipeline, not pipe: a source that already failed or closed early fails the counter too, instead of leaving it waiting.
  pipeline(source, counter, () => {})
  return counter
}

/** The chainID of a layer with diffID `diffId` on `parent`. */
export function childChainId(parent: ChainID | null, diffId: Digest): ChainID {
  return parent === null ? diffId : chainIdOf([parent, diffId])
}

export async function registerLayer(ctx: StoreContext, source: Readable, parent: ChainID | null, opts: RegisterOptions = {}): Promise<RegisterResult> {
  // Until the apply attaches its own listeners (after the parent lookup,
  // which may take a while on a busy machine), an error the source emits
  // would have no listener and kill the process as an uncaught exception.
  // It stays on the stream (source.errored) and the apply reports it.
  const holdErrors = (): void => {}
  source.on('error', holdErrors)
  try {
    return await registerLayerHeld(ctx, source, parent, opts)
  } finally {
    source.off('error', holdErrors)
  }
}

async function registerLayerHeld(ctx: StoreContext, source: Readable, parent: ChainID | null, opts: RegisterOptions): Promise<RegisterResult> {
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

/**
 * A registration between its steps: the transaction (locked, holding
 * cache-id and parent) and the driver layer created for it, not applied
 * or not committed yet. registerChain drives several of these at once.
 */
export interface PendingLayer {
  readonly tx: Transaction
  readonly cacheId: string
  /** The chainID the new layer goes on (null: a base layer). */
  readonly parent: ChainID | null
  /** What applyPending learned; set once the apply succeeded. */
  applied?: LayerApplyResult
}

/**
 * Steps 2 and the first half of 3: the transaction, its cache-id and
 * parent files, then the driver layer. On failure nothing is left.
 */
export async function preparePending(ctx: StoreContext, parent: ChainID | null, parentCacheId: string | null): Promise<PendingLayer> {
  const tx = await Transaction.start(ctx.paths.tmp, ctx.lock)
  const cacheId = newRandomId()
  let created = false
  try {
    // Both before the driver layer exists: recovery and live processes read cache-id to know whose
    // driver layer it is. Written, not yet fsynced: applyPending's one sync round makes them durable
    // with the rest before anything is published (transaction.ts, Durability).
    await Promise.all([tx.writeFile(LAYER_FILES.cacheId, cacheId), parent === null ? undefined : tx.writeFile(LAYER_FILES.parent, parent)])
    await ctx.driver.create(cacheId, parentCacheId)
    created = true
  } catch (err) {
    const cleanup: unknown[] = []
    if (created) await removeDriverLayer(ctx.driver, cacheId).catch((e: unknown) => cleanup.push(e))
    await tx.cancel().catch((e: unknown) => cleanup.push(e))
    throw withCleanupFailures(err, cleanup)
  }
  return { tx, cacheId, parent }
}

/**
 * The rest of steps 3 and 4: applies `source` to the pending layer's
 * driver layer (recording tar-split), then writes `diff` and `size`. On
 * failure the pending layer is left for abandonPending.
 */
export async function applyPending(ctx: StoreContext, p: PendingLayer, parentCacheId: string | null, source: Readable, opts: RegisterOptions): Promise<LayerApplyResult> {
  let tarSplit: TarSplitFile | undefined = p.tx.tarSplitFile(LAYER_FILES.tarSplit)
  try {
    const input = opts.onProgress === undefined ? source : counting(source, opts.onProgress)
    const applied = await ctx.driver.applyLayer(p.cacheId, parentCacheId, input, {
      tarSplit: tarSplit.sink,
      ...(opts.expectedDiffId === undefined ? {} : { expectedDiffId: opts.expectedDiffId }),
      ...(opts.inThread === true ? { inThread: true } : {}),
      ...(opts.sourceDigest === undefined ? {} : { sourceDigest: opts.sourceDigest }),
    })
    const ts = tarSplit
    tarSplit = undefined
    await ts.close()
    await Promise.all([p.tx.finishFile(LAYER_FILES.tarSplit), p.tx.writeFile(LAYER_FILES.diff, applied.diffId), p.tx.writeFile(LAYER_FILES.size, String(applied.size))])
    // One wait for the disk: cache-id, parent, tar-split, diff, size and the directory fsynced side
    // by side, outside the data-root lock (strata commit's fsyncs were 5 sequential rounds, then 3).
    await p.tx.sync()
    p.applied = applied
    return applied
  } catch (err) {
    tarSplit?.abort()
    source.destroy()
    throw err
  }
}

export type CommitOutcome =
  | { kind: 'created'; result: RegisterResult }
  /** The chainID was registered by someone else meanwhile: a handle on theirs; ours is still pending. */
  | { kind: 'exists'; layer: Handle }

/** Step 5: publishes an applied pending layer, unless its chainID exists already (then ours is left pending). */
export async function commitPending(ctx: StoreContext, p: PendingLayer): Promise<CommitOutcome> {
  const applied = p.applied
  if (applied === undefined) throw new StrataError('INVALID_ARGUMENT', `Layer ${p.cacheId} cannot be committed before it is applied`)
  const chain = childChainId(p.parent, applied.diffId)
  const outcome = await ctx.lock.withLock(async () => {
    const dir = ctx.paths.layerDir(chain)
    if (await pathExists(dir)) return { existing: await acquireLayer(ctx, chain) }
    await p.tx.commit(dir)
    return { existing: undefined }
  })
  if (outcome.existing !== undefined) return { kind: 'exists', layer: new Handle(ctx, outcome.existing.info, outcome.existing.lock) }
  const info = { chainId: chain, diffId: applied.diffId, parent: p.parent, cacheId: p.cacheId, size: applied.size, hasTarSplit: true }
  return { kind: 'created', result: { layer: new Handle(ctx, info, p.tx.takeLock()), created: true, ...sourceFacts(applied) } }
}

/** Undoes a pending layer: its driver layer, then its transaction. Returns what could not be undone. */
export async function abandonPending(ctx: StoreContext, p: PendingLayer): Promise<unknown[]> {
  const failures: unknown[] = []
  await removeDriverLayer(ctx.driver, p.cacheId).catch((e: unknown) => failures.push(e))
  await p.tx.cancel().catch((e: unknown) => failures.push(e))
  return failures
}

/** What a register result says about its source, from the apply. */
export function sourceFacts(applied: LayerApplyResult): Pick<RegisterResult, 'digest' | 'compressedSize' | 'compression' | 'sourceRead'> {
  return { digest: applied.digest, compressedSize: applied.compressedSize, compression: applied.compression, sourceRead: true }
}

/** Attaches cleanup failures to a StrataError's details (the first error stays the one reported). */
export function withCleanupFailures(err: unknown, cleanup: unknown[]): unknown {
  if (cleanup.length > 0 && err instanceof StrataError) {
    err.details.cleanupFailures = cleanup.map((e) => (e as Error).message)
  }
  return err
}

async function registerInTransaction(
  ctx: StoreContext,
  source: Readable,
  parent: ChainID | null,
  parentCacheId: string | null,
  opts: RegisterOptions,
): Promise<RegisterResult> {
  const p = await preparePending(ctx, parent, parentCacheId)
  let outcome: CommitOutcome
  try {
    await applyPending(ctx, p, parentCacheId, source, opts)
    outcome = await commitPending(ctx, p)
  } catch (err) {
    throw withCleanupFailures(err, await abandonPending(ctx, p))
  }
  if (outcome.kind === 'created') return outcome.result
  // Someone registered the same chainID meanwhile: theirs stays, ours goes.
  const failures = await abandonPending(ctx, p)
  if (failures.length > 0) {
    await outcome.layer.release().catch(() => {})
    throw failures[0]
  }
  return { layer: outcome.layer, created: false, ...sourceFacts(p.applied!) }
}
