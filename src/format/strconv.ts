/**
 * The parts of Go's strconv and unicode packages that text/template and fmt
 * show in their output: quoting (Quote, QuoteRune, CanBackquote), unquoting
 * template literals (Unquote, UnquoteChar), number syntax (ParseInt,
 * ParseUint, ParseFloat with Go's prefixes and underscores), and float
 * formatting (FormatFloat's 'e', 'f', 'g', 'b', 'x' with Go's rounding).
 *
 * Written by hand: JavaScript's number formatting rounds ties away from
 * zero and spells exponents differently, and no npm package reproduces
 * Go's strconv. Fixed-precision digits come from the float's exact decimal
 * expansion (BigInt), rounded half to even as Go's decimal type does;
 * shortest digits come from JavaScript's shortest round-trip conversion,
 * which picks the same digits as Go's.
 */

/** unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
export function isPrint(r: number): boolean {
  if (r === 0x20) return true
  if (r < 0x20 || r === 0x7f) return false
  if (r < 0x7f) return true
  if (r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) return false
  return /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u.test(String.fromCodePoint(r))
}

/** unicode.IsLetter || unicode.IsDigit || '_': the characters of identifiers. */
export function isAlphaNumeric(ch: string): boolean {
  return ch === '_' || /^[\p{L}\p{Nd}]$/u.test(ch)
}

const LOWER_HEX = '0123456789abcdef'

function hex2(b: number): string {
  return LOWER_HEX[b >> 4]! + LOWER_HEX[b & 15]!
}

function appendEscapedRune(r: number, quote: string, ascii: boolean): string {
  const ch = String.fromCodePoint(r)
  if (ch === quote || ch === '\\') return `\\${ch}`
  if (ascii ? r < 0x80 && isPrint(r) : isPrint(r)) return ch
  switch (r) {
    case 0x07:
      return '\\a'
    case 0x08:
      return '\\b'
    case 0x0c:
      return '\\f'
    case 0x0a:
      return '\\n'
    case 0x0d:
      return '\\r'
    case 0x09:
      return '\\t'
    case 0x0b:
      return '\\v'
  }
  if (r < 0x20 || r === 0x7f) return `\\x${hex2(r)}`
  if (r >= 0xd800 && r <= 0xdfff) return '\\ufffd'
  if (r < 0x10000) return `\\u${r.toString(16).padStart(4, '0')}`
  return `\\U${r.toString(16).padStart(8, '0')}`
}

/** strconv.Quote (or QuoteToASCII): a double-quoted Go string literal. */
export function quote(s: string, ascii = false): string {
  let out = '"'
  for (const ch of s) out += appendEscapedRune(ch.codePointAt(0)!, '"', ascii)
  return `${out}"`
}

/** strconv.QuoteRune (or QuoteRuneToASCII): a single-quoted Go rune literal. */
export function quoteRune(r: number, ascii = false): string {
  if (r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) r = 0xfffd
  return `'${appendEscapedRune(r, "'", ascii)}'`
}

/** strconv.CanBackquote: a single-line string without control characters other than tab, nor a backquote. */
export function canBackquote(s: string): boolean {
  for (const ch of s) {
    const r = ch.codePointAt(0)!
    if (ch === '`' || r === 0xfeff) return false
    if (r < 0x20 ? ch !== '\t' : r === 0x7f) return false
    if (r >= 0xd800 && r <= 0xdfff) return false
  }
  return true
}

/** strconv.ErrSyntax's text. */
export const INVALID_SYNTAX = 'invalid syntax'

/**
 * strconv.UnquoteChar: decodes the first character or escape of `s` in a
 * literal quoted by `quote`; returns the code point and the rest.
 * Throws Error(INVALID_SYNTAX) as Go returns ErrSyntax.
 */
