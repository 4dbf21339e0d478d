/**
 * Layer blobs arrive gzip- or zstd-compressed, or as plain tar. Like dockerd
 * (pkg/archive DetectCompression) the format is decided by magic bytes, never
 * by media type or file name: registries and `docker save` tarballs are not
 * reliable about either. bzip2 and xz are recognized only to refuse them with
 * a useful message instead of failing later as "not a tar archive".
 */
import { finished, PassThrough, Readable, type Transform } from 'node:stream'
import { createGunzip, createGzip } from 'node:zlib'
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
export async function openDecompressed(source: Readable): Promise<{ compression: Compression; stream: Readable }> {
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
  const decoder: Transform = compression === 'gzip' ? createGunzip({ chunkSize: GUNZIP_CHUNK }) : new (zstd().DecompressStream)()
  return { compression, stream: chain(body, decoder, compression) }
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
