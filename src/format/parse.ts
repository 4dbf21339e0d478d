/**
 * The template parser: Go's text/template/parse grammar, its variable
 * scoping (a variable is visible from its declaration to the `{{end}}` of
 * the control structure around it), its checks (functions must exist,
 * `{{break}}` only inside `{{range}}`) and its error texts, including the
 * line each error names. `{{define}}` and `{{block}}` add trees to the set.
 */
import { TemplateError } from './errors.js'
import { itemString, Lexer, type Item, type ItemType } from './lex.js'
import type { ActionNode, BoolNode, BranchNode, BreakNode, ChainNode, CommandNode, ContinueNode, DotNode, ElseNode, EndNode, FieldNode, IdentifierNode, ListNode, NilNode, Node, NumberNode, PipeNode, StringNode, TemplateNode, TextNode, TreeInfo, VariableNode } from './nodes.js'
import { nodeString } from './nodes.js'
import { parseFloat64, parseInt64, parseUint, quote, unquote, unquoteChar } from './strconv.js'

/** A parsed template: its name and root list. */
export interface ParsedTree extends TreeInfo {
  root: ListNode
}

export interface ParseOptions {
  /** Whether a function of this name exists (builtins and the FuncMap). */
  hasFunction(name: string): boolean
  leftDelim?: string
  rightDelim?: string
}

class ParseFailure extends Error {}

/** The maximum nesting of parenthesized pipelines, as Go's maxStackDepth. */
const MAX_STACK_DEPTH = 10000

/** IsEmptyTree: only space, comments and empty lists. */
export function isEmptyTree(n: Node | undefined): boolean {
  if (n === undefined) return true
  switch (n.type) {
    case 'comment':
      return true
    case 'list':
      return n.nodes.every(isEmptyTree)
    case 'text':
      return n.text.trim() === '' && !/[^\s]/.test(n.text)
    default:
      return false
  }
}

class TreeParser implements TreeInfo {
  name: string
  parseName: string
  text: string
  root: ListNode | undefined
  private lex!: Lexer
  private token: Item[] = []
  private peekCount = 0
  private vars: string[] = ['$']
  private treeSet!: Map<string, ParsedTree>
  private actionLine = 0
  private rangeDepth = 0
  private stackDepth = 0
  private options!: ParseOptions

  constructor(name: string, text: string, parseName: string) {
    this.name = name
    this.text = text
    this.parseName = parseName
  }

  startParse(options: ParseOptions, lex: Lexer, treeSet: Map<string, ParsedTree>): void {
    this.root = undefined
    this.lex = lex
    this.vars = ['$']
    this.options = options
    this.treeSet = treeSet
    this.stackDepth = 0
  }

  // --- token stream (three-token lookahead, as Go's) ---

  private next(): Item {
    if (this.peekCount > 0) this.peekCount--
    else this.token[0] = this.lex.nextItem()
    return this.token[this.peekCount]!
  }

  private backup(): void {
    this.peekCount++
  }

  private backup2(t1: Item): void {
    this.token[1] = t1
    this.peekCount = 2
  }

  private backup3(t2: Item, t1: Item): void {
    this.token[1] = t1
    this.token[2] = t2
    this.peekCount = 3
  }

  private peek(): Item {
    if (this.peekCount > 0) return this.token[this.peekCount - 1]!
    this.peekCount = 1
    this.token[0] = this.lex.nextItem()
    return this.token[0]
  }

  private nextNonSpace(): Item {
    let token: Item
    do token = this.next()
    while (token.typ === 'space')
    return token
  }

  private peekNonSpace(): Item {
    const token = this.nextNonSpace()
    this.backup()
    return token
  }

  // --- errors ---

  errorf(message: string): never {
    this.root = undefined
    throw new ParseFailure(`template: ${this.parseName}:${this.token[0]?.line ?? 1}: ${message}`)
  }

  private expect(expected: ItemType, context: string): Item {
    const token = this.nextNonSpace()
    if (token.typ !== expected) this.unexpected(token, context)
    return token
  }

  private expectOneOf(a: ItemType, b: ItemType, context: string): Item {
    const token = this.nextNonSpace()
    if (token.typ !== a && token.typ !== b) this.unexpected(token, context)
    return token
  }

