/**
 * Layer blobs arrive gzip- or zstd-compressed, or as plain tar. Like dockerd
 * (pkg/archive DetectCompression) the format is decided by magic bytes, never
 * by media type or file name: registries and `docker save` tarballs are not
 * reliable about either. bzip2 and xz are recognized only to refuse them with
 * a useful message instead of failing later as "not a tar archive".
 */
import { finished, PassThrough, Readable, Transform, type TransformCallback } from 'node:stream'
import { createGunzip, createGzip, createInflateRaw, crc32, type InflateRaw } from 'node:zlib'
import { createRequire } from 'node:module'
import type * as ZstdNapi from 'zstd-napi'
import type ZstdBinding from 'zstd-napi/binding.js'
import { StrataError } from '../errors/index.js'

// zstd-napi (a native addon, ~5-30 ms to load) is loaded by the first zstd
// stream, not when this module is imported: most commands never see zstd.
// The require function too (node:module, which the bundle loads on first use: scripts/bundle-cli.mjs).
let requireFn: NodeRequire | undefined
const requireHere = (id: string): unknown => (requireFn ??= createRequire(import.meta.url))(id)
let zstdModule: typeof ZstdNapi | undefined
let zstdBindingModule: typeof ZstdBinding | undefined
function zstd(): typeof ZstdNapi {
  zstdModule ??= requireHere('zstd-napi') as typeof ZstdNapi
  return zstdModule
}
function zstdBinding(): typeof ZstdBinding {
  zstdBindingModule ??= requireHere('zstd-napi/binding.js') as typeof ZstdBinding
  return zstdBindingModule
}

export type Compression = 'gzip' | 'zstd' | 'none'

/**
 * gunzip's output buffer. zlib's default (16 KiB) makes a layer of 200 MB
 * some 13,000 round trips between the thread that reads the stream and
 * libuv's thread pool (each a queued job, two thread wake-ups and a
 * stream chunk), which on a busy machine wait for a core each time: a
 * 43 MB blob took 0.26-0.42 s of CPU and 0.8-2.4 s to gunzip and hash
 * with the default, 0.14-0.16 s and 0.2 s with 1 MiB (load 10, 2 cores).
 */
const GUNZIP_CHUNK = 1 << 20

/** Enough bytes to tell every format below apart (xz's magic is the longest). */
const PEEK_BYTES = 6

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08])
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])
const BZIP2_MAGIC = Buffer.from('BZh', 'latin1')
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])

function startsWith(head: Buffer, magic: Buffer): boolean {
  return head.length >= magic.length && head.subarray(0, magic.length).equals(magic)
}

/**
 * A zstd stream may legally begin with a skippable frame (magic
 * 0x184D2A50..0x184D2A5F, little-endian); dockerd accepts those as zstd too.
 */
function isZstdSkippableFrame(head: Buffer): boolean {
  return head.length >= 4 && (head.readUInt32LE(0) & 0xfffffff0) === 0x184d2a50
}

/**
 * Decides the compression of a stream from its first bytes (pass at least 6
 * when the stream has them; fewer only means short magics can't match).
 * Anything unrecognized is 'none': the tar reader is the one to reject it.
 * @throws StrataError NOT_SUPPORTED for bzip2 and xz.
 */
export function detectCompression(head: Buffer): Compression {
  if (startsWith(head, GZIP_MAGIC)) return 'gzip'
  if (startsWith(head, ZSTD_MAGIC) || isZstdSkippableFrame(head)) return 'zstd'
  if (startsWith(head, BZIP2_MAGIC)) {
    throw new StrataError('NOT_SUPPORTED', 'bzip2-compressed layers are not supported; decompress it first', {
      hint: 'Decompress with `bzip2 -d` and import the plain tar, or recompress it with gzip or zstd.',
      details: { compression: 'bzip2' },
    })
  }
  if (startsWith(head, XZ_MAGIC)) {
    throw new StrataError('NOT_SUPPORTED', 'xz-compressed layers are not supported; decompress it first', {
      hint: 'Decompress with `xz -d` and import the plain tar, or recompress it with gzip or zstd.',
      details: { compression: 'xz' },
    })
  }
  return 'none'
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
  if (typeof chunk === 'string') return Buffer.from(chunk)
  throw new StrataError('INVALID_ARGUMENT', `Layer stream yielded a ${typeof chunk}, expected bytes`)
}

