/**
 * applyLayer: a layer stream in, a directory tree out, in one pass.
 *
 *   source ──sha256 (digest; the diffID when uncompressed)──▶ gunzip/zstd ──sha256 (diffID, if compressed)──▶ TarParser
 *                                                                         ├─▶ Applier (files)
 *                                                                         └─▶ TarSplitRecorder
 *
 * Nothing is held in memory beyond one chunk. A failure leaves the target
 * partly written: callers apply into a directory they can discard whole
 * (the layer store always does).
 */
import { closeSync, constants, openSync, readSync } from 'node:fs'
import { pipeline, Readable } from 'node:stream'
import { Digester, HashingStream, type Digest } from '../digest/index.js'
import { StrataError } from '../errors/index.js'
import { Applier } from './applier.js'
import { detectCompression, openDecompressed, type Compression } from './compression.js'
import type { FileRange } from './file-source.js'
import { collectEvery } from './gc.js'
import { TarParser, type TarHandler } from './tar/index.js'
import { combineHandlers, TarSplitRecorder, type LineSink } from './tarsplit/index.js'
import type { WhiteoutFormat } from './whiteout.js'

export interface ApplyOptions {
  /** How deletions are represented in `target` (see WhiteoutFormat). */
  whiteouts: WhiteoutFormat
  /** Receives tar-split JSON lines for the layer, when given. */
  tarSplit?: LineSink
  /** The diffID the uncompressed stream must have; checked at the end. */
  expectedDiffId?: Digest
  /**
   * The digest the source's bytes (as given, compressed or not) are known
   * to have: whoever made the stream verifies them as they flow and fails
   * the stream at its end otherwise (a registry or OCI blob). They are not
   * hashed a second time here then; the result's digest is this one.
   */
  sourceDigest?: Digest
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar. */
  diffId: Digest
  /** sha256 of the bytes as given (equals diffId when uncompressed). */
  digest: Digest
  compression: Compression
  /** Sum of the entries' sizes (dockerd's layer "size"). */
  size: number
  /**
   * moby's directory.Size of the target after the apply (non-directory
   * sizes, symlinks included, each inode once), when the apply can tell:
   * the target started empty and nothing in it was removed or replaced.
   * Undefined otherwise; walk the target then.
   */
  diskSize?: number
  /** Bytes of the uncompressed tar. */
  tarSize: number
  /** Bytes as given. */
  compressedSize: number
  entries: number
}

/**
 * What applyDecompressed learned. `diffId` is undefined when the source was
 * not compressed and the caller hashes the source itself (it is then the
 * caller's digest).
 */
export interface DecompressedApplyResult {
  compression: Compression
  diffId: Digest | undefined
  size: number
  diskSize?: number
  tarSize: number
  entries: number
}

/**
 * The apply without the source's own digest: decompresses, parses, writes,
 * records tar-split, and hashes the tar only when it was compressed (an
 * uncompressed tar is the source, which the caller hashes where it reads
 * it: applyLayer below through a HashingStream, applyLayerOffThread on the
 * thread that feeds its worker). No expectedDiffId check here.
 */
export async function applyDecompressed(target: string, source: Readable, opts: Omit<ApplyOptions, 'expectedDiffId' | 'sourceDigest'>): Promise<DecompressedApplyResult> {
  const { compression, stream } = await openDecompressed(source)
  const diff = compression === 'none' ? undefined : new Digester()
  let body: ApplyBody | undefined
  try {
    body = new ApplyBody(target, opts)
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      diff?.update(chunk)
      body.write(chunk)
    }
    body.end()
  } catch (err) {
    body?.abort()
    stream.destroy()
    throw err
  }
  return body.result(compression, diff?.digest())
}

/** The parser, applier and tar-split recorder of one apply, fed the uncompressed tar chunk by chunk. */
class ApplyBody {
  readonly #applier: Applier
  readonly #parser: TarParser
  #tarSize = 0

  constructor(target: string, opts: Omit<ApplyOptions, 'expectedDiffId' | 'sourceDigest'>) {
    this.#applier = new Applier(target, opts.whiteouts)
    const handler: TarHandler = opts.tarSplit === undefined ? this.#applier : combineHandlers(this.#applier, new TarSplitRecorder(opts.tarSplit))
    this.#parser = new TarParser(handler)
  }

  /** The next bytes of the tar; used synchronously (the caller may reuse `chunk` once this returns). */
  write(chunk: Buffer): void {
    this.#tarSize += chunk.length
    this.#parser.write(chunk)
  }

  end(): void {
    this.#parser.end()
    this.#applier.finish()
  }

  abort(): void {
    this.#applier.abort()
  }

