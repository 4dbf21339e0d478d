/**
 * withNaiveDiff: the diff half of a driver, for drivers that store every
 * layer as a full tree (vfs, btrfs), as moby's graphdriver.NaiveDiffDriver.
 * Such a driver cannot say what a layer changed; it can only compare the
 * layer's tree with its parent's, file by file (changesNaive), and write a
 * tar of the differences (exportChanges).
 *
 * The wrapper relies on one thing: `get(id)` returns the layer's FULL tree
 * (parent content included), not just the layer's own changes. A driver
 * whose get returned a diff directory would make every comparison wrong.
 *
 * Differences from moby, on purpose:
 * - applyLayer's size is the sum of the tar's entry sizes (what moby's
 *   NaiveDiffDriver.ApplyDiff returns too).
 * - diffSize counts regular files only (hardlinked inodes once), where
 *   moby's ChangesSize also counts symlinks' lstat size. That makes it equal
 *   to what applyDiff returns for the same diff (the sum of the tar's entry
 *   sizes, in which symlinks, hardlinks and whiteouts weigh 0).
 * - No "sleep until the next second" after a diff: moby needs it because its
 *   comparison forgives sub-second mtimes; changesNaive compares them to the
 *   nanosecond (and, unless the driver turns it off, compares content).
 * - diff against no parent goes through changesNaive too (everything "A"),
 *   so entries come in sorted-path order instead of moby's walk order.
 */
import { lstatSync } from 'node:fs'
import { Readable } from 'node:stream'
import { applyLayer, changesNaive, exportChanges, type Change, type NaiveChangesOptions } from '../archive/index.js'
import { isErrno } from '../errors/index.js'
import type { ApplyLayerOptions, DiffOptions, GetOpts, GraphDriver, LayerApplyResult, PutOpts } from './types.js'

/** A driver without the diff methods: what withNaiveDiff completes. */
export type ProtoDriver = Omit<GraphDriver, 'diff' | 'changes' | 'applyDiff' | 'applyLayer' | 'diffSize'>

/**
 * Completes `driver` with diff, changes, applyDiff, applyLayer and diffSize computed by
 * comparing full trees. Every other method is the driver's own (calls are
 * forwarded, so the driver keeps its private state and `this`).
 * `compare` says how a layer's files are compared with its parent's (see
 * NaiveChangesOptions): btrfs tells when a snapshot was taken, vfs turns
 * content comparison off.
 */
export function withNaiveDiff(driver: ProtoDriver, compare: CompareOptionsFor = () => ({})): GraphDriver {
  return new NaiveDiffDriver(driver, compare)
}

/** The comparison options for diffs of layer `id`. */
export type CompareOptionsFor = (id: string) => NaiveChangesOptions

class NaiveDiffDriver implements GraphDriver {
  readonly #d: ProtoDriver
  readonly #compare: CompareOptionsFor

  constructor(driver: ProtoDriver, compare: CompareOptionsFor) {
    this.#d = driver
    this.#compare = compare
  }

  get name(): string {
    return this.#d.name
  }

  get home(): string {
    return this.#d.home
  }

  create(...args: Parameters<GraphDriver['create']>): Promise<void> {
    return this.#d.create(...args)
  }

  createReadWrite(...args: Parameters<GraphDriver['createReadWrite']>): Promise<void> {
    return this.#d.createReadWrite(...args)
  }

  remove(id: string): Promise<void> {
    return this.#d.remove(id)
  }

  get(id: string, opts?: GetOpts): Promise<string> {
    return this.#d.get(id, opts)
  }

  put(id: string, opts?: PutOpts): Promise<void> {
    return this.#d.put(id, opts)
  }

  mountedLayers(): Promise<string[]> {
    return this.#d.mountedLayers()
  }

  diffFilesDir(id: string): Promise<string> {
    return this.#d.diffFilesDir(id)
  }

  exists(id: string): Promise<boolean> {
    return this.#d.exists(id)
  }

  status(): Promise<Array<[string, string]>> {
    return this.#d.status()
  }

  getMetadata(id: string): Promise<Record<string, string>> {
    return this.#d.getMetadata(id)
  }

  cleanup(): Promise<void> {
    return this.#d.cleanup()
  }

