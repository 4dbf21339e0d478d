/**
 * applyLayer: a layer stream in, a directory tree out, in one pass.
 *
 *   source ──sha256 (compressed digest)──▶ gunzip/zstd ──sha256 (diffID)──▶ TarParser
 *                                                                         ├─▶ Applier (files)
 *                                                                         └─▶ TarSplitRecorder
 *
 * Nothing is held in memory beyond one chunk. A failure leaves the target
 * partly written: callers apply into a directory they can discard whole
 * (the layer store always does).
 */
import type { Readable } from 'node:stream'
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
}

export interface ApplyResult {
  /** sha256 of the uncompressed tar. */
  diffId: Digest
  /** sha256 of the bytes as given (equals diffId when uncompressed). */
  digest: Digest
  compression: Compression
  /** Sum of the entries' sizes (dockerd's layer "size"). */
  size: number
  /** Bytes of the uncompressed tar. */
  tarSize: number
  /** Bytes as given. */
  compressedSize: number
  entries: number
}

export async function applyLayer(target: string, source: Readable, opts: ApplyOptions): Promise<ApplyResult> {
  const compressed = new HashingStream()
  source.on('error', (err) => compressed.destroy(err))
  const { compression, stream } = await openDecompressed(source.pipe(compressed))
  // Uncompressed: the digest is the diffID, hashed below; don't hash it twice.
  if (compression === 'none') compressed.stopHashing()
  const applier = new Applier(target, opts.whiteouts)
  const handler: TarHandler = opts.tarSplit === undefined ? applier : combineHandlers(applier, new TarSplitRecorder(opts.tarSplit))
  const parser = new TarParser(handler)
  const diff = new Digester()
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      diff.update(chunk)
      parser.write(chunk)
    }
    parser.end()
    applier.finish()
  } catch (err) {
    applier.abort()
    stream.destroy()
    throw err
  }
  const diffId = diff.digest()
  if (opts.expectedDiffId !== undefined && diffId !== opts.expectedDiffId) {
    throw new StrataError('DIGEST_MISMATCH', `Layer content hashes to ${diffId}, not the expected ${opts.expectedDiffId}`, {
      details: { expected: opts.expectedDiffId, actual: diffId },
    })
  }
  return {
    diffId,
    digest: compression === 'none' ? diffId : compressed.digest(),
    compression,
    size: applier.size,
    tarSize: diff.size,
    compressedSize: compressed.size,
    entries: applier.entries,
  }
}
