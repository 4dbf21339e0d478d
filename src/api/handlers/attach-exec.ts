/**
 * Into a container's process through the Engine API: attach, top and
 * exec (lifecycle.ts has start, stop, kill, restart, wait and logs), each
 * the container library's call (src/container logs.ts, exec.ts) that the
 * CLI makes, on containers run by the same monitor as `strata start`.
 *
 * Output streams as dockerd sends them: docker's stdcopy framing (an
 * 8-byte header: stream 1 stdout / 2 stderr, three zeros, the payload
 * size big-endian) when the container has no terminal, the bytes alone
 * when it has one.
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import type { Writable } from 'node:stream'
import {
  execContainer,
  execTerminal,
  feedContainerStdin,
  getContainer,
  logSize,
  readLogs,
  topContainer,
} from '../../container/index.js'
import type { Container } from '../../containerdb/index.js'
import { containerEvent } from '../../events/index.js'
import { isStrataError } from '../../errors/index.js'
import { ApiError } from '../errors.js'
import { boolParam, intParam, readJsonObject } from '../request.js'
import { attachTtyHandler, execResizers } from './tty.js'
import { stdcopyFrame, writeEmpty, writeJson } from '../response.js'
import type { RequestContext } from '../types.js'

function imageOf(c: Container): string {
  return c.record.Config.Image ?? c.record.Image
}

async function event(ctx: RequestContext, action: string, c: Container, extra: Record<string, string> = {}): Promise<void> {
  await ctx.events.append(containerEvent(action, c.id, imageOf(c), c.name, extra))
}

function send(out: Writable, chunk: Buffer): Promise<void> {
  return new Promise((resolve) => {
    if (out.destroyed || out.writableEnded) return resolve()
    if (out.write(chunk)) resolve()
    else {
      out.once('drain', resolve)
      out.once('close', resolve)
    }
  })
}

/**
 * POST /containers/{id}/attach?stream=&stdout=&stderr=&stdin=&logs= :
 * the hijacked connection carries the container's output. Attached
 * before its start (docker run's order: attach, wait, start), the
 * container's log is followed from its start to its exit; attached while
 * it runs, from now on (from its first line with logs=1).
 */
export async function attachHandler(ctx: RequestContext): Promise<void> {
  const c = await getContainer(ctx.store, ctx.params.id!)
  const tty = c.record.Config.Tty === true
  if (tty) return attachTtyHandler(ctx, c)
  if (ctx.query.get('detachKeys')) throw new ApiError(501, 'detachKeys without a terminal: strata serve finds detach keys only in a terminal\'s input')
  const stream = boolParam(ctx.query, 'stream')
  const logs = boolParam(ctx.query, 'logs')
  const wantOut = boolParam(ctx.query, 'stdout')
  const wantErr = boolParam(ctx.query, 'stderr')
  const wantStdin = boolParam(ctx.query, 'stdin') && c.record.Config.OpenStdin === true
  const ac = new AbortController()
  const fromOffset = logs ? 0 : await logSize(ctx.store, c.id)
  let opened!: () => void
  const isOpen = new Promise<void>((resolve) => (opened = resolve))
  const entries = readLogs(ctx.store, c.id, {
    follow: stream,
    fromOffset,
    stdout: wantOut,
    stderr: wantErr,
    signal: ac.signal,
    ...(stream && !c.running ? { awaitStartAfter: c.record.State.StartedAt } : {}),
    onOpen: () => opened(),
  })
  const first = entries.next()
  // Errors before the log is open (no such container) are still an HTTP status.
  await Promise.race([isOpen, first])
  const { input, output } = ctx.hijack()
  input.on('error', () => {})
  // docker run -i: the client's input is the container's stdin (through its monitor's fifo); its CloseWrite ends it.
  if (wantStdin) void feedContainerStdin(ctx.store, c.id, input, ac.signal)
  else input.on('data', () => {})
  output.on('close', () => ac.abort(new Error('the client went away')))
  output.on('error', () => ac.abort(new Error('the client went away')))
  try {
    let r = await first
    while (r.done !== true) {
      if ((r.value.stream === 'stdout' && wantOut) || (r.value.stream === 'stderr' && wantErr)) await send(output, stdcopyFrame(tty, r.value.stream, Buffer.from(r.value.log)))
      r = await entries.next()
    }
  } catch (err) {
    if (!ac.signal.aborted && !isStrataError(err, 'NOT_FOUND')) ctx.log(`attach ${c.id}: ${(err as Error).message}`)
  } finally {
    await entries.return()
  }
  output.end()
}

