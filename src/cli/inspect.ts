/**
 * `strata inspect NAME...`, `strata image inspect IMAGE...` and `strata
 * container inspect CONTAINER...`: docker's JSON array of details (images:
 * types.ImageInspect; containers: types.ContainerJSON, the API's own
 * document from src/container inspect.ts), indented as `docker inspect`
 * prints it, or
 * with -f/--format a Go template per image, run as the docker CLI runs it
 * (as types.ImageInspect first, then over the raw JSON; see src/format
 * docker-inspect.ts). Images that are found are printed even when others
 * are not; each one missing adds an "Error: No such image: X" line on
 * stderr and exit 1. A template that does not parse exits 64, as docker.
 * `strata inspect` without --type looks for a container first, then an
 * image, as docker's inspectAll ("No such object: X" when neither).
 */
import { CONTAINER_INSPECT, IMAGE_INSPECT, inspectWithTemplate, TemplateError } from '../format/index.js'
import { goJsonText } from '../fs/index.js'
import { inspectImage } from '../store/index.js'
import { containerSizes, inspectContainer } from '../container/index.js'
import { isStrataError, StrataError } from '../errors/index.js'
import { inspectJson } from './docker-format.js'
import { checkArgCount, parseFlags } from './args.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'

export const INSPECT_HELP = `Usage: strata inspect [OPTIONS] NAME|ID [NAME|ID...]
       strata image inspect [OPTIONS] IMAGE [IMAGE...]
       strata container inspect [OPTIONS] CONTAINER [CONTAINER...]

Show details of containers or images as docker's JSON array. Images: Id,
RepoTags, Config, RootFS, GraphDriver with the top layer's directories, ...
Containers: State, Config, HostConfig, GraphDriver, Mounts, NetworkSettings.
A name is looked up as a container first, then as an image (ID, short ID or
reference), unless --type says which.

Options:
  -f, --format FORMAT   A Go template per element, as docker's ('{{.Id}}',
                        '{{.Config.Env}}', '{{.State.Status}}'), or 'json'
  -s, --size            Containers: add SizeRw and SizeRootFs
      --type TYPE       Only look for a container or an image
`

/** What an argument is looked up as. */
export type InspectKind = 'container' | 'image' | 'any'

const DOCKER_TYPES = ['config', 'container', 'image', 'network', 'node', 'plugin', 'secret', 'service', 'task', 'volume']

/** docker's exit status for a template that does not parse. */
const TEMPLATE_PARSE_EXIT = 64

export async function inspectCommand(args: string[], global: GlobalOptions, kind: InspectKind = 'any'): Promise<CommandResult> {
  const { values, positionals } = parseFlags(
    args,
    { format: { type: 'string', short: 'f' }, ...(kind === 'any' ? { type: { type: 'string' } as const } : {}), size: { type: 'boolean', short: 's' } },
    INSPECT_HELP,
  )
  const type = (values as { type?: string }).type ?? ''
  if (type !== '' && !DOCKER_TYPES.includes(type)) throw new StrataError('INVALID_ARGUMENT', `unknown type: "${type}": must be one of ${DOCKER_TYPES.map((x) => `"${x}"`).join(', ')}`)
  if (type !== '' && type !== 'container' && type !== 'image') throw new StrataError('NOT_SUPPORTED', `strata has no ${type}s: --type takes container or image`)
  const want: InspectKind = type === '' ? kind : (type as InspectKind)
  checkArgCount(positionals, { min: 1 }, INSPECT_HELP)
  const format = values.format ?? ''
  return withStore(global, async (store) => {
    const found: Array<{ raw: object; type: typeof IMAGE_INSPECT }> = []
    /** The element `name` names, as docker's inspect of `want` finds it. */
    const container = async (name: string): Promise<{ raw: object; type: typeof IMAGE_INSPECT }> => {
      const raw = await inspectContainer(store, name)
      if (values.size !== true) return { raw, type: CONTAINER_INSPECT }
      // docker's ContainerJSONBase: SizeRw and SizeRootFs after GraphDriver.
      const sizes = await containerSizes(store, raw.Id)
      const out: Record<string, unknown> = {}
      for (const [k, v] of Object.entries(raw)) {
        out[k] = v
        if (k === 'GraphDriver') Object.assign(out, sizes)
      }
      return { raw: out, type: CONTAINER_INSPECT }
    }
    const lookup = async (name: string): Promise<{ raw: object; type: typeof IMAGE_INSPECT }> => {
      if (want === 'container') return container(name)
      if (want === 'image') return { raw: await inspectImage(store, name), type: IMAGE_INSPECT }
      try {
        return await container(name)
      } catch (err) {
        if (!isStrataError(err, 'NOT_FOUND')) throw err
      }
      try {
        return { raw: await inspectImage(store, name), type: IMAGE_INSPECT }
      } catch (err) {
        if (isStrataError(err, 'NOT_FOUND') || isStrataError(err, 'INVALID_ARGUMENT')) throw new Error(`No such object: ${name}`)
        throw err
      }
    }
    const errors: string[] = []
    // Per argument, in order: the image found (its index in found) or why not.
    const outcome: Array<number | string> = []
    for (const name of positionals) {
      try {
        outcome.push(found.push(await lookup(name)) - 1)
      } catch (err) {
        const message = `Error: ${(err as Error).message}`
        errors.push(message)
        outcome.push(message)
      }
    }
    if (format === '') return { stdout: inspectJson(found.map((f) => f.raw)), stderr: errors.map((e) => `${e}\n`).join(''), exitCode: errors.length > 0 ? 1 : 0 }
    if (format === 'json') {
      // The daemon's JSON as json.Compact keeps it: HTML characters escaped as json.Marshal wrote them.
      return { stdout: `${goJsonText(JSON.stringify(found.map((f) => f.raw)), { html: true })}\n`, stderr: errors.map((e) => `${e}\n`).join(''), exitCode: errors.length > 0 ? 1 : 0 }
    }
    let result
    try {
      result = inspectWithTemplate(format, found)
    } catch (err) {
      if (err instanceof TemplateError) return { stdout: '', stderr: `${err.message}\n`, exitCode: TEMPLATE_PARSE_EXIT }
      throw err
    }
    // docker reports template failures and missing images in one list, in the order of the arguments.
    const all = outcome.map((o) => (typeof o === 'string' ? o : result.errors[o])).filter((e): e is string => e !== undefined)
    return { stdout: result.stdout, stderr: all.map((e) => `${e}\n`).join(''), exitCode: all.length > 0 ? 1 : 0 }
    // -s mounts the containers' layers to measure them: a writing open then.
  }, { reading: values.size !== true })
}