  private unexpected(token: Item, context: string): never {
    if (token.typ === 'error') {
      let extra = ''
      if (this.actionLine !== 0 && this.actionLine !== token.line) {
        extra = ` in action started at ${this.parseName}:${this.actionLine}`
        if (token.val.endsWith(' action')) extra = extra.slice(' in action'.length)
      }
      this.errorf(`${itemString(token, quote)}${extra}`)
    }
    this.errorf(`unexpected ${itemString(token, quote)} in ${context}`)
  }

  // --- nodes ---

  private node<T extends Node>(fields: Omit<T, 'tree'>): T {
    return { ...fields, tree: this } as unknown as T
  }

  private newList(pos: number): ListNode {
    return this.node<ListNode>({ type: 'list', pos, nodes: [] })
  }

  private newVariable(pos: number, ident: string): VariableNode {
    return this.node<VariableNode>({ type: 'variable', pos, ident: ident.split('.') })
  }

  // --- grammar ---

  parse(): void {
    this.root = this.newList(this.peek().pos)
    while (this.peek().typ !== 'eof') {
      if (this.peek().typ === 'leftDelim') {
        const delim = this.next()
        if (this.nextNonSpace().typ === 'define') {
          const def = new TreeParser('definition', this.text, this.parseName)
          def.startParse(this.options, this.lex, this.treeSet)
          def.parseDefinition()
          continue
        }
        this.backup2(delim)
      }
      const n = this.textOrAction()
      if (n.type === 'end' || n.type === 'else') this.errorf(`unexpected ${nodeString(n)}`)
      this.root.nodes.push(n)
    }
  }

  /** Adds this tree to the set; a second non-empty definition of a name is an error. */
  add(): void {
    const existing = this.treeSet.get(this.name)
    if (existing === undefined || isEmptyTree(existing.root)) {
      this.treeSet.set(this.name, this as unknown as ParsedTree)
      return
    }
    if (!isEmptyTree(this.root)) this.errorf(`template: multiple definition of template ${quote(this.name)}`)
  }

  private parseDefinition(): void {
    const context = 'define clause'
    const name = this.expectOneOf('string', 'rawString', context)
    try {
      this.name = unquote(name.val)
    } catch (err) {
      this.errorf((err as Error).message)
    }
    this.expect('rightDelim', context)
    const [list, end] = this.itemList()
    this.root = list
    if (end.type !== 'end') this.errorf(`unexpected ${nodeString(end)} in ${context}`)
    this.add()
  }

  private itemList(): [ListNode, EndNode | ElseNode] {
    const list = this.newList(this.peekNonSpace().pos)
    while (this.peekNonSpace().typ !== 'eof') {
      const n = this.textOrAction()
      if (n.type === 'end' || n.type === 'else') return [list, n]
      list.nodes.push(n)
    }
    this.errorf('unexpected EOF')
  }

  private textOrAction(): Node {
    const token = this.nextNonSpace()
    switch (token.typ) {
      case 'text':
        return this.node<TextNode>({ type: 'text', pos: token.pos, text: token.val })
      case 'leftDelim':
        this.actionLine = token.line
        try {
          return this.action()
        } finally {
          this.actionLine = 0
        }
      default:
        this.unexpected(token, 'input')
    }
  }

  private action(): Node {
    const token = this.nextNonSpace()
    switch (token.typ) {
      case 'block':
        return this.blockControl()
      case 'break':
        return this.breakControl(token.pos, token.line, 'break')
      case 'continue':
        return this.breakControl(token.pos, token.line, 'continue')
      case 'else':
        return this.elseControl()
      case 'end':
        return this.node<EndNode>({ type: 'end', pos: this.expect('rightDelim', 'end').pos })
      case 'if':
        return this.branch('if')
      case 'range':
        return this.branch('range')
      case 'template':
        return this.templateControl()
      case 'with':
        return this.branch('with')
    }
    this.backup()
    const first = this.peek()
    return this.node<ActionNode>({ type: 'action', pos: first.pos, line: first.line, pipe: this.pipeline('command', 'rightDelim') })
  }

  private breakControl(pos: number, line: number, kind: 'break' | 'continue'): Node {
    const token = this.nextNonSpace()
    if (token.typ !== 'rightDelim') this.unexpected(token, `{{${kind}}}`)
    if (this.rangeDepth === 0) this.errorf(`{{${kind}}} outside {{range}}`)
    return this.node<BreakNode | ContinueNode>({ type: kind, pos, line })
  }

