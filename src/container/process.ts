/**
 * A container's process, without a daemon: start (spawn its monitor),
 * stop, kill, wait, restart, pause/unpause, and the reconciliation of a
 * record whose monitor died. The monitor (monitor/, its contract in
 * monitor/types.ts) runs the process and records what happens to it;
 * these calls only ask runc to signal it and read the record.
 *
 * Every call is async, never exits the process, and every wait takes an
 * AbortSignal: the Engine API server (src/api) calls them too.
 */
import { spawn } from 'node:child_process'
import { closeSync, existsSync, openSync } from 'node:fs'
import { mkdir, rm, unlink, writeFile } from 'node:fs/promises'
import { constants as osConstants } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { StrataError, isErrno, isStrataError } from '../errors/index.js'
import { DirLock, formatRfc3339Nano, nowNs } from '../fs/index.js'
import { monitorFilePath, readMonitorInfo, shortContainerId, type Container, type ContainerRecord } from '../containerdb/index.js'
import type { Store } from '../store/index.js'
import { resolveUser, runtimeSpec } from './bundle.js'
import { DirWatch } from './dir-watch.js'
import { INIT_FILES } from './init-files.js'
import { bundleDir, logPath, monitorLogPath, pidFilePath, runDir, stdinFifoPath } from './monitor/paths.js'
import type { MonitorHello } from './monitor/monitor.js'

export const DEFAULT_RUNTIME = 'runc'

const MONITOR_MAIN = fileURLToPath(new URL('./monitor/main.js', import.meta.url))

export interface StartOptions {
  /** The runc binary (default: "runc" on PATH). */
  runtime?: string
  /** A terminal's output is held for the first attach (docker run -it attaches before the start; see attachTty). */
  attachFirst?: boolean
  /** A terminal's window size to start with (rows, cols). */
  consoleSize?: { rows: number; cols: number }
}

export interface StartResult {
  id: string
  /** It was running already: nothing was done (the API's 304). */
  alreadyRunning: boolean
  /** The container's init process on the host. */
  pid: number
}

export interface StopOptions {
  /** Seconds between the stop signal and SIGKILL (default: Config.StopTimeout, else 10; negative: wait for ever). */
  timeout?: number
  runtime?: string
  signal?: AbortSignal
  /** Called (and awaited) before each signal a stop sends: the stop signal, then SIGKILL when the timeout ran out (dockerd logs a kill event for each). */
  onSignal?: (signal: number) => void | Promise<void>
}

export interface WaitOptions {
  /** docker's wait conditions: `not-running` (default), `next-exit`, `removed`. */
  condition?: 'not-running' | 'next-exit' | 'removed'
  signal?: AbortSignal
}

export interface WaitResult {
  exitCode: number
  /** State.Error, when there was one. */
  error: string
}

function runc(args: string[], runtime = DEFAULT_RUNTIME): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(runtime, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.on('error', (err) => resolve({ code: -1, stderr: err.message }))
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }))
  })
}

