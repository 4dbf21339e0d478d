/**
 * The docker CLI's formatting rules the image verbs print with, so that
 * their output reads like docker 20.10's:
 * - tables through Go's tabwriter as docker configures it (minimum cell
 *   width 10, padding 3, every cell but the last padded, trailing blanks
 *   kept);
 * - sizes as go-units' HumanSizeWithPrecision (`images` uses 3 significant
 *   digits, `system df`, prune and VirtualSize 4);
 * - ages as go-units' HumanDuration ("2 hours ago");
 * - `--format json` lines as Go's `{{json .}}`: keys sorted, `<`, `>`, `&`
 *   escaped as \u003c etc.;
 * - IDs cut as stringid.TruncateID, long text cut with "…".
 * Go's time formats are in src/fs (gotime.ts).
 */
import { goJsonText } from '../fs/index.js'
import { humanDuration as humanDurationMs } from '../container/index.js'

/** Go's %.<precision>g: `precision` significant digits, trailing zeros dropped, exponent as e+03. */
function formatG(value: number, precision: number): string {
  const s = value.toPrecision(precision)
  const e = s.indexOf('e')
  const trim = (m: string): string => (m.includes('.') ? m.replace(/\.?0+$/, '') : m)
  if (e < 0) return trim(s)
  const exp = Number(s.slice(e + 1))
  return `${trim(s.slice(0, e))}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`
}

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB']

/** go-units HumanSizeWithPrecision: decimal units (1000), `precision` significant digits. */
export function humanSizeWithPrecision(bytes: number, precision: number): string {
  let size = bytes
  let i = 0
  while (size >= 1000 && i < DECIMAL_UNITS.length - 1) {
    size /= 1000
    i++
  }
  return `${formatG(size, precision)}${DECIMAL_UNITS[i]}`
}

/** go-units HumanSize (4 significant digits): `system df`, `image prune`, VirtualSize. */
export function humanSize4(bytes: number): string {
  return humanSizeWithPrecision(bytes, 4)
}

/** go-units HumanDuration of `seconds` (the library's, which takes milliseconds). */
export function humanDuration(seconds: number): string {
  return humanDurationMs(seconds * 1000)
}

/** "2 hours ago" for a Unix time in seconds, as docker's CreatedSince. */
export function since(unixSeconds: number, nowMs: number = Date.now()): string {
  return `${humanDuration(nowMs / 1000 - unixSeconds)} ago`
}

/** stringid.TruncateID: drop an `algo:` prefix, keep 12 characters. */
export function truncateId(id: string): string {
  const i = id.indexOf(':')
  const hex = i >= 0 ? id.slice(i + 1) : id
  return hex.length > 12 ? hex.slice(0, 12) : hex
}

/** docker's formatter.Ellipsis: at most `max` characters, the last one "…" when cut. */
export function ellipsis(s: string, max: number): string {
  const chars = [...s]
  if (max <= 0) return ''
  if (max === 1) return chars[0] ?? ''
  if (chars.length <= max) return s
  return `${chars.slice(0, max - 1).join('')}…`
}

/** A table as docker's tabwriter lays it out (minwidth 10, padding 3); each line ends with "\n". */
export function dockerTable(rows: string[][]): string {
  const width = (s: string): number => [...s].length
  const widths: number[] = []
  for (const row of rows) {
    row.forEach((cell, i) => {
      if (i < row.length - 1) widths[i] = Math.max(widths[i] ?? 10, width(cell) + 3)
    })
  }
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(widths[i]! - width(cell)))).join('') + '\n').join('')
}

/** One `{{json .}}` line: an object's keys sorted, HTML characters escaped as Go does. */
export function jsonLine(obj: Record<string, unknown>): string {
  const sorted = Object.fromEntries(Object.keys(obj).sort().map((k) => [k, obj[k]]))
  const text = goJsonText(JSON.stringify(sorted), { html: true })
  return `${text}\n`
}

/** `docker inspect` output: the objects in a JSON array indented by 4 spaces (docker leaves HTML characters alone there). */
export function inspectJson(values: unknown[]): string {
  return `${goJsonText(JSON.stringify(values, null, 4))}\n`
}

