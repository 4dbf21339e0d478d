/**
 * A seekable plain tar file for an image archive, whatever form it came in.
 * TarIndex needs positional reads, so:
 *  - a plain tar file on disk is used in place (nothing copied);
 *  - a gzip- or zstd-compressed archive file is decompressed once into a
 *    temp file (`docker save | gzip > x.tar.gz` is a common way to ship);
 *  - a stream (stdin) is decompressed if it needs to be and spooled once.
 * The temp file lives in a fresh owned directory (src/fs/owned.ts) under `tmpDir`, which the CLI
 * points at the data root (`<root>/tmp`) so a big image does not fill a
 * small /tmp; close() removes it. Compression is told by magic bytes, as
 * everywhere in strata (bzip2 and xz are refused with NOT_SUPPORTED).
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { detectCompression, openDecompressed, type Compression } from '../archive/index.js'
import { StrataError, isErrno } from '../errors/index.js'
import { makeOwnedDir, type OwnedDir } from '../fs/index.js'

export interface SpoolOptions {
  /** Where temp copies go (a fresh `strata-spool-*` directory inside); default os.tmpdir(). */
  tmpDir?: string
}

export interface SpooledTar {
  /** A plain tar file: the input itself, or the temp copy. */
  path: string
  /** True when `path` is a temp copy (removed by close()). */
  spooled: boolean
  /** The compression the input had. */
  compression: Compression
  /** Removes the temp copy, if any. Idempotent. */
  close(): Promise<void>
}

/** The first bytes of a file (fewer when it is shorter). */
async function head(path: string, length: number): Promise<Buffer> {
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.alloc(length)
    const { bytesRead } = await fh.read(buf, 0, length, 0)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

/**
 * A plain tar file for `input` (a path or a stream). A path that does not
 * exist is NOT_FOUND; a stream is always consumed (and destroyed on failure).
 */
export async function spoolTar(input: string | Readable, opts: SpoolOptions = {}): Promise<SpooledTar> {
  if (typeof input === 'string') {
    let compression: Compression
    try {
      compression = detectCompression(await head(input, 6))
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new StrataError('NOT_FOUND', `Image archive "${input}" does not exist`, { cause: err })
      if (isErrno(err, 'EISDIR')) throw new StrataError('INVALID_ARGUMENT', `"${input}" is a directory, not an archive file`, { cause: err })
      throw err
    }
    if (compression === 'none') return { path: input, spooled: false, compression, close: async () => {} }
    return spoolStream(createReadStream(input), opts)
  }
  return spoolStream(input, opts)
}

/** The name prefix of spool directories; Store.open sweeps those whose owner died (src/store/debris.ts). */
export const SPOOL_PREFIX = 'strata-spool-'

async function spoolStream(source: Readable, opts: SpoolOptions): Promise<SpooledTar> {
  let owned: OwnedDir
  try {
    // Owned by this process (flock + pid and start time in the name), so a kill -9 leaves nothing the next open keeps.
    owned = makeOwnedDir(opts.tmpDir ?? tmpdir(), SPOOL_PREFIX)
  } catch (err) {
    source.destroy()
    throw err
  }
  const dir = owned.path
  const remove = (): Promise<void> => owned.remove()
  try {
    const { compression, stream } = await openDecompressed(source)
    const path = join(dir, 'archive.tar')
    await pipeline(stream, createWriteStream(path, { flags: 'wx', mode: 0o600 }))
    let closed = false
    return {
      path,
      spooled: true,
      compression,
      close: async () => {
        if (closed) return
        closed = true
        await remove()
      },
    }
  } catch (err) {
    source.destroy()
    await remove().catch(() => {})
    throw err
  }
}
