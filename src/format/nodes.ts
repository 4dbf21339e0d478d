/**
 * The parse tree of a template (Go's text/template/parse nodes) and how
 * each node prints itself: execution errors quote the node they stopped at
 * (`executing "" at <.Config.Foo>`), so String() must match Go's.
 */
import { quote } from './strconv.js'
import type { Complex } from './value.js'

/** What a node needs to say where it is: the tree's name, the top-level name and the whole text. */
export interface TreeInfo {
  name: string
  parseName: string
  text: string
}

interface Base {
  pos: number
  tree: TreeInfo
}

export interface TextNode extends Base { type: 'text'; text: string }
export interface CommentNode extends Base { type: 'comment'; text: string }
export interface ListNode extends Base { type: 'list'; nodes: Node[] }
export interface PipeNode extends Base { type: 'pipe'; line: number; isAssign: boolean; decl: VariableNode[]; cmds: CommandNode[] }
export interface ActionNode extends Base { type: 'action'; line: number; pipe: PipeNode }
export interface CommandNode extends Base { type: 'command'; args: Node[] }
export interface IdentifierNode extends Base { type: 'identifier'; ident: string }
export interface VariableNode extends Base { type: 'variable'; ident: string[] }
export interface DotNode extends Base { type: 'dot' }
export interface NilNode extends Base { type: 'nil' }
export interface FieldNode extends Base { type: 'field'; ident: string[] }
export interface ChainNode extends Base { type: 'chain'; node: Node; field: string[] }
export interface BoolNode extends Base { type: 'bool'; value: boolean }
export interface NumberNode extends Base {
  type: 'number'
  isInt: boolean
  isUint: boolean
  isFloat: boolean
  isComplex: boolean
  int64: bigint
  uint64: bigint
  float64: number
  complex128: Complex
  text: string
}
export interface StringNode extends Base { type: 'string'; quoted: string; text: string }
export interface EndNode extends Base { type: 'end' }
export interface ElseNode extends Base { type: 'else'; line: number }
export interface BranchNode extends Base { type: 'if' | 'range' | 'with'; line: number; pipe: PipeNode; list: ListNode; elseList: ListNode | undefined }
export interface BreakNode extends Base { type: 'break'; line: number }
export interface ContinueNode extends Base { type: 'continue'; line: number }
export interface TemplateNode extends Base { type: 'template'; line: number; name: string; pipe: PipeNode | undefined }

export type Node =
  | TextNode
  | CommentNode
  | ListNode
  | PipeNode
  | ActionNode
  | CommandNode
  | IdentifierNode
  | VariableNode
  | DotNode
  | NilNode
  | FieldNode
  | ChainNode
  | BoolNode
  | NumberNode
  | StringNode
  | EndNode
  | ElseNode
  | BranchNode
  | BreakNode
  | ContinueNode
  | TemplateNode

function pipeString(p: PipeNode): string {
  let s = ''
  if (p.decl.length > 0) {
    s += p.decl.map(nodeString).join(', ')
    s += p.isAssign ? ' = ' : ' := '
  }
  return s + p.cmds.map(nodeString).join(' | ')
}

/** Node.String() as Go writes it. */
export function nodeString(n: Node): string {
  switch (n.type) {
    case 'text':
      return n.text
    case 'comment':
      return `{{${n.text}}}`
    case 'list':
      return n.nodes.map(nodeString).join('')
    case 'pipe':
      return pipeString(n)
    case 'action':
      return `{{${pipeString(n.pipe)}}}`
    case 'command':
      return n.args.map((a) => (a.type === 'pipe' ? `(${pipeString(a)})` : nodeString(a))).join(' ')
    case 'identifier':
      return n.ident
    case 'variable':
      return n.ident.join('.')
    case 'dot':
      return '.'
    case 'nil':
      return 'nil'
    case 'field':
      return n.ident.map((id) => `.${id}`).join('')
    case 'chain':
      return (n.node.type === 'pipe' ? `(${pipeString(n.node)})` : nodeString(n.node)) + n.field.map((f) => `.${f}`).join('')
    case 'bool':
      return n.value ? 'true' : 'false'
    case 'number':
      return n.text
    case 'string':
      return n.quoted
    case 'end':
      return '{{end}}'
    case 'else':
      return '{{else}}'
    case 'if':
    case 'range':
    case 'with':
      return `{{${n.type} ${pipeString(n.pipe)}}}${nodeString(n.list)}${n.elseList === undefined ? '' : `{{else}}${nodeString(n.elseList)}`}{{end}}`
    case 'break':
      return '{{break}}'
    case 'continue':
      return '{{continue}}'
    case 'template':
      return `{{template ${quote(n.name)}${n.pipe === undefined ? '' : ` ${pipeString(n.pipe)}`}}}`
  }
}

/** Tree.ErrorContext: "NAME:LINE:COL" (COL in bytes within the line) and the node's text. */
export function errorContext(n: Node): [location: string, context: string] {
  const text = n.tree.text.slice(0, n.pos)
  const nl = text.lastIndexOf('\n')
  const col = nl === -1 ? Buffer.byteLength(text) : Buffer.byteLength(text.slice(nl + 1))
  let line = 1
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) line++
  return [`${n.tree.parseName}:${line}:${col}`, nodeString(n)]
}
