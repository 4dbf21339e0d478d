/**
 * A parsed template set, as Go's *template.Template: parse once, execute
 * many times over different data, with the functions it was parsed with or
 * (as docker does for table headers) with replacement functions of the
 * same names.
 */
import { BUILTINS } from './builtins.js'
import { TemplateError } from './errors.js'
import { executeTree } from './exec.js'
import { parseTemplateSet, type ParsedTree } from './parse.js'
import { quote } from './strconv.js'
import type { ExecuteOptions, FuncMap } from './types.js'

export interface ParseTemplateOptions {
  /** The template's name (docker's is ""); it appears in error messages. */
  name?: string
  /** Functions besides the builtins (a FuncMap entry overrides a builtin of the same name). */
  funcs?: FuncMap
  leftDelim?: string
  rightDelim?: string
}

export interface TemplateExecuteOptions extends ExecuteOptions {
  /** Functions to use instead of those given at parse time (Go's Funcs after Parse). */
  funcs?: FuncMap
}

/**
 * @example
 * const t = Template.parse('{{range .}}{{.Name | upper}} {{end}}', { funcs: DOCKER_FUNCS })
 * t.execute([{ Name: 'a' }, { Name: 'b' }]) // "A B "
 */
export class Template {
  readonly name: string
  readonly #trees: Map<string, ParsedTree>
  readonly #funcs: FuncMap

  private constructor(name: string, trees: Map<string, ParsedTree>, funcs: FuncMap) {
    this.name = name
    this.#trees = trees
    this.#funcs = funcs
  }

  /** Parses `text`; throws TemplateError('parse') with Go's message (`template: NAME:LINE: ...`). */
  static parse(text: string, options: ParseTemplateOptions = {}): Template {
    const name = options.name ?? ''
    const funcs = options.funcs ?? {}
    const trees = parseTemplateSet(name, text, {
      hasFunction: (n) => Object.hasOwn(funcs, n) || Object.hasOwn(BUILTINS, n),
      ...(options.leftDelim === undefined ? {} : { leftDelim: options.leftDelim }),
      ...(options.rightDelim === undefined ? {} : { rightDelim: options.rightDelim }),
    })
    return new Template(name, trees, funcs)
  }

  /** Runs the template over `data`; throws TemplateError('exec') carrying the output written before the error. */
  execute(data: unknown, options: TemplateExecuteOptions = {}): string {
    return this.executeTemplate(this.name, data, options)
  }

  /** Runs the named template of the set (Go's ExecuteTemplate). */
  executeTemplate(name: string, data: unknown, options: TemplateExecuteOptions = {}): string {
    if (!this.#trees.has(name)) {
      if (name === this.name) throw new TemplateError('exec', `template: ${name}: ${quote(name)} is an incomplete or empty template`)
      throw new TemplateError('exec', `template: no template ${quote(name)} associated with template ${quote(this.name)}`)
    }
    return executeTree({ trees: this.#trees, funcs: options.funcs ?? this.#funcs, missingKey: options.missingKey ?? 'default' }, name, data, options.type)
  }

  /** The names of the templates in the set. */
  templateNames(): string[] {
    return [...this.#trees.keys()]
  }
}
