/**
 * The template lexer: text, delimiters, and the tokens inside actions, with
 * Go's trim markers (`{{- ` trims the space before, ` -}}` the space after),
 * comments (`{{/* ... *\/}}`), and Go's error texts ("unclosed action",
 * "bad character U+002B '+'", ...). Positions are string indices; lines are
 * counted as Go counts them, since errors quote them.
 */
import { isAlphaNumeric, isPrint, quote } from './strconv.js'

export type ItemType =
  | 'error'
  | 'bool'
  | 'char'
  | 'charConstant'
  | 'complex'
  | 'assign'
  | 'declare'
  | 'eof'
  | 'field'
  | 'identifier'
  | 'leftDelim'
  | 'leftParen'
  | 'number'
  | 'pipe'
  | 'rawString'
  | 'rightDelim'
  | 'rightParen'
  | 'space'
  | 'string'
  | 'text'
  | 'variable'
  // keywords
  | 'block'
  | 'break'
  | 'continue'
  | 'dot'
  | 'define'
  | 'else'
  | 'end'
  | 'if'
  | 'nil'
  | 'range'
  | 'template'
  | 'with'

const KEYWORDS: Record<string, ItemType> = {
  '.': 'dot',
  block: 'block',
  break: 'break',
  continue: 'continue',
  define: 'define',
  else: 'else',
  end: 'end',
  if: 'if',
  range: 'range',
  nil: 'nil',
  template: 'template',
  with: 'with',
}

const KEYWORD_TYPES = new Set(Object.values(KEYWORDS))

export function isKeyword(t: ItemType): boolean {
  return KEYWORD_TYPES.has(t)
}

export interface Item {
  typ: ItemType
  pos: number
  val: string
  line: number
}

/** fmt's %#U: "U+0041 'A'" (the quoted form only when printable). */
export function formatRuneU(r: number): string {
  const hex = r.toString(16).toUpperCase().padStart(4, '0')
  return isPrint(r) ? `U+${hex} '${String.fromCodePoint(r)}'` : `U+${hex}`
}

/** Go's %.10q: the first ten characters quoted, for long tokens. */
function quoteTruncated(s: string, quoteFn: (s: string) => string): string {
  const chars = [...s]
  return chars.length > 10 ? `${quoteFn(chars.slice(0, 10).join(''))}...` : quoteFn(s)
}

/** item.String() as the parser's errors print it. */
export function itemString(item: Item, quoteFn: (s: string) => string): string {
  if (item.typ === 'eof') return 'EOF'
  if (item.typ === 'error') return item.val
  if (isKeyword(item.typ)) return `<${item.val}>`
  return quoteTruncated(item.val, quoteFn)
}

const SPACE_CHARS = ' \t\r\n'
const EOF = -1
const LEFT_COMMENT = '/*'
const RIGHT_COMMENT = '*/'

function isSpace(r: number): boolean {
  return r === 0x20 || r === 0x09 || r === 0x0d || r === 0x0a
}

function hasLeftTrimMarker(s: string, at: number): boolean {
  return s[at] === '-' && at + 1 < s.length && isSpace(s.charCodeAt(at + 1))
}

function hasRightTrimMarker(s: string, at: number): boolean {
  return at + 1 < s.length && isSpace(s.charCodeAt(at)) && s[at + 1] === '-'
}

type StateFn = (l: Lexer) => [Item | undefined, StateFn | undefined]

export interface LexOptions {
  leftDelim?: string
  rightDelim?: string
  /** Whether `break` and `continue` are keywords (they are unless functions of those names exist). */
  breakOK: boolean
  continueOK: boolean
}

export class Lexer {
  readonly input: string
  readonly leftDelim: string
  readonly rightDelim: string
  readonly breakOK: boolean
  readonly continueOK: boolean
  pos = 0
  start = 0
  width = 0
  parenDepth = 0
  line = 1
  startLine = 1
  private state: StateFn | undefined = lexText

  constructor(input: string, options: LexOptions) {
    this.input = input
    this.leftDelim = options.leftDelim || '{{'
    this.rightDelim = options.rightDelim || '}}'
    this.breakOK = options.breakOK
    this.continueOK = options.continueOK
  }

