/**
 * Into a running container: exec (docker exec: `runc exec`, its process
 * taking the container's spec and the caller's overrides) and top
 * (docker top: `runc ps`, ps's table split as docker's parsePSOutput
 * splits it).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, constants as fsConstants, openSync } from 'node:fs'
import { ReadStream } from 'node:tty'
import { closeFd, makeRaw, openPty, setWindowSize } from '../sys/index.js'
import { StrataError } from '../errors/index.js'
import type { Store } from '../store/index.js'
import { resolveUser } from './bundle.js'
import { DEFAULT_RUNTIME, getContainer } from './process.js'

export interface ExecOptions {
  cmd: string[]
  /** KEY=VALUE added to the container's environment. */
  env?: string[]
  workingDir?: string
  /** "uid[:gid]" or a name from the container's /etc/passwd. */
  user?: string
  /** A terminal (docker exec -t): runc allocates a pty and relays it through its own stdio. */
  tty?: boolean
  /** The child's stdio: 'inherit' (the caller's streams; stdin only with interactive), 'pipe', or three descriptors. */
  stdio?: 'inherit' | 'pipe' | [number, number, number]
  /** Keep stdin attached (docker exec -i); otherwise the process reads /dev/null. */
  interactive?: boolean
  /** Run it in the background (docker exec -d): returns once it runs, with 0; nothing of its output is kept. */
  detach?: boolean
  /** Receives the runc child (to read or write its pipes). */
  onSpawn?: (child: ChildProcess) => void
  runtime?: string
}

function notRunning(c: { id: string }): StrataError {
  return new StrataError('IN_USE', `Container ${c.id} is not running`, { details: { id: c.id } })
}

/** Runs a process in a running container and returns its exit code (126/127 as docker's for one that cannot start). */
export async function execContainer(store: Store, ref: string, opts: ExecOptions): Promise<number> {
  if (opts.cmd.length === 0) throw new StrataError('INVALID_ARGUMENT', 'No exec command specified')
  const c = await getContainer(store, ref)
  if (!c.running) throw notRunning(c)
  if (c.record.State.Paused) throw new StrataError('IN_USE', `Container ${c.id} is paused, unpause the container before exec`, { details: { id: c.id } })
  if (c.record.State.Restarting) throw new StrataError('IN_USE', `Container ${c.id} is restarting, wait until the container is running`, { details: { id: c.id } })
  const args = ['exec']
  const detach = opts.detach === true
  if (detach) args.push('--detach')
  else if (opts.tty === true) args.push('--tty')
  for (const kv of opts.env ?? []) args.push('--env', kv)
  if (opts.workingDir !== undefined && opts.workingDir !== '') args.push('--cwd', opts.workingDir)
  if (opts.user !== undefined && opts.user !== '') {
    // Names are looked up in the container's own files, through its init's root.
    const u = await resolveUser(`/proc/${c.record.State.Pid}/root`, opts.user)
    args.push('--user', `${u.uid}:${u.gid}`)
  }
  args.push(c.id, ...opts.cmd)
  if (detach) return execDetached(opts.runtime ?? DEFAULT_RUNTIME, args, c.id, opts.cmd[0]!)
  const fds = Array.isArray(opts.stdio) ? opts.stdio : undefined
  const stdin = opts.interactive === true ? (opts.stdio === 'pipe' ? 'pipe' : 'inherit') : 'ignore'
  const out = opts.stdio === 'pipe' ? 'pipe' : 'inherit'
  const child = spawn(opts.runtime ?? DEFAULT_RUNTIME, args, { stdio: fds ?? [stdin, out, out] })
  opts.onSpawn?.(child)
  return new Promise((resolve, reject) => {
    child.once('error', (err) => reject(new StrataError('NOT_SUPPORTED', `Cannot exec in container ${c.id}: ${err.message}`, { cause: err })))
    child.once('close', (code, signal) => resolve(code ?? (signal === null ? 255 : 128 + 9)))
  })
}

/**
 * `runc exec --detach`: runc returns once the process runs (its stdio is
 * /dev/null, as dockerd gives a detached exec nothing to write to); a
 * process that cannot start is an error in dockerd's words, with the exit
 * code docker exec would give (127 not found, 126 otherwise).
 */
