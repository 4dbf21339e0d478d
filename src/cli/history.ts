/**
 * `strata history IMAGE` (also `strata image history`): docker's history
 * table, newest step first: IMAGE (the image's ID on its own step, its
 * parents' on theirs when they are in the store, else <missing>), CREATED,
 * CREATED BY (cut at 45 characters unless --no-trunc), SIZE of the layer the
 * step made, COMMENT; or what --format says, as docker runs it.
 */
import { imageHistory } from '../store/index.js'
import { goRfc3339 } from '../fs/index.js'
import { ellipsis, humanSizeWithPrecision, since, truncateId } from './docker-format.js'
import { checkArgCount, parseFlags } from './args.js'
import type { GlobalOptions } from './global.js'
import { HISTORY_HEADER, HISTORY_ROW, historyFormat, renderList } from './list-formats.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'

export const HISTORY_HELP = `Usage: strata history [OPTIONS] IMAGE
       strata image history [OPTIONS] IMAGE

Show the history of an image (its config's build steps), newest first.

Options:
  -H, --human=false      Print sizes in bytes and times as RFC 3339 (default: human readable)
      --no-trunc         Don't truncate output
  -q, --quiet            Only show image IDs
      --format FORMAT    A Go template as docker's ('table {{.ID}}\\t{{.CreatedBy}}',
                         '{{json .}}', 'json'). Fields: ID CreatedSince CreatedAt
                         CreatedBy Size Comment
      --layers           What each layer added, modified, removed and wasted (= strata image layers)
`

export async function historyCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  if (args.includes('--layers')) return (await import('./explore.js')).imageLayersCommand(args, global)
  const { values, positionals } = parseFlags(
    args,
    { human: { type: 'boolean', short: 'H' }, 'no-trunc': { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' }, format: { type: 'string' } },
    HISTORY_HELP,
  )
  checkArgCount(positionals, { min: 1, max: 1 }, HISTORY_HELP)
  // docker's -H is a boolean that defaults to true: only "-H=false" (or --human=false) turns it off.
  const human = values.human !== false
  const format = historyFormat(values.format === undefined || values.format === '' ? 'table' : values.format, values.quiet === true, human)
  const rows = await withStore(global, (store) => imageHistory(store, positionals[0]!), { reading: true })
  const trunc = values['no-trunc'] !== true
  const now = Date.now()
  return renderList(
    format,
    rows.map((r) => {
      // docker shows tabs in a command as spaces, and cuts long commands.
      const createdBy = r.CreatedBy.replaceAll('\t', ' ')
      const createdAt = goRfc3339(r.Created)
      return {
        ID: trunc ? truncateId(r.Id) : r.Id,
        CreatedSince: human ? since(r.Created, now) : createdAt,
        CreatedAt: createdAt,
        CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
        Size: human ? humanSizeWithPrecision(r.Size, 3) : String(r.Size),
        Comment: r.Comment,
      }
    }),
    { type: HISTORY_ROW, header: HISTORY_HEADER },
  )
}
