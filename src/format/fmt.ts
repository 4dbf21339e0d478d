/**
 * Go's fmt over template values: Sprint, Sprintln and Sprintf with Go's
 * verbs (%v %+v %#v %T %t %d %b %o %O %x %X %c %q %U %e %E %f %F %g %G
 * %s %p), flags (+ - # 0 space), widths, precisions, `*` and argument
 * indexes, and its error forms (%!d(string=x), %!v(MISSING),
 * %!(EXTRA int=1), %!(BADWIDTH), %!(NOVERB), ...). %v prints maps as
 * `map[k:v]` in key order, slices as `[a b]`, structs as `{a b}`, nil as
 * `<nil>`, and calls String() on Stringers, as Go does.
 *
 * Written by hand: no npm package formats values the way Go's fmt does,
 * and the output of `--format` depends on every detail of it.
 */
import { typeString } from './go-types.js'
import { canBackquote, formatFloat, isPrint, quote, quoteRune } from './strconv.js'
import type { GoType } from './types.js'
import {
  boolOf,
  complexOf,
  floatOf,
  indirectInterface,
  intOf,
  isNil,
  isValid,
  pointee,
  sliceItems,
  sliceIndex,
  sortedEntries,
  stringOf,
  structFields,
  valueOf,
  type Value,
} from './value.js'

const NIL_ANGLE = '<nil>'
const LDIGITS = '0123456789abcdefx'
const UDIGITS = '0123456789ABCDEFX'

interface Flags {
  plus: boolean
  minus: boolean
  sharp: boolean
  space: boolean
  zero: boolean
  plusV: boolean
  sharpV: boolean
  widPresent: boolean
  precPresent: boolean
  wid: number
  prec: number
}

function clearFlags(): Flags {
  return { plus: false, minus: false, sharp: false, space: false, zero: false, plusV: false, sharpV: false, widPresent: false, precPresent: false, wid: 0, prec: 0 }
}

function runeCount(s: string): number {
  let n = 0
  for (const _ of s) n++
  return n
}

/** Stable stand-ins for pointer addresses (Go prints real ones, which differ on every run). */
const fakeAddresses = new WeakMap<object, bigint>()
let nextFakeAddress = 0xc000010000n

function addressOf(payload: unknown): bigint {
  if (payload === null || payload === undefined) return 0n
  if (typeof payload !== 'object') return 0xc000008000n
  let a = fakeAddresses.get(payload)
  if (a === undefined) {
    a = nextFakeAddress
    nextFakeAddress += 0x40n
    fakeAddresses.set(payload, a)
  }
  return a
}

/** The String() or Error() method that makes a value a fmt.Stringer or error. */
function stringMethod(v: Value): ((recv: unknown) => unknown) | undefined {
  const t = v.type
  if (t === undefined) return undefined
  const methods = t.methods ?? (t.kind === 'pointer' ? t.elem.methods : undefined)
  const m = methods?.Error ?? methods?.String
  if (m === undefined || m.params.length !== 0 || m.result.kind !== 'string') return undefined
  return m.call
}

class Printer {
  buf = ''
  f: Flags = clearFlags()
  /** The value being formatted, for %!verb(type=value). */
  private current: Value | undefined
  private erroring = false
  /** Whether '0' pads strings with zeros: it does in Go 1.24 (docker 28's), whatever fmt's doc says. */
  private readonly zeroPadsStrings = true

  // --- padding (fmt.go) ---

  private writePadding(n: number, forString = false): void {
    if (n <= 0) return
    const zero = this.f.zero && !this.f.minus && !(forString && !this.zeroPadsStrings)
    this.buf += (zero ? '0' : ' ').repeat(n)
  }

  private pad(s: string, forString = false): void {
    if (!this.f.widPresent || this.f.wid === 0) {
      this.buf += s
      return
    }
    const width = this.f.wid - runeCount(s)
    if (!this.f.minus) {
      this.writePadding(width, forString)
      this.buf += s
    } else {
      this.buf += s
      this.writePadding(width, forString)
    }
  }

  private truncate(s: string): string {
    if (this.f.precPresent) {
      const chars = [...s]
      if (chars.length > this.f.prec) return chars.slice(0, this.f.prec).join('')
    }
    return s
  }

