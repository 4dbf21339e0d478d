/**
 * Encoding entries as a tar stream, in the PAX-extended ustar format dockerd
 * writes (Go 1.19's archive/tar with tar.FormatPAX, which dockerd 20.10 is
 * built with): a plain ustar header when every field fits, preceded by a PAX
 * `x` header for the fields that do not (long or non-ASCII names, big ids
 * or sizes, sub-second times, xattrs). The `x` header is Go's minimal one
 * (writeRawFile): name `<dir>/PaxHeaders.0/<base>` cleaned as Go's
 * path.Join does, mode, ids and mtime 0, no user/group names or device
 * numbers, records sorted by key. Output is deterministic: the same input
 * always gives the same bytes.
 */
import { posix } from 'node:path'
import { StrataError } from '../../errors/index.js'
import type { Timespec } from '../../sys/index.js'
import { encodeUstar, octalLimit, paddingFor, writeChecksum } from './header.js'
import { encodePax, formatPaxTime, XATTR_PREFIX } from './pax.js'
import { BLOCK, type EntryType, type TarHeaderInput } from './types.js'

const TYPEFLAG: Record<Exclude<EntryType, 'globalHeader'>, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
}

/** File type bits dockerd puts in the mode field (Go's c_ISDIR, c_ISREG, ...). */
const TYPE_MODE_BITS: Record<Exclude<EntryType, 'globalHeader'>, number> = {
  file: 0o100000,
  hardlink: 0o100000,
  symlink: 0o120000,
  char: 0o020000,
  block: 0o060000,
  dir: 0o040000,
  fifo: 0o010000,
}

export interface EncodeOptions {
  /** Keep nanoseconds of mtime in a PAX record (dockerd truncates to seconds). Default true. */
  subsecondTimes?: boolean
  /**
   * Put the file type bits (0o040000 for a dir, 0o100000 for a file, ...)
   * in the mode field, as dockerd's FileInfoHeader does. Default true;
   * false writes `mode` alone, as dockerd's hand-made whiteout headers have it.
   */
  modeTypeBits?: boolean
}

/** Two zero blocks: the end-of-archive marker. */
export const END_OF_ARCHIVE: Buffer = Buffer.alloc(2 * BLOCK)

const ZEROS = Buffer.alloc(BLOCK)

/** The zero bytes that follow `size` bytes of content. */
export function padding(size: number): Buffer {
  return ZEROS.subarray(0, paddingFor(size))
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false
  return true
}

function toAscii(s: string): string {
  let out = ''
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x80) out += s[i]
  return out
}

/** Splits a long name into ustar prefix (≤155) and name (≤100) at a slash, or returns undefined. */
function splitUstarPath(name: string): [prefix: string, base: string] | undefined {
  const len = name.length
  if (len <= 100 || !isAscii(name)) return undefined
  // As Go's splitUSTARPath: a directory's trailing slash stays with the base name.
  const end = len > 156 ? 156 : name.endsWith('/') ? len - 1 : len
  const i = name.lastIndexOf('/', end - 1)
  if (i <= 0) return undefined
  const prefix = name.slice(0, i)
  const base = name.slice(i + 1)
  if (prefix.length > 155 || base.length > 100 || base.length === 0) return undefined
  return [prefix, base]
}

/**
 * The header bytes of one entry: optional PAX header (with its padding) and
 * the ustar block. Content and its padding are the caller's to write.
 */