  private pipeline(context: string, end: ItemType): PipeNode {
    const first = this.peekNonSpace()
    const pipe = this.node<PipeNode>({ type: 'pipe', pos: first.pos, line: first.line, isAssign: false, decl: [], cmds: [] })
    decls: for (;;) {
      const v = this.peekNonSpace()
      if (v.typ !== 'variable') break
      this.next()
      // "$x foo" vs "$x := foo": remember the token after the variable to push it back.
      const tokenAfterVariable = this.peek()
      const next = this.peekNonSpace()
      if (next.typ === 'assign' || next.typ === 'declare') {
        pipe.isAssign = next.typ === 'assign'
        this.nextNonSpace()
        pipe.decl.push(this.newVariable(v.pos, v.val))
        this.vars.push(v.val)
      } else if (next.typ === 'char' && next.val === ',') {
        this.nextNonSpace()
        pipe.decl.push(this.newVariable(v.pos, v.val))
        this.vars.push(v.val)
        if (context === 'range' && pipe.decl.length < 2) {
          const t = this.peekNonSpace().typ
          if (t === 'variable' || t === 'rightDelim' || t === 'rightParen') continue decls
          this.errorf('range can only initialize variables')
        }
        this.errorf(`too many declarations in ${context}`)
      } else if (tokenAfterVariable.typ === 'space') {
        this.backup3(v, tokenAfterVariable)
      } else {
        this.backup2(v)
      }
      break
    }
    for (;;) {
      const token = this.nextNonSpace()
      if (token.typ === end) {
        this.checkPipeline(pipe, context)
        return pipe
      }
      switch (token.typ) {
        case 'bool':
        case 'charConstant':
        case 'complex':
        case 'dot':
        case 'field':
        case 'identifier':
        case 'number':
        case 'nil':
        case 'rawString':
        case 'string':
        case 'variable':
        case 'leftParen':
          this.backup()
          pipe.cmds.push(this.command())
          break
        default:
          this.unexpected(token, context)
      }
    }
  }

  private checkPipeline(pipe: PipeNode, context: string): void {
    if (pipe.cmds.length === 0) this.errorf(`missing value for ${context}`)
    pipe.cmds.slice(1).forEach((c, i) => {
      const t = c.args[0]!.type
      if (t === 'bool' || t === 'dot' || t === 'nil' || t === 'number' || t === 'string') this.errorf(`non executable command in pipeline stage ${i + 2}`)
    })
  }

  private parseControl(context: 'if' | 'range' | 'with'): Omit<BranchNode, 'type' | 'tree'> {
    const mark = this.vars.length
    try {
      const pipe = this.pipeline(context, 'rightDelim')
      if (context === 'range') this.rangeDepth++
      let [list, next] = this.itemList()
      if (context === 'range') this.rangeDepth--
      let elseList: ListNode | undefined
      if (next.type === 'else') {
        // "{{else if x}}" and "{{else with x}}" are "{{else}}{{if x}}...{{end}}{{end}}" with the last end implied.
        if (context === 'if' && this.peek().typ === 'if') {
          this.next()
          elseList = this.newList(next.pos)
          elseList.nodes.push(this.branch('if'))
        } else if (context === 'with' && this.peek().typ === 'with') {
          this.next()
          elseList = this.newList(next.pos)
          elseList.nodes.push(this.branch('with'))
        } else {
          ;[elseList, next] = this.itemList()
          if (next.type !== 'end') this.errorf(`expected end; found ${nodeString(next)}`)
        }
      }
      list = list as ListNode
      return { pos: pipe.pos, line: pipe.line, pipe, list, elseList }
    } finally {
      this.vars.length = mark
    }
  }

  private branch(kind: 'if' | 'range' | 'with'): BranchNode {
    return this.node<BranchNode>({ type: kind, ...this.parseControl(kind) })
  }

  private elseControl(): ElseNode {
    const peek = this.peekNonSpace()
    if (peek.typ === 'if' || peek.typ === 'with') return this.node<ElseNode>({ type: 'else', pos: peek.pos, line: peek.line })
    const token = this.expect('rightDelim', 'else')
    return this.node<ElseNode>({ type: 'else', pos: token.pos, line: token.line })
  }