  private fmtS(s: string): void {
    this.pad(this.truncate(s), true)
  }

  private fmtQ(s: string): void {
    s = this.truncate(s)
    if (this.f.sharp && canBackquote(s)) {
      this.pad(`\`${s}\``, true)
      return
    }
    this.pad(quote(s, this.f.plus), true)
  }

  private fmtSx(bytes: Uint8Array, digits: string): void {
    let length = bytes.length
    if (this.f.precPresent && this.f.prec < length) length = this.f.prec
    let width = 2 * length
    if (width > 0) {
      if (this.f.space) {
        if (this.f.sharp) width *= 2
        width += length - 1
      } else if (this.f.sharp) width += 2
    } else {
      if (this.f.widPresent) this.writePadding(this.f.wid, true)
      return
    }
    if (this.f.widPresent && this.f.wid > width && !this.f.minus) this.writePadding(this.f.wid - width, true)
    let out = this.f.sharp ? `0${digits[16]}` : ''
    for (let i = 0; i < length; i++) {
      if (this.f.space && i > 0) {
        out += ' '
        if (this.f.sharp) out += `0${digits[16]}`
      }
      const c = bytes[i]!
      out += digits[c >> 4]! + digits[c & 15]!
    }
    this.buf += out
    if (this.f.widPresent && this.f.wid > width && this.f.minus) this.writePadding(this.f.wid - width, true)
  }

  /** fmt.fmtInteger: u is the value (negative allowed when signed). */
  private fmtIntegerBase(u: bigint, base: number, verb: string, digits: string): void {
    const negative = u < 0n
    if (negative) u = -u
    let prec = 0
    if (this.f.precPresent) {
      prec = this.f.prec
      if (prec === 0 && u === 0n) {
        const oldZero = this.f.zero
        this.f.zero = false
        this.writePadding(this.f.wid)
        this.f.zero = oldZero
        return
      }
    } else if (this.f.zero && !this.f.minus && this.f.widPresent) {
      prec = this.f.wid
      if (negative || this.f.plus || this.f.space) prec--
    }
    let s = ''
    if (base === 10) s = u.toString(10)
    else {
      for (let x = u; ; x /= BigInt(base)) {
        s = digits[Number(x % BigInt(base))]! + s
        if (x < BigInt(base)) break
      }
    }
    if (s.length < prec) s = '0'.repeat(prec - s.length) + s
    if (this.f.sharp) {
      if (base === 2) s = `0b${s}`
      else if (base === 8 && s[0] !== '0') s = `0${s}`
      else if (base === 16) s = `0${digits[16]}${s}`
    }
    if (verb === 'O') s = `0o${s}`
    if (negative) s = `-${s}`
    else if (this.f.plus) s = `+${s}`
    else if (this.f.space) s = ` ${s}`
    const oldZero = this.f.zero
    this.f.zero = false
    this.pad(s)
    this.f.zero = oldZero
  }

  private fmtUnicode(u: bigint): void {
    const precPresent = this.f.precPresent
    const prec = this.f.prec
    let hex = (u < 0n ? u + (1n << 64n) : u).toString(16).toUpperCase()
    const minDigits = precPresent ? prec : 4
    if (hex.length < minDigits) hex = '0'.repeat(minDigits - hex.length) + hex
    let s = `U+${hex}`
    if (this.f.sharp && u >= 0n && u <= 0x10ffffn && isPrint(Number(u))) s += ` '${String.fromCodePoint(Number(u))}'`
    const oldZero = this.f.zero
    this.f.zero = false
    this.pad(s)
    this.f.zero = oldZero
  }

  private fmtC(u: bigint): void {
    let r = u < 0n || u > 0x10ffffn ? 0xfffd : Number(u)
    if (r >= 0xd800 && r <= 0xdfff) r = 0xfffd
    this.pad(String.fromCodePoint(r))
  }

  private fmtQc(u: bigint): void {
    // Go passes the integer as a uint64: a negative one is beyond MaxRune.
    const r = u < 0n || u > 0x10ffffn ? 0xfffd : Number(u)
    this.pad(quoteRune(r, this.f.plus))
  }

