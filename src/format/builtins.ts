/**
 * text/template's predefined functions (funcs.go): and, or, not, len,
 * index, slice, print, printf, println, html, js, urlquery, call, and the
 * comparisons eq, ne, lt, le, gt, ge, with Go's signatures (so argument
 * errors read as Go's) and Go's error texts. `and`, `or` and `call` are
 * evaluated by the executor itself (they short-circuit or need the callee's
 * name); their entries here give the signature.
 */
import { sprint, sprintf, sprintln, sprintValue, sprintValueS } from './fmt.js'
import { ANY, assignableTo, BOOL, canBeNil, comparable, identical, INT, isIntKind, REFLECT_VALUE, sliceOf, STRING, typeString, UINT8 } from './go-types.js'
import { isPrint } from './strconv.js'
import type { FuncMap, GoType, TemplateFunc } from './types.js'
import {
  boolOf,
  byteLength,
  compareStrings,
  complexOf,
  floatOf,
  indirect,
  indirectInterface,
  intOf,
  isNil,
  isValid,
  lengthOf,
  mapIndex,
  memberName,
  NO_VALUE,
  objectOf,
  pointee,
  sliceIndex,
  sliceItems,
  stringOf,
  structFields,
  valueOf,
  type Value,
} from './value.js'

/** isTrue: Go's truth of a value, and whether it has one. */
export function isTrue(v: Value): [truth: boolean, ok: boolean] {
  if (!isValid(v)) return [false, true]
  switch (v.type.kind) {
    case 'slice':
    case 'map':
    case 'string':
      return [(lengthOf(v) ?? 0) > 0, true]
    case 'bool':
      return [boolOf(v), true]
    case 'complex': {
      const c = complexOf(v)
      return [c.re !== 0 || c.im !== 0, true]
    }
    case 'pointer':
    case 'interface':
      return [!isNil(v), true]
    case 'int':
    case 'uint':
      return [intOf(v) !== 0n, true]
    case 'float':
      return [floatOf(v) !== 0, true]
    case 'struct':
      return [true, true]
    default:
      return [false, false]
  }
}

/** truth(): isTrue of the value inside an interface. */
export function truth(v: Value): boolean {
  return isTrue(indirectInterface(v))[0]
}

// --- index, slice, len ---

function indexArg(index: Value, cap: number): number {
  let x: bigint
  switch (index.type?.kind) {
    case 'int':
      x = intOf(index)
      break
    case 'uint':
      x = BigInt.asIntN(64, intOf(index))
      break
    case undefined:
      throw new Error('cannot index slice/array with nil')
    default:
      throw new Error(`cannot index slice/array with type ${typeString(index.type!)}`)
  }
  if (x < 0n || x > BigInt(cap)) throw new Error(`index out of range: ${x}`)
  return Number(x)
}

function prepareArg(value: Value, argType: GoType): Value {
  if (!isValid(value)) {
    if (!canBeNil(argType)) throw new Error(`value is nil; should be of type ${typeString(argType)}`)
    return valueOf(argType, undefined)
  }
  if (assignableTo(value.type, argType)) return value
  if (isIntKind(value.type) && isIntKind(argType)) return valueOf(argType, intOf(value))
  throw new Error(`value has type ${typeString(value.type)}; should be ${typeString(argType)}`)
}

function index(item: Value, ...indexes: Value[]): Value {
  item = indirectInterface(item)
  if (!isValid(item)) throw new Error('index of untyped nil')
  for (let idx of indexes) {
    idx = indirectInterface(idx)
    const [it, nil] = indirect(item)
    if (nil) throw new Error('index of nil pointer')
    item = it
    switch (item.type!.kind) {
      case 'slice': {
        const n = sliceItems(item).length
        const x = indexArg(idx, n)
        if (x >= n) throw new Error('reflect: slice index out of range')
        item = sliceIndex(item, x)
        break
      }
      case 'string': {
        const bytes = Buffer.from(stringOf(item), 'utf8')
        const x = indexArg(idx, bytes.length)
        if (x >= bytes.length) throw new Error('reflect: string index out of range')
        item = valueOf(UINT8, BigInt(bytes[x]!))
        break
      }
      case 'map': {
        const t = item.type as Extract<GoType, { kind: 'map' }>
        const key = prepareArg(idx, t.key)
        const found = mapIndex(item, memberName(key))
        item = isValid(found) ? found : valueOf(t.elem, undefined)
        break
      }
      default:
        throw new Error(`can't index item of type ${typeString(item.type!)}`)
    }
  }
  return item
}