export function unquoteChar(s: string, quote: string): [number, string] {
  const c = s.codePointAt(0)
  if (c === undefined) throw new Error(INVALID_SYNTAX)
  const ch = String.fromCodePoint(c)
  if (ch === quote && (quote === "'" || quote === '"')) throw new Error(INVALID_SYNTAX)
  if (ch !== '\\') return [c, s.slice(ch.length)]
  if (s.length <= 1) throw new Error(INVALID_SYNTAX)
  const e = s[1]!
  let rest = s.slice(2)
  const simple: Record<string, number> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 92 }
  if (e in simple) return [simple[e]!, rest]
  if (e === 'x' || e === 'u' || e === 'U') {
    const n = e === 'x' ? 2 : e === 'u' ? 4 : 8
    const digits = rest.slice(0, n)
    if (digits.length < n || !/^[0-9a-fA-F]+$/.test(digits)) throw new Error(INVALID_SYNTAX)
    const v = parseInt(digits, 16)
    rest = rest.slice(n)
    if (e === 'x') return [v, rest]
    if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) throw new Error(INVALID_SYNTAX)
    return [v, rest]
  }
  if (e >= '0' && e <= '7') {
    const digits = s.slice(1, 4)
    if (!/^[0-7]{3}$/.test(digits)) throw new Error(INVALID_SYNTAX)
    const v = parseInt(digits, 8)
    if (v > 255) throw new Error(INVALID_SYNTAX)
    return [v, s.slice(4)]
  }
  if ((e === "'" || e === '"') && e === quote) return [e.charCodeAt(0), rest]
  throw new Error(INVALID_SYNTAX)
}

/**
 * strconv.Unquote for the literals the template lexer produces: "..."
 * with escapes, `...` raw (carriage returns dropped), '...' one rune.
 * Byte escapes (\x80, \377) are kept as the code point of that value,
 * which is exact for ASCII; text/template strings are Go strings of
 * bytes, JavaScript strings are not.
 */
export function unquote(s: string): string {
  if (s.length < 2) throw new Error(INVALID_SYNTAX)
  const q = s[0]!
  if (q !== s[s.length - 1]) throw new Error(INVALID_SYNTAX)
  let body = s.slice(1, -1)
  if (q === '`') {
    if (body.includes('`')) throw new Error(INVALID_SYNTAX)
    return body.replaceAll('\r', '')
  }
  if (q !== '"' && q !== "'") throw new Error(INVALID_SYNTAX)
  if (body.includes('\n')) throw new Error(INVALID_SYNTAX)
  let out = ''
  let count = 0
  while (body.length > 0) {
    const [r, rest] = unquoteChar(body, q)
    out += String.fromCodePoint(r)
    body = rest
    count++
    if (q === "'" && count > 1) throw new Error(INVALID_SYNTAX)
  }
  if (q === "'" && count !== 1) throw new Error(INVALID_SYNTAX)
  return out
}

/** Why a Go number literal did not parse: ErrSyntax or ErrRange. */
export class NumError extends Error {
  constructor(
    readonly func: string,
    readonly input: string,
    readonly reason: 'invalid syntax' | 'value out of range',
  ) {
    super(`strconv.${func}: parsing ${quote(input)}: ${reason}`)
  }
}

/** Go's underscoreOK: underscores only between digits or after a base prefix, and only with base prefix rules. */
function underscoreOK(s: string): boolean {
  let saw = '^'
  let i = 0
  if (s.length >= 1 && (s[0] === '-' || s[0] === '+')) s = s.slice(1)
  let hex = false
  if (s.length >= 2 && s[0] === '0' && 'bBoOxX'.includes(s[1]!)) {
    i = 2
    saw = '0'
    hex = s[1] === 'x' || s[1] === 'X'
  }
  for (; i < s.length; i++) {
    const c = s[i]!
    if ((c >= '0' && c <= '9') || (hex && /[a-fA-F]/.test(c))) {
      saw = '0'
      continue
    }
    if (c === '_') {
      if (saw !== '0') return false
      saw = '_'
      continue
    }
    if (saw === '_') return false
    saw = '!'
  }
  return saw !== '_'
}

/** strconv.ParseUint(s, 0, 64) as a bigint. */
export function parseUint(s: string): bigint {
  if (s === '') throw new NumError('ParseUint', s, 'invalid syntax')
  let body = s
  let base = 10
  if (body[0] === '0') {
    const p = body.length >= 3 ? body[1]!.toLowerCase() : ''
    base = p === 'b' ? 2 : p === 'o' ? 8 : p === 'x' ? 16 : 8
    body = p === 'b' || p === 'o' || p === 'x' ? body.slice(2) : body.slice(1)
  }
  let n = 0n
  let underscores = false
  for (const c of body) {
    if (c === '_') {
      underscores = true
      continue
    }
    const d = '0123456789abcdefghijklmnopqrstuvwxyz'.indexOf(c.toLowerCase())
    if (d < 0 || d >= base) throw new NumError('ParseUint', s, 'invalid syntax')
    n = n * BigInt(base) + BigInt(d)
    if (n > 0xffffffffffffffffn) throw new NumError('ParseUint', s, 'value out of range')
  }
  if (underscores && !underscoreOK(s)) throw new NumError('ParseUint', s, 'invalid syntax')
  return n
}