  result(compression: Compression, diffId: Digest | undefined): DecompressedApplyResult {
    const a = this.#applier
    return { compression, diffId, size: a.size, ...(a.diskSize === undefined ? {} : { diskSize: a.diskSize }), tarSize: this.#tarSize, entries: a.entries }
  }
}

/** What applyFile learned: applyDecompressed's result, and the digest and size of the file's bytes. */
export interface FileApplyResult extends DecompressedApplyResult {
  sourceDigest: Digest
  sourceSize: number
}

/** Bytes read per call by applyFile, into the one buffer it reuses. */
const FILE_CHUNK = 1 << 20

/**
 * applyDecompressed of a file's byte range (file-source.ts), read here
 * with positional reads, hashed as it is read (the source's digest; the
 * diffID too when it is not compressed). An uncompressed tar goes from one
 * reused buffer straight to the parser: no stream, no buffer per chunk, so
 * nothing for the garbage collector. A compressed one goes through
 * applyDecompressed's decompressing stream. `aborted()` is asked between
 * chunks: an error it returns stops the apply with that error.
 */
export async function applyFile(
  target: string,
  range: FileRange,
  opts: Omit<ApplyOptions, 'expectedDiffId' | 'sourceDigest'>,
  aborted: () => unknown,
): Promise<FileApplyResult> {
  const fd = openSync(range.path, constants.O_RDONLY)
  try {
    const source = new Digester()
    const end = range.length === undefined ? Infinity : range.start + range.length
    let pos = range.start
    const buf = Buffer.allocUnsafeSlow(FILE_CHUNK)
    /** The next bytes of the range in `buf` (a view), hashed; empty at its end. */
    const readNext = (): Buffer => {
      const want = Math.min(FILE_CHUNK, end - pos)
      if (want <= 0) return buf.subarray(0, 0)
      const n = readSync(fd, buf, 0, want, pos)
      if (n === 0 && end !== Infinity) {
        throw new StrataError('CORRUPT', `"${range.path}" ends at byte ${pos}, inside the layer that should run to byte ${end} (the file was truncated?)`, { details: { path: range.path } })
      }
      pos += n
      const view = buf.subarray(0, n)
      source.update(view)
      range.onRead?.(pos - range.start)
      return view
    }
    const first = readNext()
    const compression = detectCompression(first.subarray(0, 6))
    let result: DecompressedApplyResult
    if (compression === 'none') {
      const body = new ApplyBody(target, opts)
      try {
        let chunk = first
        while (chunk.length > 0) {
          body.write(chunk)
          // A turn of the event loop now and then, for an abort from the main thread (a failing tar-split sink).
          await new Promise<void>((resolve) => setImmediate(resolve))
          const err = aborted()
          if (err !== undefined) throw err
          chunk = readNext()
        }
        body.end()
      } catch (err) {
        body.abort()
        throw err
      }
      result = body.result('none', undefined)
    } else {
      // Decompressors keep chunks after write() returns: each gets its own copy.
      let next: Buffer | undefined = Buffer.from(first)
      const stream = Readable.from(
        (function* () {
          while (next !== undefined && next.length > 0) {
            const err = aborted()
            if (err !== undefined) throw err
            yield next
            collectEvery(next.length)
            const view = readNext()
            next = view.length === 0 ? undefined : Buffer.from(view)
          }
        })(),
        { objectMode: false },
      )
      result = await applyDecompressed(target, stream, opts)
    }
    return { ...result, sourceDigest: source.digest(), sourceSize: source.size }
  } finally {
    closeSync(fd)
  }
}

/** The ApplyResult of an apply whose source hashed to `sourceDigest` over `sourceSize` bytes; checks expectedDiffId. */
export function finishApply(body: DecompressedApplyResult, sourceDigest: Digest, sourceSize: number, expectedDiffId: Digest | undefined): ApplyResult {
  const diffId = body.diffId ?? sourceDigest
  if (expectedDiffId !== undefined && diffId !== expectedDiffId) {
    throw new StrataError('DIGEST_MISMATCH', `Layer content hashes to ${diffId}, not the expected ${expectedDiffId}`, {
      details: { expected: expectedDiffId, actual: diffId },
    })
  }
  return {
    diffId,
    digest: sourceDigest,
    compression: body.compression,
    size: body.size,
    ...(body.diskSize === undefined ? {} : { diskSize: body.diskSize }),
    tarSize: body.tarSize,
    compressedSize: sourceSize,
    entries: body.entries,
  }
}

export async function applyLayer(target: string, source: Readable, opts: ApplyOptions): Promise<ApplyResult> {
  // The source is hashed once, as it comes: its digest, and the diffID too when it is not compressed.
  const hashed = new HashingStream()
  if (opts.sourceDigest !== undefined) hashed.stopHashing()
  // pipeline, not pipe: a source that already failed or closed early (before this call) fails the apply instead of stalling it.
  pipeline(source, hashed, () => {})
  const body = await applyDecompressed(target, hashed, opts)
  return finishApply(body, opts.sourceDigest ?? hashed.digest(), hashed.size, opts.expectedDiffId)
}
