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
import { pipeline, type Readable } from 'node:stream'
import { Digester, HashingStream, type Digest } from '../digest/index.js'
import { StrataError } from '../errors/index.js'
import { Applier } from './applier.js'
import { openDecompressed, type Compression } from './compression.js'
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
  let applier: Applier | undefined
  let tarSize = 0
  try {
    applier = new Applier(target, opts.whiteouts)
    const handler: TarHandler = opts.tarSplit === undefined ? applier : combineHandlers(applier, new TarSplitRecorder(opts.tarSplit))
    const parser = new TarParser(handler)
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      diff?.update(chunk)
      tarSize += chunk.length
      parser.write(chunk)
    }
    parser.end()
    applier.finish()
  } catch (err) {
    applier?.abort()
    stream.destroy()
    throw err
  }
  return {
    compression,
    diffId: diff?.digest(),
    size: applier.size,
    ...(applier.diskSize === undefined ? {} : { diskSize: applier.diskSize }),
    tarSize,
    entries: applier.entries,
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
