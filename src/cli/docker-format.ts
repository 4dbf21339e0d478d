/**
 * The docker CLI's formatting rules the image verbs print with, so that
 * their output reads like docker 20.10's:
 * - tables through Go's tabwriter as docker configures it (minimum cell
 *   width 10, padding 3, every cell but the last padded, trailing blanks
 *   kept);
 * - sizes as go-units' HumanSizeWithPrecision and BytesSize (`images` uses 3 significant
 *   digits, `system df`, prune and VirtualSize 4);
 * - ages as go-units' HumanDuration ("2 hours ago");
 * - `--format` templates run by src/format (docker's list formatting in
 *   list-formats.ts);
 * - IDs cut as stringid.TruncateID, long text cut with "…".
 * Go's time formats are in src/fs (gotime.ts).
 */
import { DOCKER_TABWRITER, displayWidth, formatFloat, tabwrite } from '../format/index.js'
import { goJsonText } from '../fs/index.js'
import { humanDuration as humanDurationMs } from '../containerdb/index.js'

/** Go's %.<precision>g (strconv's rounding: half to even on the exact value). */
function formatG(value: number, precision: number): string {
  return formatFloat(value, 'g', precision)
}

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB']
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB']

/** go-units CustomSize: `bytes` divided by `base` while it reaches it, `precision` significant digits and the unit. */
function customSize(bytes: number, base: number, units: string[], precision: number): string {
  let size = bytes
  let i = 0
  while (size >= base && i < units.length - 1) {
    size /= base
    i++
  }
  return `${formatG(size, precision)}${units[i]}`
}

/** go-units HumanSizeWithPrecision: decimal units (1000), `precision` significant digits. */
export function humanSizeWithPrecision(bytes: number, precision: number): string {
  return customSize(bytes, 1000, DECIMAL_UNITS, precision)
}

/** go-units BytesSize: binary units (1024), 4 significant digits ("1.516MiB"), as docker stats' memory. */
export function bytesSize(bytes: number): string {
  return customSize(bytes, 1024, BINARY_UNITS, 4)
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

/**
 * docker's formatter.Ellipsis: at most `max` display columns (wide
 * characters count two, as go-runewidth counts them), the last one "…"
 * when cut; ASCII text is cut by characters.
 */
export function ellipsis(s: string, max: number): string {
  const chars = [...s]
  if (max <= 0) return ''
  if (max === 1) return chars[0] ?? ''
  if (Buffer.byteLength(s) === chars.length) return chars.length <= max ? s : `${chars.slice(0, max - 1).join('')}…`
  const display: number[] = []
  let width = 0
  for (const ch of chars) {
    width += displayWidth(ch)
    display.push(width)
  }
  if (width <= max) return s
  for (let i = 0; i + 1 < display.length; i++) {
    if (display[i]! <= max - 1 && display[i + 1]! > max - 1) return `${chars.slice(0, i + 1).join('')}…`
  }
  return s
}

/** A table as docker's tabwriter lays it out (minwidth 10, padding 3); each line ends with "\n". */
export function dockerTable(rows: string[][]): string {
  return tabwrite(rows.map((row) => `${row.join('\t')}\n`).join(''), DOCKER_TABWRITER)
}

/** `docker inspect` output: the objects in a JSON array indented by 4 spaces (docker leaves HTML characters alone there). */
export function inspectJson(values: unknown[]): string {
  return `${goJsonText(JSON.stringify(values, null, 4))}\n`
}

