/**
 * Go's text/template over JSON-like data, as the docker CLI runs it for
 * `--format`. This file is the specification of the engine's model.
 *
 * Words:
 * - A *template* is parsed text: actions between `{{` and `}}`, text
 *   between them. Parsing yields a *set* of named trees (the top-level one,
 *   and those made by `{{define}}` and `{{block}}`); docker names the
 *   top-level template "" (so its errors read `template: :1: ...`).
 * - A *Go type* (GoType) describes what Go's reflection would see: its kind
 *   (bool, int, float, complex, string, slice, map, struct, pointer,
 *   interface), its name when it is a named type (`types.ImageInspect`,
 *   `json.Number`, `int64`; composite unnamed types have none) and its
 *   methods. Type names appear in Go's error messages (`can't evaluate
 *   field X in type types.ImageInspect`) and in fmt's `%T` and `%!d(T=v)`,
 *   so they are part of the output.
 * - A *payload* is the JavaScript value that carries a Go value of a known
 *   type: a boolean for bool, a bigint or number for integers, a number for
 *   floats, a string for strings, an array (or null: a nil slice) for
 *   slices, an object (or null: a nil map) for maps, an object for structs
 *   (keyed by each field's JSON name), the pointee's payload (or null: a
 *   nil pointer) for pointers. `undefined` anywhere is the type's zero
 *   value, which is what a missing JSON member decodes to in Go.
 * - An *interface* payload (type `interface {}`) carries its own dynamic
 *   type: null is the nil interface, a boolean is bool, a string is
 *   string, an array is []interface {}, an object is map[string]interface {},
 *   and a number is float64 — exactly what encoding/json decodes into an
 *   `interface{}` — or json.Number when the interface type says so (the
 *   docker CLI decodes `inspect` data that way when its typed template
 *   fails). A `Typed` value inside interface data carries an explicit type
 *   (an int64 among JSON values, say).
 * - A *function* is a builtin (and, or, not, len, index, slice, print,
 *   printf, println, html, js, urlquery, eq, ne, lt, le, gt, ge, call) or
 *   one given in a FuncMap (docker's json, split, join, title, lower,
 *   upper, pad, truncate). A function declares its parameter types as Go
 *   would, so argument checks fail with Go's messages.
 *
 * Rules:
 * - Parse and execution errors carry Go's text, byte for byte: the
 *   `template: NAME:LINE: ...` and `template: NAME:LINE:COL: executing
 *   "NAME" at <NODE>: ...` forms, with LINE and COL counted as Go counts
 *   them (COL in bytes).
 * - The language is Go's as of Go 1.23+ (what current docker CLIs are built
 *   with): break/continue, `{{else with}}`, range over an integer, and/or
 *   short-circuit. fmt's verbs, flags, widths, precisions and its `%!`
 *   error forms follow Go's fmt; floats print with Go's shortest
 *   formatting (1.234567e+06 for a float64 1234567).
 * - Execution never throws away what was written: an error carries the
 *   output produced before it (docker prints a table header that way).
 * - Nothing here reads files, prints or exits; the CLI does that.
 */

/** The kinds of Go types the engine models (Go's reflect.Kind, minus channels, funcs and unsafe pointers). */
export type GoKind = 'bool' | 'int' | 'uint' | 'float' | 'complex' | 'string' | 'slice' | 'map' | 'struct' | 'pointer' | 'interface' | 'reflectValue'

/** A method of a named type, callable from a template as `.Name arg...` (docker's `.Label "key"`, time.Time's `.String`). */
export interface GoMethod {
  /** Parameter types (not counting the receiver). */
  params: GoType[]
  /** The last parameter is `...T` (params' last entry is then the slice type []T). */
  variadic?: boolean
  result: GoType
  /** The method returns (T, error): a thrown Error becomes Go's `error calling NAME: ...`. */
  returnsError?: boolean
  /** The implementation, given the receiver's payload and the arguments as TemplateFunc.call gets them; returns the result's payload. */
  call(receiver: unknown, ...args: unknown[]): unknown
}