/** strconv.ParseInt(s, 0, 64) as a bigint. */
export function parseInt64(s: string): bigint {
  if (s === '') throw new NumError('ParseInt', s, 'invalid syntax')
  let body = s
  let neg = false
  if (s[0] === '+' || s[0] === '-') {
    neg = s[0] === '-'
    body = s.slice(1)
  }
  let u: bigint
  try {
    u = parseUint(body)
  } catch (err) {
    if (err instanceof NumError) throw new NumError('ParseInt', s, err.reason)
    throw err
  }
  if (!neg && u > 0x7fffffffffffffffn) throw new NumError('ParseInt', s, 'value out of range')
  if (neg && u > 0x8000000000000000n) throw new NumError('ParseInt', s, 'value out of range')
  return neg ? -u : u
}

/** strconv.ParseFloat(s, 64): decimal and hexadecimal floats, underscores, Inf/NaN. */
export function parseFloat64(s: string): number {
  const fail = (reason: 'invalid syntax' | 'value out of range'): never => {
    throw new NumError('ParseFloat', s, reason)
  }
  let body = s
  let sign = 1
  if (body[0] === '+' || body[0] === '-') {
    sign = body[0] === '-' ? -1 : 1
    body = body.slice(1)
  }
  const lower = body.toLowerCase()
  if (lower === 'inf' || lower === 'infinity') return sign * Infinity
  if (lower === 'nan') return NaN
  if (body.includes('_')) {
    if (!underscoreOK(s)) fail('invalid syntax')
    body = body.replaceAll('_', '')
  }
  let value: number
  if (/^0[xX]/.test(body)) {
    const m = /^0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?[pP]([+-]?\d+)$/.exec(body)
    if (m === null || (m[1] === '' && (m[2] ?? '') === '')) return fail('invalid syntax')
    const mant = BigInt(`0x${m[1] || '0'}${m[2] ?? ''}`)
    const exp = Number(m[3]) - 4 * (m[2] ?? '').length
    value = bigTimesPow2(mant, exp)
  } else {
    if (!/^(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(body)) fail('invalid syntax')
    value = Number(body)
  }
  if (!Number.isFinite(value)) fail('value out of range')
  return sign * value
}

/** mant × 2^exp as a float64 (hex float literals; one rounding except in the subnormal range). */
function bigTimesPow2(mant: bigint, exp: number): number {
  let v = Number(mant)
  while (exp > 0) {
    const k = Math.min(exp, 1000)
    v *= 2 ** k
    exp -= k
  }
  while (exp < 0) {
    const k = Math.min(-exp, 1000)
    v /= 2 ** k
    exp += k
  }
  return v
}

/** A decimal number 0.DIGITS × 10^dp, as Go's strconv decimal type; no digits is zero. */
interface Decimal {
  d: string
  dp: number
}

/** The exact decimal value of a finite float64's magnitude. */
function exactDecimal(x: number): Decimal {
  if (x === 0) return { d: '', dp: 0 }
  const buf = new DataView(new ArrayBuffer(8))
  buf.setFloat64(0, Math.abs(x))
  const hi = buf.getUint32(0)
  const lo = buf.getUint32(4)
  const biased = (hi >>> 20) & 0x7ff
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo)
  let exp: number
  if (biased === 0) exp = -1074
  else {
    mant |= 1n << 52n
    exp = biased - 1075
  }
  let digits: string
  let dp: number
  if (exp >= 0) {
    digits = (mant << BigInt(exp)).toString()
    dp = digits.length
  } else {
    digits = (mant * 5n ** BigInt(-exp)).toString()
    dp = digits.length + exp
  }
  const trimmed = digits.replace(/0+$/, '')
  return { d: trimmed, dp }
}

