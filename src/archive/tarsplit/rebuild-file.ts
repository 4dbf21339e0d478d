/**
 * Rebuilding a layer tar from tar-split straight into a file at a given
 * position: the fast path of `save`, where the tar goes into an archive
 * file (docker-archive's `<v1id>/layer.tar`).
 *
 * The bytes are assembleTar's (assemble.ts); the way is not. assembleTar
 * yields a chunk per header and per file, and the streams between it and
 * the file concatenated them again and again (node --cpu-prof of a save:
 * ~20% in Buffer copies, stream buffering and GC). Here the tar-split file
 * is read at once (its tar's size is then known before any content is
 * read, so an archive can write the member's header first), file contents
 * are read straight into a big buffer beside the recorded headers, that
 * buffer is hashed once and written while the next one fills.
 *
 * Verification is the same as assembleTar's: every file's size and CRC-64
 * against what was recorded, and the sha256 of the whole against the
 * diffID. Nothing here cleans up the file on failure: the caller writes
 * into a temp file and removes it when this throws.
 */
import { closeSync, readFileSync, readSync, write } from 'node:fs'
import { gunzipSync } from 'node:zlib'
import { Digester, type Digest } from '../../digest/index.js'
import { StrataError } from '../../errors/index.js'
import { ScopedResolver } from '../safepath.js'
import { openLayerFile } from './assemble.js'
import { Crc64 } from './crc64.js'
import { decodeEntry, DuplicateGuard, FILE_TYPE, type TarSplitEntry } from './entries.js'

/** A layer's tar-split, read: its entries and the size of the tar they rebuild. */
export interface TarSplitPlan {
  entries: TarSplitEntry[]
  /** Bytes of the rebuilt tar: the segments' bytes plus every file's recorded size. */
  size: number
}

/**
 * Reads a gzip'd tar-split file at once (a layer's is a few MiB of JSON at
 * most), with readTarSplit's checks: a file that cannot be read, is not
 * gzip or holds a bad line is CORRUPT, a path recorded twice too.
 */
export function readTarSplitPlan(path: string): TarSplitPlan {
  let text: string
  try {
    text = gunzipSync(readFileSync(path)).toString('utf8')
  } catch (err) {
    throw new StrataError('CORRUPT', `Cannot read tar-split metadata: ${(err as Error).message}`, { cause: err })
  }
  const entries: TarSplitEntry[] = []
  const guard = new DuplicateGuard()
  let size = 0
  let lineNo = 0
  let start = 0
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    lineNo++
    const line = text.slice(start, end)
    start = end + 1
    if (line === '' || line === '\r') continue
    const e = decodeEntry(line, lineNo)
    if (e.type === FILE_TYPE) {
      guard.check(e.name)
      size += e.size
    } else {
      size += e.payload.length
    }
    entries.push(e)
  }
  return { entries, size }
}

export interface RebuildAtOptions {
  /** The diffID the tar must hash to. */
  expectedDigest: Digest
  /** Named in errors ("layer sha256:..."). */
  what: string
  /** Called after each write with the bytes written so far. */
  onBytes?: (written: number) => void
  /**
   * Check each file's CRC-64 as it is read (default true). Without, the
   * sha256 of the whole still proves every byte, and only when it fails are
   * the files read again to name the one that changed: the CRC costs ~20%
   * of a save's CPU and only ever improves an error message.
   */
  verifyFiles?: boolean
}

/** Bytes filled before each write (and hashed at once). */
const BATCH = 1 << 20

function writeAll(fd: number, buf: Buffer, length: number, position: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = 0
    const next = (): void =>
      write(fd, buf, done, length - done, position + done, (err, n) => {
        if (err !== null) return reject(err)
        done += n
        if (done < length) next()
        else resolve()
      })
    next()
  })
}

/**
 * Writes the tar `plan` rebuilds from the files under `root` into `fd` at
 * `position` (plan.size bytes). Throws CORRUPT when a file is shorter than
 * recorded or its CRC-64 differs, NOT_FOUND when one is missing, and
 * DIGEST_MISMATCH when the whole does not hash to the expected diffID;
 * what was written then is garbage.
 */
