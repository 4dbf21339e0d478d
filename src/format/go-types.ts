/**
 * Go types as reflection sees them: the predeclared ones, constructors for
 * composite and named types, Go's type identity and assignability rules,
 * and reflect's spelling of type names (which appears in Go's errors).
 */
import { quote } from './strconv.js'
import type { BoolType, ComplexType, FloatType, GoMethod, GoType, IntType, InterfaceType, MapType, PointerType, ReflectValueType, SliceType, StringType, StructField, StructType, UintType } from './types.js'

export const BOOL: BoolType = { kind: 'bool', name: 'bool' }
export const INT: IntType = { kind: 'int', name: 'int', bits: 64 }
export const INT8: IntType = { kind: 'int', name: 'int8', bits: 8 }
export const INT16: IntType = { kind: 'int', name: 'int16', bits: 16 }
export const INT32: IntType = { kind: 'int', name: 'int32', bits: 32 }
export const INT64: IntType = { kind: 'int', name: 'int64', bits: 64 }
export const UINT: UintType = { kind: 'uint', name: 'uint', bits: 64 }
export const UINT8: UintType = { kind: 'uint', name: 'uint8', bits: 8 }
export const UINT16: UintType = { kind: 'uint', name: 'uint16', bits: 16 }
export const UINT32: UintType = { kind: 'uint', name: 'uint32', bits: 32 }
export const UINT64: UintType = { kind: 'uint', name: 'uint64', bits: 64 }
export const FLOAT32: FloatType = { kind: 'float', name: 'float32', bits: 32 }
export const FLOAT64: FloatType = { kind: 'float', name: 'float64', bits: 64 }
export const COMPLEX128: ComplexType = { kind: 'complex', name: 'complex128', bits: 128 }
export const STRING: StringType = { kind: 'string', name: 'string' }
/** `interface {}` holding JSON as encoding/json decodes it (numbers are float64). */
export const ANY: InterfaceType = { kind: 'interface', numbers: 'float64' }
/** `interface {}` holding JSON decoded with UseNumber (numbers are json.Number), as docker's inspect fallback decodes. */
export const ANY_USE_NUMBER: InterfaceType = { kind: 'interface', numbers: 'json.Number' }
export const REFLECT_VALUE: ReflectValueType = { kind: 'reflectValue', name: 'reflect.Value' }

export function sliceOf(elem: GoType, name?: string): SliceType {
  return name === undefined ? { kind: 'slice', elem } : { kind: 'slice', elem, name }
}

export function mapOf(key: GoType, elem: GoType, name?: string): MapType {
  return name === undefined ? { kind: 'map', key, elem } : { kind: 'map', key, elem, name }
}

export function pointerTo(elem: GoType): PointerType {
  return { kind: 'pointer', elem }
}

/** A struct type; `name` makes it a named type (`types.ImageInspect`), else it prints as `struct { A string; ... }`. */
export function structOf(fields: StructField[], name?: string, methods?: Record<string, GoMethod>): StructType {
  const t: StructType = { kind: 'struct', fields }
  if (name !== undefined) t.name = name
  if (methods !== undefined) t.methods = methods
  return t
}

/** A named type defined on an underlying type (`type Port string`), with its own name and methods. */
export function namedType<T extends GoType>(name: string, underlying: T, methods?: Record<string, GoMethod>): T {
  const t = { ...underlying, name }
  if (methods !== undefined) t.methods = methods
  else delete t.methods
  delete t.marshalJSON
  return t
}

/** reflect.Type.String(): `int`, `[]string`, `map[string]interface {}`, `*container.Config`, `struct { A string }`. */
export function typeString(t: GoType): string {
  if (t.name !== undefined) return t.name
  switch (t.kind) {
    case 'slice':
      return `[]${typeString(t.elem)}`
    case 'map':
      return `map[${typeString(t.key)}]${typeString(t.elem)}`
    case 'pointer':
      return `*${typeString(t.elem)}`
    case 'interface':
      return 'interface {}'
    case 'struct':
      if (t.fields.length === 0) return 'struct {}'
      return `struct { ${t.fields.map(fieldString).join('; ')} }`
    default:
      return t.kind
  }
}