function slice(item: Value, ...indexes: Value[]): Value {
  item = indirectInterface(item)
  if (!isValid(item)) throw new Error('slice of untyped nil')
  if (indexes.length > 3) throw new Error(`too many slice indexes: ${indexes.length}`)
  let cap: number
  let len: number
  switch (item.type.kind) {
    case 'string':
      if (indexes.length === 3) throw new Error('cannot 3-index slice a string')
      cap = len = byteLength(stringOf(item))
      break
    case 'slice':
      cap = len = sliceItems(item).length
      break
    default:
      throw new Error(`can't slice item of type ${typeString(item.type)}`)
  }
  const idx = [0, len, 0]
  indexes.forEach((x, i) => (idx[i] = indexArg(indirectInterface(x), cap)))
  if (idx[0]! > idx[1]!) throw new Error(`invalid slice index: ${idx[0]} > ${idx[1]}`)
  if (indexes.length === 3 && idx[1]! > idx[2]!) throw new Error(`invalid slice index: ${idx[1]} > ${idx[2]}`)
  if (item.type.kind === 'string') return valueOf(item.type, Buffer.from(stringOf(item), 'utf8').subarray(idx[0], idx[1]).toString('utf8'))
  return valueOf(item.type, sliceItems(item).slice(idx[0], idx[1]))
}

function length(item: Value): bigint {
  const [v, nil] = indirect(item)
  if (nil) throw new Error('len of nil pointer')
  if (!isValid(v)) throw new Error('reflect: call of reflect.Value.Type on zero Value')
  const n = lengthOf(v)
  if (n === undefined) throw new Error(`len of type ${typeString(v.type)}`)
  return BigInt(n)
}

// --- comparison ---

type BasicKind = 'bool' | 'complex' | 'int' | 'float' | 'string' | 'uint' | 'invalid'

function basicKind(v: Value): BasicKind {
  switch (v.type?.kind) {
    case 'bool':
    case 'complex':
    case 'int':
    case 'float':
    case 'string':
    case 'uint':
      return v.type.kind
    default:
      return 'invalid'
  }
}

const ERR_BAD_COMPARISON_TYPE = 'invalid type for comparison'
/** Go 1.24's text (later Go versions add the two types). */
const ERR_INCOMPATIBLE = 'incompatible types for comparison'

function nilForEq(v: Value): boolean {
  return !isValid(v) || isNil(v)
}

/** Go's == on two values of identical comparable types (Interface() == Interface()). */
function equalValues(a: Value, b: Value): boolean {
  if (!isValid(a) || !isValid(b)) return isValid(a) === isValid(b)
  if (!identical(a.type, b.type)) return false
  switch (a.type.kind) {
    case 'bool':
      return boolOf(a) === boolOf(b)
    case 'int':
    case 'uint':
      return intOf(a) === intOf(b)
    case 'float':
      return floatOf(a) === floatOf(b)
    case 'complex': {
      const x = complexOf(a)
      const y = complexOf(b)
      return x.re === y.re && x.im === y.im
    }
    case 'string':
      return stringOf(a) === stringOf(b)
    case 'pointer':
      return a.payload === b.payload || (isNil(a) && isNil(b))
    case 'interface':
      return equalValues(indirectInterface(a), indirectInterface(b))
    case 'struct': {
      if (a.type.fields.length === 0) return stringOf(a) === stringOf(b) || a.payload === b.payload
      const fa = structFields(a)
      const fb = structFields(b)
      return fa.every((f, i) => equalValues(f, fb[i]!))
    }
    default:
      return false
  }
}

