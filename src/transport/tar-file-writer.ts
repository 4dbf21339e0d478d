/**
 * Writing an image archive (docker-archive, oci-archive) as a tar file, one
 * member after another, with layers streamed straight from the layer store.
 *
 * A tar header carries its member's size, and an exported layer's size is
 * not known before it has been read. Since the archive is a file (written
 * under a temp name, renamed on commit), a streamed member gets a
 * placeholder header block, its bytes, and then its real header written
 * over the placeholder: one pass, no spooling. Such members have short
 * names (`<v1id>/layer.tar`, `blobs/sha256/<hex>`), so their header is
 * always one ustar block; a size past ustar's 8 GiB octal field is written
 * in base-256, as GNU tar and Go's archive/tar write and read it. The name
 * may also be decided after the bytes (an OCI blob is named by its digest).
 */
import { open, unlink, type FileHandle } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { BLOCK, END_OF_ARCHIVE, encodeHeader, encodeStreamedHeader, paddingFor } from '../archive/index.js'
import { Digester, type Digest } from '../digest/index.js'
import { StrataError } from '../errors/index.js'

/** Fields every member gets: root-owned, readable, at `mtime`. */
export interface MemberOptions {
  /** Seconds since the epoch (default 0). */
  mtime?: number
  mode?: number
}

export interface StreamedMember {
  size: number
  /** sha256 of the bytes, when `hash` was asked for. */
  digest?: Digest
}

const ZEROS = Buffer.alloc(BLOCK)
/** Streamed members are written in pieces of about this size. */
const WRITE_BATCH = 1 << 20

export class TarFileWriter {
  readonly path: string
  #fh: FileHandle | undefined
  #pos = 0

  private constructor(path: string, fh: FileHandle) {
    this.path = path
    this.#fh = fh
  }

  /** Creates `path` (which must not exist) for writing. */
  static async create(path: string, mode = 0o644): Promise<TarFileWriter> {
    return new TarFileWriter(path, await open(path, 'wx', mode))
  }

  /** Bytes written so far. */
  get size(): number {
    return this.#pos
  }

  async #write(data: Buffer, position = this.#pos): Promise<void> {
    const fh = this.#fh
    if (fh === undefined) throw new StrataError('INVALID_ARGUMENT', `Archive "${this.path}" is closed`)
    let done = 0
    while (done < data.length) {
      const { bytesWritten } = await fh.write(data, done, data.length - done, position + done)
      done += bytesWritten
    }
    if (position === this.#pos) this.#pos += data.length
  }

  async addDirectory(name: string, opts: MemberOptions = {}): Promise<void> {
    await this.#write(encodeHeader({ name: name.endsWith('/') ? name : `${name}/`, type: 'dir', mode: opts.mode ?? 0o755, mtime: { sec: opts.mtime ?? 0, nsec: 0 } }))
  }

  async addFile(name: string, data: Buffer, opts: MemberOptions = {}): Promise<void> {
    await this.#write(encodeHeader({ name, type: 'file', size: data.length, mode: opts.mode ?? 0o644, mtime: { sec: opts.mtime ?? 0, nsec: 0 } }))
    await this.#write(data)
    await this.#write(ZEROS.subarray(0, paddingFor(data.length)))
  }

  async addSymlink(name: string, target: string, opts: MemberOptions = {}): Promise<void> {
    await this.#write(encodeHeader({ name, type: 'symlink', linkname: target, mode: 0o777, mtime: { sec: opts.mtime ?? 0, nsec: 0 } }))
  }

  /**
   * Adds a regular file of `size` bytes whose content the caller writes
   * itself, into `fd` at `position` (before finish()): the header and the
   * padding are written here, the content's place is left for it.
   */
  async reserve(name: string, size: number, opts: MemberOptions = {}): Promise<{ fd: number; position: number }> {
    const fh = this.#fh
    if (fh === undefined) throw new StrataError('INVALID_ARGUMENT', `Archive "${this.path}" is closed`)
    await this.#write(encodeStreamedHeader(name, size, opts))
    const position = this.#pos
    this.#pos += size
    await this.#write(ZEROS.subarray(0, paddingFor(size)))
    return { fd: fh.fd, position }
  }

  /**
   * Streams `source` in as a regular file. `name` may be a function of the
   * bytes' digest (then `hash` is implied). `onBytes` reports progress.
   */
  async addStream(
    name: string | ((digest: Digest) => string),
    source: Readable,
    opts: MemberOptions & { hash?: boolean; onBytes?: (written: number) => void } = {},
  ): Promise<StreamedMember> {
    const headerPos = this.#pos
    const digester = opts.hash === true || typeof name === 'function' ? new Digester() : undefined
    await this.#write(ZEROS)
    let size = 0
    // A layer export yields a chunk per tar header and per file: written one
    // by one, that is a thread-pool round trip per 512 bytes. Batched.
    let batch: Buffer[] = []
    let batched = 0
    const flush = async (): Promise<void> => {
      if (batched === 0) return
      await this.#write(batch.length === 1 ? batch[0]! : Buffer.concat(batch, batched))
      batch = []
      batched = 0
      opts.onBytes?.(size)
    }
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        digester?.update(chunk)
        size += chunk.length
        batch.push(chunk)
        batched += chunk.length
        if (batched >= WRITE_BATCH) await flush()
      }
      await flush()
    } finally {
      source.destroy()
    }
    await this.#write(ZEROS.subarray(0, paddingFor(size)))
    const digest = digester?.digest()
    const finalName = typeof name === 'function' ? name(digest!) : name
    await this.#write(encodeStreamedHeader(finalName, size, opts), headerPos)
    return digest === undefined ? { size } : { size, digest }
  }

  /** Writes the end-of-archive marker, flushes to disk and closes. */
  async finish(): Promise<void> {
    await this.#write(END_OF_ARCHIVE)
    const fh = this.#fh!
    await fh.sync()
    this.#fh = undefined
    await fh.close()
  }

  /** Closes and removes the file. Idempotent. */
  async abort(): Promise<void> {
    const fh = this.#fh
    this.#fh = undefined
    await fh?.close().catch(() => {})
    await unlink(this.path).catch(() => {})
  }
}