/** runc's error line without its log decoration. */
function runcMessage(stderr: string): string {
  const line = stderr.trim().split('\n').at(-1) ?? ''
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(line)
  return (m === null ? line : m[1]!.replace(/\\"/g, '"')).trim()
}

/** Kills a container's processes and deletes runc's state for it (best effort). */
export async function killRunc(id: string, runtime = DEFAULT_RUNTIME): Promise<void> {
  await runc(['kill', '--all', id, 'KILL'], runtime)
  await runc(['delete', '--force', id], runtime)
}

// Signals.

/**
 * A signal as docker takes it (signal.ParseSignal): a number, or a name
 * with or without SIG, any case. INVALID_ARGUMENT "Invalid signal: X".
 */
export function parseSignal(text: string): number {
  if (/^[0-9]+$/.test(text)) {
    const n = Number(text)
    if (n === 0 || n > 64) throw new StrataError('INVALID_ARGUMENT', `Invalid signal: ${text}`)
    return n
  }
  const name = text.toUpperCase().replace(/^SIG/, '')
  const n = (osConstants.signals as Record<string, number>)[`SIG${name}`]
  if (n === undefined) throw new StrataError('INVALID_ARGUMENT', `Invalid signal: ${text}`)
  return n
}

// Finding a container, with its state made true first.

/** A start, a stop or a reconciliation of one container at a time, across processes: a flock on its record directory. */
async function withContainerLock<T>(store: Store, id: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const dir = store.containers.path(id)
  for (;;) {
    signal?.throwIfAborted()
    const lock = DirLock.tryAcquire(dir, 'exclusive')
    if (lock !== undefined) {
      try {
        return await fn()
      } finally {
        lock.close()
      }
    }
    await new Promise((r) => setTimeout(r, 20))
  }
}

/**
 * A record that says Running while its monitor is gone (killed, or lost
 * in a reboot) is made true, as dockerd does with its containers when it
 * starts: whatever of the container still runs is killed (exit code 137,
 * else 255: the status is unknown), runc's state, the bundle and the
 * monitor's mount of the layer are released, State says Exited, and a
 * container created with --rm is removed. Returns the container as it is
 * now (undefined when removed).
 */
export async function reconcileContainer(store: Store, c: Container, runtime = DEFAULT_RUNTIME): Promise<Container | undefined> {
  if (!c.record.State.Running || c.running) return c
  return withContainerLock(store, c.id, () => reconcileLocked(store, c.id, runtime))
}

/** reconcileContainer's work, holding the container's lock. */
async function reconcileLocked(store: Store, id: string, runtime: string): Promise<Container | undefined> {
  // ps and inspect open the store to read; this writes.
  await store.ensureRecovered()
  let now: Container
  try {
    now = await store.containers.get(id)
  } catch (err) {
    if (isStrataError(err, 'NOT_FOUND')) return undefined
    throw err
  }
  if (!now.record.State.Running || now.running) return now
  const monitor = readMonitorInfo(store.root, id)
  const state = await runc(['state', id], runtime)
  const alive = state.code === 0
  if (alive) await runc(['kill', '--all', id, 'KILL'], runtime)
  await runc(['delete', '--force', id], runtime)
  await rm(bundleDir(store.root, id), { recursive: true, force: true }).catch(() => {})
  await unlink(stdinFifoPath(store.root, id)).catch(() => {})
  await rm(runDir(id), { recursive: true, force: true }).catch(() => {})
  try {
    const m = await store.layers.getMount(id)
    if (m.mountCount > 0) await store.layers.unmount(id)
  } catch (err) {
    if (!isStrataError(err, 'NOT_FOUND')) throw err
  }
  const why = `the container's monitor${monitor === undefined ? '' : ` (pid ${monitor.pid})`} is gone`
  const record = await store.containers.update(id, (r) => {
    const exitCode = alive ? 137 : r.State.Restarting ? r.State.ExitCode : 255
    r.State = { ...r.State, Running: false, Paused: false, Restarting: false, Pid: 0, ExitCode: exitCode, Error: why, FinishedAt: formatRfc3339Nano(nowNs(), 0) }
  })
  await unlink(monitorFilePath(store.root, id)).catch(() => {})
  if ((await readHostConfig(store, id)).AutoRemove === true) {
    const { removeContainer } = await import('./lifecycle.js')
    await removeContainer(store, id, { force: true }).catch(() => {})
    return undefined
  }
  return { ...now, record, running: false }
}

async function readHostConfig(store: Store, id: string): Promise<{ AutoRemove?: boolean }> {
  const { readFile } = await import('node:fs/promises')
  try {
    return JSON.parse(await readFile(join(store.containers.path(id), 'hostconfig.json'), 'utf8')) as { AutoRemove?: boolean }
  } catch {
    return {}
  }
}

/** Every container, reconciled (ps, the API's list). */
export async function reconciledContainers(store: Store): Promise<Container[]> {
  const out: Container[] = []
  for (const c of await store.containers.list()) {
    const now = await reconcileContainer(store, c)
    if (now !== undefined) out.push(now)
  }
  return out
}

/** store.containers.get, reconciled; NOT_FOUND when it is gone. */
export async function getContainer(store: Store, ref: string): Promise<Container> {
  const c = await store.containers.get(ref)
  const now = await reconcileContainer(store, c)
  if (now === undefined) throw new StrataError('NOT_FOUND', `No such container: ${ref}`, { details: { ref } })
  return now
}

// Start.

/**
 * Starts a container in the background (docker start): mounts its layer,
 * writes the runc bundle and spawns its monitor, which runs it; returns
 * once the process runs. A container that runs already is left alone
 * (alreadyRunning). Two starts of one container queue on a lock: the
 * second finds it running. A process that cannot start (no such command)
 * is an error with dockerd's words, and the record keeps dockerd's exit
 * code for it (127, 126, 128).
 */
export async function startContainer(store: Store, ref: string, opts: StartOptions = {}): Promise<StartResult> {
  const runtime = opts.runtime ?? DEFAULT_RUNTIME
  const first = await getContainer(store, ref)
  return withContainerLock(store, first.id, async () => {
    const c = await reconcileLocked(store, first.id, runtime)
    if (c === undefined) throw new StrataError('NOT_FOUND', `No such container: ${ref}`, { details: { ref } })
    if (c.running) return { id: c.id, alreadyRunning: true, pid: c.record.State.Pid }
    if (c.record.State.RemovalInProgress || c.record.State.Dead) {
      throw new StrataError('IN_USE', `Container ${c.id} is marked for removal and cannot be started`, { details: { id: c.id } })
    }
    const root = store.root
    const bundle = bundleDir(root, c.id)
    const rootfs = await store.layers.mount(c.id)
    let handedOver = false
    try {
      const user = await resolveUser(rootfs, c.record.Config.User ?? '')
      const spec = runtimeSpec(c.record.Config, rootfs, shortContainerId(c.id), user, initFileBinds(store.containers.path(c.id)))
      await rm(bundle, { recursive: true, force: true })
      await mkdir(bundle, { mode: 0o700 })
      await writeFile(join(bundle, 'config.json'), JSON.stringify(spec))
      await store.containers.update(c.id, (r) => {
        // dockerd's containerStart: a start by hand resets the manual stop; the log is json-file's.
        r.HasBeenManuallyStopped = false
        r.LogPath = logPath(root, c.id)
      })
      const flags = c.record.Config.Tty !== true ? [] : [...(opts.attachFirst === true ? ['--attach-first'] : []), ...(opts.consoleSize === undefined ? [] : [`--size=${opts.consoleSize.rows}x${opts.consoleSize.cols}`])]
      const hello = await spawnMonitor(root, c.id, runtime, flags)
      // From any hello on, the monitor owns the mount, the bundle and the record's state.
      handedOver = hello !== undefined
      if (hello === undefined) {
        throw new StrataError('SYSCALL', `Cannot start container ${c.id}: its monitor died before it ran (see ${monitorLogPath(root, c.id)})`)
      }
      if (!hello.ok) {
        throw new StrataError('INVALID_ARGUMENT', hello.error, { details: { id: c.id, exitCode: hello.exitCode } })
      }
      return { id: c.id, alreadyRunning: false, pid: hello.pid }
    } finally {
      if (!handedOver) {
        await runc(['delete', '--force', c.id], runtime)
        await rm(bundle, { recursive: true, force: true }).catch(() => {})
        await store.layers.unmount(c.id).catch(() => {})
      }
    }
  })
}

/** The container directory's hostname, hosts and resolv.conf bound over /etc (dockerd's order: resolv.conf, hostname, hosts); none for a container from before they were kept there. */
function initFileBinds(dir: string): Array<{ source: string; destination: string }> {
  const out: Array<{ source: string; destination: string }> = []
  for (const file of ['resolv.conf', 'hostname', 'hosts'] as const) {
    const source = join(dir, file)
    if (existsSync(source)) out.push({ source, destination: INIT_FILES[file] })
  }
  return out
}

/** Spawns the monitor (own session, stdio to its log file) and reads its hello; undefined when it died without one. */
async function spawnMonitor(root: string, id: string, runtime: string, flags: string[]): Promise<MonitorHello | undefined> {
  const out = openSync(monitorLogPath(root, id), 'a', 0o600)
  let child
  try {
    child = spawn(process.execPath, [MONITOR_MAIN, root, id, runtime, ...flags], { detached: true, stdio: ['ignore', out, out, 'pipe'] })
  } finally {
    closeSync(out)
  }
  const pipe = child.stdio[3] as import('node:stream').Readable
  const text = await new Promise<string>((resolve) => {
    let buf = ''
    pipe.on('data', (c: Buffer) => (buf += c.toString()))
    pipe.on('end', () => resolve(buf))
    pipe.on('error', () => resolve(buf))
    child.on('error', () => resolve(buf))
  })
  pipe.destroy()
  child.unref()
  try {
    return JSON.parse(text) as MonitorHello
  } catch {
    return undefined
  }
}

// Wait.

/**
 * Waits for the container to stop (docker wait) and returns its exit
 * code. `next-exit` waits for the next stop even when it is not running
 * now; `removed` waits until the record is gone. Watches the record
 * directory (inotify), with a poll as a fallback.
 */
export async function waitContainer(store: Store, ref: string, opts: WaitOptions = {}): Promise<WaitResult> {
  const condition = opts.condition ?? 'not-running'
  const c = await getContainer(store, ref)
  const id = c.id
  let last: ContainerRecord = c.record
  let sawRunning = c.running
  const changes = new DirWatch(store.containers.path(id))
  try {
    for (;;) {
      opts.signal?.throwIfAborted()
      let now: Container | undefined
      try {
        now = await store.containers.get(id)
        now = await reconcileContainer(store, now)
      } catch (err) {
        if (!isStrataError(err, 'NOT_FOUND') && !isStrataError(err, 'CORRUPT')) throw err
        now = undefined
      }
      // Gone: every condition is met; the last state read is all there is.
      if (now === undefined) return { exitCode: last.State.ExitCode, error: last.State.Error }
      {
        last = now.record
        // A run that began and ended between two reads still counts as the next exit: its FinishedAt moved on.
        if (now.running || now.record.State.FinishedAt !== c.record.State.FinishedAt) sawRunning = true
        const stopped = !now.running
        if (condition === 'not-running' && stopped) return { exitCode: last.State.ExitCode, error: last.State.Error }
        if (condition === 'next-exit' && stopped && sawRunning) return { exitCode: last.State.ExitCode, error: last.State.Error }
      }
      await changes.next(250, opts.signal)
    }
  } finally {
    changes.close()
  }
}

/** Waits until `id` is not running; false when `ms` passed first (ms < 0: no limit). */
async function stoppedWithin(store: Store, id: string, ms: number, signal?: AbortSignal): Promise<boolean> {
  if (ms < 0) {
    await waitContainer(store, id, signal === undefined ? {} : { signal })
    return true
  }
  const timeout = AbortSignal.timeout(Math.max(ms, 0))
  const both = signal === undefined ? timeout : AbortSignal.any([timeout, signal])
  try {
    await waitContainer(store, id, { signal: both })
    return true
  } catch (err) {
    if (timeout.aborted && !(signal?.aborted ?? false)) return false
    throw err
  }
}

// Stop, kill, restart.

function notRunning(ref: string, c: Container, verb: string): StrataError {
  return new StrataError('IN_USE', `Cannot ${verb} container: ${ref}: Container ${c.id} is not running`, { details: { id: c.id } })
}

/** Wakes a monitor waiting to restart its container (it re-reads the record and finds it stopped by hand). */
function wakeMonitor(store: Store, id: string): void {
  const info = readMonitorInfo(store.root, id)
  if (info === undefined) return
  try {
    process.kill(info.pid, 'SIGUSR1')
  } catch (err) {
    if (!isErrno(err, 'ESRCH')) throw err
  }
}

/** Whether runc has container `id` created, running or paused. */
async function runcRunning(id: string, runtime: string): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(runtime, ['state', id], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.on('error', () => resolve(false))
    child.on('close', (code) => {
      if (code !== 0) return resolve(false)
      try {
        resolve((JSON.parse(out) as { status?: string }).status !== 'stopped')
      } catch {
        resolve(false)
      }
    })
  })
}

