/**
 * `docker inspect -f` (docker/cli cli/command/inspect TemplateInspector):
 * each element runs through the template as its API type first; when that
 * fails, the element's raw JSON runs through it again as
 * map[string]interface{} with json.Number numbers and missingkey=error
 * (so `{{.Id}}`, whose Go field is ID, works through the second try, and a
 * missing key is an error there). Each element's output ends with a
 * newline; no element output at all prints one empty line. (`-f json`,
 * the elements as one compact JSON array, is the caller's: it is no
 * template.)
 */
import { ANY_USE_NUMBER } from './go-types.js'
import { TemplateError } from './errors.js'
import { parseDockerTemplate } from './docker-table.js'
import type { GoType } from './types.js'

export interface InspectElement {
  /** The element as the Engine API returns it (the JSON object). */
  raw: unknown
  /** Its Go type for the first try (docker's typed struct); without it, only the raw run is made. */
  type?: GoType
}

export interface InspectResult {
  /** What docker prints on stdout. */
  stdout: string
  /** Per element, in order: the error it failed with ("template parsing error: ..."), or undefined. */
  errors: Array<string | undefined>
}

/**
 * Runs `--format` over inspected elements as the docker CLI does. Throws
 * TemplateError ("template parsing error: ...") when the template does not
 * parse: docker exits 64 then, before inspecting anything.
 */
export function inspectWithTemplate(format: string, elements: InspectElement[]): InspectResult {
  const tmpl = parseDockerTemplate(format)
  let stdout = ''
  const errors: Array<string | undefined> = []
  for (const element of elements) {
    try {
      if (element.type === undefined) throw new TemplateError('exec', 'untyped')
      stdout += `${tmpl.execute(element.raw, { type: element.type })}\n`
      errors.push(undefined)
      continue
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err
    }
    try {
      stdout += `${tmpl.execute(element.raw, { type: ANY_USE_NUMBER, missingKey: 'error' })}\n`
      errors.push(undefined)
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err
      errors.push(`template parsing error: ${err.message}`)
    }
  }
  return { stdout: stdout === '' ? '\n' : stdout, errors }
}
