/**
 * Values as Go's reflect.Value sees them: a Go type plus the JavaScript
 * payload that carries it (see types.ts, "payload"). NO_VALUE is the zero
 * reflect.Value (what a missing map key or an unset interface gives, printed
 * "<no value>"). Values of interface type keep their interface wrapper until
 * the evaluator unwraps them, as Go does: `{{.a}}` of a JSON null prints
 * "<no value>", `{{print .a}}` prints "<nil>".
 */
import { ANY, ANY_USE_NUMBER, BOOL, FLOAT64, INT64, JSON_NUMBER, mapOf, sliceOf, STRING } from './go-types.js'
import type { GoType, InterfaceType, MapType, SliceType, StructField, StructType } from './types.js'

export interface Value {
  /** undefined for the invalid value. */
  readonly type: GoType | undefined
  readonly payload: unknown
}

export const NO_VALUE: Value = Object.freeze({ type: undefined, payload: undefined })

/** A payload with an explicit Go type, for putting typed values (an int64, a struct) inside interface data. */
export class Typed {
  constructor(
    readonly type: GoType,
    readonly payload: unknown,
  ) {}
}

export function valueOf(type: GoType, payload: unknown): Value {
  return { type, payload }
}

export function isValid(v: Value): v is Value & { type: GoType } {
  return v.type !== undefined
}

/** A complex128 payload. */
export interface Complex {
  re: number
  im: number
}

const SLICE_OF_ANY = sliceOf(ANY)
const MAP_OF_ANY = mapOf(STRING, ANY)
const SLICE_OF_ANY_NUMBER = sliceOf(ANY_USE_NUMBER)
const MAP_OF_ANY_NUMBER = mapOf(STRING, ANY_USE_NUMBER)

/** The concrete value an interface payload holds (encoding/json's decoding of interface{}); NO_VALUE for nil. */
export function dynamicValue(payload: unknown, iface: InterfaceType): Value {
  if (payload === null || payload === undefined) return NO_VALUE
  if (payload instanceof Typed) return valueOf(payload.type, payload.payload)
  const useNumber = iface.numbers === 'json.Number'
  switch (typeof payload) {
    case 'boolean':
      return valueOf(BOOL, payload)
    case 'number':
      return useNumber ? valueOf(JSON_NUMBER, String(payload)) : valueOf(FLOAT64, payload)
    case 'bigint':
      return valueOf(INT64, payload)
    case 'string':
      return valueOf(STRING, payload)
    case 'object':
      if (Array.isArray(payload)) return valueOf(useNumber ? SLICE_OF_ANY_NUMBER : SLICE_OF_ANY, payload)
      return valueOf(useNumber ? MAP_OF_ANY_NUMBER : MAP_OF_ANY, payload)
    default:
      return valueOf(STRING, String(payload))
  }
}

/** reflect's IsNil for the kinds that can be nil. */
export function isNil(v: Value): boolean {
  if (!isValid(v)) return true
  switch (v.type.kind) {
    case 'slice':
    case 'map':
    case 'pointer':
    case 'interface':
      return v.payload === null || v.payload === undefined
    default:
      return false
  }
}

/** text/template's indirectInterface: the value inside an interface, or NO_VALUE when it is nil. */
export function indirectInterface(v: Value): Value {
  if (!isValid(v) || v.type.kind !== 'interface') return v
  return dynamicValue(v.payload, v.type)
}

/** text/template's indirect: through pointers and interfaces; stops at a nil one and says so. */
export function indirect(v: Value): [Value, boolean] {
  let cur = v
  while (isValid(cur) && (cur.type.kind === 'pointer' || cur.type.kind === 'interface')) {
    if (isNil(cur)) return [cur, true]
    cur = cur.type.kind === 'pointer' ? valueOf(cur.type.elem, cur.payload) : dynamicValue(cur.payload, cur.type)
  }
  return [cur, false]
}

/** The element a non-nil pointer points to. */
export function pointee(v: Value): Value {
  if (!isValid(v) || v.type.kind !== 'pointer' || isNil(v)) return NO_VALUE
  return valueOf(v.type.elem, v.payload)
}

export function boolOf(v: Value): boolean {
  return v.payload === true
}

export function intOf(v: Value): bigint {
  const p = v.payload
  if (typeof p === 'bigint') return p
  if (typeof p === 'number') return BigInt(Math.trunc(p))
  if (typeof p === 'string' && /^-?\d+$/.test(p)) return BigInt(p)
  if (typeof p === 'boolean') return p ? 1n : 0n
  return 0n
}

export function floatOf(v: Value): number {
  const p = v.payload
  if (typeof p === 'number') return p
  if (typeof p === 'bigint') return Number(p)
  if (typeof p === 'string') return Number(p)
  return 0
}

export function complexOf(v: Value): Complex {
  const p = v.payload as Complex | undefined
  return p === undefined || p === null ? { re: 0, im: 0 } : p
}

export function stringOf(v: Value): string {
  const p = v.payload
  if (typeof p === 'string') return p
  if (p === undefined || p === null) return ''
  return String(p)
}

export function sliceItems(v: Value): unknown[] {
  return Array.isArray(v.payload) ? v.payload : []
}

/** The payload object of a map or struct (an empty one for nil or zero). */
export function objectOf(v: Value): Record<string, unknown> {
  const p = v.payload
  return typeof p === 'object' && p !== null && !Array.isArray(p) && !(p instanceof Typed) ? (p as Record<string, unknown>) : {}
}

/** The length of a string in bytes (Go strings are UTF-8 bytes). */
export function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8')
}