  private fmtInteger(v: bigint, signed: boolean, verb: string, bits: number): void {
    if (!signed && v < 0n) v += 1n << BigInt(bits)
    switch (verb) {
      case 'v':
        if (this.f.sharpV && !signed) {
          const sharp = this.f.sharp
          this.f.sharp = true
          this.fmtIntegerBase(v, 16, 'v', LDIGITS)
          this.f.sharp = sharp
        } else this.fmtIntegerBase(v, 10, verb, LDIGITS)
        return
      case 'd':
        return this.fmtIntegerBase(v, 10, verb, LDIGITS)
      case 'b':
        return this.fmtIntegerBase(v, 2, verb, LDIGITS)
      case 'o':
      case 'O':
        return this.fmtIntegerBase(v, 8, verb, LDIGITS)
      case 'x':
        return this.fmtIntegerBase(v, 16, verb, LDIGITS)
      case 'X':
        return this.fmtIntegerBase(v, 16, verb, UDIGITS)
      case 'c':
        return this.fmtC(v)
      case 'q':
        return this.fmtQc(v)
      case 'U':
        return this.fmtUnicode(v)
      default:
        this.badVerb(verb)
    }
  }

  /** fmt.fmtFloat: the number with Go's sign, padding and '#' handling. */
  private fmtFloatPrec(v: number, size: 32 | 64, verb: string, prec: number): void {
    if (this.f.precPresent) prec = this.f.prec
    let num = formatFloat(v, verb === 'v' ? 'g' : verb, prec, size)
    if (num[0] === '-' || num[0] === '+') {
      // keep the sign
    } else num = `+${num}`
    if (this.f.space && num[0] === '+' && !this.f.plus) num = ` ${num.slice(1)}`
    if (num[1] === 'I' || num[1] === 'N') {
      const oldZero = this.f.zero
      this.f.zero = false
      if (num[1] === 'N' && !this.f.space && !this.f.plus) num = num.slice(1)
      this.pad(num)
      this.f.zero = oldZero
      return
    }
    if (this.f.sharp && verb !== 'b') {
      let digits = 0
      if (verb === 'v' || verb === 'g' || verb === 'G' || verb === 'x') {
        digits = prec
        if (digits === -1) digits = 6
      }
      let tail = ''
      let hasDecimalPoint = false
      let sawNonzeroDigit = false
      let body = num
      for (let i = 1; i < body.length; i++) {
        const c = body[i]!
        if (c === '.') {
          hasDecimalPoint = true
          continue
        }
        if (c === 'p' || c === 'P' || ((c === 'e' || c === 'E') && verb !== 'x' && verb !== 'X')) {
          tail = body.slice(i)
          body = body.slice(0, i)
          break
        }
        if (c !== '0') sawNonzeroDigit = true
        if (sawNonzeroDigit) digits--
      }
      if (!hasDecimalPoint) {
        if (body.length === 2 && body[1] === '0') digits--
        body += '.'
      }
      while (digits > 0) {
        body += '0'
        digits--
      }
      num = body + tail
    }
    if (this.f.plus || num[0] !== '+') {
      if (this.f.zero && !this.f.minus && this.f.widPresent && this.f.wid > num.length) {
        this.buf += num[0]
        this.writePadding(this.f.wid - num.length)
        this.buf += num.slice(1)
        return
      }
      this.pad(num)
      return
    }
    this.pad(num.slice(1))
  }

  private fmtFloat(v: number, size: 32 | 64, verb: string): void {
    switch (verb) {
      case 'v':
        return this.fmtFloatPrec(v, size, 'g', -1)
      case 'b':
      case 'g':
      case 'G':
      case 'x':
      case 'X':
        return this.fmtFloatPrec(v, size, verb, -1)
      case 'f':
      case 'e':
      case 'E':
      case 'F':
        return this.fmtFloatPrec(v, size, verb, 6)
      default:
        this.badVerb(verb)
    }
  }