/** A field of an unnamed struct type as reflect spells it, with its json tag. */
function fieldString(f: StructField): string {
  let s = f.embedded === true ? typeString(f.type) : `${f.name} ${typeString(f.type)}`
  if (f.json !== undefined || f.omitempty === true) s += ` ${quote(`json:"${f.json ?? f.name}${f.omitempty === true ? ',omitempty' : ''}"`)}`
  return s
}

/** Go's type identity: named types by name, unnamed composite types by structure. */
export function identical(a: GoType, b: GoType): boolean {
  if (a === b) return true
  if (a.kind !== b.kind) return false
  if (a.name !== undefined || b.name !== undefined) return a.name === b.name
  switch (a.kind) {
    case 'slice':
      return identical(a.elem, (b as SliceType).elem)
    case 'pointer':
      return identical(a.elem, (b as PointerType).elem)
    case 'map':
      return identical(a.key, (b as MapType).key) && identical(a.elem, (b as MapType).elem)
    case 'struct': {
      const bf = (b as StructType).fields
      return a.fields.length === bf.length && a.fields.every((f, i) => f.name === bf[i]!.name && f.embedded === bf[i]!.embedded && identical(f.type, bf[i]!.type))
    }
    case 'interface':
      return true
    default:
      return false
  }
}

/** The type with the name stripped: what Go calls the underlying type (for composite types). */
function underlying(t: GoType): GoType {
  if (t.name === undefined || t.kind === 'interface') return t
  switch (t.kind) {
    case 'slice':
      return sliceOf(t.elem)
    case 'map':
      return mapOf(t.key, t.elem)
    case 'struct':
      return structOf(t.fields)
    default:
      return t
  }
}

/**
 * Go's assignability (reflect.Type.AssignableTo) for the types modelled
 * here: identical types; anything to the empty interface; and types with
 * identical underlying types when at least one of them is unnamed
 * (`[]string` to `strslice.StrSlice`). Predeclared types are named, so
 * `string` is not assignable to `json.Number`.
 */
export function assignableTo(v: GoType, t: GoType): boolean {
  if (identical(v, t)) return true
  if (t.kind === 'interface') return v.kind !== 'reflectValue'
  if (v.name !== undefined && t.name !== undefined) return false
  if (v.kind !== t.kind || !['slice', 'map', 'struct', 'pointer'].includes(v.kind)) return false
  return identical(underlying(v), underlying(t))
}

/** Types an untyped nil can be assigned to (reflect.Zero of them is nil). */
export function canBeNil(t: GoType): boolean {
  return ['slice', 'map', 'pointer', 'interface', 'reflectValue'].includes(t.kind)
}

/** True for the integer kinds (text/template's intLike). */
export function isIntKind(t: GoType): boolean {
  return t.kind === 'int' || t.kind === 'uint'
}

/** Whether values of the type can be compared with == (Go's Comparable). */
export function comparable(t: GoType): boolean {
  switch (t.kind) {
    case 'slice':
    case 'map':
      return false
    case 'struct':
      return t.fields.every((f) => comparable(f.type))
    default:
      return true
  }
}

/** A method of `t` (or of the type `t` points to) by name. */
export function methodOf(t: GoType, name: string): GoMethod | undefined {
  const own = t.methods?.[name]
  if (own !== undefined) return own
  if (t.kind === 'pointer') return t.elem.methods?.[name]
  return undefined
}

/** encoding/json's Number: a string kind holding a JSON number's text, written back as that number. */
export const JSON_NUMBER = namedType('json.Number', STRING, {
  String: { params: [], result: STRING, call: (recv) => String(recv ?? '') },
})
JSON_NUMBER.marshalJSON = (payload) => {
  const text = String(payload ?? '')
  return text === '' ? '0' : text
}
