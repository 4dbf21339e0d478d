// Formatting for display: sizes, modes, and names made safe to show.

/** docker's units (1000-based, 3 significant digits): 1.23MB. */
export function bytes(n: number): string {
  if (n < 0) return '?'
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let v = n
  let i = -1
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000
    i++
  }
  return `${v.toPrecision(3).replace(/\.?0+$/, '')} ${units[i]}`
}

const KIND_CHAR: Record<string, string> = { dir: 'd', symlink: 'l', hardlink: '-', char: 'c', block: 'b', fifo: 'p', file: '-' }

/** `drwxr-xr-x`, with s/S and t/T as ls shows them. */
export function modeString(kind: string, mode: number): string {
  const bit = (b: number, c: string): string => (mode & b ? c : '-')
  let s = KIND_CHAR[kind] ?? '?'
  s += bit(0o400, 'r') + bit(0o200, 'w')
  s += mode & 0o4000 ? (mode & 0o100 ? 's' : 'S') : bit(0o100, 'x')
  s += bit(0o040, 'r') + bit(0o020, 'w')
  s += mode & 0o2000 ? (mode & 0o010 ? 's' : 'S') : bit(0o010, 'x')
  s += bit(0o004, 'r') + bit(0o002, 'w')
  s += mode & 0o1000 ? (mode & 0o001 ? 't' : 'T') : bit(0o001, 'x')
  return s
}

export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12)
}

export function date(rfc3339: string): string {
  if (rfc3339 === '') return ''
  const d = new Date(rfc3339)
  return Number.isNaN(d.getTime()) ? rfc3339 : d.toISOString().replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC')
}

/** A piece of a name: shown as is, or an escape standing for characters that must not be shown raw. */
export type NamePart = { text: string; escaped: boolean }

// Control characters, and the invisible or reordering ones (bidi overrides, zero-width marks, BOM).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufffd]/gu
const NAMED: Record<string, string> = { '\n': '\\n', '\t': '\\t', '\r': '\\r', '\u001b': '\\e' }

/** Splits a name into displayable text and visible escapes (`\n`, `\x07`, `\u202e`). */
export function nameParts(name: string): NamePart[] {
  const parts: NamePart[] = []
  let last = 0
  for (const m of name.matchAll(UNSAFE)) {
    if (m.index > last) parts.push({ text: name.slice(last, m.index), escaped: false })
    const c = m[0]
    const code = c.codePointAt(0)!
    parts.push({ text: NAMED[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`), escaped: true })
    last = m.index + c.length
  }
  if (last < name.length) parts.push({ text: name.slice(last), escaped: false })
  return parts
}

/** The name with its escapes, as one plain string (titles, tooltips). */
export function displayName(name: string): string {
  return nameParts(name)
    .map((p) => p.text)
    .join('')
}