function eq(arg1: Value, ...arg2: Value[]): boolean {
  arg1 = indirectInterface(arg1)
  if (arg2.length === 0) throw new Error('missing argument for comparison')
  const k1 = basicKind(arg1)
  for (let arg of arg2) {
    arg = indirectInterface(arg)
    const k2 = basicKind(arg)
    let t = false
    if (k1 !== k2) {
      if (k1 === 'int' && k2 === 'uint') t = intOf(arg1) >= 0n && intOf(arg1) === intOf(arg)
      else if (k1 === 'uint' && k2 === 'int') t = intOf(arg) >= 0n && intOf(arg1) === intOf(arg)
      else if (isValid(arg1) && isValid(arg)) throw new Error(ERR_INCOMPATIBLE)
    } else {
      switch (k1) {
        case 'bool':
          t = boolOf(arg1) === boolOf(arg)
          break
        case 'complex': {
          const x = complexOf(arg1)
          const y = complexOf(arg)
          t = x.re === y.re && x.im === y.im
          break
        }
        case 'float':
          t = floatOf(arg1) === floatOf(arg)
          break
        case 'int':
        case 'uint':
          t = intOf(arg1) === intOf(arg)
          break
        case 'string':
          t = stringOf(arg1) === stringOf(arg)
          break
        default: {
          const kindsMatch = !isValid(arg1) || !isValid(arg) || arg1.type!.kind === arg.type!.kind
          if (!kindsMatch) throw new Error(`non-comparable types ${sprintValueS(arg1)}: ${typeString(arg1.type!)}, ${typeString(arg.type!)}: ${sprintValue(arg)}`)
          if (nilForEq(arg1) || nilForEq(arg)) t = nilForEq(arg) === nilForEq(arg1)
          else {
            if (!comparable(arg.type!)) throw new Error(`non-comparable type ${sprintValueS(arg)}: ${typeString(arg.type!)}`)
            t = equalValues(arg1, arg)
          }
        }
      }
    }
    if (t) return true
  }
  return false
}

function lt(arg1: Value, arg2: Value): boolean {
  arg1 = indirectInterface(arg1)
  const k1 = basicKind(arg1)
  if (k1 === 'invalid') throw new Error(ERR_BAD_COMPARISON_TYPE)
  arg2 = indirectInterface(arg2)
  const k2 = basicKind(arg2)
  if (k2 === 'invalid') throw new Error(ERR_BAD_COMPARISON_TYPE)
  if (k1 !== k2) {
    if (k1 === 'int' && k2 === 'uint') return intOf(arg1) < 0n || intOf(arg1) < intOf(arg2)
    if (k1 === 'uint' && k2 === 'int') return intOf(arg2) >= 0n && intOf(arg1) < intOf(arg2)
    throw new Error(ERR_INCOMPATIBLE)
  }
  switch (k1) {
    case 'bool':
    case 'complex':
      throw new Error(ERR_BAD_COMPARISON_TYPE)
    case 'float':
      return floatOf(arg1) < floatOf(arg2)
    case 'int':
    case 'uint':
      return intOf(arg1) < intOf(arg2)
    default:
      return compareStrings(stringOf(arg1), stringOf(arg2)) < 0
  }
}

function le(a: Value, b: Value): boolean {
  return lt(a, b) || eq(a, b)
}

// --- escapers ---

/** evalArgs: the arguments as one string (Sprint of their printable values, "<no value>" for missing ones). */
export function evalArgs(args: Value[]): string {
  if (args.length === 1 && isValid(args[0]!) && args[0]!.type.name === 'string') return stringOf(args[0]!)
  return sprint(
    args.map((a) => {
      let v = a
      if (isValid(v) && v.type.kind === 'pointer') v = indirect(v)[0]
      return isValid(v) ? v : valueOf(STRING, '<no value>')
    }),
  )
}

