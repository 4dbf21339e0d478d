/**
 * `strata system df [-v]`: docker's disk usage summary. Images counts the
 * listed images (intermediate ones left out) and the size of the layers
 * they use, shared layers once; ACTIVE images are those a container uses,
 * and RECLAIMABLE is what deleting the others would free. Containers are
 * the layerdb mounts (strata has no container records yet), sized by their
 * read-write layers. strata has no volumes and no build cache: those rows
 * are always 0. `system info` is `strata info`.
 */
import { diskUsage, isDanglingSummary, type DiskUsage } from '../store/index.js'
import { parseReference, familiarName } from '../image/index.js'
import { ANY } from '../format/index.js'
import { dockerTable, humanSize4, since, truncateId } from './docker-format.js'
import { checkArgCount, parseFlags } from './args.js'
import { UnknownCommandError, UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import { infoCommand } from './info.js'
import { DF_FORMAT, DF_HEADER, DF_ROWS, typedRow, renderList } from './list-formats.js'
import type { CommandResult } from './output.js'
import type { VerbIO } from './progress.js'
import { withStore } from './store.js'

export const SYSTEM_HELP = `Usage: strata system COMMAND

Commands:
  df [-v] [--format FORMAT]   Show disk usage (images, containers, volumes, build cache)
  info [--format FORMAT]      Same as strata info
  migrate --to DRIVER ...     Same as strata migrate
`

export const DF_HELP = `Usage: strata system df [OPTIONS]

Show disk usage as docker does: TYPE TOTAL ACTIVE SIZE RECLAIMABLE for
images (layers shared by several images counted once), containers (layerdb
mounts, by their read-write layer), local volumes and build cache (strata
has neither: always 0).

Options:
  -v, --verbose        Show a row per image and container
      --format FORMAT  A Go template over the summary rows, as docker's ('table
                       {{.Type}}\\t{{.Size}}', '{{json .}}', 'json'; with -v: json,
                       the whole report as one object). Fields: Type TotalCount
                       Active Size Reclaimable
`

export async function systemCommand(args: string[], global: GlobalOptions, io: VerbIO): Promise<CommandResult> {
  const [verb, ...rest] = args
  switch (verb) {
    case 'migrate':
      return (await import('./migrate.js')).migrateCommand(rest, global, io)
    case 'df':
      return dfCommand(rest, global)
    case 'info':
      return infoCommand(rest, global)
    case undefined:
    case '--help':
    case '-h':
      return SYSTEM_HELP
    default:
      throw new UnknownCommandError(verb, 'system')
  }
}

/** A percentage as docker prints it after a reclaimable size: " (42%)", integer division. */
function withPercent(reclaimable: number, total: number): string {
  return total > 0 ? `${humanSize4(reclaimable)} (${Math.trunc((reclaimable * 100) / total)}%)` : humanSize4(reclaimable)
}

interface DfRow {
  Type: string
  TotalCount: string
  Active: string
  Size: string
  Reclaimable: string
}

function summaryRows(du: DiskUsage): DfRow[] {
  let used = 0
  for (const i of du.Images) if (i.Containers > 0 && i.SharedSize !== -1) used += i.VirtualSize - i.SharedSize
  const running = du.Containers.filter((c) => c.State === 'running')
  const containersSize = du.Containers.reduce((n, c) => n + c.SizeRw, 0)
  const reclaimableContainers = du.Containers.filter((c) => c.State !== 'running').reduce((n, c) => n + c.SizeRw, 0)
  return [
    {
      Type: 'Images',
      TotalCount: String(du.Images.length),
      Active: String(du.Images.filter((i) => i.Containers > 0).length),
      Size: humanSize4(du.LayersSize),
      Reclaimable: withPercent(du.LayersSize - used, du.LayersSize),
    },
    {
      Type: 'Containers',
      TotalCount: String(du.Containers.length),
      Active: String(running.length),
      Size: humanSize4(containersSize),
      Reclaimable: withPercent(reclaimableContainers, containersSize),
    },
    { Type: 'Local Volumes', TotalCount: '0', Active: '0', Size: '0B', Reclaimable: '0B' },
    { Type: 'Build Cache', TotalCount: '0', Active: '0', Size: '0B', Reclaimable: '0B' },
  ]
}

function verbose(du: DiskUsage): string {
  const now = Date.now()
  const images = du.Images.map((i) => {
    let repo = '<none>'
    let tag = '<none>'
    // docker shows an image's first tag only.
    if (i.RepoTags.length > 0 && !isDanglingSummary(i)) {
      try {
        const ref = parseReference(i.RepoTags[0]!)
        if (ref.tag !== undefined) {
          repo = familiarName(ref)
          tag = ref.tag
        }
      } catch {
        // an unparsable tag shows as <none>
      }
    }
    return [repo, tag, truncateId(i.Id), since(i.Created, now), humanSize4(i.Size), humanSize4(i.SharedSize), humanSize4(i.Size - i.SharedSize), String(i.Containers)]
  })
  const word = (state: string): string => state.charAt(0).toUpperCase() + state.slice(1)
  const containers = du.Containers.map((c) => [truncateId(c.Id), c.Image, '', '0', humanSize4(c.SizeRw), '', `${word(c.State)}${c.Mounted ? ' (mounted)' : ''}`, ''])
  return [
    'Images space usage:\n\n' + dockerTable([['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE', 'CONTAINERS'], ...images]),
    'Containers space usage:\n\n' + dockerTable([['CONTAINER ID', 'IMAGE', 'COMMAND', 'LOCAL VOLUMES', 'SIZE', 'CREATED', 'STATUS', 'NAMES'], ...containers]),
    'Local Volumes space usage:\n\n' + dockerTable([['VOLUME NAME', 'LINKS', 'SIZE']]),
    'Build cache usage: 0B\n\n' + dockerTable([['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'LAST USED', 'USAGE', 'SHARED']]),
  ].join('\n')
}

async function dfCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { verbose: { type: 'boolean', short: 'v' }, format: { type: 'string' } }, DF_HELP)
  checkArgCount(positionals, { max: 0 }, DF_HELP)
  const source = values.format === undefined || values.format === '' ? 'table' : values.format
  if (values.verbose === true && source !== 'table' && source !== 'json') throw new UsageError('--format with -v takes "json" (a template runs over the summary rows only)')
  const du = await withStore(global, (store) => diskUsage(store))
  if (values.verbose === true) return source === 'json' ? `${JSON.stringify(du)}\n` : verbose(du)
  // NewDiskUsageFormat: "table" is the summary table, "raw" a block per row, anything else a template.
  const format =
    source === 'table' ? DF_FORMAT : source === 'raw' ? 'type: {{.Type}}\ntotal: {{.TotalCount}}\nactive: {{.Active}}\nsize: {{.Size}}\nreclaimable: {{.Reclaimable}}\n' : source
  const [images, containers, volumes, buildCache] = summaryRows(du)
  const rows = [typedRow(DF_ROWS.images, images), typedRow(DF_ROWS.containers, containers), typedRow(DF_ROWS.volumes, volumes), typedRow(DF_ROWS.buildCache, buildCache)]
  return renderList(format, rows, { type: ANY, header: DF_HEADER })
}
