/**
 * `strata migrate --to DRIVER` (also `strata system migrate`): the data
 * root moved to another storage driver in place (src/migrate). With
 * --dry-run a table of what moves and the estimates; otherwise a progress
 * bar per layer and per container on a terminal, then a summary. The
 * global -s names the driver to migrate from (default: the one whose
 * layers the root holds) and --storage-opt goes to it; --target-opt to the
 * new one. --cleanup, --abort and --status deal with a migration already
 * started.
 */
import { abortMigration, cleanupMigration, migrateDataRoot, migrationStatus, type MigratePlan, type MigrateProgress } from '../migrate/index.js'
import type { LayerProgress } from '../transport/index.js'
import { checkArgCount, parseFlags } from './args.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import { humanSize, shortId, table, type CommandResult } from './output.js'
import { layerProgress, type VerbIO } from './progress.js'

export const MIGRATE_HELP = `Usage: strata migrate --to DRIVER [--dry-run] [--prune-source] [--target-opt KEY=VALUE]...
       strata migrate --cleanup | --abort | --status

Move the data root to another storage driver, in place: every image layer
and every container's layers are re-created under the new driver and
verified (image layers against their diffIDs, containers file by file)
before the root switches; image IDs, diffIDs, tags, digests and containers
stay as they are. Refused while containers run. Killed or stopped by a full
disk, the same command continues where it stopped. The old driver's trees
are kept until --prune-source or a later --cleanup.

The driver to migrate from is the root's (or -s DRIVER before the command;
--storage-opt before the command goes to it).

Options:
      --to DRIVER            The new driver: overlay2, btrfs, vfs or aufs
      --dry-run              Show what moves, the space it needs and a time estimate; change nothing
      --prune-source         Delete the old driver's trees once the switch is done
      --target-opt KEY=VALUE An option for the new driver, repeatable
      --cleanup              Delete the old driver's trees a finished migration kept
      --abort                Drop an unfinished migration (before its switch); the root stays as it was
      --status               Show where a migration is
  -q, --quiet                No progress bars
  -h, --help                 Show this help
`

/** A migration event as the load-style bars draw it: layers as image 0, containers as image 1. */
function asLayerProgress(e: MigrateProgress): LayerProgress | undefined {
  if (e.kind === 'switch') return undefined
  const phase: LayerProgress['phase'] = e.step === 'staged' ? 'exists' : e.step === 'done' ? 'done' : 'copying'
  const id = e.kind === 'layer' ? e.diffId : /^[a-f0-9]{64}$/.test(e.name) ? `sha256:${e.name}` : ''
  return { image: e.kind === 'layer' ? 0 : 1, layer: e.index, diffId: id as LayerProgress['diffId'], phase, current: e.bytes, total: e.totalBytes > 0 ? e.totalBytes : undefined }
}

function duration(seconds: number): string {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))}s`
  if (seconds < 3600) return `${Math.round(seconds / 60)}m`
  return `${(seconds / 3600).toFixed(1)}h`
}

function planText(plan: MigratePlan): string {
  const state = (staged: boolean): string => (staged ? 'done earlier' : 'to copy')
  let out = `Migration of ${plan.root} from ${plan.from} to ${plan.to} (dry run${plan.resumed ? ', continuing an interrupted one' : ''})\n\n`
  out += table([['LAYER', 'DIFF ID', 'SIZE', 'STATE'], ...plan.layers.map((l) => [shortId(l.chainId), shortId(l.diffId), humanSize(l.size), state(l.staged)])])
  if (plan.mounts.length > 0) out += `\n${table([['CONTAINER', 'CHANGES', 'STATE'], ...plan.mounts.map((m) => [m.name.slice(0, 12), humanSize(m.size), state(m.staged)])])}`
  out += `\n${plan.layers.length} layer${plan.layers.length === 1 ? '' : 's'}, ${plan.mounts.length} container${plan.mounts.length === 1 ? '' : 's'}`
  out += `; space needed: about ${humanSize(plan.spaceNeeded)} (${humanSize(plan.spaceFree)} free${plan.spaceNeeded > plan.spaceFree ? ': NOT ENOUGH' : ''})`
  out += `; time: about ${plan.estimatedSeconds > 0 ? duration(plan.estimatedSeconds) : 'unknown'}\n`
  return out
}

export async function migrateCommand(args: string[], global: GlobalOptions, io: VerbIO): Promise<CommandResult> {
  const { values, positionals } = parseFlags(
    args,
    {
      to: { type: 'string' },
      'dry-run': { type: 'boolean' },
      'prune-source': { type: 'boolean' },
      'target-opt': { type: 'string', multiple: true },
      cleanup: { type: 'boolean' },
      abort: { type: 'boolean' },
      status: { type: 'boolean' },
      quiet: { type: 'boolean', short: 'q' },
    },
    MIGRATE_HELP,
  )
  checkArgCount(positionals, { max: 0 }, MIGRATE_HELP)
  const modes = [values.to !== undefined, values.cleanup === true, values.abort === true, values.status === true].filter(Boolean).length
  if (modes !== 1) throw new UsageError('strata migrate needs exactly one of --to DRIVER, --cleanup, --abort or --status')

  if (values.status === true) {
    const j = await migrationStatus(global.root)
    return j === undefined ? `No migration of ${global.root}\n` : `Migration of ${global.root} from ${j.from} to ${j.to}: ${j.state} (started ${j.startedAt}, last step ${j.updatedAt})\n`
  }
  if (values.cleanup === true) {
    const { removed } = await cleanupMigration(global.root)
    return removed.length === 0 ? 'Nothing to clean up\n' : removed.map((p) => `Deleted ${p}\n`).join('')
  }
  if (values.abort === true) {
    const { removed } = await abortMigration(global.root)
    return removed.length === 0 ? 'No migration to abort\n' : `Aborted; ${global.root} is as it was\n`
  }

  const targetOptions: Record<string, string> = {}
  for (const kv of values['target-opt'] ?? []) {
    const at = kv.indexOf('=')
    if (at <= 0) throw new UsageError(`--target-opt takes KEY=VALUE, not "${kv}"`)
    targetOptions[kv.slice(0, at)] = kv.slice(at + 1)
  }
  const common = {
    root: global.root,
    to: values.to!,
    ...(global.driver === undefined ? {} : { from: global.driver }),
    sourceOptions: global.storageOpts,
    targetOptions,
  }
  if (values['dry-run'] === true) return planText(await migrateDataRoot({ ...common, dryRun: true }))

  const bars = layerProgress(io.stdout, 'Migrating', values.quiet === true)
  let result
  try {
    result = await migrateDataRoot({
      ...common,
      pruneSource: values['prune-source'] === true,
      onProgress: (e) => {
        const p = asLayerProgress(e)
        if (p !== undefined) bars.onProgress?.(p)
      },
    })
  } finally {
    bars.finish()
  }
  const { plan } = result
  let out = `Migrated ${plan.root} from ${plan.from} to ${plan.to}: ${result.layersCopied} layer${result.layersCopied === 1 ? '' : 's'} and ${result.mountsCopied} container${result.mountsCopied === 1 ? '' : 's'} copied and verified (${duration(result.seconds)})\n`
  out += result.sourceKeptAt === undefined ? `The ${plan.from} trees were deleted.\n` : `The ${plan.from} trees are kept in ${result.sourceKeptAt}; \`strata migrate --cleanup\` deletes them.\n`
  if (plan.to === 'vfs') out += 'strata and dockerd open a vfs root only when told: use -s vfs (dockerd: --storage-driver vfs).\n'
  return out
}