/** A struct field. The payload object holds it under `json` (default: `name`). */
export interface StructField {
  name: string
  type: GoType
  /** The JSON member name, when it differs from the Go name. */
  json?: string
  /** encoding/json's `,omitempty`: left out of `{{json .}}` when empty. */
  omitempty?: boolean
  /** An embedded (anonymous) field: its fields are promoted, and its members sit in the parent's JSON object. */
  embedded?: boolean
}

interface TypeBase {
  /** The type's name as Go prints it (`int`, `types.ImageInspect`); absent for unnamed composite types. */
  name?: string
  /** Methods of the named type (value or pointer receiver alike). `String() string` makes it a fmt.Stringer. */
  methods?: Record<string, GoMethod>
  /** How encoding/json writes a payload of this type, for types with their own MarshalJSON (time.Time, json.Number). */
  marshalJSON?: (payload: unknown) => string
}

export interface BoolType extends TypeBase { kind: 'bool' }
/** Signed integers: int, int8 ... int64 (bits 0 means Go's `int`, 64 bits here). */
export interface IntType extends TypeBase { kind: 'int'; bits: 8 | 16 | 32 | 64 }
export interface UintType extends TypeBase { kind: 'uint'; bits: 8 | 16 | 32 | 64 }
export interface FloatType extends TypeBase { kind: 'float'; bits: 32 | 64 }
export interface ComplexType extends TypeBase { kind: 'complex'; bits: 64 | 128 }
export interface StringType extends TypeBase { kind: 'string' }
export interface SliceType extends TypeBase { kind: 'slice'; elem: GoType }
export interface MapType extends TypeBase { kind: 'map'; key: GoType; elem: GoType }
export interface StructType extends TypeBase { kind: 'struct'; fields: StructField[] }
export interface PointerType extends TypeBase { kind: 'pointer'; elem: GoType }
/**
 * The empty interface. `numbers` says what a JavaScript number inside it
 * is: float64 (encoding/json's default) or json.Number (a decoder with
 * UseNumber, as docker's inspect fallback).
 */
export interface InterfaceType extends TypeBase { kind: 'interface'; numbers: 'float64' | 'json.Number' }
/** reflect.Value: the parameter type of builtins that take any value unconverted (index, len, eq, and, ...). */
export interface ReflectValueType extends TypeBase { kind: 'reflectValue' }

export type GoType =
  | BoolType
  | IntType
  | UintType
  | FloatType
  | ComplexType
  | StringType
  | SliceType
  | MapType
  | StructType
  | PointerType
  | InterfaceType
  | ReflectValueType

/**
 * A template function. Like a Go func, it has parameter types (checked and
 * converted as text/template does), one result, and optionally an error.
 */
export interface TemplateFunc {
  params: GoType[]
  variadic?: boolean
  result: GoType
  returnsError?: boolean
  /**
   * Called with the arguments converted to the parameter types: integer
   * parameters get a bigint, floats a number, strings a string, slices an
   * array (null when nil), other types their payload; `interface {}`
   * parameters get the argument's Value (NO_VALUE for nil), reflect.Value
   * ones the Value as evaluated (possibly of interface type, or invalid).
   * Returns the result's payload (a Value when the result is reflect.Value).
   * Throwing an Error fails the template with `error calling NAME: MESSAGE`.
   */
  call(...args: unknown[]): unknown
}

export type FuncMap = Record<string, TemplateFunc>

/** What `missingkey=` says a map lookup of a missing key gives: Go's default (no value), the zero value, or an error. */
export type MissingKey = 'default' | 'zero' | 'error'

export interface ExecuteOptions {
  /** The Go type of the data; default `interface {}` (JSON decoded as encoding/json would). */
  type?: GoType
  missingKey?: MissingKey
}