/** The shortest digits that read back as `x` (float64, or float32 when bits is 32). */
function shortestDecimal(x: number, bits: 32 | 64): Decimal {
  if (x === 0) return { d: '', dp: 0 }
  const a = Math.abs(x)
  let s: string
  if (bits === 64) s = a.toExponential()
  else {
    s = a.toExponential(8)
    for (let p = 0; p <= 8; p++) {
      const t = a.toExponential(p)
      if (Math.fround(Number(t)) === a) {
        s = t
        break
      }
    }
  }
  const [mant, e] = s.split('e') as [string, string]
  const d = mant.replace('.', '').replace(/0+$/, '')
  return { d, dp: Number(e) + 1 }
}

/** Go's decimal.Round(nd): half to even on exact digits. */
function roundDecimal(dec: Decimal, nd: number): Decimal {
  if (nd < 0 || nd >= dec.d.length) return dec
  const next = dec.d[nd]!
  let up: boolean
  if (next === '5' && nd + 1 === dec.d.length) up = nd > 0 && (Number(dec.d[nd - 1]) & 1) === 1
  else up = next >= '5'
  if (!up) return { d: dec.d.slice(0, nd).replace(/0+$/, ''), dp: nd === 0 ? 0 : dec.dp }
  let i = nd - 1
  const digits = dec.d.slice(0, nd).split('')
  while (i >= 0 && digits[i] === '9') i--
  if (i < 0) return { d: '1', dp: dec.dp + 1 }
  digits[i] = String(Number(digits[i]) + 1)
  return { d: digits.slice(0, i + 1).join(''), dp: dec.dp }
}

function fmtE(neg: boolean, dec: Decimal, prec: number, fmt: string): string {
  let out = neg ? '-' : ''
  out += dec.d.length === 0 ? '0' : dec.d[0]!
  if (prec > 0) {
    out += '.'
    const more = dec.d.slice(1, Math.min(dec.d.length, prec + 1))
    out += more + '0'.repeat(prec - more.length)
  }
  let exp = dec.d.length === 0 ? 0 : dec.dp - 1
  const sign = exp < 0 ? '-' : '+'
  exp = Math.abs(exp)
  return `${out}${fmt}${sign}${exp < 10 ? `0${exp}` : String(exp)}`
}

function fmtF(neg: boolean, dec: Decimal, prec: number): string {
  let out = neg ? '-' : ''
  if (dec.dp > 0) {
    const m = Math.min(dec.d.length, dec.dp)
    out += dec.d.slice(0, m) + '0'.repeat(dec.dp - m)
  } else out += '0'
  if (prec > 0) {
    out += '.'
    for (let i = 0; i < prec; i++) {
      const j = dec.dp + i
      out += j >= 0 && j < dec.d.length ? dec.d[j]! : '0'
    }
  }
  return out
}

/** strconv.FormatFloat's %b: decimal mantissa, binary exponent ("4503599627370496p-52"). */
function fmtB(x: number, bits: 32 | 64): string {
  const neg = x < 0 || Object.is(x, -0)
  const buf = new DataView(new ArrayBuffer(8))
  let mant: bigint
  let exp: number
  if (bits === 32) {
    buf.setFloat32(0, Math.abs(x))
    const u = buf.getUint32(0)
    const biased = (u >>> 23) & 0xff
    mant = BigInt(u & 0x7fffff)
    if (biased === 0) exp = -149
    else {
      mant |= 1n << 23n
      exp = biased - 150
    }
  } else {
    buf.setFloat64(0, Math.abs(x))
    const hi = buf.getUint32(0)
    const biased = (hi >>> 20) & 0x7ff
    mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(buf.getUint32(4))
    if (biased === 0) exp = -1074
    else {
      mant |= 1n << 52n
      exp = biased - 1075
    }
  }
  return `${neg ? '-' : ''}${mant}p${exp >= 0 ? '+' : '-'}${Math.abs(exp)}`
}