/** Sends `signal` to the container's init process through runc. */
async function signalInit(id: string, signal: number, runtime: string, all = false): Promise<void> {
  const r = await runc(['kill', ...(all ? ['--all'] : []), id, String(signal)], runtime)
  if (r.code === 0) return
  // A process that ended in between (runc then complains about whatever it no longer finds) is what the caller wanted anyway.
  if (!(await runcRunning(id, runtime))) return
  if (!/not running|does not exist|container not running|process already finished/i.test(r.stderr)) {
    throw new StrataError('SYSCALL', `Cannot send signal ${signal} to container ${id}: ${runcMessage(r.stderr)}`, { details: { id, signal } })
  }
}

/**
 * docker stop: the stop signal (Config.StopSignal, else SIGTERM), then
 * SIGKILL after the timeout; returns once it stopped (the layer is then
 * unmounted). A container that is not running is left as it is
 * (wasRunning false: docker prints its name all the same, the API says 304).
 * A stop counts as "by hand": no restart policy brings it back.
 */
export async function stopContainer(store: Store, ref: string, opts: StopOptions = {}): Promise<{ id: string; wasRunning: boolean }> {
  const runtime = opts.runtime ?? DEFAULT_RUNTIME
  const c = await getContainer(store, ref)
  if (!c.running) return { id: c.id, wasRunning: false }
  await store.containers.update(c.id, (r) => {
    r.HasBeenManuallyStopped = true
  })
  if (c.record.State.Restarting) {
    wakeMonitor(store, c.id)
    await waitContainer(store, c.id, opts.signal === undefined ? {} : { signal: opts.signal })
    return { id: c.id, wasRunning: true }
  }
  const stopSignal = parseSignal(c.record.Config.StopSignal || 'SIGTERM')
  const timeout = opts.timeout ?? (c.record.Config as { StopTimeout?: number }).StopTimeout ?? 10
  await opts.onSignal?.(stopSignal)
  await signalInit(c.id, stopSignal, runtime)
  // A paused process gets the signal once thawed (dockerd unpauses after signalling too).
  if (c.record.State.Paused) await runc(['resume', c.id], runtime)
  if (!(await stoppedWithin(store, c.id, timeout < 0 ? -1 : timeout * 1000, opts.signal))) {
    await opts.onSignal?.(osConstants.signals.SIGKILL)
    await signalInit(c.id, osConstants.signals.SIGKILL, runtime, true)
    await stoppedWithin(store, c.id, -1, opts.signal)
  }
  return { id: c.id, wasRunning: true }
}

