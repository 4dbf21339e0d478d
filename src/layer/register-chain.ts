/**
 * registerChain: the layers of an image registered bottom-up, all or
 * nothing, and, where the driver allows it, applied at the same time.
 *
 * When every layer comes with its diffID (an image config gives them),
 * every chainID is known before anything is read. Layers whose chainID
 * exists are taken as they are (a handle, the source never opened; they
 * are always a prefix of the chain, since a layer exists only on its
 * parent). For the rest, when the driver applies a layer without reading
 * its parent's files (`parallelApply`: overlay2's diff dir starts empty):
 *
 *  1. bottom-up, each layer's transaction and driver layer are created on
 *     the one below (fast: a few files each);
 *  2. the applies run, up to `concurrency` at once, largest source first
 *     (ChainLayerSource.size; lowest first among equals or unknowns), each
 *     in a worker thread (the driver's business), so several cores hash,
 *     parse and write at once;
 *  3. bottom-up, each layer is committed as soon as it and everything
 *     below it are applied, and reported through onLayer.
 *
 * Otherwise (vfs copies the parent, btrfs snapshots it; or a layer without
 * a diffID) the layers are registered one after the other.
 *
 * All or nothing: when anything fails, the other sources are destroyed,
 * every apply is awaited (no worker is left writing), the pending layers
 * are undone top-down (their driver layers and transactions), the layers
 * this call created are released top-down (which deletes them) and the
 * ones it found are let go without collecting anything, so the store is
 * as it was. A process killed meanwhile leaves locked-free transactions
 * and perhaps committed layers no image uses, exactly what a crash during
 * one-by-one registration leaves; recovery on the next open removes the
 * transactions and their driver layers (children before parents).
 *
 * A race: another process registers one of our chainIDs between our
 * check and our commit. For the top layer, theirs is taken and ours
 * dropped, as register() does. Below the top, our layers above already sit
 * on our copy, so ours above it are dropped and registered again, one by
 * one, on theirs: their sources are opened a second time.
 */
import { availableParallelism } from 'node:os'
import { Readable } from 'node:stream'
import { StrataError, isStrataError } from '../errors/index.js'
import type { StoreContext } from './context.js'
import { getHandle, type Handle } from './refs.js'
import {
  abandonPending,
  applyPending,
  childChainId,
  commitPending,
  preparePending,
  registerLayer,
  sourceFacts,
  withCleanupFailures,
  type PendingLayer,
} from './register.js'
import type { ChainID, ChainLayerSource, RegisterOptions, RegisterResult, RegisterChainOptions } from './types.js'

/** How many layers apply at once by default: one per core, at least two (reading and writing overlap too). */
export function defaultChainConcurrency(): number {
  return Math.max(2, availableParallelism())
}

function registerOptions(layer: ChainLayerSource): RegisterOptions {
  return {
    ...(layer.expectedDiffId === undefined ? {} : { expectedDiffId: layer.expectedDiffId }),
    ...(layer.onProgress === undefined ? {} : { onProgress: layer.onProgress }),
    ...(layer.sourceDigest === undefined ? {} : { sourceDigest: layer.sourceDigest }),
  }
}

/**
 * Lets go of results after a failure, top-down: created layers are
 * released (deleted, since nothing refers to them yet), found ones only
 * unlocked (a layer nothing refers to that was there before stays).
 */
async function rollBack(results: readonly RegisterResult[], failures: unknown[]): Promise<void> {
  for (const r of [...results].reverse()) {
    if (r.created) await r.layer.release().catch((e: unknown) => failures.push(e))
    else (r.layer as Handle).unlock()
  }
}

export async function registerChain(ctx: StoreContext, layers: readonly ChainLayerSource[], parent: ChainID | null, opts: RegisterChainOptions = {}): Promise<RegisterResult[]> {
  const concurrency = opts.concurrency ?? defaultChainConcurrency()
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new StrataError('INVALID_ARGUMENT', `registerChain: concurrency must be a whole number of at least 1, not ${concurrency}`)
  }
  // One layer too: this path opens the source before the apply, so a layer that is a file's range
  // reaches the apply marked as such (src/archive/file-source.ts) and its worker reads the file itself.
  const parallel = concurrency > 1 && layers.length > 0 && ctx.driver.parallelApply === true && layers.every((l) => l.expectedDiffId !== undefined)
  // The parent is held for the whole call, so that a rollback collects nothing below what it found.
  let base: Handle | undefined
  if (parent !== null) {
    try {
      base = await getHandle(ctx, parent)
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND')) {
        throw new StrataError('NOT_FOUND', `Cannot register a layer on ${parent}: the parent layer does not exist`, { cause: err, details: { parent } })
      }
      throw err
    }
  }
  const results: RegisterResult[] = []
  try {
    if (parallel) await registerConcurrently(ctx, layers, parent, base?.cacheId ?? null, opts, concurrency, results)
    else await registerOneByOne(ctx, layers, 0, parent, opts, results)
  } catch (err) {
    const failures: unknown[] = []
    await rollBack(results, failures)
    base?.unlock()
    throw withCleanupFailures(err, failures)
  }
  // The new layers refer to it on disk now: this collects nothing.
  await base?.release()
  return results
}