  private fmtComplex(re: number, im: number, size: 64 | 128, verb: string): void {
    if (!'vbgGxXfFeE'.includes(verb)) {
      this.badVerb(verb)
      return
    }
    const oldPlus = this.f.plus
    this.buf += '('
    this.fmtFloat(re, size === 128 ? 64 : 32, verb)
    this.f.plus = true
    this.fmtFloat(im, size === 128 ? 64 : 32, verb)
    this.buf += 'i)'
    this.f.plus = oldPlus
  }

  private fmtBool(v: boolean, verb: string): void {
    if (verb === 't' || verb === 'v') this.pad(v ? 'true' : 'false')
    else this.badVerb(verb)
  }

  private fmtString(s: string, verb: string): void {
    switch (verb) {
      case 'v':
        if (this.f.sharpV) this.fmtQ(s)
        else this.fmtS(s)
        return
      case 's':
        return this.fmtS(s)
      case 'x':
        return this.fmtSx(Buffer.from(s, 'utf8'), LDIGITS)
      case 'X':
        return this.fmtSx(Buffer.from(s, 'utf8'), UDIGITS)
      case 'q':
        return this.fmtQ(s)
      default:
        this.badVerb(verb)
    }
  }

  private fmtPointer(v: Value, verb: string): void {
    let use0x64 = true
    if (verb === 'b' || verb === 'o' || verb === 'd' || verb === 'x' || verb === 'X') use0x64 = false
    else if (verb !== 'p' && verb !== 'v') {
      this.badVerb(verb)
      return
    }
    const u = isNil(v) ? 0n : addressOf(v.payload)
    if (this.f.sharpV) {
      this.buf += `(${typeString(v.type!)})(${u === 0n ? 'nil' : `0x${u.toString(16)}`})`
    } else if (verb === 'v' && u === 0n) {
      this.pad(NIL_ANGLE)
    } else if (use0x64) {
      const sharp = this.f.sharp
      this.f.sharp = !sharp
      this.fmtIntegerBase(u, 16, verb, LDIGITS)
      this.f.sharp = sharp
    } else this.fmtInteger(u, false, verb, 64)
  }

  private badVerb(verb: string): void {
    this.erroring = true
    this.buf += `%!${verb}(`
    const v = this.current
    if (v !== undefined && isValid(v)) {
      this.buf += `${typeString(v.type)}=`
      const saved = this.f
      this.f = clearFlags()
      this.printValue(v, 'v', 0)
      this.f = saved
    } else this.buf += NIL_ANGLE
    this.buf += ')'
    this.erroring = false
  }

  /** handleMethods: a Stringer or error prints its String()/Error() for the string verbs. */
  private handleMethods(v: Value, verb: string): boolean {
    if (this.erroring || this.f.sharpV) return false
    if (!'vsxXq'.includes(verb)) return false
    const m = stringMethod(v)
    if (m === undefined) return false
    if (v.type?.kind === 'pointer' && isNil(v)) {
      this.pad(NIL_ANGLE)
      return true
    }
    const receiver = v.type?.kind === 'pointer' ? pointee(v).payload : v.payload
    this.fmtString(String(m(receiver)), verb)
    return true
  }

  /** printArg: one operand given to Sprint/Sprintf (NO_VALUE is a nil interface). */
  printArg(arg: Value, verb: string): void {
    this.current = arg
    if (!isValid(arg)) {
      if (verb === 'T' || verb === 'v') this.pad(NIL_ANGLE)
      else this.badVerb(verb)
      return
    }
    if (verb === 'T') {
      this.fmtS(typeString(arg.type))
      return
    }
    if (verb === 'p') {
      this.fmtPointer(arg, 'p')
      return
    }
    if (this.handleMethods(arg, verb)) return
    this.printValue(arg, verb, 0)
  }

  /** Opens a map or slice: `open` for %v, the type name and "{" for %#v; false (done) for a nil one under %#v. */
  private openComposite(value: Value, open: string): boolean {
    if (!this.f.sharpV) {
      this.buf += open
      return true
    }
    this.buf += typeString(value.type!)
    if (isNil(value)) {
      this.buf += '(nil)'
      return false
    }
    this.buf += '{'
    return true
  }