function execDetached(runtime: string, args: string[], id: string, cmd: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(runtime, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (b: Buffer) => (err += b.toString()))
    child.once('error', (e) => reject(new StrataError('NOT_SUPPORTED', `Cannot exec in container ${id}: ${e.message}`, { cause: e })))
    child.once('close', (code) => {
      if (code === 0) return resolve(0)
      const line = err.trim().split('\n').at(-1) ?? ''
      const m = /msg="((?:[^"\\]|\\.)*)"/.exec(line)
      const why = (m === null ? line : m[1]!.replace(/\\(.)/g, '$1')) || `runc exec exited with ${code}`
      const exitCode = /executable file not found|no such file or directory/.test(why) && why.includes(cmd) ? 127 : 126
      reject(new StrataError('INVALID_ARGUMENT', `OCI runtime exec failed: ${why}: unknown`, { details: { id, exitCode } }))
    })
  })
}

export interface ExecTerminal {
  /** The terminal's master: the process's output to read, its input to write. Ends once the process and runc are gone. */
  readonly terminal: ReadStream
  /** runc's PID. */
  readonly pid: number
  /** Sets the window size (runc passes it on to the container's terminal). */
  resize(rows: number, cols: number): void
  /** The process's exit code (126/127 as docker's when it cannot start). */
  readonly exit: Promise<number>
}

/**
 * An exec with a terminal for a caller that has none (the Engine API
 * server): a pty is opened here and its slave given to `runc exec --tty`
 * as stdin, stdout and stderr; runc makes the container's own terminal,
 * relays between the two and resizes the container's from this one when
 * it gets SIGWINCH (sent after each resize: runc is not this pty's
 * session, so the kernel does not). The CLI's exec -it lets runc use the
 * user's terminal directly instead.
 */
export async function execTerminal(store: Store, ref: string, opts: ExecOptions & { size?: { rows: number; cols: number } }): Promise<ExecTerminal> {
  const { master, slavePath } = openPty()
  let slave: number
  try {
    if (opts.size !== undefined && opts.size.rows > 0 && opts.size.cols > 0) setWindowSize(master, opts.size.rows, opts.size.cols)
    slave = openSync(slavePath, fsConstants.O_RDWR | fsConstants.O_NOCTTY)
    // Raw from the start: runc sets its console raw too, but not before all output (seen: "\r\r\n").
    makeRaw(slave)
  } catch (err) {
    closeFd(master)
    throw err
  }
  let child: ChildProcess | undefined
  let spawned!: () => void
  const isSpawned = new Promise<void>((resolve) => (spawned = resolve))
  const exit = execContainer(store, ref, {
    ...opts,
    tty: true,
    interactive: true,
    stdio: [slave, slave, slave],
    onSpawn: (ch) => {
      child = ch
      spawned()
    },
  })
  try {
    // A refusal (not running, paused) rejects before anything is spawned.
    await Promise.race([exit, isSpawned])
  } catch (err) {
    closeFd(master)
    throw err
  } finally {
    // runc has its copy; this one would keep the terminal open after runc is gone.
    closeSync(slave)
  }
  const terminal = new ReadStream(master)
  terminal.on('error', () => {})
  return {
    terminal,
    pid: child!.pid ?? 0,
    resize: (rows, cols) => {
      if (terminal.destroyed || rows <= 0 || cols <= 0) return
      setWindowSize(master, rows, cols)
      if (child?.pid !== undefined && child.exitCode === null) child.kill('SIGWINCH')
    },
    exit,
  }
}

export interface TopResult {
  Titles: string[]
  Processes: string[][]
}

/** docker top: ps's table (default `-ef`) for the container's processes. */
export async function topContainer(store: Store, ref: string, psArgs: string[] = [], opts: { runtime?: string } = {}): Promise<TopResult> {
  const c = await getContainer(store, ref)
  if (!c.running) throw notRunning(c)
  const args = ['ps', c.id, ...(psArgs.length === 0 ? ['-ef'] : psArgs)]
  const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(opts.runtime ?? DEFAULT_RUNTIME, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let o = ''
    let e = ''
    child.stdout.on('data', (b: Buffer) => (o += b.toString()))
    child.stderr.on('data', (b: Buffer) => (e += b.toString()))
    child.on('error', (err) => resolve({ code: -1, stdout: '', stderr: err.message }))
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: o, stderr: e }))
  })
  if (code !== 0) throw new StrataError('INVALID_ARGUMENT', `Error running top: ${stderr.trim() || `runc ps exited with ${code}`}`, { details: { id: c.id } })
  return parsePsOutput(stdout)
}

/** docker's parsePSOutput: titles from the first line, each row split into as many fields, the last one taking the rest. */
export function parsePsOutput(text: string): TopResult {
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  const titles = (lines[0] ?? '').trim().split(/\s+/)
  const processes = lines.slice(1).map((line) => {
    const fields = line.trim().split(/\s+/)
    if (fields.length <= titles.length) return fields
    return [...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')]
  })
  return { Titles: titles, Processes: processes }
}
