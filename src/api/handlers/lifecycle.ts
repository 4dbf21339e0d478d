/**
 * A container's process through the Engine API, as dockerd 20.10 answers:
 * start, stop, kill, restart, wait, logs, pause, unpause and rename, each the library call the CLI
 * makes (src/container process.ts, logs.ts: a monitor per started
 * container runs it). Waits end when the client goes away.
 */
import {
  fixedNanoTime,
  getContainer,
  killContainer,
  parseLogTime,
  pauseContainer,
  parseSignal,
  readLogs,
  renameContainer,
  startContainer,
  stopContainer,
  waitContainer,
} from '../../container/index.js'
import { containerEvent, nowNano } from '../../events/index.js'
import { StrataError } from '../../errors/index.js'
import { ApiError, messageOf, statusOf } from '../errors.js'
import { boolParam, intParam } from '../request.js'
import { stdcopyFrame, writeEmpty } from '../response.js'
import type { RequestContext } from '../types.js'
import { consoleSizes, pendingAttaches } from './tty.js'

/** Aborted when the client closes the connection before the answer. */
function clientGone(ctx: RequestContext): AbortSignal {
  const abort = new AbortController()
  ctx.res.on('close', () => {
    if (!ctx.res.writableFinished) abort.abort()
  })
  return abort.signal
}

async function event(ctx: RequestContext, action: string, id: string, extra: Record<string, string> = {}): Promise<void> {
  const c = await ctx.store.containers.get(id).catch(() => undefined)
  await ctx.events.append(containerEvent(action, id, c?.record.Config.Image ?? c?.record.Image ?? '', c?.name ?? '', extra))
}

/** `?t=` as docker sends it (seconds; absent: the container's StopTimeout, else 10). */
function stopTimeout(ctx: RequestContext): number | undefined {
  return intParam(ctx.query, 't', undefined)
}

/** POST /containers/{id}/start: 204, 304 when it runs already. */
export async function startContainerHandler(ctx: RequestContext): Promise<void> {
  // docker run -it attached first: the monitor holds the terminal's output for that attach (tty.ts).
  const c = await getContainer(ctx.store, ctx.params.id!)
  const size = consoleSizes.get(c.id)
  consoleSizes.delete(c.id)
  const r = await startContainer(ctx.store, c.id, { ...(pendingAttaches.has(c.id) ? { attachFirst: true } : {}), ...(size === undefined ? {} : { consoleSize: size }) })
  if (r.alreadyRunning) return writeEmpty(ctx.res, 304)
  await event(ctx, 'start', r.id)
  writeEmpty(ctx.res, 204)
}

/** dockerd's kill event for each signal a stop sends (`signal`: its number). */
function killEvent(ctx: RequestContext, id: string): (signal: number) => Promise<void> {
  return (signal) => event(ctx, 'kill', id, { signal: String(signal) })
}

/** POST /containers/{id}/stop?t=: 204, 304 when it was not running. */
export async function stopContainerHandler(ctx: RequestContext): Promise<void> {
  const t = stopTimeout(ctx)
  const c = await getContainer(ctx.store, ctx.params.id!)
  const r = await stopContainer(ctx.store, c.id, { signal: clientGone(ctx), onSignal: killEvent(ctx, c.id), ...(t === undefined ? {} : { timeout: t }) })
  if (!r.wasRunning) return writeEmpty(ctx.res, 304)
  await event(ctx, 'stop', r.id)
  writeEmpty(ctx.res, 204)
}

/** POST /containers/{id}/kill?signal=: 204; 409 when not running, 400 for an unknown signal. */
export async function killContainerHandler(ctx: RequestContext): Promise<void> {
  const signal = ctx.query.get('signal') || 'KILL'
  const r = await killContainer(ctx.store, ctx.params.id!, signal)
  // As dockerd: the signal's number.
  await event(ctx, 'kill', r.id, { signal: String(parseSignal(signal)) })
  writeEmpty(ctx.res, 204)
}

/** POST /containers/{id}/restart?t=: 204. */
export async function restartContainerHandler(ctx: RequestContext): Promise<void> {
  const t = stopTimeout(ctx)
  const c = await getContainer(ctx.store, ctx.params.id!)
  // restartContainer's two steps, so that the events come as dockerd logs them: kill(s), stop, start, restart.
  const stopped = await stopContainer(ctx.store, c.id, { signal: clientGone(ctx), onSignal: killEvent(ctx, c.id), ...(t === undefined ? {} : { timeout: t }) })
  if (stopped.wasRunning) await event(ctx, 'stop', c.id)
  const r = await startContainer(ctx.store, c.id)
  await event(ctx, 'start', r.id)
  await event(ctx, 'restart', r.id)
  writeEmpty(ctx.res, 204)
}

/** POST /containers/{id}/pause and /unpause: 204; 409 when not running, already paused or not paused. */
export async function pauseContainerHandler(ctx: RequestContext): Promise<void> {
  const r = await pauseContainer(ctx.store, ctx.params.id!, true)
  await event(ctx, 'pause', r.id)
  writeEmpty(ctx.res, 204)
}

