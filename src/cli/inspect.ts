/**
 * `strata image inspect IMAGE...` (also `strata inspect`): docker's JSON
 * array of image details, indented as `docker image inspect` prints it, or
 * with -f/--format a Go template per image, run as the docker CLI runs it
 * (as types.ImageInspect first, then over the raw JSON; see src/format
 * docker-inspect.ts). Images that are found are printed even when others
 * are not; each one missing adds an "Error: No such image: X" line on
 * stderr and exit 1. A template that does not parse exits 64, as docker.
 */
import { IMAGE_INSPECT, inspectWithTemplate, TemplateError } from '../format/index.js'
import { goJsonText } from '../fs/index.js'
import { inspectImage, type ImageInspect } from '../store/index.js'
import { inspectJson } from './docker-format.js'
import { checkArgCount, parseFlags } from './args.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'

export const INSPECT_HELP = `Usage: strata image inspect [OPTIONS] IMAGE [IMAGE...]
       strata inspect [OPTIONS] IMAGE [IMAGE...]

Show images' details as docker's JSON array (Id, RepoTags, Config, RootFS,
GraphDriver with the top layer's directories, ...). IMAGE is an ID, a short
ID or a reference.

Options:
  -f, --format FORMAT   A Go template per image, as docker's ('{{.Id}}',
                        '{{.Config.Env}}', '{{json .RootFS}}'), or 'json'
`

/** docker's exit status for a template that does not parse. */
const TEMPLATE_PARSE_EXIT = 64

export async function inspectCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { format: { type: 'string', short: 'f' } }, INSPECT_HELP)
  checkArgCount(positionals, { min: 1 }, INSPECT_HELP)
  const format = values.format ?? ''
  return withStore(global, async (store) => {
    const found: ImageInspect[] = []
    const errors: string[] = []
    // Per argument, in order: the image found (its index in found) or why not.
    const outcome: Array<number | string> = []
    for (const name of positionals) {
      try {
        outcome.push(found.push(await inspectImage(store, name)) - 1)
      } catch (err) {
        const message = `Error: ${(err as Error).message}`
        errors.push(message)
        outcome.push(message)
      }
    }
    if (format === '') return { stdout: inspectJson(found), stderr: errors.map((e) => `${e}\n`).join(''), exitCode: errors.length > 0 ? 1 : 0 }
    if (format === 'json') {
      // The daemon's JSON as json.Compact keeps it: HTML characters escaped as json.Marshal wrote them.
      return { stdout: `${goJsonText(JSON.stringify(found), { html: true })}\n`, stderr: errors.map((e) => `${e}\n`).join(''), exitCode: errors.length > 0 ? 1 : 0 }
    }
    let result
    try {
      result = inspectWithTemplate(format, found.map((raw) => ({ raw, type: IMAGE_INSPECT })))
    } catch (err) {
      if (err instanceof TemplateError) return { stdout: '', stderr: `${err.message}\n`, exitCode: TEMPLATE_PARSE_EXIT }
      throw err
    }
    // docker reports template failures and missing images in one list, in the order of the arguments.
    const all = outcome.map((o) => (typeof o === 'string' ? o : result.errors[o])).filter((e): e is string => e !== undefined)
    return { stdout: result.stdout, stderr: all.map((e) => `${e}\n`).join(''), exitCode: all.length > 0 ? 1 : 0 }
  })
}
