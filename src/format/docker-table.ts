/**
 * docker's list formatting (cli/command/formatter Context.Write) for
 * `images`, `ps`, `history`, `system df` and the like:
 * - `--format json` is `{{json .}}`;
 * - a format starting with `table` drops that word, and the rows go
 *   through docker's tabwriter under a header row: the same template
 *   executed over a map of field names to column titles (`{{.ID}}` heads
 *   its column with "IMAGE ID"), with docker's header functions, errors
 *   in the header ignored as docker ignores them;
 * - the format is trimmed of spaces and its `\t` and `\n` escapes become
 *   tab and newline; each row's output ends with a newline;
 * - a template that fails on any row prints nothing, only the error
 *   ("template parsing error: ..." as docker words every template error).
 */
import { DOCKER_FUNCS, DOCKER_HEADER_FUNCS } from './docker-funcs.js'
import { TemplateError } from './errors.js'
import { mapOf, namedType, pointerTo, STRING, structOf } from './go-types.js'
import { encodeJSON, jsonString } from './json.js'
import { tabwrite, DOCKER_TABWRITER, type TabwriterOptions } from './tabwriter.js'
import { Template } from './template.js'
import type { GoMethod, GoType, MapType, PointerType } from './types.js'
import { objectOf, valueOf } from './value.js'

/** formatter.SubHeaderContext: the header row's data, a map[string]string with a Label method. */
export const SUB_HEADER_CONTEXT: MapType = namedType('formatter.SubHeaderContext', mapOf(STRING, STRING), {
  Label: {
    params: [STRING],
    result: STRING,
    call: (_recv, name) => {
      const parts = String(name).split('.')
      return parts[parts.length - 1]!.replace(/[-_]/g, ' ')
    },
  },
})

/**
 * The type of a docker list row: a pointer to a named context struct whose
 * columns are methods (`{{.ID}}` calls imageContext.ID()), which `{{json .}}`
 * writes as docker's MarshalJSON does: every method without arguments, keys
 * sorted, HTML characters escaped (json.Marshal's default). The row payload
 * is an object holding each column's value under its name.
 *
 * @example dockerRowType('formatter.historyContext', { ID: STRING, Size: STRING })
 */
export function dockerRowType(name: string, columns: Record<string, GoType>, methods: Record<string, GoMethod> = {}): PointerType {
  const all: Record<string, GoMethod> = {}
  for (const [column, type] of Object.entries(columns)) all[column] = { params: [], result: type, call: (recv) => objectOf(valueOf(type, recv))[column] }
  Object.assign(all, methods)
  const struct = structOf([], name, all)
  struct.marshalJSON = (payload) => {
    const names = Object.keys(all)
      .filter((m) => all[m]!.params.length === 0)
      .sort()
    const members = names.map((m) => `${jsonString(m, true)}:${encodeJSON(valueOf(all[m]!.result, all[m]!.call(payload)), true)}`)
    return `{${members.join(',')}}`
  }
  return pointerTo(struct)
}

export interface DockerListFormat {
  /** The Go type of each row (docker's context struct, usually a pointer to it). */
  type: GoType
  /** Column titles by field name, for `table` formats (docker's SubHeaderContext). */
  header: Record<string, string>
  /** The table layout; default docker 23+'s (DOCKER_TABWRITER, display widths). */
  tabwriter?: TabwriterOptions
}

/** Format.IsTable: the format starts with "table". */
export function isTableFormat(format: string): boolean {
  return format.startsWith('table')
}

/** The template text docker runs for a --format value (Context.preFormat). */
export function dockerFinalFormat(format: string): string {
  let f = format
  if (isTableFormat(f)) f = f.slice('table'.length)
  else if (f === 'json') f = '{{json .}}'
  f = f.replace(/^ +| +$/g, '')
  return f.replaceAll('\\t', '\t').replaceAll('\\n', '\n')
}

/** Parses a template as docker does (name "", docker's functions); errors read "template parsing error: ...". */
export function parseDockerTemplate(text: string): Template {
  try {
    return Template.parse(text, { funcs: DOCKER_FUNCS })
  } catch (err) {
    if (err instanceof TemplateError) throw new TemplateError('parse', `template parsing error: ${err.message}`)
    throw err
  }
}

/**
 * Renders rows with a docker `--format` value; returns what docker prints.
 * Throws TemplateError ("template parsing error: ...") when the template
 * does not parse or fails on a row.
 */
export function formatDockerList(format: string, rows: unknown[], options: DockerListFormat): string {
  const tmpl = parseDockerTemplate(dockerFinalFormat(format))
  let body = ''
  for (const row of rows) {
    try {
      body += tmpl.execute(row, { type: options.type })
    } catch (err) {
      if (err instanceof TemplateError) throw new TemplateError('exec', `template parsing error: ${err.message}`)
      throw err
    }
    body += '\n'
  }
  if (!isTableFormat(format)) return body
  let header: string
  try {
    header = tmpl.execute(options.header, { type: SUB_HEADER_CONTEXT, funcs: DOCKER_HEADER_FUNCS })
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err
    header = err.output
  }
  return tabwrite(`${header}\n${body}`, options.tabwriter ?? DOCKER_TABWRITER)
}