export async function rebuildTarAt(plan: TarSplitPlan, root: string, fd: number, position: number, opts: RebuildAtOptions): Promise<void> {
  const resolver = new ScopedResolver(root)
  const digester = new Digester()
  // Two buffers: one fills (synchronous reads) while the other is being written.
  let buf = Buffer.allocUnsafe(BATCH)
  let spare = Buffer.allocUnsafe(BATCH)
  let fill = 0
  let at = position
  let inFlight: Promise<void> | undefined
  const flush = async (): Promise<void> => {
    if (fill === 0) return
    digester.update(buf.subarray(0, fill))
    if (inFlight !== undefined) await inFlight
    const writing = writeAll(fd, buf, fill, at)
    // Awaited at the next flush or at the end; marked handled so a failure while the next batch fills is not fatal.
    writing.catch(() => {})
    inFlight = writing.then(() => opts.onBytes?.(at - position))
    inFlight.catch(() => {})
    at += fill
    fill = 0
    ;[buf, spare] = [spare, buf]
  }
  try {
    for (const e of plan.entries) {
      if (e.type !== FILE_TYPE) {
        let off = 0
        while (off < e.payload.length) {
          if (fill === BATCH) await flush()
          const n = e.payload.copy(buf, fill, off)
          fill += n
          off += n
        }
        continue
      }
      if (e.size === 0) continue
      const crc = opts.verifyFiles === false ? undefined : new Crc64()
      const file = openLayerFile(resolver, e.name)
      try {
        let remaining = e.size
        while (remaining > 0) {
          if (fill === BATCH) await flush()
          const n = readSync(file, buf, fill, Math.min(remaining, BATCH - fill), null)
          if (n === 0) throw new StrataError('CORRUPT', `Cannot rebuild ${opts.what}: file "${e.name}" is shorter than the ${e.size} bytes recorded`, { details: { entry: e.name } })
          crc?.update(buf.subarray(fill, fill + n))
          fill += n
          remaining -= n
        }
      } finally {
        closeSync(file)
      }
      if (crc !== undefined && e.payload !== null && !crc.digest().equals(e.payload)) {
        throw new StrataError('CORRUPT', `Cannot rebuild ${opts.what}: file "${e.name}" changed since the layer was stored (CRC-64 mismatch)`, { details: { entry: e.name } })
      }
    }
    await flush()
    await inFlight
  } finally {
    // Never return (or throw) with a write still in flight: the caller closes or removes the file next.
    await inFlight?.catch(() => {})
  }
  const actual = digester.digest()
  if (actual !== opts.expectedDigest) {
    if (opts.verifyFiles === false) {
      const changed = changedFile(plan, resolver)
      if (changed !== undefined) {
        throw new StrataError('CORRUPT', `Cannot rebuild ${opts.what}: file "${changed}" changed since the layer was stored (CRC-64 mismatch)`, { details: { entry: changed } })
      }
    }
    throw new StrataError('DIGEST_MISMATCH', `Rebuilt ${opts.what} hashes to ${actual}, not ${opts.expectedDigest}`, { details: { expected: opts.expectedDigest, actual } })
  }
}

/** The first file whose content no longer has its recorded CRC-64 (the diagnosis of a digest mismatch), if any. */
function changedFile(plan: TarSplitPlan, resolver: ScopedResolver): string | undefined {
  const buf = Buffer.allocUnsafe(BATCH)
  for (const e of plan.entries) {
    if (e.type !== FILE_TYPE || e.size === 0 || e.payload === null) continue
    const crc = new Crc64()
    let file: number
    try {
      file = openLayerFile(resolver, e.name)
    } catch {
      return e.name
    }
    try {
      let remaining = e.size
      while (remaining > 0) {
        const n = readSync(file, buf, 0, Math.min(remaining, BATCH), null)
        if (n === 0) break
        crc.update(buf.subarray(0, n))
        remaining -= n
      }
    } finally {
      closeSync(file)
    }
    if (!crc.digest().equals(e.payload)) return e.name
  }
  return undefined
}
