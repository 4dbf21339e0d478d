/**
 * PAX extended header records: `"<len> <key>=<value>\n"`, where <len> counts
 * the whole record including its own digits. Values are bytes: xattr values
 * may hold anything, so records are parsed from a Buffer and only known text
 * keys are decoded.
 */
import { StrataError } from '../../errors/index.js'
import type { Timespec } from '../../sys/index.js'

export interface PaxRecords {
  /** Text records (path, linkpath, mtime, size, uid, ...), UTF-8 decoded. */
  text: Map<string, string>
  /** `SCHILY.xattr.<name>` records, name without the prefix, value as bytes. */
  xattrs: Map<string, Buffer>
}

export const XATTR_PREFIX = 'SCHILY.xattr.'

export function parsePax(data: Buffer, entryName: string): PaxRecords {
  const text = new Map<string, string>()
  const xattrs = new Map<string, Buffer>()
  let pos = 0
  while (pos < data.length) {
    // A NUL where a record should start ends the records (some writers pad).
    if (data[pos] === 0) break
    const space = data.indexOf(0x20, pos)
    if (space < 0 || space - pos > 20) throw corrupt(entryName, 'record length is missing')
    const digits = data.toString('latin1', pos, space)
    // Decimal digits only: Number() alone would take "0x1f", "1e2" or " 12".
    const length = /^[0-9]+$/.test(digits) ? Number(digits) : NaN
    if (!Number.isInteger(length) || length <= space - pos + 1 || pos + length > data.length) throw corrupt(entryName, `bad record length ${JSON.stringify(digits)}`)
    const end = pos + length
    if (data[end - 1] !== 0x0a) throw corrupt(entryName, 'record does not end with a newline')
    const eq = data.indexOf(0x3d, space + 1)
    if (eq < 0 || eq >= end) throw corrupt(entryName, 'record has no "="')
    const key = data.toString('utf8', space + 1, eq)
    const value = data.subarray(eq + 1, end - 1)
    if (key.startsWith(XATTR_PREFIX)) xattrs.set(key.slice(XATTR_PREFIX.length), Buffer.from(value))
    else text.set(key, value.toString('utf8'))
    pos = end
  }
  return { text, xattrs }
}

function corrupt(entryName: string, why: string): StrataError {
  return new StrataError('CORRUPT', `Invalid PAX header for "${entryName}": ${why}`)
}

/** Parses a PAX time ("1700000000.123456789", "-1.5") exactly, without going through a double. */
export function parsePaxTime(value: string, key: string): Timespec {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(value)
  if (m === null) throw new StrataError('CORRUPT', `Invalid PAX ${key} "${value}"`)
  const negative = m[1] === '-'
  const sec = Number(m[2])
  const nsec = Number((m[3] ?? '').slice(0, 9).padEnd(9, '0'))
  if (!negative) return { sec, nsec }
  return nsec === 0 ? { sec: -sec, nsec: 0 } : { sec: -sec - 1, nsec: 1_000_000_000 - nsec }
}

export function formatPaxTime(t: Timespec): string {
  if (t.nsec === 0) return String(t.sec)
  if (t.sec < 0) {
    // -2 + 0.5 is written "-1.5"
    const ns = 1_000_000_000 - t.nsec
    return `-${-t.sec - 1}.${String(ns).padStart(9, '0').replace(/0+$/, '')}`
  }
  return `${t.sec}.${String(t.nsec).padStart(9, '0').replace(/0+$/, '')}`
}

/** Encodes records in the given order; each is `<len> <key>=<value>\n`. */
export function encodePax(records: Array<[string, string | Buffer]>): Buffer {
  const parts: Buffer[] = []
  for (const [key, value] of records) {
    const body = Buffer.concat([Buffer.from(` ${key}=`), typeof value === 'string' ? Buffer.from(value) : value, Buffer.from('\n')])
    let digits = String(body.length).length
    let length = body.length + digits
    if (String(length).length !== digits) {
      digits = String(length).length
      length = body.length + digits
    }
    parts.push(Buffer.from(String(length)), body)
  }
  return Buffer.concat(parts)
}