  /** Runs `fn` with the full trees of `id` and `parent` (null when there is none), holding both for its duration. */
  async #withTrees<T>(id: string, parent: string | null, fn: (layerFs: string, parentFs: string | null) => Promise<T>): Promise<T> {
    const layerFs = await this.#d.get(id)
    try {
      if (parent === null) return await fn(layerFs, null)
      const parentFs = await this.#d.get(parent)
      try {
        return await fn(layerFs, parentFs)
      } finally {
        await this.#d.put(parent)
      }
    } finally {
      await this.#d.put(id)
    }
  }

  async changes(id: string, parent: string | null): Promise<Change[]> {
    return this.#withTrees(id, parent, (layerFs, parentFs) => changesNaive(layerFs, parentFs, this.#compare(id)))
  }

  /**
   * The layer tar of `id` against `parent`. `id` stays held (get) until the
   * stream ends, fails or is destroyed by the consumer, whichever comes
   * first; `parent` only while the changes are computed, since the tar is
   * read from `id` alone (moby releases it at the same point).
   */
  async diff(id: string, parent: string | null, opts: DiffOptions = {}): Promise<Readable> {
    const layerFs = await this.#d.get(id)
    let inner: Readable
    try {
      let changes: Change[]
      if (parent === null) {
        changes = await changesNaive(layerFs, null, this.#compare(id))
      } else {
        const parentFs = await this.#d.get(parent)
        try {
          changes = await changesNaive(layerFs, parentFs, this.#compare(id))
        } finally {
          await this.#d.put(parent)
        }
      }
      inner = exportChanges(layerFs, changes, opts)
    } catch (err) {
      await this.#d.put(id)
      throw err
    }

    let released: Promise<void> | undefined
    const release = (): Promise<void> => (released ??= this.#d.put(id))

    // The put happens inside the stream on the normal path, so a failing put
    // reaches the consumer as a stream error instead of vanishing.
    async function* guarded(): AsyncGenerator<Buffer, void, undefined> {
      try {
        for await (const chunk of inner) yield chunk as Buffer
      } finally {
        inner.destroy()
        await release()
      }
    }
    const out = Readable.from(guarded(), { objectMode: false })
    // A stream destroyed before it was ever read never runs the generator's
    // finally; 'close' comes in every case. Nobody is left to tell about a
    // failed put there, so it is dropped (the consumer already gave up).
    out.once('close', () => {
      inner.destroy()
      release().catch(() => {})
    })
    return out
  }

  /** applyLayer's size: the sum of the tar's entry sizes. */
  async applyDiff(id: string, parent: string | null, tar: Readable): Promise<number> {
    return (await this.applyLayer(id, parent, tar)).size
  }

  /**
   * Applies the layer tar (compressed or not) to `id`, which must be
   * freshly created and so hold a copy of `parent` already: whiteouts
   * delete. One pass hashes it and records tar-split. A failure leaves the
   * layer partly written and released, for the caller to remove.
   */
  async applyLayer(id: string, parent: string | null, source: Readable, opts: ApplyLayerOptions = {}): Promise<LayerApplyResult> {
    void parent // the layer already holds its parent's content (create copied or snapshotted it)
    const layerFs = await this.#d.get(id)
    try {
      return await applyLayer(layerFs, source, { whiteouts: 'full', tarSplit: opts.tarSplit, expectedDiffId: opts.expectedDiffId, sourceDigest: opts.sourceDigest })
    } finally {
      await this.#d.put(id)
    }
  }

  /**
   * Bytes of content diff would carry: the sizes of the regular files among
   * the "A" and "C" changes, each hardlinked inode once.
   */
  async diffSize(id: string, parent: string | null): Promise<number> {
    return this.#withTrees(id, parent, async (layerFs, parentFs) => {
      const changes = await changesNaive(layerFs, parentFs, this.#compare(id))
      return changesSize(layerFs, changes)
    })
  }
}

/** moby's archive.ChangesSize, restricted to regular files (see the module comment). */
function changesSize(layerFs: string, changes: Change[]): number {
  const seen = new Set<string>()
  let size = 0
  for (const c of changes) {
    if (c.kind === 'D') continue
    let st
    try {
      st = lstatSync(layerFs + c.path, { bigint: true })
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) continue // gone since the comparison, as exportChanges would skip it
      throw err
    }
    if (!st.isFile()) continue
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`
      if (seen.has(key)) continue
      seen.add(key)
    }
    size += Number(st.size)
  }
  return size
}
