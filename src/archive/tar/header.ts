/**
 * Encoding and decoding of one 512-byte tar header block (ustar, GNU and
 * old V7), and of the numeric fields inside it.
 *
 * Field offsets (POSIX ustar; GNU reuses the prefix area for atime/ctime):
 *   0 name[100] 100 mode[8] 108 uid[8] 116 gid[8] 124 size[12] 136 mtime[12]
 *   148 chksum[8] 156 typeflag 157 linkname[100] 257 magic[6] 263 version[2]
 *   265 uname[32] 297 gname[32] 329 devmajor[8] 337 devminor[8] 345 prefix[155]
 */
import { StrataError } from '../../errors/index.js'
import { BLOCK } from './types.js'

export type HeaderFormat = 'ustar' | 'gnu' | 'v7'

/** The fields of one header block, before PAX/GNU meta entries are applied. */
export interface RawHeader {
  name: string
  mode: number
  uid: number
  gid: number
  size: number
  mtime: number
  typeflag: string
  linkname: string
  uname: string
  gname: string
  devmajor: number
  devminor: number
  format: HeaderFormat
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** A NUL-terminated string field; names must be UTF-8 (we refuse rather than mangle them). */
export function readString(block: Uint8Array, offset: number, length: number): string {
  let end = offset
  const limit = offset + length
  while (end < limit && block[end] !== 0) end++
  if (end === offset) return ''
  let ascii = true
  for (let i = offset; i < end; i++) if (block[i]! >= 0x80) { ascii = false; break }
  if (ascii) return Buffer.from(block.buffer, block.byteOffset + offset, end - offset).toString('latin1')
  try {
    return utf8.decode(block.subarray(offset, end))
  } catch {
    throw new StrataError('NOT_SUPPORTED', `Tar header field is not valid UTF-8: ${Buffer.from(block.subarray(offset, end)).toString('hex')}`)
  }
}

/**
 * A numeric field: octal text (leading spaces/NULs allowed, ended by space
 * or NUL) or GNU base-256 (high bit of the first byte set) for values too
 * large for octal (uids > 2097151, files > 8 GiB).
 */
export function readNumber(block: Uint8Array, offset: number, length: number, field: string): number {
  const first = block[offset]!
  if (first & 0x80) {
    // base-256, two's complement: bit 0x40 of the first byte is the sign (as
    // in Go's archive/tar and GNU tar). A negative value is read inverted,
    // then -x-1 == ~x gives it back: 0xff..fe is -2.
    const inv = first & 0x40 ? 0xff : 0
    let value = (first ^ inv) & 0x7f
    for (let i = 1; i < length; i++) value = value * 256 + (block[offset + i]! ^ inv)
    if (!Number.isSafeInteger(value)) throw new StrataError('CORRUPT', `Tar header field ${field} is out of range`)
    return inv === 0 ? value : -value - 1
  }
  let i = offset
  const end = offset + length
  while (i < end && (block[i] === 0x20 || block[i] === 0)) i++
  let value = 0
  let digits = 0
  for (; i < end; i++) {
    const c = block[i]!
    if (c === 0x20 || c === 0) break
    if (c < 0x30 || c > 0x37) throw new StrataError('CORRUPT', `Tar header field ${field} is not an octal number: ${JSON.stringify(Buffer.from(block.subarray(offset, end)).toString('latin1'))}`)
    value = value * 8 + (c - 0x30)
    digits++
  }
  return value
}

/** True when all 512 bytes are zero: one half of the end-of-archive marker. */
export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK; i++) if (block[i] !== 0) return false
  return true
}

function checksumOk(block: Uint8Array): boolean {
  let stored: number
  try {
    stored = readNumber(block, 148, 8, 'chksum')
  } catch {
    return false
  }
  // The checksum field itself counts as eight spaces. One branch-free pass
  // (every layer has thousands of headers); the signed sum only on a miss.
  let unsigned = 8 * 0x20
  for (let i = 0; i < 148; i++) unsigned += block[i]!
  for (let i = 156; i < BLOCK; i++) unsigned += block[i]!
  if (stored === unsigned) return true
  // Some old tars summed signed bytes; both are accepted, as GNU tar does.
  let high = 0
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) high += block[i]! >>> 7
  return stored === unsigned - 256 * high
}