/** len() for the kinds that have one; undefined otherwise. */
export function lengthOf(v: Value): number | undefined {
  if (!isValid(v)) return undefined
  switch (v.type.kind) {
    case 'string':
      return byteLength(stringOf(v))
    case 'slice':
      return sliceItems(v).length
    case 'map':
      return Object.keys(objectOf(v)).length
    default:
      return undefined
  }
}

/** The element of a slice at i. */
export function sliceIndex(v: Value, i: number): Value {
  return valueOf((v.type as SliceType).elem, sliceItems(v)[i])
}

/** The key of a map payload's member, as a value of the map's key type. */
function keyValue(t: MapType, key: string): Value {
  switch (t.key.kind) {
    case 'int':
    case 'uint':
      return valueOf(t.key, BigInt(key))
    case 'float':
      return valueOf(t.key, Number(key))
    case 'bool':
      return valueOf(t.key, key === 'true')
    default:
      return valueOf(t.key, key)
  }
}

/** A map key as the payload object's member name. */
export function memberName(key: Value): string {
  if (!isValid(key)) return ''
  if (key.type.kind === 'interface') return memberName(indirectInterface(key))
  return typeof key.payload === 'string' ? key.payload : String(key.payload ?? (key.type.kind === 'string' ? '' : key.type.kind === 'bool' ? 'false' : '0'))
}

/** MapIndex: the element for a member name, or NO_VALUE when the key is absent. */
export function mapIndex(m: Value, name: string): Value {
  const obj = objectOf(m)
  if (!Object.hasOwn(obj, name)) return NO_VALUE
  return valueOf((m.type as MapType).elem, obj[name])
}

/** Go's byte-wise string order (UTF-8 order is code point order). */
export function compareStrings(a: string, b: string): number {
  const ai = a[Symbol.iterator]()
  const bi = b[Symbol.iterator]()
  for (;;) {
    const x = ai.next()
    const y = bi.next()
    if (x.done === true || y.done === true) return x.done === true ? (y.done === true ? 0 : -1) : 1
    const cx = x.value.codePointAt(0)!
    const cy = y.value.codePointAt(0)!
    if (cx !== cy) return cx < cy ? -1 : 1
  }
}

/** internal/fmtsort's order for the key kinds JSON maps have. */
function compareKeys(a: Value, b: Value): number {
  switch (a.type?.kind) {
    case 'int':
    case 'uint': {
      const x = intOf(a)
      const y = intOf(b)
      return x < y ? -1 : x > y ? 1 : 0
    }
    case 'float': {
      const x = floatOf(a)
      const y = floatOf(b)
      if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : -1
      if (Number.isNaN(y)) return 1
      return x < y ? -1 : x > y ? 1 : 0
    }
    case 'bool':
      return boolOf(a) === boolOf(b) ? 0 : boolOf(a) ? 1 : -1
    default:
      return compareStrings(memberName(a), memberName(b))
  }
}

/** A map's entries in fmtsort order (what range and %v walk). */
export function sortedEntries(m: Value): Array<[Value, Value]> {
  const t = m.type as MapType
  const obj = objectOf(m)
  const entries: Array<[Value, Value]> = Object.keys(obj).map((k) => [keyValue(t, k), valueOf(t.elem, obj[k])])
  return entries.sort((x, y) => compareKeys(x[0], y[0]))
}

/** A field found by name, with the struct payload it lives in (embedded fields share their parent's JSON object). */
export interface FoundField {
  field: StructField
  holder: Record<string, unknown>
}

/**
 * reflect's FieldByName: the shallowest field of that name, looking into
 * embedded structs breadth first; a name found twice at the same depth is
 * ambiguous and not found.
 */
export function fieldByName(t: StructType, payload: unknown, name: string): FoundField | undefined {
  let level: Array<{ type: StructType; holder: Record<string, unknown> }> = [{ type: t, holder: objectOf(valueOf(t, payload)) }]
  while (level.length > 0) {
    const found: FoundField[] = []
    const next: typeof level = []
    for (const { type, holder } of level) {
      for (const f of type.fields) {
        if (f.name === name) found.push({ field: f, holder })
        else if (f.embedded === true) {
          const inner = f.type.kind === 'pointer' ? f.type.elem : f.type
          if (inner.kind === 'struct') next.push({ type: inner, holder })
        }
      }
    }
    if (found.length === 1) return found[0]
    if (found.length > 1) return undefined
    level = next
  }
  return undefined
}

/** The value of a found field. */
export function fieldValue(found: FoundField): Value {
  const f = found.field
  if (f.embedded === true) return valueOf(f.type, found.holder)
  const key = f.json ?? f.name
  return valueOf(f.type, Object.hasOwn(found.holder, key) ? found.holder[key] : undefined)
}

/** The values of a struct's fields in order (for %v). */
export function structFields(v: Value): Value[] {
  const t = v.type as StructType
  const holder = objectOf(v)
  return t.fields.map((field) => fieldValue({ field, holder }))
}

/** Whether a value is the zero value of its type (encoding/json's isEmptyValue, for omitempty). */
export function isEmptyValue(v: Value): boolean {
  if (!isValid(v)) return true
  switch (v.type.kind) {
    case 'bool':
      return !boolOf(v)
    case 'int':
    case 'uint':
      return intOf(v) === 0n
    case 'float':
      return floatOf(v) === 0
    case 'string':
      return stringOf(v) === ''
    case 'slice':
    case 'map':
      return lengthOf(v) === 0
    case 'pointer':
    case 'interface':
      return isNil(v)
    default:
      return false
  }
}