  printValue(value: Value, verb: string, depth: number): void {
    if (depth > 0 && isValid(value) && this.handleMethods(value, verb)) return
    this.current = value
    if (!isValid(value)) {
      if (depth === 0) this.buf += '<invalid reflect.Value>'
      else if (verb === 'v') this.buf += NIL_ANGLE
      else this.badVerb(verb)
      return
    }
    const t: GoType = value.type
    switch (t.kind) {
      case 'bool':
        return this.fmtBool(boolOf(value), verb)
      case 'int':
        return this.fmtInteger(BigInt.asIntN(t.bits, intOf(value)), true, verb, t.bits)
      case 'uint':
        return this.fmtInteger(BigInt.asUintN(t.bits, intOf(value)), false, verb, t.bits)
      case 'float':
        return this.fmtFloat(floatOf(value), t.bits, verb)
      case 'complex': {
        const c = complexOf(value)
        return this.fmtComplex(c.re, c.im, t.bits, verb)
      }
      case 'string':
        return this.fmtString(stringOf(value), verb)
      case 'map': {
        if (!this.openComposite(value, 'map[')) return
        sortedEntries(value).forEach(([k, v], i) => {
          if (i > 0) this.buf += this.f.sharpV ? ', ' : ' '
          this.printValue(k, verb, depth + 1)
          this.buf += ':'
          this.printValue(v, verb, depth + 1)
        })
        this.buf += this.f.sharpV ? '}' : ']'
        return
      }
      case 'struct': {
        if (this.f.sharpV) this.buf += typeString(t)
        this.buf += '{'
        structFields(value).forEach((fv, i) => {
          if (i > 0) this.buf += this.f.sharpV ? ', ' : ' '
          if (this.f.plusV || this.f.sharpV) this.buf += `${t.fields[i]!.name}:`
          const shown = fv.type?.kind === 'interface' && !isNil(fv) ? indirectInterface(fv) : fv
          this.printValue(shown, verb, depth + 1)
        })
        this.buf += '}'
        return
      }
      case 'interface': {
        const inner = indirectInterface(value)
        if (!isValid(inner)) {
          if (this.f.sharpV) this.buf += `${typeString(t)}(nil)`
          else this.buf += NIL_ANGLE
        } else this.printValue(inner, verb, depth + 1)
        return
      }
      case 'slice': {
        if (t.elem.kind === 'uint' && t.elem.bits === 8 && 'sqxX'.includes(verb)) {
          const bytes = Uint8Array.from(sliceItems(value).map((b) => Number(intOf(valueOf(t.elem, b))) & 255))
          if (verb === 's') this.fmtS(Buffer.from(bytes).toString('utf8'))
          else if (verb === 'q') this.fmtQ(Buffer.from(bytes).toString('utf8'))
          else this.fmtSx(bytes, verb === 'x' ? LDIGITS : UDIGITS)
          return
        }
        if (!this.openComposite(value, '[')) return
        const n = sliceItems(value).length
        for (let i = 0; i < n; i++) {
          if (i > 0) this.buf += this.f.sharpV ? ', ' : ' '
          this.printValue(sliceIndex(value, i), verb, depth + 1)
        }
        this.buf += this.f.sharpV ? '}' : ']'
        return
      }
      case 'pointer': {
        if (depth === 0 && !isNil(value)) {
          const elem = pointee(value)
          const k = elem.type?.kind
          if (k === 'slice' || k === 'struct' || k === 'map') {
            this.buf += '&'
            this.printValue(elem, verb, depth + 1)
            return
          }
        }
        return this.fmtPointer(value, verb)
      }
      default:
        this.buf += `?${typeString(t)}?`
    }
  }

  // --- Sprintf (print.go doPrintf) ---