  next(): number {
    if (this.pos >= this.input.length) {
      this.width = 0
      return EOF
    }
    const r = this.input.codePointAt(this.pos)!
    this.width = r > 0xffff ? 2 : 1
    this.pos += this.width
    if (r === 0x0a) this.line++
    return r
  }

  peek(): number {
    const r = this.next()
    this.backup()
    return r
  }

  backup(): void {
    this.pos -= this.width
    if (this.width === 1 && this.input[this.pos] === '\n') this.line--
  }

  emit(typ: ItemType): Item {
    const item: Item = { typ, pos: this.start, val: this.input.slice(this.start, this.pos), line: this.startLine }
    this.start = this.pos
    this.startLine = this.line
    return item
  }

  ignore(): void {
    this.line += countNewlines(this.input.slice(this.start, this.pos))
    this.start = this.pos
    this.startLine = this.line
  }

  accept(valid: string): boolean {
    const r = this.next()
    if (r !== EOF && valid.includes(String.fromCodePoint(r))) return true
    this.backup()
    return false
  }

  acceptRun(valid: string): void {
    for (;;) {
      const r = this.next()
      if (r === EOF || !valid.includes(String.fromCodePoint(r))) break
    }
    this.backup()
  }

  errorf(message: string): Item {
    return { typ: 'error', pos: this.start, val: message, line: this.startLine }
  }

  /** The next item; after an error or EOF, EOF forever. */
  nextItem(): Item {
    while (this.state !== undefined) {
      const [item, next] = this.state(this)
      this.state = next
      if (item !== undefined) {
        if (item.typ === 'error') this.state = undefined
        return item
      }
    }
    return { typ: 'eof', pos: this.pos, val: '', line: this.line }
  }

  atRightDelim(): [delim: boolean, trimSpaces: boolean] {
    if (hasRightTrimMarker(this.input, this.pos) && this.input.startsWith(this.rightDelim, this.pos + 2)) return [true, true]
    if (this.input.startsWith(this.rightDelim, this.pos)) return [true, false]
    return [false, false]
  }

  /** Whether the next character may follow an identifier ("$x+2" is not allowed; "}" only as part of "}}"). */
  atTerminator(): boolean {
    const r = this.peek()
    if (r === EOF || isSpace(r)) return true
    const ch = String.fromCodePoint(r)
    if ('.,|:)('.includes(ch)) return true
    return this.input.startsWith(this.rightDelim, this.pos)
  }
}

function countNewlines(s: string): number {
  let n = 0
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++
  return n
}

function trimRightLength(s: string): number {
  let i = s.length
  while (i > 0 && SPACE_CHARS.includes(s[i - 1]!)) i--
  return s.length - i
}

function trimLeftLength(s: string, from: number): number {
  let i = from
  while (i < s.length && SPACE_CHARS.includes(s[i]!)) i++
  return i - from
}

function lexText(l: Lexer): [Item | undefined, StateFn | undefined] {
  l.width = 0
  const x = l.input.indexOf(l.leftDelim, l.pos)
  if (x >= 0) {
    l.pos = x
    let trim = 0
    if (hasLeftTrimMarker(l.input, l.pos + l.leftDelim.length)) trim = trimRightLength(l.input.slice(l.start, l.pos))
    l.pos -= trim
    let item: Item | undefined
    if (l.pos > l.start) {
      l.line += countNewlines(l.input.slice(l.start, l.pos))
      item = l.emit('text')
    }
    l.pos += trim
    l.ignore()
    return [item, lexLeftDelim]
  }
  l.pos = l.input.length
  if (l.pos > l.start) {
    l.line += countNewlines(l.input.slice(l.start, l.pos))
    return [l.emit('text'), lexText]
  }
  return [l.emit('eof'), undefined]
}

function lexLeftDelim(l: Lexer): [Item | undefined, StateFn | undefined] {
  l.pos += l.leftDelim.length
  const trim = hasLeftTrimMarker(l.input, l.pos)
  const after = trim ? 2 : 0
  if (l.input.startsWith(LEFT_COMMENT, l.pos + after)) {
    l.pos += after
    l.ignore()
    return [undefined, lexComment]
  }
  const item = l.emit('leftDelim')
  l.pos += after
  l.ignore()
  l.parenDepth = 0
  return [item, lexInsideAction]
}