/**
 * Detects the compression of `source` and returns a stream of its
 * uncompressed bytes. The peeked bytes are not lost: they are replayed ahead
 * of the rest of `source`.
 *
 * After this resolves, errors of `source` reach the returned stream as they
 * are, and any failure of the decompressor (truncated or corrupt input)
 * reaches it as StrataError CORRUPT. Destroying the returned stream destroys
 * `source`. The promise itself rejects only when `source` fails before its
 * first 6 bytes, or with NOT_SUPPORTED (bzip2, xz); `source` is destroyed in
 * both cases.
 */
export interface DecompressOptions {
  /**
   * The caller checks the decompressed bytes against a digest (a layer's
   * diffID): gzip's own CRC-32 of them is then redundant and skipped
   * (RawGunzip below). Everything else gunzip checks is still checked,
   * with gunzip's messages.
   */
  contentVerified?: boolean
}

export async function openDecompressed(source: Readable, opts: DecompressOptions = {}): Promise<{ compression: Compression; stream: Readable }> {
  // Peeking through the async iterator (rather than read()/unshift()) keeps
  // one owner of `source` from here on, and avoids unshift()'s edge cases
  // when the stream has already ended inside the peeked bytes.
  const it = source[Symbol.asyncIterator]() as AsyncIterator<unknown>
  const peeked: Buffer[] = []
  let peekedLength = 0
  let exhausted = false
  let compression: Compression
  try {
    while (peekedLength < PEEK_BYTES) {
      const r = await it.next()
      if (r.done === true) {
        exhausted = true
        break
      }
      const chunk = toBuffer(r.value)
      peeked.push(chunk)
      peekedLength += chunk.length
    }
    compression = detectCompression(Buffer.concat(peeked, peekedLength))
  } catch (err) {
    // Nothing will ever read `source` now: release it (an fd, a socket).
    source.destroy()
    await it.return?.().catch(() => {})
    throw err
  }

  // Replays the peeked chunks, then continues with `source`. A plain
  // iterator rather than an async generator: a generator's return() queues
  // behind a pending next(), so destroying the result while `source` is idle
  // would never release `source`. Here return() destroys it at once, which
  // also settles any pending next().
  let replayed = 0
  const replay: AsyncIterator<Buffer> = {
    next: async () => {
      while (replayed < peeked.length) {
        const chunk = peeked[replayed++]!
        if (chunk.length > 0) return { done: false, value: chunk }
      }
      peeked.length = 0 // don't pin the first chunk for the stream's lifetime
      replayed = 0
      if (exhausted) return { done: true, value: undefined }
      const r = await it.next()
      return r.done === true ? { done: true, value: undefined } : { done: false, value: toBuffer(r.value) }
    },
    return: async () => {
      source.destroy()
      await it.return?.().catch(() => {})
      return { done: true, value: undefined }
    },
  }
  const body = Readable.from({ [Symbol.asyncIterator]: () => replay }, { objectMode: false })

  if (compression === 'none') return { compression, stream: body }
  const decoder: Transform =
    compression === 'gzip' ? (opts.contentVerified === true ? new RawGunzip() : createGunzip({ chunkSize: GUNZIP_CHUNK })) : new (zstd().DecompressStream)()
  return { compression, stream: chain(body, decoder, compression) }
}

