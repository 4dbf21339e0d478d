/**
 * `strata rmi [-f] IMAGE...` (also `strata image rm`): docker's rmi. Prints
 * `Untagged: name:tag` and `Deleted: sha256:...` (the image, then each
 * layer deleted with it) per image; an image that fails adds an
 * "Error: ..." line on stderr and the others go on. Exit 1 when one failed,
 * except that with -f an image that does not exist is not a failure (as in
 * docker).
 */
import { isStrataError } from '../errors/index.js'
import { containersOf, removeImage } from '../store/index.js'
import { checkArgCount, parseFlags } from './args.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'

export const RMI_HELP = `Usage: strata rmi [OPTIONS] IMAGE [IMAGE...]
       strata image rm [OPTIONS] IMAGE [IMAGE...]

Untag and delete images, with docker's rules: a tag given is removed and the
image deleted when it was its last reference; an ID with references in
several repositories needs -f; images with child images are never deleted.
Deleting an image deletes the layers only it used, and its untagged parents.

Options:
  -f, --force     Remove every reference of an image given by ID; ignore stopped containers
      --no-prune  Do not delete untagged parents
`

export async function rmiCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { force: { type: 'boolean', short: 'f' }, 'no-prune': { type: 'boolean' } }, RMI_HELP)
  checkArgCount(positionals, { min: 1 }, RMI_HELP)
  const force = values.force === true
  return withStore(global, async (store) => {
    const out: string[] = []
    const errors: string[] = []
    const using = containersOf(store)
    let fatal = false
    for (const name of positionals) {
      try {
        for (const item of await removeImage(store, name, { force, noPrune: values['no-prune'] === true, containersUsing: using })) {
          out.push(item.Deleted !== undefined ? `Deleted: ${item.Deleted}\n` : `Untagged: ${item.Untagged}\n`)
        }
      } catch (err) {
        if (!isStrataError(err, 'NOT_FOUND')) fatal = true
        errors.push(`Error: ${(err as Error).message}\n`)
      }
    }
    return { stdout: out.join(''), stderr: errors.join(''), exitCode: errors.length > 0 && (!force || fatal) ? 1 : 0 }
  })
}
