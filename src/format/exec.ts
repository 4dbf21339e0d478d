/**
 * The template executor: Go's text/template exec.go semantics over the
 * value model of value.ts. Dot, variables and their scopes, if/with/range
 * (slices, maps in key order, integers, break/continue, else), template
 * calls, pipelines with the previous command's value as the last argument,
 * field chains through structs, maps, pointers and interfaces, methods,
 * function calls with Go's argument checks, and Go's error texts with the
 * node and position they occurred at.
 */
import { BUILTINS, callBuiltin, isTrue, truth } from './builtins.js'
import { TemplateError } from './errors.js'
import { sprint, sprintValue } from './fmt.js'
import { ANY, assignableTo, BOOL, canBeNil, COMPLEX128, FLOAT64, INT, methodOf, STRING, typeString } from './go-types.js'
import type { BranchNode, ChainNode, CommandNode, FieldNode, IdentifierNode, ListNode, Node, NumberNode, PipeNode, TemplateNode, VariableNode } from './nodes.js'
import { errorContext, nodeString } from './nodes.js'
import type { ParsedTree } from './parse.js'
import { quote } from './strconv.js'
import type { FuncMap, GoMethod, GoType, MissingKey, SliceType, TemplateFunc } from './types.js'
import {
  dynamicValue,
  fieldByName,
  fieldValue,
  floatOf,
  indirect,
  indirectInterface,
  intOf,
  isNil,
  isValid,
  mapIndex,
  NO_VALUE,
  pointee,
  sliceIndex,
  sliceItems,
  sortedEntries,
  stringOf,
  valueOf,
  complexOf,
  boolOf,
  type Value,
} from './value.js'

/** Go's maxExecDepth: how deep {{template}} calls may nest. */
const MAX_EXEC_DEPTH = 100000

/** The "no final argument" marker (Go's missingVal). */
const MISSING: Value = Object.freeze({ type: undefined, payload: Symbol('missing') })

class ExecFailure extends Error {}

/** Thrown instead of a RangeError when nested template calls exhaust the stack. */
interface TooDeep {
  tooDeep: true
  node: TemplateNode
  name: string
}

function isTooDeep(e: unknown): e is TooDeep {
  return typeof e === 'object' && e !== null && (e as TooDeep).tooDeep === true
}
const BREAK = Symbol('break')
const CONTINUE = Symbol('continue')

/** A callable: a function from a FuncMap or builtins, or a method bound to its receiver. */
interface Callable {
  sig: TemplateFunc | GoMethod
  receiver?: Value
}

export interface ExecContext {
  trees: Map<string, ParsedTree>
  funcs: FuncMap
  missingKey: MissingKey
}

interface Variable {
  name: string
  value: Value
}

/** Converts an argument to what a function's implementation receives (see TemplateFunc.call). */
function argForCall(v: Value, param: GoType): unknown {
  switch (param.kind) {
    case 'reflectValue':
      return v
    case 'interface':
      return indirectInterface(v)
    case 'int':
    case 'uint':
      return intOf(v)
    case 'float':
      return floatOf(v)
    case 'bool':
      return boolOf(v)
    case 'string':
      return stringOf(v)
    case 'complex':
      return complexOf(v)
    case 'slice':
      return Array.isArray(v.payload) ? v.payload : null
    default:
      return v.payload ?? null
  }
}

class State {
  out: string[] = []
  node: Node | undefined
  vars: Variable[]
  depth: number
  tmplName: string

  constructor(
    readonly ctx: ExecContext,
    tmplName: string,
    vars: Variable[],
    depth: number,
    out: string[],
  ) {
    this.tmplName = tmplName
    this.vars = vars
    this.depth = depth
    this.out = out
  }

  at(node: Node): void {
    this.node = node
  }

  errorf(message: string): never {
    if (this.node === undefined) throw new ExecFailure(`template: ${this.tmplName}: ${message}`)
    const [location, context] = errorContext(this.node)
    throw new ExecFailure(`template: ${location}: executing ${quote(this.tmplName)} at <${context}>: ${message}`)
  }

