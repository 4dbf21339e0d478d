/**
 * encoding/json's Marshal over template values, for docker's `{{json .}}`:
 * struct fields in declaration order (omitempty honoured, embedded structs
 * flattened), map keys sorted, nil slices, maps, pointers and interfaces as
 * null, floats as Go writes them (1e+21, 1e-7), strings with Go's escapes
 * (\u003c for < only when escaping HTML, \u2028, \b and \f as Go 1.22+).
 */
import { typeString } from './go-types.js'
import { formatFloat } from './strconv.js'
import type { StructType } from './types.js'
import {
  boolOf,
  floatOf,
  indirectInterface,
  intOf,
  isEmptyValue,
  isNil,
  isValid,
  objectOf,
  pointee,
  sliceIndex,
  sliceItems,
  sortedEntries,
  memberName,
  fieldValue,
  stringOf,
  compareStrings,
  type Value,
} from './value.js'

const HEX = '0123456789abcdef'

/** encoding/json's string encoder. */
export function jsonString(s: string, escapeHTML: boolean): string {
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (c < 0x80) {
      if (c >= 0x20 && ch !== '"' && ch !== '\\' && !(escapeHTML && (ch === '<' || ch === '>' || ch === '&'))) {
        out += ch
        continue
      }
      switch (ch) {
        case '\\':
        case '"':
          out += `\\${ch}`
          continue
        case '\b':
          out += '\\b'
          continue
        case '\f':
          out += '\\f'
          continue
        case '\n':
          out += '\\n'
          continue
        case '\r':
          out += '\\r'
          continue
        case '\t':
          out += '\\t'
          continue
      }
      out += `\\u00${HEX[c >> 4]}${HEX[c & 15]}`
      continue
    }
    if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd'
    else if (c === 0x2028 || c === 0x2029) out += `\\u202${HEX[c & 15]}`
    else out += ch
  }
  return `${out}"`
}

function jsonFloat(f: number, bits: 32 | 64): string {
  if (!Number.isFinite(f)) throw new Error(`json: unsupported value: ${formatFloat(f, 'g', -1, bits)}`)
  const abs = Math.abs(f)
  let fmt = 'f'
  if (abs !== 0 && (abs < 1e-6 || abs >= 1e21)) fmt = 'e'
  let b = formatFloat(f, fmt, -1, bits)
  if (fmt === 'e') b = b.replace(/e-0(\d)$/, 'e-$1')
  return b
}

function structMembers(t: StructType, holder: Record<string, unknown>, escapeHTML: boolean, out: string[]): void {
  for (const field of t.fields) {
    if (field.embedded === true) {
      const inner = field.type.kind === 'pointer' ? field.type.elem : field.type
      if (inner.kind === 'struct' && field.json === undefined) {
        structMembers(inner, holder, escapeHTML, out)
        continue
      }
    }
    const v = fieldValue({ field, holder })
    if (field.omitempty === true && isEmptyValue(v)) continue
    out.push(`${jsonString(field.json ?? field.name, escapeHTML)}:${encodeJSON(v, escapeHTML)}`)
  }
}

/** json.Marshal of a value; throws Error with Go's message for NaN, infinities and complex numbers. */
export function encodeJSON(v: Value, escapeHTML: boolean): string {
  if (!isValid(v)) return 'null'
  const t = v.type
  if (t.marshalJSON !== undefined) return t.marshalJSON(v.payload)
  switch (t.kind) {
    case 'bool':
      return boolOf(v) ? 'true' : 'false'
    case 'int':
      return BigInt.asIntN(t.bits, intOf(v)).toString()
    case 'uint':
      return BigInt.asUintN(t.bits, intOf(v)).toString()
    case 'float':
      return jsonFloat(floatOf(v), t.bits)
    case 'string':
      return jsonString(stringOf(v), escapeHTML)
    case 'struct': {
      const members: string[] = []
      structMembers(t, objectOf(v), escapeHTML, members)
      return `{${members.join(',')}}`
    }
    case 'map': {
      if (isNil(v)) return 'null'
      const entries = sortedEntries(v)
        .map(([k, e]) => [memberName(k), e] as const)
        .sort((a, b) => compareStrings(a[0], b[0]))
      return `{${entries.map(([k, e]) => `${jsonString(k, escapeHTML)}:${encodeJSON(e, escapeHTML)}`).join(',')}}`
    }
    case 'slice': {
      if (isNil(v)) return 'null'
      if (t.elem.kind === 'uint' && t.elem.bits === 8) {
        const bytes = Buffer.from(sliceItems(v).map((b) => Number(b) & 255))
        return `"${bytes.toString('base64')}"`
      }
      const n = sliceItems(v).length
      const items: string[] = []
      for (let i = 0; i < n; i++) items.push(encodeJSON(sliceIndex(v, i), escapeHTML))
      return `[${items.join(',')}]`
    }
    case 'pointer':
      return isNil(v) ? 'null' : encodeJSON(pointee(v), escapeHTML)
    case 'interface':
      return encodeJSON(indirectInterface(v), escapeHTML)
    default:
      throw new Error(`json: unsupported type: ${typeString(t)}`)
  }
}