/** Decodes a header block; `position` is its byte offset, for error messages. */
export function decodeHeader(block: Uint8Array, position: number): RawHeader {
  if (!checksumOk(block)) {
    throw new StrataError('CORRUPT', `Invalid tar header at byte ${position}: checksum mismatch (not a tar archive, or corrupt)`)
  }
  const magic = Buffer.from(block.buffer, block.byteOffset + 257, 8).toString('latin1')
  const format: HeaderFormat = magic === 'ustar\x0000' || magic.startsWith('ustar\0') ? 'ustar' : magic === 'ustar  \0' ? 'gnu' : 'v7'
  let name = readString(block, 0, 100)
  if (format === 'ustar') {
    const prefix = readString(block, 345, 155)
    if (prefix !== '') name = `${prefix}/${name}`
  }
  const typeflag = String.fromCharCode(block[156]!)
  return {
    name,
    mode: readNumber(block, 100, 8, 'mode'),
    uid: readNumber(block, 108, 8, 'uid'),
    gid: readNumber(block, 116, 8, 'gid'),
    size: readNumber(block, 124, 12, 'size'),
    mtime: readNumber(block, 136, 12, 'mtime'),
    typeflag,
    linkname: readString(block, 157, 100),
    uname: format === 'v7' ? '' : readString(block, 265, 32),
    gname: format === 'v7' ? '' : readString(block, 297, 32),
    devmajor: format === 'v7' ? 0 : readNumber(block, 329, 8, 'devmajor'),
    devminor: format === 'v7' ? 0 : readNumber(block, 337, 8, 'devminor'),
    format,
  }
}

// ---- encoding ----

/** Largest value an octal field of `length` bytes holds (length-1 digits and a NUL). */
export function octalLimit(length: number): number {
  return 8 ** (length - 1) - 1
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  const text = value.toString(8).padStart(length - 1, '0')
  block.write(text, offset, length - 1, 'latin1')
  block[offset + length - 1] = 0
}

function writeString(block: Buffer, offset: number, length: number, value: string): void {
  block.write(value, offset, length, 'utf8')
}

/** Fields for one ustar block; values must already fit (the writer moves overflow into PAX). */
export type UstarFields = Omit<RawHeader, 'format'> & { prefix: string }

/** One POSIX ustar header block ("ustar\0" "00"), checksum filled in. */
export function encodeUstar(f: UstarFields): Buffer {
  const block = Buffer.alloc(BLOCK)
  writeString(block, 0, 100, f.name)
  writeOctal(block, 100, 8, f.mode)
  writeOctal(block, 108, 8, f.uid)
  writeOctal(block, 116, 8, f.gid)
  writeOctal(block, 124, 12, f.size)
  writeOctal(block, 136, 12, f.mtime)
  block[156] = f.typeflag.charCodeAt(0)
  writeString(block, 157, 100, f.linkname)
  block.write('ustar\x0000', 257, 8, 'latin1')
  writeString(block, 265, 32, f.uname)
  writeString(block, 297, 32, f.gname)
  writeOctal(block, 329, 8, f.devmajor)
  writeOctal(block, 337, 8, f.devminor)
  writeString(block, 345, 155, f.prefix)
  writeChecksum(block)
  return block
}

/** Fills in the checksum field of a header block whose other fields are final (six octal digits, NUL, space: what GNU tar writes). */
export function writeChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += block[i]!
  block.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1')
  block[154] = 0
  block[155] = 0x20
}

/** Zero bytes needed after `size` bytes of content to reach a block boundary. */
export function paddingFor(size: number): number {
  const r = size % BLOCK
  return r === 0 ? 0 : BLOCK - r
}