/** Registers layers[from..] one after the other on `below`, appending to `results`. */
async function registerOneByOne(
  ctx: StoreContext,
  layers: readonly ChainLayerSource[],
  from: number,
  below: ChainID | null,
  opts: RegisterChainOptions,
  results: RegisterResult[],
): Promise<void> {
  for (let i = from; i < layers.length; i++) {
    const layer = layers[i]!
    // register() opens nothing for a layer that exists; open lazily for the same reason.
    const result = await registerLayer(ctx, lazySource(layer), below, registerOptions(layer))
    results.push(result)
    opts.onLayer?.(i, result)
    below = result.layer.chainId
  }
}

/**
 * A Readable that calls `layer.open()` only when first read: register()
 * destroys the source unread when the layer exists, and then open() is
 * never called, as ChainLayerSource promises.
 */
function lazySource(layer: ChainLayerSource): Readable {
  let inner: Readable | undefined
  let it: AsyncIterator<unknown> | undefined
  const out = new Readable({
    async read() {
      try {
        if (it === undefined) {
          inner = await layer.open()
          it = inner[Symbol.asyncIterator]() as AsyncIterator<unknown>
        }
        const r = await it.next()
        this.push(r.done === true ? null : (r.value as Buffer))
      } catch (err) {
        this.destroy(err as Error)
      }
    },
    destroy(err, cb) {
      inner?.destroy()
      cb(err)
    },
  })
  return out
}

async function registerConcurrently(
  ctx: StoreContext,
  layers: readonly ChainLayerSource[],
  parent: ChainID | null,
  parentCacheId: string | null,
  opts: RegisterChainOptions,
  concurrency: number,
  results: RegisterResult[],
): Promise<void> {
  const chains: ChainID[] = []
  let c = parent
  for (const l of layers) chains.push((c = childChainId(c, l.expectedDiffId!)))
  await takeExistingPrefix(ctx, chains, opts, results)
  const start = results.length
  if (start === layers.length) return
  // The driver layer the first new one goes on (held: a found layer by its result's handle, the parent by the caller's).
  const baseCacheId = start > 0 ? results[start - 1]!.layer.cacheId : parentCacheId
  const run = new ConcurrentRun(ctx, layers, chains, parent, start, baseCacheId, concurrency)
  try {
    await run.prepare()
    run.startApplies()
    await run.commitInOrder(opts, results)
  } catch (err) {
    throw await run.abort(err)
  }
}

/** Layers that exist, a prefix of the chain: taken as they are (a handle each), their sources never opened. */
async function takeExistingPrefix(ctx: StoreContext, chains: readonly ChainID[], opts: RegisterChainOptions, results: RegisterResult[]): Promise<void> {
  while (results.length < chains.length) {
    const i = results.length
    let layer: Handle
    try {
      layer = await getHandle(ctx, chains[i]!)
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND')) return
      throw err
    }
    const result: RegisterResult = { layer, created: false, digest: layer.diffId, compressedSize: 0, compression: 'none', sourceRead: false }
    results.push(result)
    opts.onLayer?.(i, result)
  }
}

/** At most `size` holders at once; waiters are let in in the order they came. */
class Slots {
  #free: number
  readonly #waiters: Array<() => void> = []

  constructor(size: number) {
    this.#free = size
  }

  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--
      return
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve))
  }

  release(): void {
    const wake = this.#waiters.shift()
    if (wake !== undefined) wake()
    else this.#free++
  }
}

/** The layers start.. of one concurrent registration, through its three phases (see the header) or its abort. */
class ConcurrentRun {
  readonly #ctx: StoreContext
  readonly #layers: readonly ChainLayerSource[]
  readonly #chains: readonly ChainID[]
  readonly #parent: ChainID | null
  readonly #start: number
  readonly #baseCacheId: string | null
  readonly #slots: Slots
  readonly #pending: Array<PendingLayer | undefined>
  /** Per layer index: its apply, settled once it is done (observed in order by the commits). */
  readonly #applies: Array<Promise<void>>
  readonly #sources = new Set<Readable>()
  #failed = false
  /** The error that started a failure (later ones are its consequences: sources destroyed by stop). */
  #firstError: unknown
  readonly #cleanup: unknown[] = []

  constructor(ctx: StoreContext, layers: readonly ChainLayerSource[], chains: readonly ChainID[], parent: ChainID | null, start: number, baseCacheId: string | null, concurrency: number) {
    this.#ctx = ctx
    this.#layers = layers
    this.#chains = chains
    this.#parent = parent
    this.#start = start
    this.#baseCacheId = baseCacheId
    this.#slots = new Slots(concurrency)
    this.#pending = new Array(layers.length)
    this.#applies = new Array(layers.length)
  }

