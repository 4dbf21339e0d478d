/**
 * `strata history IMAGE` (also `strata image history`): docker's history
 * table, newest step first: IMAGE (the image's ID on its own step, its
 * parents' on theirs when they are in the store, else <missing>), CREATED,
 * CREATED BY (cut at 45 characters unless --no-trunc), SIZE of the layer the
 * step made, COMMENT.
 */
import { parseArgs } from 'node:util'
import { imageHistory } from '../store/index.js'
import { goRfc3339 } from '../fs/index.js'
import { dockerTable, ellipsis, humanSizeWithPrecision, jsonLine, since, truncateId } from './docker-format.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'

export const HISTORY_HELP = `Usage: strata history [OPTIONS] IMAGE
       strata image history [OPTIONS] IMAGE

Show the history of an image (its config's build steps), newest first.

Options:
      --no-trunc     Don't truncate output
  -q, --quiet        Only show image IDs
      --format json  One JSON object per row, as docker's --format '{{json .}}'
      --layers       What each layer added, modified, removed and wasted (= strata image layers)
`

export async function historyCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  if (args.includes('--layers')) return (await import('./explore.js')).imageLayersCommand(args, global)
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { 'no-trunc': { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' }, format: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  })
  if (values.help === true) return HISTORY_HELP
  if (values.format !== undefined && values.format !== 'json') throw new UsageError(`--format takes "json", not "${values.format}"`)
  if (positionals.length !== 1) throw new UsageError('"history" takes exactly 1 argument: IMAGE')
  const rows = await withStore(global, (store) => imageHistory(store, positionals[0]!))
  const trunc = values['no-trunc'] !== true
  const id = (s: string): string => (trunc ? truncateId(s) : s)
  // docker shows tabs in a command as spaces, and cuts long commands.
  const createdBy = (s: string): string => (trunc ? ellipsis(s.replaceAll('\t', ' '), 45) : s.replaceAll('\t', ' '))
  if (values.quiet === true) return rows.map((r) => `${id(r.Id)}\n`).join('')
  const now = Date.now()
  if (values.format === 'json') {
    return rows
      .map((r) =>
        jsonLine({
          Comment: r.Comment,
          CreatedAt: goRfc3339(r.Created),
          CreatedBy: createdBy(r.CreatedBy),
          CreatedSince: since(r.Created, now),
          ID: id(r.Id),
          Size: humanSizeWithPrecision(r.Size, 3),
        }),
      )
      .join('')
  }
  return dockerTable([
    ['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'],
    ...rows.map((r) => [id(r.Id), since(r.Created, now), createdBy(r.CreatedBy), humanSizeWithPrecision(r.Size, 3), r.Comment]),
  ])
}