function lexComment(l: Lexer): [Item | undefined, StateFn | undefined] {
  l.pos += LEFT_COMMENT.length
  const i = l.input.indexOf(RIGHT_COMMENT, l.pos)
  if (i < 0) return [l.errorf('unclosed comment'), undefined]
  l.pos = i + RIGHT_COMMENT.length
  const [delim, trim] = l.atRightDelim()
  if (!delim) return [l.errorf('comment ends before closing delimiter'), undefined]
  if (trim) l.pos += 2
  l.pos += l.rightDelim.length
  if (trim) l.pos += trimLeftLength(l.input, l.pos)
  l.ignore()
  return [undefined, lexText]
}

function lexRightDelim(l: Lexer): [Item | undefined, StateFn | undefined] {
  const trim = hasRightTrimMarker(l.input, l.pos)
  if (trim) {
    l.pos += 2
    l.ignore()
  }
  l.pos += l.rightDelim.length
  const item = l.emit('rightDelim')
  if (trim) {
    l.pos += trimLeftLength(l.input, l.pos)
    l.ignore()
  }
  return [item, lexText]
}

function lexInsideAction(l: Lexer): [Item | undefined, StateFn | undefined] {
  const [delim] = l.atRightDelim()
  if (delim) {
    if (l.parenDepth === 0) return [undefined, lexRightDelim]
    return [l.errorf('unclosed left paren'), undefined]
  }
  const r = l.next()
  if (r === EOF) return [l.errorf('unclosed action'), undefined]
  if (isSpace(r)) {
    l.backup()
    return [undefined, lexSpace]
  }
  const ch = String.fromCodePoint(r)
  switch (ch) {
    case '=':
      return [l.emit('assign'), lexInsideAction]
    case ':':
      if (l.next() !== 0x3d) return [l.errorf('expected :='), undefined]
      return [l.emit('declare'), lexInsideAction]
    case '|':
      return [l.emit('pipe'), lexInsideAction]
    case '"':
      return [undefined, lexQuote]
    case '`':
      return [undefined, lexRawQuote]
    case '$':
      return [undefined, lexVariable]
    case "'":
      return [undefined, lexChar]
    case '(': {
      const item = l.emit('leftParen')
      l.parenDepth++
      return [item, lexInsideAction]
    }
    case ')': {
      const item = l.emit('rightParen')
      l.parenDepth--
      if (l.parenDepth < 0) return [l.errorf('unexpected right paren'), undefined]
      return [item, lexInsideAction]
    }
  }
  if (ch === '.') {
    // ".field" unless a digit follows (".5" is a number).
    if (l.pos < l.input.length) {
      const c = l.input[l.pos]!
      if (c < '0' || c > '9') return [undefined, lexField]
    }
    l.backup()
    return [undefined, lexNumber]
  }
  if (ch === '+' || ch === '-' || (ch >= '0' && ch <= '9')) {
    l.backup()
    return [undefined, lexNumber]
  }
  if (isAlphaNumeric(ch)) {
    l.backup()
    return [undefined, lexIdentifier]
  }
  if (r <= 0x7f && isPrint(r)) return [l.emit('char'), lexInsideAction]
  return [l.errorf(`unrecognized character in action: ${formatRuneU(r)}`), undefined]
}

function lexSpace(l: Lexer): [Item | undefined, StateFn | undefined] {
  let spaces = 0
  while (isSpace(l.peek())) {
    l.next()
    spaces++
  }
  // A trim-marked right delimiter starts with a space: leave it to lexRightDelim.
  if (hasRightTrimMarker(l.input, l.pos - 1) && l.input.startsWith(l.rightDelim, l.pos - 1 + 2)) {
    l.backup()
    if (spaces === 1) return [undefined, lexRightDelim]
  }
  return [l.emit('space'), lexInsideAction]
}