/** GET /containers/{id}/top?ps_args= */
export async function topHandler(ctx: RequestContext): Promise<void> {
  const psArgs = (ctx.query.get('ps_args') ?? '').split(/\s+/).filter((a) => a !== '')
  writeJson(ctx.res, 200, await topContainer(ctx.store, ctx.params.id!, psArgs))
}

/** An exec made by POST /containers/{id}/exec, kept by this server until it is inspected after its end (dockerd keeps them in memory too). */
interface ExecInstance {
  id: string
  containerId: string
  cmd: string[]
  env: string[]
  workingDir: string
  user: string
  tty: boolean
  attachStdin: boolean
  attachStdout: boolean
  attachStderr: boolean
  running: boolean
  exitCode: number | null
  pid: number
  started: boolean
}

const execs = new Map<string, ExecInstance>()
/** Finished execs kept for inspection; the oldest go beyond this many. */
const EXECS_KEPT = 256

function stringList(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return []
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new ApiError(400, `${what} must be a list of strings`)
  return v as string[]
}

/** POST /containers/{id}/exec : 201 {"Id"}. */
export async function execCreateHandler(ctx: RequestContext): Promise<void> {
  const body = await readJsonObject(ctx)
  const c = await getContainer(ctx.store, ctx.params.id!)
  if (!c.running) throw new ApiError(409, `Container ${c.id} is not running`)
  const cmd = stringList(body.Cmd, 'Cmd')
  if (cmd.length === 0) throw new ApiError(400, 'No exec command specified')
  if (body.Privileged === true) throw new ApiError(501, 'privileged exec')
  const inst: ExecInstance = {
    id: randomBytes(32).toString('hex'),
    containerId: c.id,
    cmd,
    env: stringList(body.Env, 'Env'),
    workingDir: typeof body.WorkingDir === 'string' ? body.WorkingDir : '',
    user: typeof body.User === 'string' ? body.User : '',
    tty: body.Tty === true,
    attachStdin: body.AttachStdin === true,
    attachStdout: body.AttachStdout !== false,
    attachStderr: body.AttachStderr !== false,
    running: false,
    exitCode: null,
    pid: 0,
    started: false,
  }
  if (execs.size >= EXECS_KEPT) {
    for (const [id, e] of execs) {
      if (!e.running) {
        execs.delete(id)
        break
      }
    }
  }
  execs.set(inst.id, inst)
  await event(ctx, `exec_create: ${cmd.join(' ')}`, c, { execID: inst.id })
  writeJson(ctx.res, 201, { Id: inst.id })
}

function findExec(id: string): ExecInstance {
  const inst = execs.get(id)
  if (inst === undefined) throw new ApiError(404, `No such exec instance: ${id}`)
  return inst
}

/** POST /exec/{id}/start : the hijacked connection carries the process's output (stdcopy); Detach: runs it in the background. */
export async function execStartHandler(ctx: RequestContext): Promise<void> {
  const body = await readJsonObject(ctx)
  const inst = findExec(ctx.params.id!)
  if (inst.started) throw new ApiError(409, `Error: Exec command ${inst.id} has already run`)
  const c = await getContainer(ctx.store, inst.containerId)
  if (!c.running) throw new ApiError(409, `Container ${c.id} is not running`)
  inst.started = true
  inst.running = true
  if (inst.tty) return execTerminalStart(ctx, inst, c, body.Detach === true)
  let child: ChildProcess | undefined
  let spawned: (ch: ChildProcess | undefined) => void = () => {}
  // execContainer spawns after awaits of its own: the output is pumped once the child exists (or the exec failed first).
  const childReady = new Promise<ChildProcess | undefined>((resolve) => (spawned = resolve))
  const done = execContainer(ctx.store, c.id, {
    cmd: inst.cmd,
    env: inst.env,
    workingDir: inst.workingDir,
    user: inst.user,
    stdio: 'pipe',
    interactive: inst.attachStdin && body.Detach !== true,
    onSpawn: (ch) => {
      child = ch
      inst.pid = ch.pid ?? 0
      spawned(ch)
    },
  }).then(
    (code) => code,
    (err: unknown) => {
      ctx.log(`exec ${inst.id}: ${(err as Error).message}`)
      return 126
    },
  )
  void done.then(() => spawned(undefined))
  const finish = done.then(async (code) => {
    inst.running = false
    inst.exitCode = code
    await event(ctx, 'exec_die', c, { execID: inst.id, exitCode: String(code) })
  })
  await event(ctx, `exec_start: ${inst.cmd.join(' ')}`, c, { execID: inst.id })
  if (body.Detach === true) {
    child = await childReady
    child?.stdout?.resume()
    child?.stderr?.resume()
    return writeEmpty(ctx.res, 204)
  }
  const { input, output } = ctx.hijack()
  input.on('error', () => {})
  child = await childReady
  if (inst.attachStdin && child?.stdin !== null && child?.stdin !== undefined) {
    // docker exec -i: the client's input is the process's stdin; its end (the client's CloseWrite) closes it.
    child.stdin.on('error', () => {})
    input.pipe(child.stdin)
  } else input.on('data', () => {})
  if (child !== undefined) {
    const pump = (stream: 'stdout' | 'stderr', from: NodeJS.ReadableStream | null, wanted: boolean): Promise<void> =>
      new Promise((resolve) => {
        if (from === null) return resolve()
        from.on('data', (b: Buffer) => {
          if (wanted && !output.destroyed) output.write(stdcopyFrame(inst.tty, stream, b))
        })
        from.on('end', resolve)
        from.on('error', () => resolve())
      })
    await Promise.all([pump('stdout', child.stdout, inst.attachStdout), pump('stderr', child.stderr, inst.attachStderr)])
  }
  await finish
  output.end()
}