/** strconv.FormatFloat's %x: "-0x1.23abcp+20"; prec -1 is the shortest exact form. */
function fmtX(x: number, prec: number, upper: boolean, bits: 32 | 64): string {
  const neg = x < 0 || Object.is(x, -0)
  let a = Math.abs(x)
  let mant = 0n
  let exp = 0
  if (a !== 0) {
    const buf = new DataView(new ArrayBuffer(8))
    if (bits === 32) a = Math.fround(a)
    buf.setFloat64(0, a)
    const hi = buf.getUint32(0)
    const biased = (hi >>> 20) & 0x7ff
    mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(buf.getUint32(4))
    if (biased === 0) {
      exp = -1022
      // Normalize a subnormal so the leading 1 is at bit 52.
      while ((mant & (1n << 52n)) === 0n) {
        mant <<= 1n
        exp--
      }
    } else {
      mant |= 1n << 52n
      exp = biased - 1023
    }
  }
  // mant has its leading 1 at bit 52: 1.(52 bits) × 2^exp; as 13 hex digits after the point.
  let frac = mant & ((1n << 52n) - 1n)
  let lead = a === 0 ? 0n : 1n
  let hexDigits = 13
  if (prec >= 0 && prec < 13) {
    const drop = BigInt(4 * (13 - prec))
    const half = 1n << (drop - 1n)
    const rem = frac & ((1n << drop) - 1n)
    frac >>= drop
    if (rem > half || (rem === half && (frac & 1n) === 1n)) frac++
    if (frac >> BigInt(4 * prec) !== 0n) {
      frac &= (1n << BigInt(4 * prec)) - 1n
      lead++
      if (lead === 2n) {
        lead = 1n
        exp++
      }
    }
    hexDigits = prec
  }
  let fracText = hexDigits > 0 ? frac.toString(16).padStart(hexDigits, '0') : ''
  if (prec < 0) fracText = fracText.replace(/0+$/, '')
  else if (prec > 13) fracText += '0'.repeat(prec - 13)
  let out = `${neg ? '-' : ''}0x${lead}${fracText === '' ? '' : `.${fracText}`}p${exp >= 0 ? '+' : '-'}${String(Math.abs(exp)).padStart(2, '0')}`
  if (upper) out = out.toUpperCase()
  return out
}

/**
 * strconv.FormatFloat(x, fmt, prec, bits) for fmt in 'e', 'E', 'f', 'F'
 * (as 'f'), 'g', 'G', 'b', 'x', 'X'; prec -1 asks for the fewest digits
 * that read back as x.
 */
export function formatFloat(x: number, fmt: string, prec: number, bits: 32 | 64 = 64): string {
  if (Number.isNaN(x)) return 'NaN'
  if (x === Infinity) return '+Inf'
  if (x === -Infinity) return '-Inf'
  if (bits === 32) x = Math.fround(x)
  if (fmt === 'b') return fmtB(x, bits)
  if (fmt === 'x' || fmt === 'X') return fmtX(x, prec, fmt === 'X', bits)
  const neg = x < 0 || Object.is(x, -0)
  const shortest = prec < 0
  let dec: Decimal
  if (shortest) {
    dec = shortestDecimal(x, bits)
    if (fmt === 'e' || fmt === 'E') prec = Math.max(dec.d.length - 1, 0)
    else if (fmt === 'f' || fmt === 'F') prec = Math.max(dec.d.length - dec.dp, 0)
    else prec = dec.d.length
  } else {
    const exact = exactDecimal(x)
    if (fmt === 'e' || fmt === 'E') dec = roundDecimal(exact, prec + 1)
    else if (fmt === 'f' || fmt === 'F') dec = roundDecimal(exact, exact.dp + prec)
    else {
      if (prec === 0) prec = 1
      dec = roundDecimal(exact, prec)
    }
  }
  switch (fmt) {
    case 'e':
    case 'E':
      return fmtE(neg, dec, prec, fmt)
    case 'f':
    case 'F':
      return fmtF(neg, dec, prec)
    case 'g':
    case 'G': {
      let eprec = prec
      if (eprec > dec.d.length && dec.d.length >= dec.dp) eprec = dec.d.length
      if (shortest) eprec = 6
      const exp = dec.dp - 1
      if (exp < -4 || exp >= eprec) {
        if (prec > dec.d.length) prec = dec.d.length
        return fmtE(neg, dec, prec - 1, fmt === 'g' ? 'e' : 'E')
      }
      if (prec > dec.dp) prec = dec.d.length
      return fmtF(neg, dec, Math.max(prec - dec.dp, 0))
    }
  }
  throw new Error(`formatFloat: unknown format ${fmt}`)
}
