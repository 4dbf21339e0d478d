/**
 * `strata stats`: docker stats without a daemon. Each container's figures
 * come from its cgroup files (src/container containerStats), read a second
 * apart so that CPU % is the share of the last second, as dockerd's
 * collector reads them; the columns are the docker CLI's (summarizeStats,
 * its StatsEntry, and the formatting of formatter_stats.go).
 *
 * - `--no-stream`: two readings a second apart, one table (dockerd answers
 *   stream=false that way); a container that does not run shows zeros.
 * - the default: a table a second, each after docker's clear-screen and
 *   cursor-home codes, until the process is interrupted or its reader goes
 *   away. Without CONTAINER arguments the running containers (all with
 *   -a) are listed anew each second, so new ones appear and stopped ones
 *   go, as docker's event watch does; named ones stay.
 *
 * The store is opened for reading (no lock held), so a stats left running
 * never holds up the other commands on the data root.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { ContainerStats, StatsSummary } from '../container/index.js'
import type { Store } from '../store/index.js'
import { parseFlags } from './args.js'
import { PROCESS_HELPS } from './container-process-helps.js'
import { bytesSize, humanSizeWithPrecision, truncateId } from './docker-format.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { writeStd } from './stdio.js'
import { withStore } from './store.js'

/** dockerd's collector reads every container once a second. */
const INTERVAL_MS = 1000

/** What docker writes before each table of a stream: clear the screen, cursor home. */
const CLEAR_SCREEN = '\u001b[2J\u001b[H'

/** One row: the container as named on the command line (docker's .Container), and its latest sample. */
interface Watched {
  container: string
  sample: ContainerStats
}

/** The columns of formatter_stats.go's statsContext for one sample. */
function statsRow(w: Watched, summary: StatsSummary, trunc: boolean): Record<string, string> {
  const name = w.sample.name
  const pair = (a: number, b: number): string => `${humanSizeWithPrecision(a, 3)} / ${humanSizeWithPrecision(b, 3)}`
  return {
    Container: w.container,
    Name: name.length > 1 ? name.slice(1) : '--',
    ID: trunc ? truncateId(w.sample.id) : w.sample.id,
    CPUPerc: `${summary.cpuPercent.toFixed(2)}%`,
    MemUsage: `${bytesSize(summary.memory)} / ${bytesSize(summary.memoryLimit)}`,
    MemPerc: `${summary.memoryPercent.toFixed(2)}%`,
    NetIO: pair(summary.networkRx, summary.networkTx),
    BlockIO: pair(summary.blockRead, summary.blockWrite),
    PIDs: String(summary.pids),
  }
}

export async function statsCommand(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(
    args,
    {
      all: { type: 'boolean', short: 'a' },
      format: { type: 'string' },
      'no-stream': { type: 'boolean' },
      'no-trunc': { type: 'boolean' },
    },
    PROCESS_HELPS.stats!,
  )
  const [lib, { STATS_HEADER, STATS_ROW, renderList, statsFormat }] = await Promise.all([import('../container/index.js'), import('./list-formats.js')])
  const format = statsFormat(values.format === undefined || values.format === '' ? 'table' : values.format)
  const trunc = values['no-trunc'] !== true
  const named = positionals.length > 0

  /** The containers to show now: the named ones (by their IDs), or those that run (all with -a). */
  const targets = async (store: Store): Promise<Array<{ container: string; id: string }>> => {
    if (named) {
      const found: Array<{ container: string; id: string }> = []
      const errors: string[] = []
      for (const ref of positionals) {
        try {
          found.push({ container: ref, id: (await lib.getContainer(store, ref)).id })
        } catch (err) {
          errors.push((err as Error).message)
        }
      }
      if (errors.length > 0) throw new StatsError(errors)
      return found
    }
    const list = await lib.listContainers(store, { all: values.all === true })
    return list.map((c) => ({ container: c.Id.slice(0, 12), id: c.Id }))
  }

  /** One reading of each target, each with its previous reading (when there is one) as its precpu. */
  const read = async (store: Store, previous: Map<string, ContainerStats>): Promise<Watched[]> => {
    const list = await targets(store)
    return Promise.all(
      list.map(async (t) => {
        const before = previous.get(t.id)
        let sample: ContainerStats
        try {
          sample = await lib.containerStats(store, t.id, before === undefined ? {} : { previous: before })
        } catch (err) {
          // Removed between the listing and the reading: shown with zeros this once, as docker shows a lost one.
          if (named) throw new StatsError([(err as Error).message])
          sample = lib.emptyContainerStats('', t.id)
        }
        return { container: t.container, sample }
      }),
    )
  }

  const render = (rows: Watched[]): CommandResult =>
    renderList(
      format,
      rows.map((w) => statsRow(w, lib.summarizeStats(w.sample), trunc)),
      { type: STATS_ROW, header: STATS_HEADER },
    )

  try {
    return await withStore(
      global,
      async (store) => {
        const previous = new Map<string, ContainerStats>()
        const remember = (rows: Watched[]): void => {
          previous.clear()
          for (const w of rows) if (w.sample.read !== lib.ZERO_TIME) previous.set(w.sample.id, w.sample)
        }
        let rows = await read(store, previous)
        remember(rows)
        if (values['no-stream'] === true) {
          // The second reading a second later, so that CPU % is that second's (dockerd's stream=false).
          if (previous.size > 0) {
            await sleep(INTERVAL_MS)
            rows = await read(store, previous)
          }
          return render(rows)
        }
        for (;;) {
          const out = render(rows)
          if (typeof out !== 'string') return out // a template error: docker's message, exit 1
          if (!writeStd('stdout', CLEAR_SCREEN + out)) return ''
          await sleep(INTERVAL_MS)
          rows = await read(store, previous)
          remember(rows)
        }
      },
      { reading: true },
    )
  } catch (err) {
    if (err instanceof StatsError) return { stdout: '', stderr: err.lines.map((l) => `Error: ${l}\n`).join(''), exitCode: 1 }
    throw err
  }
}

/** The named containers that could not be read, one message each (docker lists them all, then exits 1). */
class StatsError extends Error {
  constructor(readonly lines: string[]) {
    super(lines.join('\n'))
  }
}
