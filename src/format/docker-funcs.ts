/**
 * The functions docker's CLI adds to every template (docker/cli
 * templates/templates.go): json, split, join, title, lower, upper, pad,
 * truncate; and the header variants docker swaps in to render a table's
 * header row, which return their first argument unchanged (so
 * `{{upper .Name}}` heads its column with NAME, not with UPPER(NAME)).
 */
import { INT, sliceOf, STRING, ANY } from './go-types.js'
import { encodeJSON } from './json.js'
import type { FuncMap, TemplateFunc } from './types.js'
import type { Value } from './value.js'

const STRINGS = sliceOf(STRING)

/** Go's unicode simple case mapping, one code point at a time (JavaScript's special casings like ß→SS are not Go's). */
function mapRunes(s: string, map: (ch: string) => string): string {
  let out = ''
  for (const ch of s) {
    const m = map(ch)
    out += [...m].length === 1 ? m : ch
  }
  return out
}

/** strings.Title's isSeparator. */
function isSeparator(ch: string): boolean {
  const r = ch.codePointAt(0)!
  if (r <= 0x7f) return !/[0-9a-zA-Z_]/.test(ch)
  if (/[\p{L}\p{Nd}]/u.test(ch)) return false
  return /\s/u.test(ch)
}

/** strings.Title: the first letter of each word mapped to title case. */
function title(s: string): string {
  let prev = ' '
  let out = ''
  for (const ch of s) {
    out += isSeparator(prev) ? mapRunes(ch, (c) => c.toUpperCase()) : ch
    prev = ch
  }
  return out
}

/** strings.Split: around each `sep`; an empty `sep` splits after each UTF-8 sequence. */
function split(s: string, sep: string): string[] {
  return sep === '' ? [...s] : s.split(sep)
}

/** docker's truncate: the first `length` bytes (Go slices bytes, not characters). */
function truncate(source: string, length: bigint): string {
  const bytes = Buffer.from(source, 'utf8')
  if (BigInt(bytes.length) < length) return source
  if (length < 0n) throw new Error(`runtime error: slice bounds out of range [:${length}]`)
  return bytes.subarray(0, Number(length)).toString('utf8')
}

function pad(source: string, prefix: bigint, suffix: bigint): string {
  if (source === '') return source
  if (prefix < 0n || suffix < 0n) throw new Error('strings: negative Repeat count')
  return ' '.repeat(Number(prefix)) + source + ' '.repeat(Number(suffix))
}

function f(params: TemplateFunc['params'], result: TemplateFunc['result'], call: (...args: never[]) => unknown): TemplateFunc {
  return { params, result, call: call as (...args: unknown[]) => unknown }
}

/** docker's basicFunctions. `json` encodes without HTML escaping and without the trailing newline, and prints nothing for an unencodable value. */
export const DOCKER_FUNCS: FuncMap = {
  json: f([ANY], STRING, (v: Value) => {
    try {
      return encodeJSON(v, false)
    } catch {
      return ''
    }
  }),
  split: f([STRING, STRING], STRINGS, split),
  join: f([STRINGS, STRING], STRING, (elems: string[] | null, sep: string) => (elems ?? []).join(sep)),
  title: f([STRING], STRING, title),
  lower: f([STRING], STRING, (s: string) => mapRunes(s, (c) => c.toLowerCase())),
  upper: f([STRING], STRING, (s: string) => mapRunes(s, (c) => c.toUpperCase())),
  pad: f([STRING, INT, INT], STRING, pad),
  truncate: f([STRING, INT], STRING, truncate),
}

/** docker's HeaderFunctions: what the table header is rendered with (pad is kept, to keep alignment). */
export const DOCKER_HEADER_FUNCS: FuncMap = {
  ...DOCKER_FUNCS,
  json: f([STRING], STRING, (v: string) => v),
  split: f([STRING, STRING], STRING, (v: string) => v),
  join: f([STRING, STRING], STRING, (v: string) => v),
  title: f([STRING], STRING, (v: string) => v),
  lower: f([STRING], STRING, (v: string) => v),
  upper: f([STRING], STRING, (v: string) => v),
  truncate: f([STRING, INT], STRING, (v: string) => v),
}