export function encodeHeader(h: TarHeaderInput, opts: EncodeOptions = {}): Buffer {
  if (h.type === 'globalHeader') throw new StrataError('INVALID_ARGUMENT', 'Writing PAX global headers is not supported')
  const subsecond = opts.subsecondTimes ?? true
  const typeBits = opts.modeTypeBits ?? true
  const records: Array<[string, string | Buffer]> = []
  const mtime: Timespec = h.mtime ?? { sec: 0, nsec: 0 }
  const size = h.type === 'file' ? (h.size ?? 0) : 0
  const uid = h.uid ?? 0
  const gid = h.gid ?? 0
  const uname = h.uname ?? ''
  const gname = h.gname ?? ''
  const linkname = h.linkname ?? ''

  let nameField = h.name
  let prefix = ''
  if (Buffer.byteLength(h.name) > 100 || !isAscii(h.name)) {
    const split = splitUstarPath(h.name)
    if (split === undefined) {
      records.push(['path', h.name])
      nameField = toAscii(h.name).slice(0, 100)
    } else {
      ;[prefix, nameField] = split
    }
  }
  let linkField = linkname
  if (Buffer.byteLength(linkname) > 100 || !isAscii(linkname)) {
    records.push(['linkpath', linkname])
    linkField = toAscii(linkname).slice(0, 100)
  }
  const idLimit = octalLimit(8)
  if (uid > idLimit) records.push(['uid', String(uid)])
  if (gid > idLimit) records.push(['gid', String(gid)])
  let unameField = uname
  if (Buffer.byteLength(uname) > 32 || !isAscii(uname)) {
    records.push(['uname', uname])
    unameField = toAscii(uname).slice(0, 32)
  }
  let gnameField = gname
  if (Buffer.byteLength(gname) > 32 || !isAscii(gname)) {
    records.push(['gname', gname])
    gnameField = toAscii(gname).slice(0, 32)
  }
  if (size > octalLimit(12)) records.push(['size', String(size)])
  const mtimeFits = mtime.sec >= 0 && mtime.sec <= octalLimit(12)
  if (!mtimeFits || (subsecond && mtime.nsec !== 0)) records.push(['mtime', formatPaxTime(subsecond ? mtime : { sec: mtime.sec, nsec: 0 })])
  const devmajor = h.devmajor ?? 0
  const devminor = h.devminor ?? 0
  if (devmajor > idLimit || devminor > idLimit) throw new StrataError('INVALID_ARGUMENT', `Device numbers of "${h.name}" are too large for a tar header`)
  if (h.xattrs !== undefined && h.xattrs.size > 0) {
    for (const key of [...h.xattrs.keys()].sort()) records.push([XATTR_PREFIX + key, h.xattrs.get(key)!])
  }

  const ustar = encodeUstar({
    name: nameField,
    prefix,
    mode: ((h.mode ?? (h.type === 'dir' ? 0o755 : 0o644)) & 0o7777) | (typeBits ? TYPE_MODE_BITS[h.type] : 0),
    uid: uid > idLimit ? 0 : uid,
    gid: gid > idLimit ? 0 : gid,
    size: size > octalLimit(12) ? 0 : size,
    mtime: mtimeFits ? mtime.sec : 0,
    typeflag: TYPEFLAG[h.type],
    linkname: linkField,
    uname: unameField,
    gname: gnameField,
    devmajor,
    devminor,
  })
  if (records.length === 0) return ustar

  // Go writes the records sorted by key (byte order).
  records.sort(([a], [b]) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  const pax = encodePax(records)
  const paxHeader = encodeUstar({
    name: paxHeaderName(h.name),
    prefix: '',
    mode: 0,
    uid: 0,
    gid: 0,
    size: pax.length,
    mtime: 0,
    typeflag: 'x',
    linkname: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  })
  // Go's writeRawFile leaves the user/group names and device numbers unset (NUL bytes).
  paxHeader.fill(0, 329, 345)
  writeChecksum(paxHeader)
  return Buffer.concat([paxHeader, pax, padding(pax.length), ustar])
}

/**
 * The name of an entry's PAX `x` header, as Go's writePAXHeader makes it:
 * path.Join(dir, "PaxHeaders.0", base) of the entry name split after its
 * last slash (so a dir "a/b/" gives "a/b/PaxHeaders.0"), then only its
 * ASCII characters, cut to 100 bytes, trailing slashes removed.
 */
function paxHeaderName(name: string): string {
  const slash = name.lastIndexOf('/')
  const joined = posix.join(name.slice(0, slash + 1), 'PaxHeaders.0', name.slice(slash + 1))
  return toAscii(joined).slice(0, 100).replace(/\/+$/, '')
}

/**
 * One ustar block for a regular file whose header is written after its
 * content (a placeholder first, then the real header over it): short ASCII
 * names only, root-owned, `size` past the octal field in base-256 as GNU
 * tar and Go's archive/tar write and read it. Always exactly one block, so
 * it can overwrite its placeholder.
 */
export function encodeStreamedHeader(name: string, size: number, opts: { mtime?: number; mode?: number } = {}): Buffer {
  if (Buffer.byteLength(name) > 100 || !/^[\x20-\x7e]+$/.test(name)) {
    throw new StrataError('INVALID_ARGUMENT', `Archive member name "${name}" is too long or not ASCII for a streamed member`)
  }
  const block = encodeUstar({
    name,
    prefix: '',
    mode: (opts.mode ?? 0o644) | 0o100000,
    uid: 0,
    gid: 0,
    size: size > octalLimit(12) ? 0 : size,
    mtime: opts.mtime ?? 0,
    typeflag: '0',
    linkname: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  })
  if (size > octalLimit(12)) {
    // GNU base-256: high bit of the first byte set, the value big-endian in the rest of the field.
    block[124] = 0x80
    let v = BigInt(size)
    for (let i = 135; i > 124; i--) {
      block[i] = Number(v & 0xffn)
      v >>= 8n
    }
    writeChecksum(block)
  }
  return block
}
