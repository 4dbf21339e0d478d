/**
 * GET /containers/{id}/stats?stream=&one-shot=: docker stats' numbers
 * (src/container stats.ts reads the container's cgroup), as dockerd 20.10
 * sends them:
 * - stream=false: one record, read twice a second apart so that
 *   precpu_stats/preread hold the first reading (`docker stats
 *   --no-stream` computes CPU % from the two);
 * - stream=false&one-shot=true: one reading, precpu_stats empty;
 * - stream=true (the default): a record a second, each with the one
 *   before as its precpu_stats (the first with none), until the client
 *   goes away or the container is removed; nothing while it does not run.
 * A container that does not run answers stream=false with dockerd's zero
 * record (name and ID only).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { ZERO_TIME, containerStats, getContainer, type ContainerStats } from '../../container/index.js'
import { ApiError } from '../errors.js'
import { boolParam } from '../request.js'
import { writeJson } from '../response.js'
import type { RequestContext } from '../types.js'

/** dockerd's collector reads every container once a second. */
const INTERVAL_MS = 1000

function clientGone(ctx: RequestContext): AbortSignal {
  const abort = new AbortController()
  ctx.res.on('close', () => {
    if (!ctx.res.writableFinished) abort.abort()
  })
  return abort.signal
}

/** Waits `ms` unless `signal` aborts first; true when it aborted. */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal })
    return false
  } catch {
    return true
  }
}

export async function containerStatsHandler(ctx: RequestContext): Promise<void> {
  const stream = ctx.query.has('stream') ? boolParam(ctx.query, 'stream') : true
  const oneShot = boolParam(ctx.query, 'one-shot')
  if (stream && oneShot) throw new ApiError(400, 'cannot have stream=true and one-shot=true')
  const c = await getContainer(ctx.store, ctx.params.id!)
  const signal = clientGone(ctx)
  if (!stream) {
    const first = await containerStats(ctx.store, c.id)
    if (oneShot || first.read === ZERO_TIME) return writeJson(ctx.res, 200, first)
    if (await pause(INTERVAL_MS, signal)) return
    return writeJson(ctx.res, 200, await containerStats(ctx.store, c.id, { previous: first }))
  }
  ctx.res.writeHead(200, { 'Content-Type': 'application/json' })
  ctx.res.flushHeaders()
  let previous: ContainerStats | undefined
  while (!signal.aborted) {
    let sample: ContainerStats
    try {
      sample = await containerStats(ctx.store, c.id, previous === undefined ? {} : { previous })
    } catch {
      break // removed
    }
    // A container that does not run sends nothing, as dockerd's collector skips it.
    if (sample.read !== ZERO_TIME) {
      ctx.res.write(`${JSON.stringify(sample)}\n`)
      previous = sample
    }
    if (await pause(INTERVAL_MS, signal)) break
  }
  ctx.res.end()
}
