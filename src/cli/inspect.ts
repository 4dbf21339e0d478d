/**
 * `strata image inspect IMAGE...` (also `strata inspect`): docker's JSON
 * array of image details, indented as `docker image inspect` prints it.
 * Images that are found are printed even when others are not; each one
 * missing adds an "Error: No such image: X" line on stderr and exit 1.
 */
import { parseArgs } from 'node:util'
import { inspectImage, type ImageInspect } from '../store/index.js'
import { inspectJson } from './docker-format.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'

export const INSPECT_HELP = `Usage: strata image inspect IMAGE [IMAGE...]
       strata inspect IMAGE [IMAGE...]

Show images' details as docker's JSON array (Id, RepoTags, Config, RootFS,
GraphDriver with the top layer's directories, ...). IMAGE is an ID, a short
ID or a reference.
`

export async function inspectCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } })
  if (values.help === true) return INSPECT_HELP
  if (positionals.length === 0) throw new UsageError('"inspect" needs at least 1 argument: IMAGE [IMAGE...]')
  return withStore(global, async (store) => {
    const found: ImageInspect[] = []
    const errors: string[] = []
    for (const name of positionals) {
      try {
        found.push(await inspectImage(store, name))
      } catch (err) {
        errors.push(`Error: ${(err as Error).message}\n`)
      }
    }
    return { stdout: inspectJson(found), stderr: errors.join(''), exitCode: errors.length > 0 ? 1 : 0 }
  })
}
