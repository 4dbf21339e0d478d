/**
 * Terminals through the Engine API, as dockerd serves them: attach to a
 * container with Config.Tty (the hijacked connection carries raw bytes
 * both ways, no stdcopy), its resize, and the resize of an exec with a
 * terminal (attach-exec.ts runs the exec itself). The container's pty is
 * its monitor's (src/container tty-attach.ts): this server is one more
 * attach client of it, and the detach keys are found here, in the
 * client's input, as dockerd finds them.
 *
 * docker run -it attaches before it starts: an attach to a tty container
 * that is not running yet is kept in `pendingAttaches`, so the start that
 * follows asks the monitor to hold the output for it (StartOptions
 * attachFirst) and the shell's first prompt is not lost.
 */
import type { Duplex, Writable } from 'node:stream'
import { attachTty, getContainer, parseDetachKeys, resizeContainerTty } from '../../container/index.js'
import type { Container } from '../../containerdb/index.js'
import { ApiError } from '../errors.js'
import { boolParam, intParam } from '../request.js'
import { writeEmpty } from '../response.js'
import type { RequestContext } from '../types.js'

/** Containers (by ID) a tty attach is waiting to see started. */
export const pendingAttaches = new Map<string, number>()

/**
 * HostConfig.ConsoleSize [rows, cols] of a tty container created here
 * (docker 23+ sends it at create, API 1.42's way of sizing the terminal
 * before the process starts), taken by its start.
 */
export const consoleSizes = new Map<string, { rows: number; cols: number }>()

/** Notes a create body's ConsoleSize for the start. */
export function noteConsoleSize(id: string, body: Record<string, unknown>): void {
  const size = (body.HostConfig as { ConsoleSize?: unknown } | undefined)?.ConsoleSize
  if (body.Tty !== true || !Array.isArray(size) || size.length !== 2) return
  const [rows, cols] = size as unknown[]
  if (typeof rows === 'number' && typeof cols === 'number' && rows > 0 && cols > 0 && rows <= 0xffff && cols <= 0xffff) consoleSizes.set(id, { rows, cols })
}

/** The resize of each running exec with a terminal, by exec ID (attach-exec.ts registers them). */
export const execResizers = new Map<string, (rows: number, cols: number) => void>()

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Waits until `id` runs; false when the client went away or it was removed. */
async function untilRunning(ctx: RequestContext, id: string, gone: () => boolean): Promise<boolean> {
  for (;;) {
    if (gone()) return false
    let c: Container
    try {
      c = await getContainer(ctx.store, id)
    } catch {
      return false
    }
    if (c.running) return true
    await sleep(20)
  }
}

/** POST /containers/{id}/attach on a container with a terminal. */
export async function attachTtyHandler(ctx: RequestContext, c: Container): Promise<void> {
  const detachKeys = ctx.query.get('detachKeys') ?? ''
  try {
    parseDetachKeys(detachKeys)
  } catch (err) {
    throw new ApiError(400, (err as Error).message)
  }
  const stream = boolParam(ctx.query, 'stream')
  const wantStdin = boolParam(ctx.query, 'stdin') && c.record.Config.OpenStdin === true
  const wantOut = boolParam(ctx.query, 'stdout') || boolParam(ctx.query, 'stderr')
  const waitForStart = !c.running && stream
  if (waitForStart) pendingAttaches.set(c.id, (pendingAttaches.get(c.id) ?? 0) + 1)
  const { input, output } = ctx.hijack()
  let closed = false
  const onGone = (): void => {
    closed = true
  }
  output.on('close', onGone)
  output.on('error', onGone)
  input.on('error', () => {})
  try {
    if (!stream) return
    if (waitForStart) {
      const ran = await untilRunning(ctx, c.id, () => closed)
      if (!ran) return
    } else if (!c.running) return
    const sink: Writable = wantOut ? output : new (await import('node:stream')).Writable({ write: (_c, _e, cb) => cb() })
    let session
    try {
      session = await attachTty(ctx.store, c.id, { stdout: sink, ...(wantStdin ? { stdin: input } : {}), detachKeys })
    } catch (err) {
      ctx.log(`attach ${c.id}: ${(err as Error).message}`)
      return
    }
    // The client leaving (its connection closed) is a detach: the container runs on. The server's
    // connections are half-open ones, so a killed client is only an end of its input: with stdin
    // attached (a terminal, which never ends by itself) that end is taken for the client's going.
    const leave = (): void => session.close()
    output.on('close', leave)
    if (wantStdin) input.once('end', leave)
    if (closed) session.close()
    await session.done
    output.off('close', leave)
  } finally {
    if (waitForStart) {
      const n = (pendingAttaches.get(c.id) ?? 1) - 1
      if (n <= 0) pendingAttaches.delete(c.id)
      else pendingAttaches.set(c.id, n)
    }
    if (!(output as Duplex).destroyed) output.end()
  }
}

function size(ctx: RequestContext): { rows: number; cols: number } {
  const rows = intParam(ctx.query, 'h', 0)!
  const cols = intParam(ctx.query, 'w', 0)!
  if (rows < 0 || cols < 0 || rows > 0xffff || cols > 0xffff) throw new ApiError(400, `invalid terminal size ${rows}x${cols}`)
  return { rows, cols }
}

/** POST /containers/{id}/resize?h=&w= */
export async function resizeContainerHandler(ctx: RequestContext): Promise<void> {
  const { rows, cols } = size(ctx)
  await resizeContainerTty(ctx.store, ctx.params.id!, rows, cols)
  writeEmpty(ctx.res, 200)
}
