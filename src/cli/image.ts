/**
 * `strata image COMMAND`: docker's image group. ls, inspect, rm, tag and
 * history are the top-level verbs under other names; prune lives here.
 *
 * `image prune` never asks: docker prompts for confirmation, strata (made
 * to run in scripts) refuses without -f instead (exit 125) so that nothing is
 * deleted by a command that looked like a question.
 */
import { pruneImages } from '../store/index.js'
import { humanSize4 } from './docker-format.js'
import { checkArgCount, parseFlags } from './args.js'
import { UnknownCommandError, UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import { historyCommand } from './history.js'
import { imagesCommand } from './images.js'
import { inspectCommand } from './inspect.js'
import type { CommandResult } from './output.js'
import { rmiCommand } from './rmi.js'
import { withStore } from './store.js'
import { tagCommand } from './tag.js'
import type { VerbIO } from './progress.js'

export const IMAGE_HELP = `Usage: strata image COMMAND

Manage images.

Commands:
  ls [-a] [-q] [--digests] [--no-trunc] [--format json] [REPO[:TAG]]   List images (= strata images)
  inspect IMAGE...                                  Show images' details as JSON (= strata inspect)
  history [--no-trunc] [-q] [--format json] IMAGE   Show an image's build steps (= strata history)
  layers [--format json] IMAGE                      Show what each layer added, modified, removed and wasted
  tag SOURCE TARGET                                 Tag an image (= strata tag)
  rm [-f] [--no-prune] IMAGE...                     Untag and delete images (= strata rmi)
  prune -f [-a]                                     Delete dangling images (-a: all unused images)
  save, load, pull, push, import                    As strata save, load, pull, push, import

Run 'strata image COMMAND --help' for more on a command.
`

export const PRUNE_HELP = `Usage: strata image prune -f [-a]

Delete dangling images (untagged, without children), or with -a every image
no container uses (tagged or not). Prints what was untagged and deleted and
the space reclaimed, as docker does.

docker asks for confirmation first; strata never prompts, and refuses to
run without -f (exit 125).

Options:
  -a, --all     Remove all unused images, not just dangling ones
  -f, --force   Do it (required)
`

export async function imageCommand(args: string[], global: GlobalOptions, io: VerbIO): Promise<CommandResult> {
  const [verb, ...rest] = args
  switch (verb) {
    case 'save':
      return (await import('./save.js')).saveCommand(rest, global, io)
    case 'load':
      return (await import('./load.js')).loadCommand(rest, global, io)
    case 'pull':
      return (await import('./pull.js')).pullCommand(rest, global, io)
    case 'push':
      return (await import('./push.js')).pushCommand(rest, global, io)
    case 'import':
      return (await import('./import.js')).importCommand(rest, global, io)
    case 'ls':
    case 'list':
      return imagesCommand(rest, global)
    case 'inspect':
      return inspectCommand(rest, global, 'image')
    case 'history':
      return historyCommand(rest, global)
    case 'layers':
      return (await import('./explore.js')).imageLayersCommand(rest, global)
    case 'tag':
      return tagCommand(rest, global)
    case 'rm':
    case 'remove':
      return rmiCommand(rest, global)
    case 'prune':
      return pruneCommand(rest, global)
    case undefined:
    case '--help':
    case '-h':
      return IMAGE_HELP
    default:
      throw new UnknownCommandError(verb, 'image')
  }
}

async function pruneCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { all: { type: 'boolean', short: 'a' }, force: { type: 'boolean', short: 'f' } }, PRUNE_HELP)
  checkArgCount(positionals, { max: 0 }, PRUNE_HELP)
  if (values.force !== true) {
    throw new UsageError(`"image prune" deletes ${values.all === true ? 'every unused image' : 'all dangling images'} and never asks: add -f (--force) to go ahead`)
  }
  const report = await withStore(global, (store) => pruneImages(store, { all: values.all === true }))
  let out = ''
  if (report.ImagesDeleted.length > 0) {
    out += 'Deleted Images:\n'
    for (const d of report.ImagesDeleted) out += d.Untagged !== undefined ? `untagged: ${d.Untagged}\n` : `deleted: ${d.Deleted}\n`
    out += '\n'
  }
  return `${out}Total reclaimed space: ${humanSize4(report.SpaceReclaimed)}\n`
}
