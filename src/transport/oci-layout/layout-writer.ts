/**
 * Where an OCI layout is written: a directory or a tar file. Both take
 * blobs (named by their sha256, computed while they are written) and then
 * index.json, and publish nothing until commit():
 *
 * - DirectoryLayoutWriter: a destination that does not exist yet (or is an
 *   empty directory) is built as `.tmp-<dest><random>` beside it and
 *   renamed into place on commit. An existing layout is added to in place,
 *   as skopeo does: blobs already there are kept and not written again,
 *   each new blob goes to a temp file in the layout and is renamed to
 *   `blobs/sha256/<hex>` once complete, and index.json (temp + rename) is
 *   written by commit(), last, so a reader never sees an index naming a
 *   blob that is not all there. abort() removes the blobs this writer added.
 * - ArchiveLayoutWriter: the same layout as members of a tar file written
 *   to `.tmp-<dest><random>` (`oci-layout` first, index.json last) and
 *   renamed over the destination on commit.
 */
import { createWriteStream } from 'node:fs'
import { lstat, mkdir, readdir, rename, rm, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Digester, type Digest } from '../../digest/index.js'
import { StrataError, isErrno } from '../../errors/index.js'
import { atomicWriteFile, fsyncPath, readIfExists, refuseSpecialTarget, tempPathFor } from '../../fs/index.js'
import { TarFileWriter } from '../tar-file-writer.js'
import { INDEX_FILE, LAYOUT_FILE, LAYOUT_VERSION, blobPath, parseIndex, type ImageIndex } from './documents.js'

export interface WrittenBlob {
  digest: Digest
  size: number
}

export interface LayoutWriter {
  /** The index.json of the layout being added to, if any (its entries are kept). */
  readonly existingIndex: ImageIndex | undefined
  /** The size of the blob when the layout has it already (written by this writer or there before). */
  blobSize(digest: Digest): Promise<number | undefined>
  /** Writes a small blob (a manifest, a config); nothing is written when the layout has it. */
  putBlob(data: Buffer): Promise<WrittenBlob>
  /**
   * Streams a blob in, hashing it. With `expected`, a blob the layout has is
   * skipped by the caller, and bytes that do not hash to it are DIGEST_MISMATCH.
   */
  putBlobStream(source: Readable, opts?: { expected?: Digest; onBytes?: (n: number) => void }): Promise<WrittenBlob>
  /** Writes index.json (and, for a new layout, oci-layout): after every blob. */
  finish(index: Buffer): Promise<void>
  commit(): Promise<void>
  abort(): Promise<void>
}

const LAYOUT_BYTES = Buffer.from(JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }))

export class DirectoryLayoutWriter implements LayoutWriter {
  readonly dest: string
  readonly existingIndex: ImageIndex | undefined
  /** The directory being written: a temp sibling of dest for a new layout, dest itself otherwise. */
  readonly #work: string
  readonly #inPlace: boolean
  readonly #added: string[] = []
  readonly #known = new Map<Digest, number>()
  #index: Buffer | undefined

  private constructor(dest: string, work: string, inPlace: boolean, existingIndex: ImageIndex | undefined) {
    this.dest = dest
    this.#work = work
    this.#inPlace = inPlace
    this.existingIndex = existingIndex
  }

  static async open(dest: string): Promise<DirectoryLayoutWriter> {
    let entries: string[] | undefined
    try {
      const st = await lstat(dest)
      if (!st.isDirectory()) throw new StrataError('INVALID_ARGUMENT', `"${dest}" exists and is not a directory; an OCI layout is written to a directory`)
      entries = await readdir(dest)
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err
    }
    if (entries !== undefined && entries.length > 0) {
      if (!entries.includes(LAYOUT_FILE)) {
        throw new StrataError('INVALID_ARGUMENT', `"${dest}" is a directory that is not empty and not an OCI image layout (no "${LAYOUT_FILE}")`)
      }
      const raw = await readIfExists(join(dest, INDEX_FILE))
      let existing: ImageIndex | undefined
      if (raw !== undefined) {
        const where = `${INDEX_FILE} of the OCI layout "${dest}"`
        let doc: unknown
        try {
          doc = JSON.parse(raw.toString('utf8'))
        } catch (err) {
          throw new StrataError('CORRUPT', `${where} is not valid JSON: ${(err as Error).message}`, { cause: err })
        }
        existing = parseIndex(doc, where)
      }
      await mkdir(join(dest, 'blobs', 'sha256'), { recursive: true, mode: 0o755 })
      return new DirectoryLayoutWriter(dest, dest, true, existing)
    }
    const work = tempPathFor(dest)
    await mkdir(join(work, 'blobs', 'sha256'), { recursive: true, mode: 0o755 })
    return new DirectoryLayoutWriter(dest, work, false, undefined)
  }

