/**
 * GET /events?since=&until=&filters=: docker's event stream, from the
 * data root's events journal (src/events): the past events in
 * [since, until] (none without `since`, as dockerd), then, unless `until`
 * is past, every new one as strata processes append them, one JSON object
 * per line, until `until` or the client leaves.
 */
import { EVENT_FILTER_KEYS, eventMatches, nowNano, type EngineEvent } from '../../events/index.js'
import { ApiError } from '../errors.js'
import { parseFilters } from '../request.js'
import type { RequestContext } from '../types.js'

/** A `since`/`until` value: Unix seconds with an optional fraction (what the docker CLI sends), as nanoseconds. */
export function parseTimestamp(name: string, raw: string | null): number | undefined {
  if (raw === null || raw === '') return undefined
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(raw)
  if (m === null) throw new ApiError(400, `invalid value for "${name}": "${raw}" is not a Unix timestamp (seconds[.nanoseconds])`)
  return Number(m[1]) * 1e9 + Number((m[2] ?? '').padEnd(9, '0'))
}

export async function streamEvents(ctx: RequestContext): Promise<void> {
  const filters = parseFilters(ctx.query.get('filters'), EVENT_FILTER_KEYS)
  const since = parseTimestamp('since', ctx.query.get('since'))
  const until = parseTimestamp('until', ctx.query.get('until'))
  if (since !== undefined && until !== undefined && until < since) throw new ApiError(400, '"until" is before "since"')
  const res = ctx.res
  res.writeHead(200, { 'Content-Type': 'application/json' })
  res.flushHeaders()
  const start = nowNano()
  const send = (e: EngineEvent): void => {
    if (until !== undefined && e.timeNano > until) return
    if (!eventMatches(e, filters) || res.destroyed) return
    res.write(`${JSON.stringify(e)}\n`)
  }
  // Without `since`, only what happens from now on.
  const follower = await ctx.events.follow({ sinceNano: since ?? start, ...(until === undefined ? {} : { untilNano: until }) }, send)
  await new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined
    const finish = (): void => {
      clearTimeout(timer)
      follower.close()
      if (!res.writableEnded) res.end()
      resolve()
    }
    res.on('close', finish)
    if (until !== undefined) timer = setTimeout(finish, Math.max(0, (until - nowNano()) / 1e6))
  })
}