/**
 * An exec with a terminal: the process on a pty of this server's
 * (src/container execTerminal), the hijacked connection carrying raw
 * bytes both ways; ends once the process exited and its output is sent.
 */
async function execTerminalStart(ctx: RequestContext, inst: ExecInstance, c: Container, detach: boolean): Promise<void> {
  let term: Awaited<ReturnType<typeof execTerminal>>
  try {
    term = await execTerminal(ctx.store, c.id, { cmd: inst.cmd, env: inst.env, workingDir: inst.workingDir, user: inst.user })
  } catch (err) {
    inst.running = false
    inst.exitCode = 126
    throw err
  }
  inst.pid = term.pid
  execResizers.set(inst.id, term.resize)
  const finish = term.exit.then(
    async (code) => {
      inst.running = false
      inst.exitCode = code
      execResizers.delete(inst.id)
      await event(ctx, 'exec_die', c, { execID: inst.id, exitCode: String(code) })
    },
    (err: unknown) => {
      inst.running = false
      inst.exitCode = 126
      execResizers.delete(inst.id)
      ctx.log(`exec ${inst.id}: ${(err as Error).message}`)
    },
  )
  await event(ctx, `exec_start: ${inst.cmd.join(' ')}`, c, { execID: inst.id })
  const ended = new Promise<void>((resolve) => {
    term.terminal.on('end', resolve)
    term.terminal.on('close', resolve)
    term.terminal.on('error', () => resolve())
  })
  if (detach) {
    term.terminal.resume()
    return writeEmpty(ctx.res, 204)
  }
  const { input, output } = ctx.hijack()
  input.on('error', () => {})
  output.on('error', () => {})
  if (inst.attachStdin) input.on('data', (b: Buffer) => void (term.terminal.destroyed ? undefined : term.terminal.write(b)))
  else input.on('data', () => {})
  term.terminal.on('data', (b: Buffer) => {
    if (inst.attachStdout && !output.destroyed) output.write(b)
  })
  await Promise.all([finish, ended])
  term.terminal.destroy()
  output.end()
}

/** POST /exec/{id}/resize?h=&w= : the terminal of a running exec (nothing for one without). */
export async function execResizeHandler(ctx: RequestContext): Promise<void> {
  const inst = findExec(ctx.params.id!)
  const rows = intParam(ctx.query, 'h', 0)!
  const cols = intParam(ctx.query, 'w', 0)!
  if (rows < 0 || cols < 0 || rows > 0xffff || cols > 0xffff) throw new ApiError(400, `invalid terminal size ${rows}x${cols}`)
  execResizers.get(inst.id)?.(rows, cols)
  writeEmpty(ctx.res, 200)
}

/** GET /exec/{id}/json */
export async function execInspectHandler(ctx: RequestContext): Promise<void> {
  const inst = findExec(ctx.params.id!)
  writeJson(ctx.res, 200, {
    CanRemove: false,
    ContainerID: inst.containerId,
    DetachKeys: '',
    ExitCode: inst.exitCode,
    ID: inst.id,
    OpenStderr: inst.attachStderr,
    OpenStdin: inst.attachStdin,
    OpenStdout: inst.attachStdout,
    ProcessConfig: { arguments: inst.cmd.slice(1), entrypoint: inst.cmd[0] ?? '', privileged: false, tty: inst.tty, ...(inst.user === '' ? {} : { user: inst.user }) },
    Running: inst.running,
    Pid: inst.pid,
  })
}
