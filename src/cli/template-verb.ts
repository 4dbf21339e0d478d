/**
 * How `docker info` and `docker version` run a --format template: one
 * value, not a list. The output is what the template wrote and a newline,
 * even when it failed; a failure's message goes to stderr (exit 1), a
 * template that does not parse exits 64 ("template parsing error: ...").
 * `version` also lays its output out with a tabwriter (minwidth 20,
 * padding 1), as docker's prettyPrintVersion does.
 */
import { DOCKER_FUNCS, tabwrite, Template, TemplateError, type GoType } from '../format/index.js'
import type { CommandOutput } from './output.js'

export interface SingleTemplateOptions {
  /** The template's name: "" for info, "version" for version. */
  name: string
  type: GoType
  /** docker version's tabwriter. */
  tabwriter?: boolean
}

/** docker version's tabwriter (prettyPrintVersion: minwidth 20, padding 1). */
export const VERSION_TABWRITER = { minWidth: 20, tabWidth: 1, padding: 1, padChar: ' ' } as const

export function runSingleTemplate(format: string, data: unknown, options: SingleTemplateOptions): CommandOutput {
  const text = format === 'json' ? '{{json .}}' : format
  let tmpl: Template
  try {
    tmpl = Template.parse(text, { name: options.name, funcs: DOCKER_FUNCS })
  } catch (err) {
    if (err instanceof TemplateError) return { stdout: '', stderr: `template parsing error: ${err.message}\n`, exitCode: 64 }
    throw err
  }
  let out: string
  let stderr = ''
  try {
    out = tmpl.execute(data, { type: options.type })
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err
    out = err.output
    stderr = `${err.message}\n`
  }
  out += '\n'
  if (options.tabwriter === true) out = tabwrite(out, VERSION_TABWRITER)
  return { stdout: out, stderr, exitCode: stderr === '' ? 0 : 1 }
}