/**
 * docker kill: sends `signal` (default SIGKILL) to the container's init
 * process. IN_USE when it is not running, INVALID_ARGUMENT for an unknown
 * signal. Counts as a stop by hand (no restart).
 */
export async function killContainer(store: Store, ref: string, signal: string | number = 'KILL', opts: { runtime?: string } = {}): Promise<{ id: string }> {
  const runtime = opts.runtime ?? DEFAULT_RUNTIME
  const sig = typeof signal === 'number' ? signal : parseSignal(signal)
  const c = await getContainer(store, ref)
  if (!c.running) throw notRunning(ref, c, 'kill')
  await store.containers.update(c.id, (r) => {
    r.HasBeenManuallyStopped = true
  })
  if (c.record.State.Restarting) {
    wakeMonitor(store, c.id)
    return { id: c.id }
  }
  await signalInit(c.id, sig, runtime)
  return { id: c.id }
}

/** docker restart: stop (when running), then start. */
export async function restartContainer(store: Store, ref: string, opts: StopOptions = {}): Promise<StartResult> {
  const c = await getContainer(store, ref)
  await stopContainer(store, c.id, opts)
  return startContainer(store, c.id, opts.runtime === undefined ? {} : { runtime: opts.runtime })
}

// Pause.

/**
 * docker pause / unpause: runc freezes the container's cgroup. IN_USE
 * when not running, already paused, or not paused; NOT_SUPPORTED with the
 * kernel's reason when the freezer is not there.
 */