  doPrintf(format: string, args: Value[]): void {
    const c: PrintfCursor = { format, args, i: 0, argNum: 0, afterIndex: false, reordered: false, goodArgNum: true }
    const end = format.length
    while (c.i < end) {
      c.goodArgNum = true
      const lasti = c.i
      while (c.i < end && format[c.i] !== '%') c.i++
      if (c.i > lasti) this.buf += format.slice(lasti, c.i)
      if (c.i >= end) break
      c.i++
      this.f = clearFlags()
      if (this.#simpleFormat(c)) continue
      argNumber(c)
      this.#width(c)
      this.#precision(c)
      if (!c.afterIndex) argNumber(c)
      if (c.i >= end) {
        this.buf += '%!(NOVERB)'
        break
      }
      this.#verb(c)
    }
    if (!c.reordered && c.argNum < args.length) this.#extraArgs(args.slice(c.argNum))
  }

  /** Flags (#0+- and space); a plain verb right after them is printed at once (Go's fast path): true then. */
  #simpleFormat(c: PrintfCursor): boolean {
    const { format, args } = c
    for (; c.i < format.length; c.i++) {
      const ch = format[c.i]!
      switch (ch) {
        case '#':
          this.f.sharp = true
          break
        case '0':
          this.f.zero = !this.f.minus
          break
        case '+':
          this.f.plus = true
          break
        case '-':
          this.f.minus = true
          this.f.zero = false
          break
        case ' ':
          this.f.space = true
          break
        default:
          if (ch >= 'a' && ch <= 'z' && c.argNum < args.length) {
            this.#printVerbArg(args[c.argNum]!, ch)
            c.argNum++
            c.i++
            return true
          }
          return false
      }
    }
    return false
  }

  /** The width: `*` (from an argument) or digits. */
  #width(c: PrintfCursor): void {
    const { format } = c
    if (c.i < format.length && format[c.i] === '*') {
      c.i++
      ;[this.f.wid, this.f.widPresent, c.argNum] = intFromArg(c.args, c.argNum)
      if (!this.f.widPresent) this.buf += '%!(BADWIDTH)'
      if (this.f.wid < 0) {
        this.f.wid = -this.f.wid
        this.f.minus = true
        this.f.zero = false
      }
      c.afterIndex = false
    } else {
      ;[this.f.wid, this.f.widPresent, c.i] = parsenum(format, c.i)
      if (c.afterIndex && this.f.widPresent) c.goodArgNum = false
    }
  }

  /** The precision after `.`: `*` (from an argument, possibly indexed) or digits (none: 0). */
  #precision(c: PrintfCursor): void {
    const { format } = c
    if (!(c.i + 1 < format.length && format[c.i] === '.')) return
    c.i++
    if (c.afterIndex) c.goodArgNum = false
    argNumber(c)
    if (c.i < format.length && format[c.i] === '*') {
      c.i++
      ;[this.f.prec, this.f.precPresent, c.argNum] = intFromArg(c.args, c.argNum)
      if (this.f.prec < 0) {
        this.f.prec = 0
        this.f.precPresent = false
      }
      if (!this.f.precPresent) this.buf += '%!(BADPREC)'
      c.afterIndex = false
    } else {
      ;[this.f.prec, this.f.precPresent, c.i] = parsenum(format, c.i)
      if (!this.f.precPresent) {
        this.f.prec = 0
        this.f.precPresent = true
      }
    }
  }

  /** The verb: `%%`, a bad index, a missing operand, or the operand printed. */
  #verb(c: PrintfCursor): void {
    const verb = String.fromCodePoint(c.format.codePointAt(c.i)!)
    c.i += verb.length
    if (verb === '%') this.buf += '%'
    else if (!c.goodArgNum) this.buf += `%!${verb}(BADINDEX)`
    else if (c.argNum >= c.args.length) this.buf += `%!${verb}(MISSING)`
    else {
      this.#printVerbArg(c.args[c.argNum]!, verb)
      c.argNum++
    }
  }

  /** printArg, with %v taking # and + as its own sharpV and plusV. */
  #printVerbArg(arg: Value, verb: string): void {
    if (verb === 'v') {
      this.f.sharpV = this.f.sharp
      this.f.sharp = false
      this.f.plusV = this.f.plus
      this.f.plus = false
    }
    this.printArg(arg, verb)
  }

  /** Operands no verb used: `%!(EXTRA type=value, ...)`. */
  #extraArgs(extra: Value[]): void {
    this.f = clearFlags()
    this.buf += '%!(EXTRA '
    extra.forEach((arg, k) => {
      if (k > 0) this.buf += ', '
      if (!isValid(arg)) this.buf += NIL_ANGLE
      else {
        this.buf += `${typeString(arg.type)}=`
        this.printArg(arg, 'v')
      }
    })
    this.buf += ')'
  }
}

