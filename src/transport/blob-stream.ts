/**
 * Checking blobs while they stream, and reading the small ones (manifests,
 * configs, index.json) whole with a size cap, so that a hostile archive can
 * neither slip in other bytes than its descriptors promise nor make strata
 * read a multi-gigabyte "manifest" into memory.
 */
import { Readable } from 'node:stream'
import { fileRangeOf, withFileRange } from '../archive/index.js'
import { Digester, type Digest } from '../digest/index.js'
import { StrataError } from '../errors/index.js'

/** JSON documents (manifest.json, index.json, manifests, configs) larger than this are refused. */
export const MAX_JSON_BYTES = 32 * 1024 * 1024

export interface BlobExpectation {
  /** What the bytes must hash to; omitted when something downstream verifies them anyway. */
  digest?: Digest
  /** How many bytes there must be. */
  size?: number
  /** What the blob is, for messages ("layer blob sha256:... in /x/oci"). */
  what: string
}

/**
 * `source` passed through unchanged, ending with CORRUPT when it is longer
 * or shorter than `size` (as soon as it is longer) and DIGEST_MISMATCH when
 * it does not hash to `digest`. Destroying the result destroys `source`.
 *
 * The result reads `source` only when it is read itself: a small blob must
 * not be read, found wrong and failed before its consumer has attached to
 * it (a stream that fails unobserved looks, to a late consumer, like one
 * that never ends).
 */
export function verifyingStream(source: Readable, expect: BlobExpectation): Readable {
  const digester = expect.digest === undefined ? undefined : new Digester()
  async function* checked(): AsyncGenerator<Buffer> {
    let bytes = 0
    let ours: unknown
    try {
      for await (const chunk of source as AsyncIterable<Buffer>) {
        bytes += chunk.length
        if (expect.size !== undefined && bytes > expect.size) throw (ours = sizeMismatch(expect, `more than ${expect.size}`))
        digester?.update(chunk)
        yield chunk
      }
    } catch (err) {
      // The source failed mid-way (a connection reset, a registry that died): say what, where and how far.
      if (err === ours || (err as Error).name === 'AbortError') throw err
      throw transferFailed(expect, bytes, err)
    } finally {
      source.destroy()
    }
    if (expect.size !== undefined && bytes !== expect.size) throw sizeMismatch(expect, String(bytes))
    if (digester !== undefined && expect.digest !== undefined) {
      const actual = digester.digest()
      if (actual !== expect.digest) {
        throw new StrataError('DIGEST_MISMATCH', `${expect.what} hashes to ${actual}, not to its digest ${expect.digest}`, {
          details: { expected: expect.digest, actual },
        })
      }
    }
  }
  const out = Readable.from(checked(), { objectMode: false })
  // A file's bytes with nothing to hash here stay marked as that file's
  // range, `size` bytes long (src/archive/file-source.ts): a worker that
  // reads them itself reads exactly that many, CORRUPT if the file is
  // shorter; the apply checks them against the diffID. A range of another
  // length is left to this stream, which fails it.
  const range = fileRangeOf(source)
  if (digester === undefined && expect.size !== undefined && range !== undefined && (range.length ?? expect.size) === expect.size) {
    out.once('close', () => source.destroy())
    withFileRange(out, { ...range, length: expect.size })
  }
  return out
}

/** Why a transfer stopped, in words: undici's "terminated" names neither the cause nor the blob. */
function transferFailed(expect: BlobExpectation, bytes: number, err: unknown): StrataError {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause
  const code = typeof cause?.code === 'string' ? cause.code : (err as { code?: unknown }).code
  const why =
    code === 'ECONNRESET'
      ? 'connection reset'
      : code === 'UND_ERR_SOCKET'
        ? `connection closed (${String(cause?.message ?? (err as Error).message)})`
        : typeof cause?.message === 'string'
          ? `${(err as Error).message}: ${cause.message}`
          : (err as Error).message
  const of = expect.size === undefined ? `${bytes} bytes` : `${bytes} of ${expect.size} bytes`
  return new StrataError('SYSCALL', `${why} while downloading ${expect.what} (${of} received)`, { cause: err, details: { bytes, ...(expect.size === undefined ? {} : { size: expect.size }) } })
}

/** Read size for layer members and blob files: 1 MiB chunks, so an apply in a worker thread gets a few hundred hand-overs per layer, not thousands. */
export const READ_CHUNK = 1 << 20

/**
 * A stream of what `open()` gives, opened on the first read: an error
 * opening or reading it (a file gone meanwhile) reaches the consumer
 * instead of being emitted before anyone listens.
 */
export function lazyStream(open: () => Readable): Readable {
  return Readable.from(
    (async function* () {
      const source = open()
      try {
        yield* source as AsyncIterable<Buffer>
      } finally {
        source.destroy()
      }
    })(),
    { objectMode: false },
  )
}

function sizeMismatch(expect: BlobExpectation, got: string): StrataError {
  return new StrataError('CORRUPT', `${expect.what} is ${got} bytes, not the ${expect.size} its descriptor says`, {
    details: { expected: expect.size },
  })
}

/**
 * All of `source`, refusing (CORRUPT) more than `limit` bytes. For
 * documents only: layers are always streamed.
 */
export async function readLimited(source: Readable, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      size += chunk.length
      if (size > limit) throw new StrataError('CORRUPT', `${what} is larger than ${limit} bytes, too large for a JSON document`)
      chunks.push(chunk)
    }
  } finally {
    source.destroy()
  }
  return Buffer.concat(chunks, size)
}

/** Parses a JSON document from a source; CORRUPT naming it when it is not JSON. */
export function parseJsonDocument(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'))
  } catch (err) {
    throw new StrataError('CORRUPT', `${what} is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
}