  async blobSize(digest: Digest): Promise<number | undefined> {
    const known = this.#known.get(digest)
    if (known !== undefined) return known
    try {
      const st = await lstat(join(this.#work, blobPath(digest)))
      if (!st.isFile()) return undefined
      this.#known.set(digest, st.size)
      return st.size
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined
      throw err
    }
  }

  async putBlob(data: Buffer): Promise<WrittenBlob> {
    const d = new Digester()
    d.update(data)
    const digest = d.digest()
    if ((await this.blobSize(digest)) === undefined) await this.#publish(digest, data.length, (target) => atomicWriteFile(target, data, 0o644))
    return { digest, size: data.length }
  }

  async putBlobStream(source: Readable, opts: { expected?: Digest; onBytes?: (n: number) => void } = {}): Promise<WrittenBlob> {
    const tmp = tempPathFor(join(this.#work, 'blob'))
    const d = new Digester()
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            d.update(chunk)
            opts.onBytes?.(d.size)
            yield chunk
          }
        },
        createWriteStream(tmp, { flags: 'wx', mode: 0o644, flush: true }),
      )
      const digest = d.digest()
      if (opts.expected !== undefined && digest !== opts.expected) {
        throw new StrataError('DIGEST_MISMATCH', `Blob written to the OCI layout "${this.dest}" hashes to ${digest}, not the expected ${opts.expected}`, {
          details: { expected: opts.expected, actual: digest },
        })
      }
      if ((await this.blobSize(digest)) !== undefined) await unlink(tmp)
      else await this.#publish(digest, d.size, (target) => rename(tmp, target))
      return { digest, size: d.size }
    } catch (err) {
      await unlink(tmp).catch(() => {})
      throw err
    }
  }

  /** Puts a complete blob at blobs/sha256/<hex> with `place(target)` and remembers it for abort(). */
  async #publish(digest: Digest, size: number, place: (target: string) => Promise<void>): Promise<void> {
    const target = join(this.#work, blobPath(digest))
    await place(target)
    this.#known.set(digest, size)
    if (this.#inPlace) this.#added.push(target)
  }

  async finish(index: Buffer): Promise<void> {
    this.#index = index
    if (this.#inPlace) return // index.json is written by commit(), after everything else
    await atomicWriteFile(join(this.#work, LAYOUT_FILE), LAYOUT_BYTES, 0o644)
    await atomicWriteFile(join(this.#work, INDEX_FILE), index, 0o644)
    await fsyncPath(join(this.#work, 'blobs', 'sha256'))
  }

  async commit(): Promise<void> {
    if (this.#index === undefined) throw new StrataError('INVALID_ARGUMENT', `Nothing was written to the OCI layout "${this.dest}"`)
    if (this.#inPlace) {
      await fsyncPath(join(this.#work, 'blobs', 'sha256'))
      if ((await readIfExists(join(this.dest, LAYOUT_FILE))) === undefined) await atomicWriteFile(join(this.dest, LAYOUT_FILE), LAYOUT_BYTES, 0o644)
      await atomicWriteFile(join(this.dest, INDEX_FILE), this.#index, 0o644)
      this.#added.length = 0
      return
    }
    // rename(2) replaces an empty directory, and refuses (ENOTEMPTY) one that gained files meanwhile.
    await rename(this.#work, this.dest)
    await fsyncPath(dirname(this.dest))
  }

  async abort(): Promise<void> {
    if (!this.#inPlace) {
      await rm(this.#work, { recursive: true, force: true })
      return
    }
    for (const path of this.#added.splice(0)) await unlink(path).catch(() => {})
  }
}

export class ArchiveLayoutWriter implements LayoutWriter {
  readonly dest: string
  readonly existingIndex = undefined
  readonly #writer: TarFileWriter
  readonly #blobs = new Map<Digest, number>()
  #finished = false

  private constructor(dest: string, writer: TarFileWriter) {
    this.dest = dest
    this.#writer = writer
  }

  static async open(dest: string): Promise<ArchiveLayoutWriter> {
    const writer = await TarFileWriter.create(tempPathFor(dest))
    try {
      await writer.addFile(LAYOUT_FILE, LAYOUT_BYTES)
      await writer.addDirectory('blobs')
      await writer.addDirectory('blobs/sha256')
    } catch (err) {
      await writer.abort()
      throw err
    }
    return new ArchiveLayoutWriter(dest, writer)
  }

  async blobSize(digest: Digest): Promise<number | undefined> {
    return this.#blobs.get(digest)
  }

  async putBlob(data: Buffer): Promise<WrittenBlob> {
    const d = new Digester()
    d.update(data)
    const digest = d.digest()
    if (!this.#blobs.has(digest)) {
      await this.#writer.addFile(blobPath(digest), data)
      this.#blobs.set(digest, data.length)
    }
    return { digest, size: data.length }
  }

  async putBlobStream(source: Readable, opts: { expected?: Digest; onBytes?: (n: number) => void } = {}): Promise<WrittenBlob> {
    const { size, digest } = await this.#writer.addStream((dg) => blobPath(dg), source, { ...(opts.onBytes === undefined ? {} : { onBytes: opts.onBytes }) })
    if (opts.expected !== undefined && digest !== opts.expected) {
      throw new StrataError('DIGEST_MISMATCH', `Blob written to the OCI archive "${this.dest}" hashes to ${digest}, not the expected ${opts.expected}`, {
        details: { expected: opts.expected, actual: digest },
      })
    }
    // Callers skip blobs they wrote before, by diffID; two layers compressing to one blob is not worth undoing.
    this.#blobs.set(digest!, size)
    return { digest: digest!, size }
  }

  async finish(index: Buffer): Promise<void> {
    await this.#writer.addFile(INDEX_FILE, index)
    await this.#writer.finish()
    this.#finished = true
  }

  async commit(): Promise<void> {
    if (!this.#finished) throw new StrataError('INVALID_ARGUMENT', `Nothing was written to the OCI archive "${this.dest}"`)
    await refuseSpecialTarget(this.dest, 'an OCI archive')
    await rename(this.#writer.path, this.dest)
    await fsyncPath(dirname(this.dest))
  }

  async abort(): Promise<void> {
    await this.#writer.abort()
  }
}
