/**
 * Rebuilds a layer tar from its tar-split metadata and the layer's files:
 * segments are written as recorded, each file entry's content is read from
 * disk and checked against the recorded CRC-64, and the sha256 of the whole
 * output can be checked against the layer's diffID. Any mismatch is an
 * error; the consumer must treat what it has received as garbage then (the
 * error arrives before the stream ends).
 */
import { createGunzip } from 'node:zlib'
import { createInterface } from 'node:readline'
import { closeSync, constants, createReadStream, openSync, readSync } from 'node:fs'
import type { Readable } from 'node:stream'
import { StrataError, isErrno } from '../../errors/index.js'
import { Digester, type Digest } from '../../digest/index.js'
import { entryComponents, ScopedResolver } from '../safepath.js'
import { Crc64 } from './crc64.js'
import { decodeEntry, DuplicateGuard, FILE_TYPE, type TarSplitEntry } from './entries.js'

/** Reads the entries of a gzip'd tar-split file (or an already-gunzipped stream). */
export async function* readTarSplit(source: string | Readable, gzipped = true): AsyncGenerator<TarSplitEntry> {
  const raw = typeof source === 'string' ? createReadStream(source) : source
  const input = gzipped ? raw.pipe(createGunzip()) : raw
  raw.on('error', (e: Error) => input.destroy(e))
  const lines = createInterface({ input, crlfDelay: Infinity })
  const guard = new DuplicateGuard()
  let lineNo = 0
  try {
    for await (const line of lines) {
      lineNo++
      if (line === '') continue
      const e = decodeEntry(line, lineNo)
      if (e.type === FILE_TYPE) guard.check(e.name)
      yield e
    }
  } catch (err) {
    if (err instanceof StrataError) throw err
    throw new StrataError('CORRUPT', `Cannot read tar-split metadata: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * The content of a file entry, by its archive name and recorded size: an
 * iterable of chunks (sync or async). It may yield fewer bytes than `size`
 * when the file shrank (the assembler reports that) but never more.
 */
export type FileGetter = (name: string, size: number) => Iterable<Buffer> | AsyncIterable<Buffer>

const READ_CHUNK = 1 << 20

/**
 * Opens the layer file `name` (an archive name) for reading inside the
 * resolver's root: parents resolved inside it, the file itself with
 * O_NOFOLLOW. A missing file (or a symlink where the file was) is NOT_FOUND.
 */
export function openLayerFile(resolver: ScopedResolver, name: string): number {
  const path = resolver.path(entryComponents(name))
  try {
    return openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ELOOP')) throw new StrataError('NOT_FOUND', `Layer file "${name}" is missing from "${resolver.root}"`, { cause: err })
    throw err
  }
}

/**
 * A FileGetter over a directory: names are resolved inside `root` (symlinks
 * on the way stay inside it) and the file itself is opened with O_NOFOLLOW,
 * so a layer can never make us read a file outside it.
 *
 * Reads are synchronous into buffers of exactly the size needed: a layer is
 * thousands of small files, and a stream per file (a 1 MiB buffer, a
 * thread-pool round trip per read, an abort at the end) cost more than the
 * reading itself.
 */
export function directoryFileGetter(root: string): FileGetter {
  const resolver = new ScopedResolver(root)
  return function* (name, size) {
    const fd = openLayerFile(resolver, name)
    try {
      let remaining = size
      while (remaining > 0) {
        const buf = Buffer.allocUnsafe(Math.min(remaining, READ_CHUNK))
        const n = readSync(fd, buf, 0, buf.length, null)
        if (n === 0) return
        remaining -= n
        yield n === buf.length ? buf : buf.subarray(0, n)
      }
    } finally {
      closeSync(fd)
    }
  }
}

export interface AssembleOptions {
  /** The diffID the output must hash to; checked at the end. */
  expectedDigest?: Digest
  /** Named in errors ("layer sha256:..."). */
  what?: string
}

/**
 * The original tar, byte for byte. Throws CORRUPT when a file's content does
 * not match its recorded size or CRC-64, DIGEST_MISMATCH when the whole does
 * not hash to `expectedDigest`.
 */
export async function* assembleTar(entries: AsyncIterable<TarSplitEntry>, getFile: FileGetter, opts: AssembleOptions = {}): AsyncGenerator<Buffer> {
  const digester = new Digester()
  const what = opts.what ?? 'layer'
  for await (const e of entries) {
    if (e.type !== FILE_TYPE) {
      digester.update(e.payload)
      yield e.payload
      continue
    }
    if (e.size === 0) continue
    const crc = new Crc64()
    let remaining = e.size
    for await (const chunk of getFile(e.name, e.size)) {
      const piece = chunk.length > remaining ? chunk.subarray(0, remaining) : chunk
      if (piece.length === 0) break
      remaining -= piece.length
      crc.update(piece)
      digester.update(piece)
      yield piece
      if (remaining === 0) break
    }
    if (remaining !== 0) throw new StrataError('CORRUPT', `Cannot rebuild ${what}: file "${e.name}" is shorter than the ${e.size} bytes recorded`, { details: { entry: e.name } })
    if (e.payload !== null && !crc.digest().equals(e.payload)) {
      throw new StrataError('CORRUPT', `Cannot rebuild ${what}: file "${e.name}" changed since the layer was stored (CRC-64 mismatch)`, { details: { entry: e.name } })
    }
  }
  if (opts.expectedDigest !== undefined) {
    const actual = digester.digest()
    if (actual !== opts.expectedDigest) {
      throw new StrataError('DIGEST_MISMATCH', `Rebuilt ${what} hashes to ${actual}, not ${opts.expectedDigest}`, { details: { expected: opts.expectedDigest, actual } })
    }
  }
}