  // --- variables ---

  push(name: string, value: Value): void {
    this.vars.push({ name, value })
  }

  mark(): number {
    return this.vars.length
  }

  pop(mark: number): void {
    this.vars.length = mark
  }

  setVar(name: string, value: Value): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      if (this.vars[i]!.name === name) {
        this.vars[i]!.value = value
        return
      }
    }
    this.errorf(`undefined variable: ${name}`)
  }

  setTopVar(n: number, value: Value): void {
    this.vars[this.vars.length - n]!.value = value
  }

  varValue(name: string): Value {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i]!.name === name) return this.vars[i]!.value
    this.errorf(`undefined variable: ${name}`)
  }

  // --- walking ---

  walk(dot: Value, node: Node): void {
    this.at(node)
    switch (node.type) {
      case 'action': {
        const val = this.evalPipeline(dot, node.pipe)
        if (node.pipe.decl.length === 0) this.printValue(node, val)
        return
      }
      case 'break':
        throw BREAK
      case 'comment':
        return
      case 'continue':
        throw CONTINUE
      case 'if':
      case 'with':
        return this.walkIfOrWith(node, dot)
      case 'list':
        for (const n of node.nodes) this.walk(dot, n)
        return
      case 'range':
        return this.walkRange(dot, node)
      case 'template':
        return this.walkTemplate(dot, node)
      case 'text':
        this.out.push(node.text)
        return
      default:
        this.errorf(`unknown node: ${nodeString(node)}`)
    }
  }

  private walkIfOrWith(node: BranchNode, dot: Value): void {
    const mark = this.mark()
    try {
      const val = this.evalPipeline(dot, node.pipe)
      const [t, ok] = isTrue(indirectInterface(val))
      if (!ok) this.errorf(`if/with can't use ${sprintValue(val)}`)
      if (t) this.walk(node.type === 'with' ? val : dot, node.list)
      else if (node.elseList !== undefined) this.walk(dot, node.elseList)
    } finally {
      this.pop(mark)
    }
  }

  private walkRange(dot: Value, r: BranchNode): void {
    this.at(r)
    const outer = this.mark()
    try {
      const [val] = indirect(this.evalPipeline(dot, r.pipe))
      const mark = this.mark()
      const decl = r.pipe.decl
      const oneIteration = (index: Value, elem: Value): void => {
        if (decl.length > 0) {
          if (r.pipe.isAssign) this.setVar(decl[0]!.ident[0]!, decl.length > 1 ? index : elem)
          else this.setTopVar(1, elem)
        }
        if (decl.length > 1) {
          if (r.pipe.isAssign) this.setVar(decl[1]!.ident[0]!, elem)
          else this.setTopVar(2, index)
        }
        try {
          this.walk(elem, r.list)
        } catch (e) {
          if (e !== CONTINUE) throw e
        } finally {
          this.pop(mark)
        }
      }
      let ran = false
      switch (val.type?.kind) {
        case 'int':
        case 'uint': {
          if (decl.length > 1) this.errorf(`can't use ${sprintValue(val)} to iterate over more than one variable`)
          const n = intOf(val)
          for (let i = 0n; i < n; i++) {
            ran = true
            oneIteration(NO_VALUE, valueOf(val.type, i))
          }
          break
        }
        case 'slice': {
          const n = sliceItems(val).length
          for (let i = 0; i < n; i++) {
            ran = true
            oneIteration(valueOf(INT, BigInt(i)), sliceIndex(val, i))
          }
          break
        }
        case 'map':
          for (const [k, v] of sortedEntries(val)) {
            ran = true
            oneIteration(k, v)
          }
          break
        case undefined:
          break
        default:
          this.errorf(`range can't iterate over ${sprintValue(val)}`)
      }
      if (!ran && r.elseList !== undefined) this.walk(dot, r.elseList)
    } catch (e) {
      if (e !== BREAK) throw e
    } finally {
      this.pop(outer)
    }
  }

  private walkTemplate(dot: Value, t: TemplateNode): void {
    this.at(t)
    const tmpl = this.ctx.trees.get(t.name)
    if (tmpl === undefined) this.errorf(`template ${quote(t.name)} not defined`)
    if (this.depth === MAX_EXEC_DEPTH) this.errorf(`exceeded maximum template depth (${MAX_EXEC_DEPTH})`)
    const newDot = this.evalPipeline(dot, t.pipe)
    const inner = new State(this.ctx, t.name, [{ name: '$', value: newDot }], this.depth + 1, this.out)
    try {
      inner.walk(newDot, tmpl.root)
    } catch (e) {
      // JavaScript's stack ends long before Go's 100000 nested calls: report it as Go reports the
      // limit, from the outermost frame (near the stack's end, even formatting the message overflows).
      if (e instanceof RangeError) throw { tooDeep: true, node: t, name: this.tmplName } satisfies TooDeep
      throw e
    }
  }

  // --- evaluation ---

  evalPipeline(dot: Value, pipe: PipeNode | undefined): Value {
    if (pipe === undefined) return NO_VALUE
    this.at(pipe)
    let value = MISSING
    for (const cmd of pipe.cmds) {
      value = this.evalCommand(dot, cmd, value)
      // An interface{} result is replaced by what it holds.
      if (isValid(value) && value.type.kind === 'interface') value = indirectInterface(value)
    }
    for (const v of pipe.decl) {
      if (pipe.isAssign) this.setVar(v.ident[0]!, value)
      else this.push(v.ident[0]!, value)
    }
    return value
  }

  private notAFunction(args: Node[] | undefined, final: Value): void {
    if ((args?.length ?? 0) > 1 || final !== MISSING) this.errorf(`can't give argument to non-function ${nodeString(args![0]!)}`)
  }

  private evalCommand(dot: Value, cmd: CommandNode, final: Value): Value {
    const first = cmd.args[0]!
    switch (first.type) {
      case 'field':
        return this.evalFieldNode(dot, first, cmd.args, final)
      case 'chain':
        return this.evalChainNode(dot, first, cmd.args, final)
      case 'identifier':
        return this.evalFunction(dot, first, cmd, cmd.args, final)
      case 'pipe':
        this.notAFunction(cmd.args, final)
        return this.evalPipeline(dot, first)
      case 'variable':
        return this.evalVariableNode(dot, first, cmd.args, final)
    }
    this.at(first)
    this.notAFunction(cmd.args, final)
    switch (first.type) {
      case 'bool':
        return valueOf(BOOL, first.value)
      case 'dot':
        return dot
      case 'nil':
        this.errorf('nil is not a command')
      // falls through (unreachable)
      case 'number':
        return this.idealConstant(first)
      case 'string':
        return valueOf(STRING, first.text)
    }
    this.errorf(`can't evaluate command ${quote(nodeString(first))}`)
  }

  private idealConstant(c: NumberNode): Value {
    this.at(c)
    if (c.isComplex) return valueOf(COMPLEX128, c.complex128)
    const isHexInt = c.text.length > 2 && c.text[0] === '0' && (c.text[1] === 'x' || c.text[1] === 'X') && !/[pP]/.test(c.text)
    const isRuneInt = c.text[0] === "'"
    if (c.isFloat && !isHexInt && !isRuneInt && /[.eEpP]/.test(c.text)) return valueOf(FLOAT64, c.float64)
    if (c.isInt) return valueOf(INT, c.int64)
    if (c.isUint) this.errorf(`${c.text} overflows int`)
    return NO_VALUE
  }

  private evalFieldNode(dot: Value, field: FieldNode, args: Node[] | undefined, final: Value): Value {
    this.at(field)
    return this.evalFieldChain(dot, dot, field, field.ident, args, final)
  }

  private evalChainNode(dot: Value, chain: ChainNode, args: Node[] | undefined, final: Value): Value {
    this.at(chain)
    if (chain.field.length === 0) this.errorf('internal error: no fields in evalChainNode')
    if (chain.node.type === 'nil') this.errorf(`indirection through explicit nil in ${nodeString(chain)}`)
    const pipe = this.evalArg(dot, undefined, chain.node)
    return this.evalFieldChain(dot, pipe, chain, chain.field, args, final)
  }

  private evalVariableNode(dot: Value, v: VariableNode, args: Node[] | undefined, final: Value): Value {
    this.at(v)
    const value = this.varValue(v.ident[0]!)
    if (v.ident.length === 1) {
      this.notAFunction(args, final)
      return value
    }
    return this.evalFieldChain(dot, value, v, v.ident.slice(1), args, final)
  }

  private evalFieldChain(dot: Value, receiver: Value, node: Node, ident: string[], args: Node[] | undefined, final: Value): Value {
    const n = ident.length
    for (let i = 0; i < n - 1; i++) receiver = this.evalField(dot, ident[i]!, node, undefined, MISSING, receiver)
    return this.evalField(dot, ident[n - 1]!, node, args, final, receiver)
  }

  private evalFunction(dot: Value, node: IdentifierNode, cmd: Node, args: Node[] | undefined, final: Value): Value {
    this.at(node)
    const name = node.ident
    const user = Object.hasOwn(this.ctx.funcs, name) ? this.ctx.funcs[name] : undefined
    const builtin = user === undefined && Object.hasOwn(BUILTINS, name) ? BUILTINS[name] : undefined
    const f = user ?? builtin
    if (f === undefined) this.errorf(`${quote(name)} is not a defined function`)
    return this.evalCall(dot, { sig: f }, builtin !== undefined, cmd, name, args, final)
  }

  private evalField(dot: Value, fieldName: string, node: Node, args: Node[] | undefined, final: Value, receiver: Value): Value {
    if (!isValid(receiver)) {
      if (this.ctx.missingKey === 'error') this.errorf(`nil data; no entry for key ${quote(fieldName)}`)
      return NO_VALUE
    }
    const typ = receiver.type
    const [r, nil] = indirect(receiver)
    const rt = r.type!
    if (rt.kind === 'interface' && nil) this.errorf(`nil pointer evaluating ${typeString(typ)}.${fieldName}`)
    const method = methodOf(rt, fieldName)
    if (method !== undefined) return this.evalCall(dot, { sig: method, receiver: rt.kind === 'pointer' ? pointee(r) : r }, false, node, fieldName, args, final)
    const hasArgs = (args?.length ?? 0) > 1 || final !== MISSING
    switch (rt.kind) {
      case 'struct': {
        const found = fieldByName(rt, r.payload, fieldName)
        if (found !== undefined) {
          if (!/^\p{Lu}/u.test(fieldName)) this.errorf(`${fieldName} is an unexported field of struct type ${typeString(typ)}`)
          if (hasArgs) this.errorf(`${fieldName} has arguments but cannot be invoked as function`)
          return fieldValue(found)
        }
        break
      }
      case 'map': {
        if (assignableTo(STRING, rt.key)) {
          if (hasArgs) this.errorf(`${fieldName} is not a method but has arguments`)
          const result = mapIndex(r, fieldName)
          if (isValid(result)) return result
          if (this.ctx.missingKey === 'zero') return valueOf(rt.elem, undefined)
          if (this.ctx.missingKey === 'error') this.errorf(`map has no entry for key ${quote(fieldName)}`)
          return result
        }
        break
      }
      case 'pointer': {
        const etyp = rt.elem
        if (etyp.kind === 'struct' && fieldByName(etyp, undefined, fieldName) === undefined) break
        if (nil) this.errorf(`nil pointer evaluating ${typeString(typ)}.${fieldName}`)
        break
      }
    }
    this.errorf(`can't evaluate field ${fieldName} in type ${typeString(typ)}`)
  }

  private evalCall(dot: Value, fn: Callable, isBuiltin: boolean, node: Node, name: string, argNodes: Node[] | undefined, final: Value): Value {
    const args = argNodes === undefined ? [] : argNodes.slice(1)
    const { params, variadic = false, result } = fn.sig
    const numIn = args.length + (final !== MISSING ? 1 : 0)
    let numFixed = args.length
    if (variadic) {
      numFixed = params.length - 1
      if (numIn < numFixed) this.errorf(`wrong number of args for ${name}: want at least ${params.length - 1} got ${args.length}`)
    } else if (numIn !== params.length) this.errorf(`wrong number of args for ${name}: want ${params.length} got ${numIn}`)

    if (isBuiltin && (name === 'and' || name === 'or')) {
      let v = NO_VALUE
      for (const arg of args) {
        v = this.evalArg(dot, params[0], arg)
        if (truth(v) === (name === 'or')) return v
      }
      if (final !== MISSING) v = this.validateType(final, params[0])
      return v
    }

    const argv: Value[] = []
    let i = 0
    for (; i < numFixed && i < args.length; i++) argv.push(this.evalArg(dot, params[i], args[i]!))
    if (variadic) {
      const elem = (params[params.length - 1] as SliceType).elem
      for (; i < args.length; i++) argv.push(this.evalArg(dot, elem, args[i]!))
    }
    if (final !== MISSING) {
      let t = params[params.length - 1]!
      if (variadic) t = numIn - 1 < numFixed ? params[numIn - 1]! : (t as SliceType).elem
      argv.push(this.validateType(final, t))
    }
    const paramFor = (k: number): GoType => (variadic && k >= params.length - 1 ? (params[params.length - 1] as SliceType).elem : params[k]!)

    let out: unknown
    try {
      if (isBuiltin && name === 'call') {
        const calleeName = args.length === 0 ? `<${typeString(final.type ?? ANY)} Value>` : nodeString(args[0]!)
        callBuiltin(calleeName, argv[0]!)
      }
      const jsArgs = argv.map((a, k) => argForCall(a, paramFor(k)))
      out = fn.receiver === undefined ? (fn.sig as TemplateFunc).call(...jsArgs) : (fn.sig as GoMethod).call(fn.receiver.payload, ...jsArgs)
    } catch (err) {
      if (err instanceof ExecFailure) throw err
      this.at(node)
      this.errorf(`error calling ${name}: ${(err as Error).message}`)
    }
    if (result.kind === 'reflectValue') return out as Value
    if (result.kind === 'interface') return valueOf(result, out ?? null)
    return valueOf(result, out)
  }

  private validateType(value: Value, typ: GoType | undefined): Value {
    if (!isValid(value)) {
      if (typ === undefined) return NO_VALUE
      if (typ.kind === 'reflectValue') return NO_VALUE
      if (canBeNil(typ)) return valueOf(typ, null)
      this.errorf(`invalid value; expected ${typeString(typ)}`)
    }
    if (typ === undefined || typ.kind === 'reflectValue') return value
    if (!assignableTo(value.type, typ)) {
      if (value.type.kind === 'interface' && !isNil(value)) {
        value = indirectInterface(value)
        if (isValid(value) && assignableTo(value.type, typ)) return value
      }
      if (isValid(value) && value.type.kind === 'pointer' && assignableTo(value.type.elem, typ)) {
        value = pointee(value)
        if (!isValid(value)) this.errorf(`dereference of nil pointer of type ${typeString(typ)}`)
      } else this.errorf(`wrong type for value; expected ${typeString(typ)}; got ${typeString(value.type!)}`)
    }
    return value
  }

  private evalArg(dot: Value, typ: GoType | undefined, n: Node): Value {
    this.at(n)
    switch (n.type) {
      case 'dot':
        return this.validateType(dot, typ)
      case 'nil':
        if (typ !== undefined && canBeNil(typ)) return typ.kind === 'reflectValue' ? NO_VALUE : valueOf(typ, null)
        this.errorf(`cannot assign nil to ${typ === undefined ? '<nil>' : typeString(typ)}`)
      // falls through (unreachable)
      case 'field':
        return this.validateType(this.evalFieldNode(dot, n, [n], MISSING), typ)
      case 'variable':
        return this.validateType(this.evalVariableNode(dot, n, undefined, MISSING), typ)
      case 'pipe':
        return this.validateType(this.evalPipeline(dot, n), typ)
      case 'identifier':
        return this.validateType(this.evalFunction(dot, n, n, undefined, MISSING), typ)
      case 'chain':
        return this.validateType(this.evalChainNode(dot, n, undefined, MISSING), typ)
    }
    switch (typ?.kind) {
      case 'bool':
        if (n.type === 'bool') return valueOf(typ, n.value)
        this.errorf(`expected bool; found ${nodeString(n)}`)
      // falls through (unreachable)
      case 'complex':
        if (n.type === 'number' && n.isComplex) return valueOf(typ, n.complex128)
        this.errorf(`expected complex; found ${nodeString(n)}`)
      // falls through (unreachable)
      case 'float':
        if (n.type === 'number' && n.isFloat) return valueOf(typ, n.float64)
        this.errorf(`expected float; found ${nodeString(n)}`)
      // falls through (unreachable)
      case 'int':
        if (n.type === 'number' && n.isInt) return valueOf(typ, n.int64)
        this.errorf(`expected integer; found ${nodeString(n)}`)
      // falls through (unreachable)
      case 'uint':
        if (n.type === 'number' && n.isUint) return valueOf(typ, n.uint64)
        this.errorf(`expected unsigned integer; found ${nodeString(n)}`)
      // falls through (unreachable)
      case 'string':
        if (n.type === 'string') return valueOf(typ, n.text)
        this.errorf(`expected string; found ${nodeString(n)}`)
      // falls through (unreachable)
      case 'interface':
      case 'reflectValue':
        return this.evalEmptyInterface(dot, n)
    }
    this.errorf(`can't handle ${nodeString(n)} for arg of type ${typ === undefined ? '<nil>' : typeString(typ)}`)
  }

  private evalEmptyInterface(dot: Value, n: Node): Value {
    this.at(n)
    switch (n.type) {
      case 'bool':
        return valueOf(BOOL, n.value)
      case 'dot':
        return dot
      case 'number':
        return this.idealConstant(n)
      case 'string':
        return valueOf(STRING, n.text)
    }
    this.errorf(`can't handle assignment of ${nodeString(n)} to empty interface argument`)
  }

  private printValue(n: Node, v: Value): void {
    this.at(n)
    let shown = v
    if (isValid(shown) && shown.type.kind === 'pointer') shown = indirect(shown)[0]
    this.out.push(isValid(shown) ? sprint([shown]) : '<no value>')
  }
}

/** Executes the tree `name` of a set over `data` (typed by `type`, default interface{}); returns the output. */
export function executeTree(ctx: ExecContext, name: string, data: unknown, type: GoType | undefined): string {
  const out: string[] = []
  const root = type === undefined || type.kind === 'interface' ? dynamicValue(data, type?.kind === 'interface' ? type : ANY) : valueOf(type, data)
  const state = new State(ctx, name, [{ name: '$', value: root }], 0, out)
  try {
    const tree = ctx.trees.get(name)
    if (tree === undefined || tree.root === undefined) state.errorf(`${quote(name)} is an incomplete or empty template`)
    state.walk(root, (tree as { root: ListNode }).root)
  } catch (e) {
    if (isTooDeep(e)) {
      const [location, context] = errorContext(e.node)
      throw new TemplateError('exec', `template: ${location}: executing ${quote(e.name)} at <${context}>: exceeded maximum template depth (${MAX_EXEC_DEPTH})`, out.join(''))
    }
    if (e instanceof ExecFailure) throw new TemplateError('exec', e.message, out.join(''))
    throw e
  }
  return out.join('')
}
