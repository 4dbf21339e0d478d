/**
 * A layer's index (types.ts) from its tar-split metadata, without its
 * files: tar-split keeps every byte of the layer tar that is not file
 * content (headers, PAX records, GNU long names, padding), so feeding those
 * segments to the tar parser, with zeros standing in for each file's
 * content, gives back every header exactly as the tar had it. The content
 * is never read; a 100k-file layer indexes in well under a second.
 *
 * A layer registered without tar-split (dockerd allows it) is indexed from
 * the tar its driver generates instead (`LayerStore.export`), which does
 * read the files.
 */
import { createReadStream } from 'node:fs'
import type { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { FILE_TYPE, TarParser, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX, cleanPath, decodeEntry, type TarHeader, type TarSplitEntry } from '../archive/index.js'
import { StrataError } from '../errors/index.js'
import type { EntryKind, LayerEntry, LayerIndex } from './types.js'

const ZEROS = Buffer.alloc(1 << 16)

/** Clean absolute form of an archive name: `./etc/` → `/etc`, `.` → `/`. */
export function absolutePath(name: string): string {
  const clean = cleanPath(`/${name}`)
  return clean
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`
}

/** Collects headers into a LayerIndex, sorting out whiteouts and opaque markers. */
class IndexBuilder {
  readonly index: LayerIndex = { entries: [], whiteouts: [], opaque: [], contentSize: 0 }
  #last: LayerEntry | undefined

  header(h: TarHeader): void {
    this.#last = undefined
    if (h.type === 'globalHeader') return
    const path = absolutePath(h.name)
    this.index.contentSize += h.size
    const slash = path.lastIndexOf('/')
    const base = path.slice(slash + 1)
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const dir = parentOf(path)
      if (base === WHITEOUT_OPAQUE) this.index.opaque.push(dir)
      // Other `.wh..wh.*` names are aufs bookkeeping: not a deletion of anything.
      else if (!base.startsWith(WHITEOUT_META_PREFIX)) this.index.whiteouts.push(joinPath(dir, base.slice(WHITEOUT_PREFIX.length)))
      return
    }
    if (path === '/' && h.type !== 'dir') throw new StrataError('CORRUPT', `Layer tar member "${h.name}" names the root but is a ${h.type}`)
    const entry: LayerEntry = {
      path,
      kind: h.type as EntryKind,
      mode: h.mode,
      uid: h.uid,
      gid: h.gid,
      size: h.size,
      mtime: h.mtime.sec,
      link: h.type === 'hardlink' ? absolutePath(h.linkname) : h.type === 'symlink' ? h.linkname : '',
      device: h.type === 'char' || h.type === 'block' ? `${h.devmajor},${h.devminor}` : '',
      xattrs: [...h.xattrs.keys()],
      crc: '',
    }
    this.index.entries.push(entry)
    this.#last = entry
  }

  /** tar-split's file record follows its header: it carries the content's CRC-64. */
  fileRecord(e: Extract<TarSplitEntry, { type: typeof FILE_TYPE }>): void {
    if (this.#last !== undefined && e.payload !== null && absolutePath(e.name) === this.#last.path) this.#last.crc = e.payload.toString('hex')
  }
}

const SEGMENT_PREFIX = Buffer.from('{"type":2,"payload":"')

/**
 * One tar-split line. Segment lines (half the lines, nearly all the bytes)
 * are read without JSON.parse when they have the exact shape Go's encoder
 * and ours give them; anything else goes through decodeEntry.
 */
function decodeLine(buf: Buffer, start: number, end: number, lineNo: number): TarSplitEntry {
  if (buf.compare(SEGMENT_PREFIX, 0, SEGMENT_PREFIX.length, start, start + SEGMENT_PREFIX.length) === 0) {
    const from = start + SEGMENT_PREFIX.length
    const quote = buf.indexOf(34, from)
    if (quote > 0 && quote < end && buf.toString('latin1', quote, quote + 13) === '","position":') {
      const position = Number(buf.toString('latin1', quote + 13, end - 1))
      if (buf[end - 1] === 125 && Number.isSafeInteger(position)) return { type: 2, payload: Buffer.from(buf.toString('latin1', from, quote), 'base64'), position }
    }
  }
  return decodeEntry(buf.toString('utf8', start, end), lineNo)
}

/**
 * Calls `fn` for each entry of a gzip'd tar-split stream, synchronously
 * within each decompressed chunk. (readTarSplit's async iteration, one
 * await per line, costs several times the parsing itself on 200k lines.)
 */
function eachTarSplitEntry(input: Readable, fn: (e: TarSplitEntry) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    // Big output chunks: with the default 16 KiB, a thread-pool round trip per 16 KiB dominates.
    const gunzip = createGunzip({ chunkSize: 1 << 20 })
    let rest: Buffer | null = null
    let lineNo = 0
    const fail = (err: unknown): void => {
      input.destroy()
      gunzip.destroy()
      reject(err)
    }
    input.on('error', fail)
    gunzip.on('error', fail)
    gunzip.on('data', (chunk: Buffer) => {
      try {
        let buf = rest === null ? chunk : Buffer.concat([rest, chunk])
        let start = 0
        for (let nl = buf.indexOf(10, start); nl >= 0; nl = buf.indexOf(10, start)) {
          lineNo++
          if (nl > start) fn(decodeLine(buf, start, nl, lineNo))
          start = nl + 1
        }
        rest = start < buf.length ? buf.subarray(start) : null
        buf = Buffer.alloc(0)
      } catch (err) {
        fail(err)
      }
    })
    gunzip.on('end', () => {
      try {
        if (rest !== null && rest.length > 0) fn(decodeEntry(rest.toString('utf8'), ++lineNo))
        resolve()
      } catch (err) {
        fail(err)
      }
    })
    input.pipe(gunzip)
  })
}

/** Indexes a layer from its gzip'd tar-split file (or an already-open stream of it). */
export async function indexFromTarSplit(source: string | Readable, what = 'layer'): Promise<LayerIndex> {
  const builder = new IndexBuilder()
  const parser = new TarParser({ entry: (h) => builder.header(h), data: () => {}, entryEnd: () => {} })
  try {
    await eachTarSplitEntry(typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : source, (e) => {
      if (e.type === FILE_TYPE) {
        builder.fileRecord(e)
        for (let left = e.size; left > 0; left -= ZEROS.length) parser.write(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left))
      } else if (e.payload.length > 0) {
        parser.write(e.payload)
      }
    })
    parser.end()
  } catch (err) {
    throw wrap(err, what, 'tar-split metadata')
  }
  return builder.index
}

/** Indexes a layer from its tar (plain), reading and discarding the content. */
export async function indexFromTar(tar: AsyncIterable<Buffer>, what = 'layer'): Promise<LayerIndex> {
  const builder = new IndexBuilder()
  const parser = new TarParser({ entry: (h) => builder.header(h), data: () => {}, entryEnd: () => {} })
  try {
    for await (const chunk of tar) parser.write(chunk)
    parser.end()
  } catch (err) {
    throw wrap(err, what, 'tar')
  }
  return builder.index
}

function wrap(err: unknown, what: string, source: string): StrataError {
  const e = err as Error
  // Say what zlib's words mean.
  const why = e.message.replace(/^(incorrect header check|unexpected end of file)$/, (m) => (m === 'incorrect header check' ? 'it is not gzip data (incorrect header check)' : 'it is truncated (unexpected end of file)'))
  if (err instanceof StrataError) {
    return new StrataError(err.code === 'NOT_FOUND' ? 'NOT_FOUND' : 'CORRUPT', `Cannot read the ${source} of ${what}: ${why}`, { cause: err, details: err.details })
  }
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new StrataError('NOT_FOUND', `Cannot read the ${source} of ${what}: ${why}`, { cause: err })
  return new StrataError('CORRUPT', `Cannot read the ${source} of ${what}: ${why}`, { cause: err })
}