  private blockControl(): TemplateNode {
    const context = 'block clause'
    const token = this.nextNonSpace()
    const name = this.parseTemplateName(token, context)
    const pipe = this.pipeline(context, 'rightDelim')
    const block = new TreeParser(name, this.text, this.parseName)
    block.startParse(this.options, this.lex, this.treeSet)
    const [list, end] = block.itemList()
    block.root = list
    if (end.type !== 'end') this.errorf(`unexpected ${nodeString(end)} in ${context}`)
    block.add()
    return this.node<TemplateNode>({ type: 'template', pos: token.pos, line: token.line, name, pipe })
  }

  private templateControl(): TemplateNode {
    const context = 'template clause'
    const token = this.nextNonSpace()
    const name = this.parseTemplateName(token, context)
    let pipe: PipeNode | undefined
    if (this.nextNonSpace().typ !== 'rightDelim') {
      this.backup()
      pipe = this.pipeline(context, 'rightDelim')
    }
    return this.node<TemplateNode>({ type: 'template', pos: token.pos, line: token.line, name, pipe })
  }

  private parseTemplateName(token: Item, context: string): string {
    if (token.typ === 'string' || token.typ === 'rawString') {
      try {
        return unquote(token.val)
      } catch (err) {
        this.errorf((err as Error).message)
      }
    }
    this.unexpected(token, context)
  }

  private command(): CommandNode {
    const cmd = this.node<CommandNode>({ type: 'command', pos: this.peekNonSpace().pos, args: [] })
    for (;;) {
      this.peekNonSpace()
      const operand = this.operand()
      if (operand !== undefined) cmd.args.push(operand)
      const token = this.next()
      if (token.typ === 'space') continue
      if (token.typ === 'rightDelim' || token.typ === 'rightParen') this.backup()
      else if (token.typ !== 'pipe') this.unexpected(token, 'operand')
      break
    }
    if (cmd.args.length === 0) this.errorf('empty command')
    return cmd
  }

  private operand(): Node | undefined {
    let node = this.term()
    if (node === undefined) return undefined
    if (this.peek().typ === 'field') {
      const chain = this.node<ChainNode>({ type: 'chain', pos: this.peek().pos, node, field: [] })
      while (this.peek().typ === 'field') chain.field.push(this.next().val.slice(1))
      switch (node.type) {
        case 'field':
          node = this.node<FieldNode>({ type: 'field', pos: chain.pos, ident: nodeString(chain).slice(1).split('.') })
          break
        case 'variable':
          node = this.newVariable(chain.pos, nodeString(chain))
          break
        case 'bool':
        case 'string':
        case 'number':
        case 'nil':
        case 'dot':
          return this.errorf(`unexpected . after term ${quote(nodeString(node))}`)
        default:
          node = chain
      }
    }
    return node
  }

  private term(): Node | undefined {
    const token = this.nextNonSpace()
    switch (token.typ) {
      case 'identifier':
        if (!this.options.hasFunction(token.val)) this.errorf(`function ${quote(token.val)} not defined`)
        return this.node<IdentifierNode>({ type: 'identifier', pos: token.pos, ident: token.val })
      case 'dot':
        return this.node<DotNode>({ type: 'dot', pos: token.pos })
      case 'nil':
        return this.node<NilNode>({ type: 'nil', pos: token.pos })
      case 'variable':
        return this.useVar(token.pos, token.val)
      case 'field':
        return this.node<FieldNode>({ type: 'field', pos: token.pos, ident: token.val.slice(1).split('.') })
      case 'bool':
        return this.node<BoolNode>({ type: 'bool', pos: token.pos, value: token.val === 'true' })
      case 'charConstant':
      case 'complex':
      case 'number':
        return this.number(token)
      case 'leftParen': {
        if (this.stackDepth >= MAX_STACK_DEPTH) this.errorf('max expression depth exceeded')
        this.stackDepth++
        try {
          return this.pipeline('parenthesized pipeline', 'rightParen')
        } finally {
          this.stackDepth--
        }
      }
      case 'string':
      case 'rawString': {
        let text = ''
        try {
          text = unquote(token.val)
        } catch (err) {
          this.errorf((err as Error).message)
        }
        return this.node<StringNode>({ type: 'string', pos: token.pos, quoted: token.val, text })
      }
    }
    this.backup()
    return undefined
  }

  private number(token: Item): NumberNode {
    try {
      return newNumber(this, token.pos, token.val, token.typ)
    } catch (err) {
      this.errorf((err as Error).message)
    }
  }