export async function unpauseContainerHandler(ctx: RequestContext): Promise<void> {
  const r = await pauseContainer(ctx.store, ctx.params.id!, false)
  await event(ctx, 'unpause', r.id)
  writeEmpty(ctx.res, 204)
}

/** POST /containers/{id}/rename?name=: 204; 400 without a name, a bad one or the same one; 409 when it is taken. The event names the old one, as dockerd's (`oldName`: "/old"). */
export async function renameContainerHandler(ctx: RequestContext): Promise<void> {
  const name = ctx.query.get('name') ?? ''
  if (name === '') throw new ApiError(400, 'Neither old nor new names may be empty')
  const c = await getContainer(ctx.store, ctx.params.id!)
  try {
    await renameContainer(ctx.store, c.id, name)
  } catch (err) {
    // dockerd's words: its name reservation fails with this prefix.
    if (err instanceof StrataError && /^(Invalid container name|Conflict\.)/.test(err.message)) {
      throw new ApiError(statusOf(err), `Error when allocating new name: ${messageOf(err)}`, { cause: err })
    }
    throw err
  }
  await event(ctx, 'rename', c.id, { oldName: c.record.Name })
  writeEmpty(ctx.res, 204)
}

/**
 * POST /containers/{id}/wait?condition=: 200 {"StatusCode","Error"}. As
 * dockerd, the status line and headers go out at once (the client knows
 * the wait is set up), the body when the condition is met.
 */
export async function waitContainerHandler(ctx: RequestContext): Promise<void> {
  const condition = ctx.query.get('condition') || 'not-running'
  if (condition !== 'not-running' && condition !== 'next-exit' && condition !== 'removed') {
    throw new ApiError(400, `invalid condition: "${condition}"`)
  }
  const c = await getContainer(ctx.store, ctx.params.id!)
  ctx.res.writeHead(200, { 'Content-Type': 'application/json' })
  ctx.res.flushHeaders()
  const sinceNano = nowNano()
  let result
  try {
    result = await waitContainer(ctx.store, c.id, { condition, signal: clientGone(ctx) })
  } catch (err) {
    if (ctx.res.destroyed) return
    ctx.res.end(`${JSON.stringify({ StatusCode: -1, Error: { Message: (err as Error).message } })}\n`)
    return
  }
  let exitCode = result.exitCode
  if (condition === 'removed') {
    // An AutoRemove container (docker run --rm) may be gone before its exited record was read: its monitor logged die, with the code, before removing it.
    const died = (await ctx.events.readRange({ sinceNano }).catch(() => [])).filter((e) => e.Type === 'container' && e.Action === 'die' && e.Actor.ID === c.id).at(-1)
    if (died !== undefined) exitCode = Number(died.Actor.Attributes.exitCode ?? exitCode)
  }
  ctx.res.end(`${JSON.stringify({ StatusCode: exitCode, Error: result.error === '' ? null : { Message: result.error } })}\n`)
}

/** docker's --since/--until as the CLI sends them: Unix seconds with a fraction ("0" or absent: no limit). */
function timeParam(ctx: RequestContext, name: string): bigint | undefined {
  const v = ctx.query.get(name)
  if (v === null || v === '' || v === '0') return undefined
  try {
    return parseLogTime(v)
  } catch (err) {
    throw new ApiError(400, (err as Error).message)
  }
}

/**
 * GET /containers/{id}/logs?stdout=&stderr=&follow=&tail=&timestamps=&since=&until=:
 * docker's multiplexed stream (8-byte frame headers: 1 stdout, 2 stderr,
 * then the length), as API 1.41 sends it for a container without a tty.
 */
export async function containerLogsHandler(ctx: RequestContext): Promise<void> {
  const stdout = boolParam(ctx.query, 'stdout')
  const stderr = boolParam(ctx.query, 'stderr')
  if (!stdout && !stderr) throw new ApiError(400, 'Bad parameters: you must choose at least one stream')
  const tailText = ctx.query.get('tail') ?? 'all'
  const tail = /^[0-9]+$/.test(tailText) ? Number(tailText) : -1
  const sinceNs = timeParam(ctx, 'since')
  const untilNs = timeParam(ctx, 'until')
  const stamps = boolParam(ctx.query, 'timestamps')
  const c = await getContainer(ctx.store, ctx.params.id!)
  const signal = clientGone(ctx)
  const entries = readLogs(ctx.store, c.id, {
    follow: boolParam(ctx.query, 'follow'),
    tail,
    stdout,
    stderr,
    signal,
    ...(sinceNs === undefined ? {} : { sinceNs }),
    ...(untilNs === undefined ? {} : { untilNs }),
  })
  ctx.res.writeHead(200, { 'Content-Type': 'application/vnd.docker.raw-stream' })
  ctx.res.flushHeaders()
  try {
    for await (const e of entries) {
      const payload = Buffer.from(stamps ? `${fixedNanoTime(e)} ${e.log}` : e.log)
      if (!ctx.res.write(stdcopyFrame(c.record.Config.Tty === true, e.stream, payload))) await new Promise((r) => ctx.res.once('drain', r))
    }
  } catch (err) {
    if (!signal.aborted) ctx.log(`logs of ${c.id}: ${(err as Error).message}`)
  }
  ctx.res.end()
}