/** An error as gunzip reports it (its message, code and errno): chain() makes it CORRUPT the same way. */
function zlibError(message: string, code: 'Z_DATA_ERROR' | 'Z_BUF_ERROR'): Error {
  return Object.assign(new Error(message), { code, errno: code === 'Z_DATA_ERROR' ? -3 : -5 })
}

const truncatedGzip = (): Error => zlibError('unexpected end of file', 'Z_BUF_ERROR')

/** Longest gzip member header RawGunzip reads (gunzip reads names and comments of any length; real ones are short). */
const MAX_GZIP_HEADER = 1 << 20

/** gzip's FLG bits (RFC 1952, 2.3.1). */
const FHCRC = 0x02
const FEXTRA = 0x04
const FNAME = 0x08
const FCOMMENT = 0x10
const FRESERVED = 0xe0

/**
 * The length of the gzip member header (RFC 1952) at the start of `b`, or
 * undefined when `b` ends inside it.
 * @throws gunzip's error (zlib's message) for a header gunzip refuses.
 */
export function gzipHeaderLength(b: Buffer): number | undefined {
  if ((b.length >= 1 && b[0] !== 0x1f) || (b.length >= 2 && b[1] !== 0x8b)) throw zlibError('incorrect header check', 'Z_DATA_ERROR')
  if (b.length >= 3 && b[2] !== 8) throw zlibError('unknown compression method', 'Z_DATA_ERROR')
  if (b.length >= 4 && (b[3]! & FRESERVED) !== 0) throw zlibError('unknown header flags set', 'Z_DATA_ERROR')
  if (b.length < 10) return undefined
  const flags = b[3]!
  let at = 10
  if ((flags & FEXTRA) !== 0) {
    if (b.length < at + 2) return undefined
    at += 2 + b.readUInt16LE(at)
  }
  for (const field of [FNAME, FCOMMENT]) {
    if ((flags & field) === 0) continue
    if (at >= b.length) return undefined
    const nul = b.indexOf(0, at)
    if (nul < 0) return undefined
    at = nul + 1
  }
  if ((flags & FHCRC) !== 0) {
    if (b.length < at + 2) return undefined
    // The header's own CRC (its low 16 bits): a few bytes, checked as gunzip does.
    if ((crc32(b.subarray(0, at)) & 0xffff) !== b.readUInt16LE(at)) throw zlibError('header crc mismatch', 'Z_DATA_ERROR')
    at += 2
  }
  return at <= b.length ? at : undefined
}

/**
 * gunzip without gzip's CRC-32 of the uncompressed bytes, for callers
 * that check those bytes against a digest anyway (a layer's diffID). The
 * member headers are parsed here (RFC 1952), each member's deflate data
 * goes through zlib's raw inflate, and its trailer's ISIZE (the length
 * modulo 2^32) is checked; its CRC-32 is not. That is CPU of libuv's
 * pool: a pull of the bench's image (202 MiB of tars) into tmpfs, pool
 * 627 -> 580 ms (medians of 8 alternating pulls, load 5.2-6.8), ~1.5% of
 * the pull's 3.25 s of CPU; 90 MB inflated alone: 423-452 -> 394-431 ms.
 *
 * Where a member's deflate data ends inside a chunk is what zlib says:
 * once the raw stream is complete, zlib takes no more input, and Node ends
 * the inflater's output and counts the bytes zlib took in `bytesWritten`
 * (documented; the ending is nodejs/node#26603's fix). The bytes after
 * them are the trailer, then the next member's header, as gunzip reads
 * concatenated members.
 *
 * Otherwise as Node's gunzip, errors included (their zlib messages, which
 * chain() turns into CORRUPT): "incorrect header check" for bytes after a
 * member that do not start another, "unknown compression method",
 * "unknown header flags set", "header crc mismatch", "incorrect length
 * check", and "unexpected end of file" for a stream that ends inside a
 * member; a zero byte where a member would start is padding that ends the
 * stream, the rest read and ignored. One difference: a header longer than
 * MAX_GZIP_HEADER (a name or comment that never ends) is refused.
 */