function lexIdentifier(l: Lexer): [Item | undefined, StateFn | undefined] {
  for (;;) {
    const r = l.next()
    if (r !== EOF && isAlphaNumeric(String.fromCodePoint(r))) continue
    l.backup()
    const word = l.input.slice(l.start, l.pos)
    if (!l.atTerminator()) return [l.errorf(`bad character ${formatRuneU(r)}`), undefined]
    const keyword = Object.hasOwn(KEYWORDS, word) ? KEYWORDS[word] : undefined
    if (keyword !== undefined && keyword !== 'dot') {
      if ((keyword === 'break' && !l.breakOK) || (keyword === 'continue' && !l.continueOK)) return [l.emit('identifier'), lexInsideAction]
      return [l.emit(keyword), lexInsideAction]
    }
    if (word[0] === '.') return [l.emit('field'), lexInsideAction]
    if (word === 'true' || word === 'false') return [l.emit('bool'), lexInsideAction]
    return [l.emit('identifier'), lexInsideAction]
  }
}

function lexField(l: Lexer): [Item | undefined, StateFn | undefined] {
  return lexFieldOrVariable(l, 'field')
}

function lexVariable(l: Lexer): [Item | undefined, StateFn | undefined] {
  if (l.atTerminator()) return [l.emit('variable'), lexInsideAction]
  return lexFieldOrVariable(l, 'variable')
}

function lexFieldOrVariable(l: Lexer, typ: 'field' | 'variable'): [Item | undefined, StateFn | undefined] {
  if (l.atTerminator()) return [l.emit(typ === 'variable' ? 'variable' : 'dot'), lexInsideAction]
  let r: number
  for (;;) {
    r = l.next()
    if (r === EOF || !isAlphaNumeric(String.fromCodePoint(r))) {
      l.backup()
      break
    }
  }
  if (!l.atTerminator()) return [l.errorf(`bad character ${formatRuneU(r)}`), undefined]
  return [l.emit(typ), lexInsideAction]
}

function lexChar(l: Lexer): [Item | undefined, StateFn | undefined] {
  for (;;) {
    let r = l.next()
    if (r === 0x5c) {
      r = l.next()
      if (r !== EOF && r !== 0x0a) continue
    }
    if (r === EOF || r === 0x0a) return [l.errorf('unterminated character constant'), undefined]
    if (r === 0x27) break
  }
  return [l.emit('charConstant'), lexInsideAction]
}

function scanNumber(l: Lexer): boolean {
  l.accept('+-')
  let digits = '0123456789_'
  if (l.accept('0')) {
    if (l.accept('xX')) digits = '0123456789abcdefABCDEF_'
    else if (l.accept('oO')) digits = '01234567_'
    else if (l.accept('bB')) digits = '01_'
  }
  l.acceptRun(digits)
  if (l.accept('.')) l.acceptRun(digits)
  if (digits.length === 11 && l.accept('eE')) {
    l.accept('+-')
    l.acceptRun('0123456789_')
  }
  if (digits.length === 23 && l.accept('pP')) {
    l.accept('+-')
    l.acceptRun('0123456789_')
  }
  l.accept('i')
  const r = l.peek()
  if (r !== EOF && isAlphaNumeric(String.fromCodePoint(r))) {
    l.next()
    return false
  }
  return true
}

function lexNumber(l: Lexer): [Item | undefined, StateFn | undefined] {
  if (!scanNumber(l)) return [l.errorf(`bad number syntax: ${quote(l.input.slice(l.start, l.pos))}`), undefined]
  const sign = l.peek()
  if (sign === 0x2b || sign === 0x2d) {
    if (!scanNumber(l) || l.input[l.pos - 1] !== 'i') return [l.errorf(`bad number syntax: ${quote(l.input.slice(l.start, l.pos))}`), undefined]
    return [l.emit('complex'), lexInsideAction]
  }
  return [l.emit('number'), lexInsideAction]
}

function lexQuote(l: Lexer): [Item | undefined, StateFn | undefined] {
  for (;;) {
    let r = l.next()
    if (r === 0x5c) {
      r = l.next()
      if (r !== EOF && r !== 0x0a) continue
    }
    if (r === EOF || r === 0x0a) return [l.errorf('unterminated quoted string'), undefined]
    if (r === 0x22) break
  }
  return [l.emit('string'), lexInsideAction]
}

function lexRawQuote(l: Lexer): [Item | undefined, StateFn | undefined] {
  for (;;) {
    const r = l.next()
    if (r === EOF) return [l.errorf('unterminated raw quoted string'), undefined]
    if (r === 0x60) break
  }
  return [l.emit('rawString'), lexInsideAction]
}