/** template.HTMLEscapeString. */
export function htmlEscape(s: string): string {
  return s.replace(/["'&<>\0]/g, (c) => ({ '"': '&#34;', "'": '&#39;', '&': '&amp;', '<': '&lt;', '>': '&gt;', '\0': '\uFFFD' })[c]!)
}

/** template.JSEscapeString. */
export function jsEscape(s: string): string {
  let out = ''
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (c < 0x80) {
      switch (ch) {
        case '\\':
          out += '\\\\'
          continue
        case "'":
          out += "\\'"
          continue
        case '"':
          out += '\\"'
          continue
        case '<':
          out += '\\u003C'
          continue
        case '>':
          out += '\\u003E'
          continue
        case '&':
          out += '\\u0026'
          continue
        case '=':
          out += '\\u003D'
          continue
      }
      out += c < 0x20 ? `\\u00${c.toString(16).toUpperCase().padStart(2, '0')}` : ch
      continue
    }
    out += isPrint(c) ? ch : `\\u${c.toString(16).toUpperCase().padStart(4, '0')}`
  }
  return out
}

/** url.QueryEscape. */
export function queryEscape(s: string): string {
  let out = ''
  for (const b of Buffer.from(s, 'utf8')) {
    const ch = String.fromCharCode(b)
    if (/[A-Za-z0-9\-_.~]/.test(ch)) out += ch
    else if (ch === ' ') out += '+'
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

// --- the table ---

const RV = REFLECT_VALUE
const RVS = sliceOf(REFLECT_VALUE)
const ANYS = sliceOf(ANY)

function fn(params: GoType[], result: GoType, call: (...args: never[]) => unknown, options: { variadic?: boolean; returnsError?: boolean } = {}): TemplateFunc {
  return { params, result, call: call as (...args: unknown[]) => unknown, ...options }
}

const unreachable = (): never => {
  throw new Error('unreachable: evaluated by the executor')
}

/** The builtin functions, by name. */
export const BUILTINS: FuncMap = {
  and: fn([RV, RVS], RV, unreachable, { variadic: true }),
  or: fn([RV, RVS], RV, unreachable, { variadic: true }),
  call: fn([RV, RVS], RV, unreachable, { variadic: true, returnsError: true }),
  html: fn([ANYS], STRING, (...args: Value[]) => htmlEscape(evalArgs(args)), { variadic: true }),
  index: fn([RV, RVS], RV, index, { variadic: true, returnsError: true }),
  slice: fn([RV, RVS], RV, slice, { variadic: true, returnsError: true }),
  js: fn([ANYS], STRING, (...args: Value[]) => jsEscape(evalArgs(args)), { variadic: true }),
  len: fn([RV], INT, length, { returnsError: true }),
  not: fn([RV], BOOL, (v: Value) => !truth(v)),
  print: fn([ANYS], STRING, (...args: Value[]) => sprint(args), { variadic: true }),
  printf: fn([STRING, ANYS], STRING, (format: string, ...args: Value[]) => sprintf(format, args), { variadic: true }),
  println: fn([ANYS], STRING, (...args: Value[]) => sprintln(args), { variadic: true }),
  urlquery: fn([ANYS], STRING, (...args: Value[]) => queryEscape(evalArgs(args)), { variadic: true }),
  eq: fn([RV, RVS], BOOL, eq, { variadic: true, returnsError: true }),
  ge: fn([RV, RV], BOOL, (a: Value, b: Value) => !lt(a, b), { returnsError: true }),
  gt: fn([RV, RV], BOOL, (a: Value, b: Value) => !le(a, b), { returnsError: true }),
  le: fn([RV, RV], BOOL, le, { returnsError: true }),
  lt: fn([RV, RV], BOOL, lt, { returnsError: true }),
  ne: fn([RV, RV], BOOL, (a: Value, b: Value) => !eq(a, b), { returnsError: true }),
}

/** The builtin `call`: template values are data, never functions, so this always fails as Go's would. */
export function callBuiltin(name: string, fnValue: Value): never {
  const f = indirectInterface(fnValue)
  if (!isValid(f)) throw new Error('call of nil')
  throw new Error(`non-function ${name} of type ${typeString(f.type)}`)
}

export { NO_VALUE, objectOf, pointee }