/** Where doPrintf is in its format, and what it knows so far (Go keeps the last two in pp). */
interface PrintfCursor {
  readonly format: string
  readonly args: Value[]
  i: number
  argNum: number
  /** The last argument index was an explicit `[n]`. */
  afterIndex: boolean
  /** Some `[n]` was seen: unused operands are not reported as EXTRA. */
  reordered: boolean
  goodArgNum: boolean
}

/** print.go parsenum: the decimal number at `i` (none past 1e6), whether there was one, and where it ends. */
function parsenum(format: string, i: number): [number, boolean, number] {
  const end = format.length
  if (i >= end) return [0, false, end]
  let num = 0
  let isnum = false
  let j = i
  for (; j < end && format[j]! >= '0' && format[j]! <= '9'; j++) {
    if (num > 1e6) return [0, false, end]
    num = num * 10 + (format.charCodeAt(j) - 48)
    isnum = true
  }
  return [num, isnum, j]
}

/** print.go parseArgNumber: `[n]` at `i` as an index, its width in bytes, and whether it is well-formed. */
function parseArgNumber(format: string, i: number): [number, number, boolean] {
  const end = format.length
  if (end - i < 3) return [0, 1, false]
  for (let j = i + 1; j < end; j++) {
    if (format[j] === ']') {
      const [width, isnum, newi] = parsenum(format, i + 1)
      if (!isnum || newi !== j) return [0, j - i + 1, false]
      return [width - 1, j - i + 1, true]
    }
  }
  return [0, 1, false]
}

/** print.go argNumber: an explicit `[n]` at the cursor moves to operand n (a bad one spoils the verb). */
function argNumber(c: PrintfCursor): void {
  if (c.i >= c.format.length || c.format[c.i] !== '[') {
    c.afterIndex = false
    return
  }
  c.reordered = true
  const [index, wid, ok] = parseArgNumber(c.format, c.i)
  c.i += wid
  if (ok && index >= 0 && index < c.args.length) {
    c.argNum = index
    c.afterIndex = true
    return
  }
  c.goodArgNum = false
  c.afterIndex = ok
}

/** print.go intFromArg: operand `argNum` as a width or precision (an int within ±1e6), and the next operand. */
function intFromArg(args: Value[], argNum: number): [number, boolean, number] {
  if (argNum >= args.length) return [0, false, argNum]
  const a = args[argNum]!
  const k = a.type?.kind
  let num = 0
  let isInt = false
  if (k === 'int' || k === 'uint') {
    const n = intOf(a)
    if (n >= -(2n ** 63n) && n < 2n ** 63n) {
      num = Number(n)
      isInt = true
    }
  }
  if (num > 1e6 || num < -1e6) return [0, false, argNum + 1]
  return [num, isInt, argNum + 1]
}

/** fmt.Sprint: operands as %v, a space between two operands when neither is a string. */
export function sprint(args: Value[]): string {
  const p = new Printer()
  let prevString = false
  args.forEach((arg, i) => {
    const isString = isValid(arg) && arg.type.kind === 'string'
    if (i > 0 && !isString && !prevString) p.buf += ' '
    p.f = clearFlags()
    p.printArg(arg, 'v')
    prevString = isString
  })
  return p.buf
}

/** fmt.Sprintln: operands as %v separated by spaces, then a newline. */
export function sprintln(args: Value[]): string {
  const p = new Printer()
  args.forEach((arg, i) => {
    if (i > 0) p.buf += ' '
    p.f = clearFlags()
    p.printArg(arg, 'v')
  })
  return `${p.buf}\n`
}

/** fmt.Sprintf. */
export function sprintf(format: string, args: Value[]): string {
  const p = new Printer()
  p.doPrintf(format, args)
  return p.buf
}

/** `%v` of a reflect.Value, as Go's errors print one (the value it holds, with its String() if any). */
export function sprintValue(v: Value): string {
  if (!isValid(v)) return '<invalid reflect.Value>'
  const p = new Printer()
  p.printArg(v, 'v')
  return p.buf
}

/** `%s` of a reflect.Value. */
export function sprintValueS(v: Value): string {
  const p = new Printer()
  p.printArg(v, 's')
  return p.buf
}