  /** The driver layer layer `i` goes on. */
  #belowCacheId(i: number): string | null {
    return i === this.#start ? this.#baseCacheId : this.#pending[i - 1]!.cacheId
  }

  /** 1. Transactions and driver layers, bottom-up. */
  async prepare(): Promise<void> {
    for (let i = this.#start; i < this.#layers.length; i++) {
      this.#pending[i] = await preparePending(this.#ctx, i === 0 ? this.#parent : this.#chains[i - 1]!, this.#belowCacheId(i))
    }
  }

  /**
   * 2. Applies, up to `concurrency` at once, largest first: the slots let
   * waiters in in the order they asked. Lowest first, the largest layer
   * of an image (often the last) started when the others were done and
   * ran alone at the end, one core idle: with 2 slots and the bench
   * image's 27, 21 and 43 MB blobs the last 43 MB waited for the first
   * 21. Largest first, the last slot frees while the largest still runs.
   */
  startApplies(): void {
    const order: number[] = []
    for (let i = this.#start; i < this.#layers.length; i++) order.push(i)
    // Array.prototype.sort is stable: equal or unknown sizes keep chain order.
    order.sort((a, b) => (this.#layers[b]!.size ?? 0) - (this.#layers[a]!.size ?? 0))
    for (const i of order) {
      const p = this.#applyOne(i)
      p.catch(() => {}) // observed by the commits, in order
      this.#applies[i] = p
    }
  }

  #stop(): void {
    if (this.#failed) return
    this.#failed = true
    for (const s of this.#sources) s.destroy()
  }

  async #applyOne(i: number): Promise<void> {
    // Read now: the commits clear pending[i - 1] once that layer is committed, which may happen while this one waits for a slot or its source.
    const parentCacheId = this.#belowCacheId(i)
    await this.#slots.acquire()
    try {
      if (this.#failed) throw new StrataError('INVALID_ARGUMENT', 'registerChain: cancelled after another layer failed')
      const source = await this.#layers[i]!.open()
      if (this.#failed) {
        source.destroy()
        throw new StrataError('INVALID_ARGUMENT', 'registerChain: cancelled after another layer failed')
      }
      this.#sources.add(source)
      try {
        await applyPending(this.#ctx, this.#pending[i]!, parentCacheId, source, registerOptions(this.#layers[i]!))
      } finally {
        this.#sources.delete(source)
      }
    } catch (err) {
      if (!this.#failed) this.#firstError = err
      this.#stop()
      throw err
    } finally {
      this.#slots.release()
    }
  }

  /** 3. Commits, bottom-up, each as soon as it and those below are applied. */
  async commitInOrder(opts: RegisterChainOptions, results: RegisterResult[]): Promise<void> {
    for (let i = this.#start; i < this.#layers.length; i++) {
      await this.#applies[i]
      const outcome = await commitPending(this.#ctx, this.#pending[i]!)
      if (outcome.kind === 'created') {
        this.#pending[i] = undefined
        results.push(outcome.result)
        opts.onLayer?.(i, outcome.result)
        continue
      }
      await this.#takeTheirs(i, outcome.layer, opts, results)
      return
    }
  }

  /** Someone else registered layer `i`'s chainID meanwhile: theirs stays, ours (and what sits on it) goes; the layers above go on theirs, one by one. */
  async #takeTheirs(i: number, theirLayer: Handle, opts: RegisterChainOptions, results: RegisterResult[]): Promise<void> {
    const facts = sourceFacts(this.#pending[i]!.applied!)
    this.#stop()
    await Promise.allSettled(this.#applies)
    await abandonFrom(this.#ctx, this.#pending, i, this.#cleanup)
    if (this.#cleanup.length > 0) {
      await theirLayer.release().catch(() => {})
      throw this.#cleanup[0]
    }
    const theirs: RegisterResult = { layer: theirLayer, created: false, ...facts }
    results.push(theirs)
    opts.onLayer?.(i, theirs)
    await registerOneByOne(this.#ctx, this.#layers, i + 1, this.#chains[i]!, opts, results)
  }

  /** After a failure: sources destroyed, every apply awaited (no worker may still write into a layer about to go), the pending layers undone. Returns the error to throw. */
  async abort(err: unknown): Promise<unknown> {
    this.#failed = true
    for (const s of this.#sources) s.destroy()
    await Promise.allSettled(this.#applies)
    await abandonFrom(this.#ctx, this.#pending, this.#start, this.#cleanup)
    return withCleanupFailures(this.#firstError ?? err, this.#cleanup)
  }
}

/** Undoes the pending layers from `from` up, top-down (a driver refuses to remove a parent first). */
async function abandonFrom(ctx: StoreContext, pending: Array<PendingLayer | undefined>, from: number, failures: unknown[]): Promise<void> {
  for (let i = pending.length - 1; i >= from; i--) {
    const p = pending[i]
    if (p === undefined) continue
    pending[i] = undefined
    failures.push(...(await abandonPending(ctx, p)))
  }
}