class RawGunzip extends Transform {
  #state: 'header' | 'body' | 'trailer' | 'padding' = 'header'
  /** The start of a header or trailer that the bytes so far cut short. */
  #pending: Buffer = Buffer.alloc(0)
  #members = 0
  /** The current member's inflater (state 'body'), and the promise of its error. */
  #inflater: InflateRaw | undefined
  #failed: Promise<never> = Promise.resolve() as unknown as Promise<never>
  /** Bytes the current member inflated to, modulo 2^32 (its trailer's ISIZE). */
  #size = 0

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#feed(chunk).then(() => callback(), callback)
  }

  override _flush(callback: TransformCallback): void {
    this.#end().then(() => callback(), callback)
  }

  override _read(size: number): void {
    // Output is wanted again (see the inflater's 'data' listener).
    this.#inflater?.resume()
    super._read(size)
  }

  override _destroy(err: Error | null, callback: (err: Error | null) => void): void {
    this.#inflater?.destroy()
    callback(err)
  }

  async #feed(chunk: Buffer): Promise<void> {
    let buf = chunk
    while (buf.length > 0) {
      switch (this.#state) {
        case 'padding':
          return
        case 'header': {
          if (this.#pending.length === 0 && this.#members > 0 && buf[0] === 0) {
            // As gunzip: zeros after a member are padding (and so is whatever follows them).
            this.#state = 'padding'
            return
          }
          const b = this.#pending.length === 0 ? buf : Buffer.concat([this.#pending, buf])
          const n = gzipHeaderLength(b)
          if (n === undefined) {
            // A name or comment without its NUL would be gathered here to the end of the stream.
            if (b.length > MAX_GZIP_HEADER) throw zlibError(`gzip member header longer than ${MAX_GZIP_HEADER} bytes`, 'Z_DATA_ERROR')
            this.#pending = b
            return
          }
          this.#pending = Buffer.alloc(0)
          buf = b.subarray(n)
          this.#startMember()
          break
        }
        case 'body': {
          const rest = await this.#inflate(buf)
          if (rest === undefined) return
          buf = rest
          this.#state = 'trailer'
          break
        }
        case 'trailer': {
          const b = this.#pending.length === 0 ? buf : Buffer.concat([this.#pending, buf])
          if (b.length < 8) {
            this.#pending = b
            return
          }
          this.#pending = Buffer.alloc(0)
          // CRC-32 (bytes 0-3) skipped: the caller's digest covers these bytes.
          if (b.readUInt32LE(4) !== this.#size) throw zlibError('incorrect length check', 'Z_DATA_ERROR')
          this.#members++
          this.#state = 'header'
          buf = b.subarray(8)
          break
        }
      }
    }
  }

  #startMember(): void {
    const inflater = createInflateRaw({ chunkSize: GUNZIP_CHUNK })
    this.#size = 0
    inflater.on('data', (out: Buffer) => {
      this.#size = (this.#size + out.length) >>> 0
      // Backpressure: a chunk of input can inflate to far more than a chunk; _read resumes.
      if (!this.push(out)) inflater.pause()
    })
    this.#failed = new Promise<never>((_resolve, reject) => inflater.once('error', reject))
    this.#failed.catch(() => {})
    this.#inflater = inflater
    this.#state = 'body'
  }

  /** Inflates `buf`: undefined when the member's deflate data goes on after it, else the bytes of `buf` that follow that data. */
  async #inflate(buf: Buffer): Promise<Buffer | undefined> {
    const inflater = this.#inflater!
    const before = inflater.bytesWritten
    await Promise.race([new Promise<void>((resolve, reject) => inflater.write(buf, (err) => (err == null ? resolve() : reject(err)))), this.#failed])
    const used = inflater.bytesWritten - before
    if (used === buf.length) return undefined
    await this.#memberDone()
    return buf.subarray(used)
  }

  /** Waits for the member's last output (its size is then known) and closes its inflater. */
  async #memberDone(): Promise<void> {
    const inflater = this.#inflater!
    if (!inflater.readableEnded) await Promise.race([new Promise<void>((resolve) => inflater.once('end', resolve)), this.#failed])
    inflater.destroy()
    this.#inflater = undefined
  }

  async #end(): Promise<void> {
    switch (this.#state) {
      case 'padding':
        return
      case 'header':
        if (this.#pending.length === 0 && this.#members > 0) return
        throw truncatedGzip()
      case 'body':
        // zlib fails an unfinished deflate stream ("unexpected end of file"); a finished one still lacks its trailer.
        this.#inflater!.end()
        await this.#memberDone()
        throw truncatedGzip()
      case 'trailer':
        throw truncatedGzip()
    }
  }
}

/**
 * body → decoder → returned stream, by hand rather than with
 * stream.pipeline(): pipeline destroys the last stream with the raw error
 * before its callback runs, and here decoder errors must be rewritten as
 * CORRUPT while source errors pass through untouched.
 */
function chain(body: Readable, decoder: Transform, kind: 'gzip' | 'zstd'): Readable {
  const out = new PassThrough()
  let settled = false
  const teardown = (err: Error | null): void => {
    if (settled) return
    settled = true
    body.destroy()
    decoder.destroy()
    if (err !== null) out.destroy(err)
  }
  body.on('error', (err) => teardown(err))
  decoder.on('error', (err) => teardown(corrupt(kind, err)))
  // The consumer finished or gave up: stop reading `source` either way.
  finished(out, () => teardown(null))
  body.pipe(decoder).pipe(out)
  return out
}

function corrupt(kind: 'gzip' | 'zstd', err: Error): StrataError {
  const why =
    kind === 'zstd' && /ended in middle of compressed data frame/i.test(err.message)
      ? 'truncated (the stream ends in the middle of a frame)'
      : kind === 'gzip' && /unexpected end of file/i.test(err.message)
        ? 'truncated (unexpected end of file)'
        : err.message
  return new StrataError('CORRUPT', `Corrupt ${kind} layer stream: ${why}`, {
    cause: err,
    details: { compression: kind },
  })
}

/**
 * A compressing stream for writing layers. `level` is zlib's 0-9 for gzip
 * (default 6, as Go's gzip.DefaultCompression) and zstd's level for zstd
 * (default 3; negative levels are zstd's fast modes).
 * @throws StrataError INVALID_ARGUMENT for a level the codec rejects.
 */
export function compressStream(kind: 'gzip' | 'zstd', level?: number): Transform {
  if (level !== undefined && !Number.isInteger(level)) {
    throw new StrataError('INVALID_ARGUMENT', `Invalid ${kind} compression level ${level}: expected an integer`)
  }
  if (kind === 'gzip') {
    if (level !== undefined && (level < 0 || level > 9)) {
      throw new StrataError('INVALID_ARGUMENT', `Invalid gzip compression level ${level}: expected 0-9`)
    }
    return level === undefined ? createGzip() : createGzip({ level })
  }
  if (kind === 'zstd') {
    // libzstd silently clamps out-of-range levels; a caller asking for 1000
    // has a bug worth hearing about.
    const min = zstdBinding().minCLevel()
    const max = zstdBinding().maxCLevel()
    if (level !== undefined && (level < min || level > max)) {
      throw new StrataError('INVALID_ARGUMENT', `Invalid zstd compression level ${level}: expected ${min} to ${max}`)
    }
    try {
      return new (zstd().CompressStream)(level === undefined ? {} : { compressionLevel: level })
    } catch (err) {
      throw new StrataError('INVALID_ARGUMENT', `Invalid zstd compression level ${level}`, { cause: err })
    }
  }
  throw new StrataError('INVALID_ARGUMENT', `Unknown compression "${String(kind)}": expected gzip or zstd`)
}
