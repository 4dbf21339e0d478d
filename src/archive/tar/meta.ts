/**
 * Meta entries: the PAX extended header (`x`) and the GNU long name (`L`)
 * and long link (`K`) entries that describe the header after them, merged
 * into it as Go's archive/tar merges them: a PAX `path`/`linkpath` wins
 * over a GNU long name/link, which wins over the header's own field. A PAX
 * global header (`g`) is a meta entry too, but describes no member (the
 * caller decides what to do with it; dockerd ignores it).
 *
 * One copy for every reader of tar headers: the streaming parser
 * (parser.ts) and transport's tar index, which reads headers by offset.
 */
import { StrataError } from '../../errors/index.js'
import type { RawHeader } from './header.js'
import { parsePax, type PaxRecords } from './pax.js'

/** Meta entries bigger than this are refused (Go's archive/tar uses the same 1 MiB bound). */
export const MAX_META_SIZE = 1 << 20

export type MetaTypeflag = 'x' | 'g' | 'L' | 'K'

/** True for the typeflags of meta entries, whose content describes the next header. */
export function isMetaType(typeflag: string): typeflag is MetaTypeflag {
  return typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K'
}

/** Refuses a meta entry over MAX_META_SIZE; `where` names the archive in the message (e.g. ` in the archive "x.tar"`). */
export function checkMetaSize(raw: RawHeader, where = ''): void {
  if (raw.size > MAX_META_SIZE) {
    throw new StrataError('CORRUPT', `Tar meta entry "${raw.name}" (type ${raw.typeflag})${where} is ${raw.size} bytes, over the 1 MiB limit`, {
      details: { entry: raw.name, size: raw.size },
    })
  }
}

/** A header's name, link name and PAX records once its meta entries are merged in. */
export interface MergedHeader {
  name: string
  linkname: string
  /** The PAX text records (empty without an `x` entry). */
  text: Map<string, string>
  /** The PAX `SCHILY.xattr.*` records. */
  xattrs: Map<string, Buffer>
}

/** The meta entries read since the last header, waiting for the header they describe. */
export class PendingMeta {
  #pax: PaxRecords | undefined
  #longName: string | undefined
  #longLink: string | undefined

  /** Takes the content of an `x`, `L` or `K` entry named `entryName` (a `g` is parsed and returned, not kept). */
  add(typeflag: MetaTypeflag, data: Buffer, entryName: string): PaxRecords | undefined {
    switch (typeflag) {
      case 'x':
        this.#pax = parsePax(data, entryName)
        return undefined
      case 'g':
        return parsePax(data, entryName)
      case 'L':
        this.#longName = nulTerminated(data)
        return undefined
      case 'K':
        this.#longLink = nulTerminated(data)
        return undefined
    }
  }

  /** Merges the pending meta entries into `raw` and forgets them. */
  take(raw: RawHeader): MergedHeader {
    const text = this.#pax?.text ?? new Map<string, string>()
    const merged: MergedHeader = {
      name: text.get('path') ?? this.#longName ?? raw.name,
      linkname: text.get('linkpath') ?? this.#longLink ?? raw.linkname,
      text,
      xattrs: this.#pax?.xattrs ?? new Map(),
    }
    this.#pax = undefined
    this.#longName = undefined
    this.#longLink = undefined
    return merged
  }
}

/** A PAX numeric record (`size`, `uid`, `gid`) or `fallback` when absent; CORRUPT when not a decimal number. */
export function paxNumber(text: Map<string, string>, key: string, fallback: number, entryName: string): number {
  const v = text.get(key)
  if (v === undefined) return fallback
  if (!/^\d+$/.test(v)) throw new StrataError('CORRUPT', `Tar entry "${entryName}": invalid PAX ${key} "${v}"`, { details: { entry: entryName, key } })
  return Number(v)
}

function nulTerminated(data: Buffer): string {
  const nul = data.indexOf(0)
  return data.toString('utf8', 0, nul < 0 ? data.length : nul)
}