export async function pauseContainer(store: Store, ref: string, paused: boolean, opts: { runtime?: string } = {}): Promise<{ id: string }> {
  const runtime = opts.runtime ?? DEFAULT_RUNTIME
  const c = await getContainer(store, ref)
  if (!c.running) throw new StrataError('IN_USE', `Container ${c.id} is not running`, { details: { id: c.id } })
  if (c.record.State.Restarting) throw new StrataError('IN_USE', `Container ${c.id} is restarting, wait until the container is running`, { details: { id: c.id } })
  if (paused && c.record.State.Paused) throw new StrataError('IN_USE', `Container ${c.id} is already paused`, { details: { id: c.id } })
  if (!paused && !c.record.State.Paused) throw new StrataError('IN_USE', `Container ${c.id} is not paused`, { details: { id: c.id } })
  const r = await runc([paused ? 'pause' : 'resume', c.id], runtime)
  if (r.code !== 0) {
    const why = runcMessage(r.stderr)
    const freezer = /freezer|cgroup/i.test(why)
    throw new StrataError(freezer ? 'NOT_SUPPORTED' : 'SYSCALL', `Cannot ${paused ? 'pause' : 'unpause'} container ${c.id}: ${why}`, {
      details: { id: c.id },
      ...(freezer ? { hint: 'pausing needs the cgroup freezer (cgroup v1 freezer controller, or cgroup v2)' } : {}),
    })
  }
  await store.containers.update(c.id, (rec) => {
    rec.State = { ...rec.State, Paused: paused }
  })
  return { id: c.id }
}

/** The container's init PID file (for exec/top callers that need it). */
export function initPidFile(store: Store, id: string): string {
  return pidFilePath(store.root, id)
}