  private useVar(pos: number, name: string): VariableNode {
    const v = this.newVariable(pos, name)
    if (this.vars.includes(v.ident[0]!)) return v
    this.errorf(`undefined variable ${quote(v.ident[0]!)}`)
  }
}

/** NumberNode: the literal under every type that can hold it, as Go's ideal constants. */
function newNumber(tree: TreeInfo, pos: number, text: string, typ: ItemType): NumberNode {
  const n: NumberNode = { type: 'number', tree, pos, text, isInt: false, isUint: false, isFloat: false, isComplex: false, int64: 0n, uint64: 0n, float64: 0, complex128: { re: 0, im: 0 } }
  if (typ === 'charConstant') {
    const [r, tail] = unquoteChar(text.slice(1), text[0]!)
    if (tail !== "'") throw new Error(`malformed character constant: ${text}`)
    n.int64 = BigInt(r)
    n.uint64 = BigInt(r)
    n.float64 = r
    n.isInt = n.isUint = n.isFloat = true
    return n
  }
  if (typ === 'complex') {
    const m = /^([+-]?(?:0[xX][0-9a-fA-F_.]+[pP][+-]?[\d_]+|[\d_.]+(?:[eE][+-]?[\d_]+)?))([+-].+)i$/.exec(text)
    if (m === null) throw new Error(`strconv.ParseFloat: parsing ${quote(text)}: invalid syntax`)
    n.complex128 = { re: parseFloat64(m[1]!), im: parseFloat64(m[2]!) }
    n.isComplex = true
    simplifyComplex(n)
    return n
  }
  if (text.endsWith('i')) {
    try {
      n.complex128 = { re: 0, im: parseFloat64(text.slice(0, -1)) }
      n.isComplex = true
      simplifyComplex(n)
      return n
    } catch {
      // not an imaginary literal after all: fall through to the integer and float parsers
    }
  }
  let u = 0n
  try {
    u = parseUint(text)
    n.isUint = true
    n.uint64 = u
  } catch {
    // not an unsigned integer
  }
  try {
    const i = parseInt64(text)
    n.isInt = true
    n.int64 = i
    if (i === 0n) {
      n.isUint = true
      n.uint64 = u
    }
  } catch {
    // not a signed integer
  }
  if (n.isInt) {
    n.isFloat = true
    n.float64 = Number(n.int64)
  } else if (n.isUint) {
    n.isFloat = true
    n.float64 = Number(n.uint64)
  } else {
    let f: number | undefined
    try {
      f = parseFloat64(text)
    } catch {
      // not a float either: reported below
    }
    if (f !== undefined) {
      if (!/[.eEpP]/.test(text)) throw new Error(`integer overflow: ${quote(text)}`)
      n.isFloat = true
      n.float64 = f
      if (Number.isInteger(f) && f >= -(2 ** 63) && f < 2 ** 63) {
        n.isInt = true
        n.int64 = BigInt(f)
      }
      if (Number.isInteger(f) && f >= 0 && f < 2 ** 64) {
        n.isUint = true
        n.uint64 = BigInt(f)
      }
    }
  }
  if (!n.isInt && !n.isUint && !n.isFloat) throw new Error(`illegal number syntax: ${quote(text)}`)
  return n
}

function simplifyComplex(n: NumberNode): void {
  n.isFloat = n.complex128.im === 0
  if (n.isFloat) {
    const f = n.complex128.re
    n.float64 = f
    n.isInt = Number.isInteger(f) && f >= -(2 ** 63) && f < 2 ** 63
    if (n.isInt) n.int64 = BigInt(f)
    n.isUint = Number.isInteger(f) && f >= 0 && f < 2 ** 64
    if (n.isUint) n.uint64 = BigInt(f)
  }
}

/**
 * Parses `text` as the template `name` (plus the templates it defines).
 * Throws TemplateError('parse') with Go's message.
 */
export function parseTemplateSet(name: string, text: string, options: ParseOptions): Map<string, ParsedTree> {
  const treeSet = new Map<string, ParsedTree>()
  const top = new TreeParser(name, text, name)
  const lex = new Lexer(text, { leftDelim: options.leftDelim, rightDelim: options.rightDelim, breakOK: !options.hasFunction('break'), continueOK: !options.hasFunction('continue') })
  top.startParse(options, lex, treeSet)
  try {
    top.parse()
    top.add()
  } catch (err) {
    if (err instanceof ParseFailure) throw new TemplateError('parse', err.message)
    throw err
  }
  return treeSet
}
