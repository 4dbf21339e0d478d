/**
 * vbatts/tar-split's metadata format, as dockerd stores it in
 * `layerdb/sha256/<chain>/tar-split.json.gz`: one JSON object per line,
 *
 *   {"type":2,"payload":"<base64 raw bytes>","position":0}          a segment
 *   {"type":1,"name":"etc/passwd","size":1234,"payload":"<base64 crc64>","position":1}   a file
 *
 * Segments are the archive's bytes that are not file content (headers,
 * padding, end blocks); file entries stand for content that is read back
 * from the layer's files on disk. Field order and escaping follow Go's
 * encoding/json, so our files read like dockerd's; `name_raw` (base64) is
 * used by Go when a name is not valid UTF-8, which we read but never need to
 * write (our names are UTF-8).
 */
import { StrataError } from '../../errors/index.js'
import { cleanPath } from '../safepath.js'

export const FILE_TYPE = 1
export const SEGMENT_TYPE = 2

export type TarSplitEntry =
  | { type: typeof SEGMENT_TYPE; payload: Buffer; position: number }
  | { type: typeof FILE_TYPE; name: string; size: number; payload: Buffer | null; position: number }

/** Go's json escapes <, >, & and U+2028/9 in strings; JSON.stringify does not. */
function goJsonString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

export function encodeEntry(e: TarSplitEntry): string {
  if (e.type === SEGMENT_TYPE) return `{"type":2,"payload":"${e.payload.toString('base64')}","position":${e.position}}\n`
  const size = e.size === 0 ? '' : `"size":${e.size},`
  const payload = e.payload === null ? 'null' : `"${e.payload.toString('base64')}"`
  return `{"type":1,"name":${goJsonString(e.name)},${size}"payload":${payload},"position":${e.position}}\n`
}

export function decodeEntry(line: string, lineNo: number): TarSplitEntry {
  let obj: Record<string, unknown>
  try {
    obj = JSON.parse(line) as Record<string, unknown>
  } catch (err) {
    throw new StrataError('CORRUPT', `tar-split line ${lineNo} is not JSON`, { cause: err })
  }
  const position = typeof obj.position === 'number' ? obj.position : -1
  const payload = typeof obj.payload === 'string' ? Buffer.from(obj.payload, 'base64') : null
  if (obj.type === SEGMENT_TYPE) return { type: SEGMENT_TYPE, payload: payload ?? Buffer.alloc(0), position }
  if (obj.type === FILE_TYPE) {
    let name: string
    if (typeof obj.name === 'string' && obj.name !== '') name = obj.name
    else if (typeof obj.name_raw === 'string') name = Buffer.from(obj.name_raw, 'base64').toString('utf8')
    else throw new StrataError('CORRUPT', `tar-split line ${lineNo}: file entry without a name`)
    const size = typeof obj.size === 'number' ? obj.size : 0
    if (!Number.isSafeInteger(size) || size < 0) throw new StrataError('CORRUPT', `tar-split line ${lineNo}: bad size for "${name}"`)
    return { type: FILE_TYPE, name, size, payload, position }
  }
  throw new StrataError('CORRUPT', `tar-split line ${lineNo}: unknown entry type ${JSON.stringify(obj.type)}`)
}

/**
 * tar-split refuses a path that appears twice (compared after cleaning):
 * content is read back by name, so a second entry would shadow the first.
 * dockerd 20.10 therefore refuses such a layer on load (`a` twice, `d/`
 * twice: "duplicates of file paths not supported"), and so does strata.
 */
export class DuplicateGuard {
  readonly #seen = new Set<string>()

  check(name: string): void {
    const clean = cleanPath(name)
    if (this.#seen.has(clean)) {
      // dockerd 20.10 refuses the same tar with tar-split's words (ErrDuplicatePath), for files and directories alike.
      throw new StrataError('CORRUPT', `Layer tar contains "${name}" twice: duplicates of file paths not supported`, { details: { entry: name } })
    }
    this.#seen.add(clean)
  }
}
