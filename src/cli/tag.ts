/** `strata tag SOURCE TARGET` (also `strata image tag`): docker's tag; prints nothing, as docker does. */
import { tagImage } from '../store/index.js'
import { checkArgCount, parseFlags } from './args.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'

export const TAG_HELP = `Usage: strata tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]
       strata image tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]

Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE (an ID, short ID or
reference). A tag that points elsewhere is moved, as docker does.
`

export async function tagCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { positionals } = parseFlags(args, {}, TAG_HELP)
  checkArgCount(positionals, { min: 2, max: 2 }, TAG_HELP)
  await withStore(global, (store) => tagImage(store, positionals[0]!, positionals[1]!))
  return ''
}
