/**
 * What the monitor process does for one started container (types.ts is
 * the contract; main.ts the entry point):
 *
 * 1. writes strata-monitor.json (PID, start time, boot ID) so readers can
 *    tell it is alive;
 * 2. runs `runc run --bundle B --pid-file B/init.pid ID` with stdout and
 *    stderr on pipes, appends them to `<id>-json.log`; the container is
 *    started once runc wrote the pid file: the record gets State Running,
 *    Pid, StartedAt (dockerd's SetRunning) and the starter its hello;
 *    runc exiting first is a start failure: State Error and dockerd's exit
 *    code for it (127 command not found, 126 not executable, else 128);
 * 3. on exit applies the restart policy (restart.ts): State Restarting
 *    meanwhile, RestartCount counted, a wake-up (SIGUSR1) when a stop
 *    comes in the delay;
 * 4. then dockerd's stop path: runc state deleted, bundle removed, the
 *    layer unmounted, and only then State stopped (Running false, Pid 0,
 *    ExitCode, FinishedAt), so whoever waits for the exit finds the layer
 *    unmounted; the monitor file removed; with AutoRemove (run --rm) the
 *    container removed.
 *
 * A record removed under the monitor (rm of a container it runs, by hand)
 * is not an error: the cleanup goes on with what exists.
 */
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { readFile, rm, unlink } from 'node:fs/promises'
import { createReadStream } from 'node:fs'
import { constants as osConstants } from 'node:os'
import { join } from 'node:path'
import { isErrno, isStrataError } from '../../errors/index.js'
import { DataRootLock, DirLock, atomicWriteFile, formatRfc3339Nano, nowNs } from '../../fs/index.js'
import { HOSTCONFIG_FILE, bootId, containerDir, monitorFilePath, processStartTime, readRecord, writeRecord, type ContainerRecord, type MonitorInfo } from '../../containerdb/index.js'
import { S_IFIFO, mknod } from '../../sys/index.js'
import { EventJournal, containerEvent } from '../../events/index.js'
import { JsonLogWriter } from './json-log.js'
import { bundleDir, logPath, pidFilePath, stdinFifoPath } from './paths.js'
import { shouldRestart, type RestartPolicy, type RestartState } from './restart.js'
import { runcQuiet, startFailure, type RunOutcome } from './runc.js'
import { removeRunDir, runOnceTty, type TtyRunOptions } from './tty-run.js'

/** What the monitor tells its starter once: the container runs (its init PID), or why it could not start. */
export type MonitorHello = { ok: true; pid: number } | { ok: false; error: string; exitCode?: number }

export interface MonitorOptions {
  root: string
  id: string
  runtime: string
  hello: (msg: MonitorHello) => void
  /** A terminal's first run holds its output for the first attach (docker run -it, start -ai). */
  attachFirst?: boolean
  /** A terminal's window size to start with. */
  size?: { rows: number; cols: number }
}

function log(msg: string): void {
  process.stderr.write(`${new Date().toISOString()} ${msg}\n`)
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code
  if (signal !== null) return 128 + (osConstants.signals[signal] ?? 0)
  return 255
}

export async function monitorContainer(opts: MonitorOptions): Promise<void> {
  await new ContainerMonitor(opts).run()
}

/** What the monitor reads of hostconfig.json. */
interface MonitorHostConfig {
  RestartPolicy?: RestartPolicy
  AutoRemove?: boolean
}

type OpenedStore = import('../../store/index.js').Store

/**
 * One monitor's life, phase by phase: announce itself (the monitor file),
 * run the container and restart it as its policy says, release what the
 * runs held (runc state, bundle, fifo, the layer's mount), record the
 * exit, and remove the container for --rm.
 */
class ContainerMonitor {
  readonly #opts: MonitorOptions
  readonly #root: string
  readonly #id: string
  readonly #lock: DataRootLock
  #recordGone = false
  #helloSent = false
  /** Cuts a restart delay short (SIGUSR1: a stop or a removal wants the monitor to look again). */
  #wake: (() => void) | undefined

  constructor(opts: MonitorOptions) {
    this.#opts = opts
    this.#root = opts.root
    this.#id = opts.id
    this.#lock = new DataRootLock(opts.root)
  }

  async run(): Promise<void> {
    await this.#announce()
    const first = await readRecord(this.#root, this.#id)
    const hostConfig = JSON.parse(await readFile(join(containerDir(this.#root, this.#id), HOSTCONFIG_FILE), 'utf8')) as MonitorHostConfig
    const outcome = await this.#runWithRestarts(first, hostConfig.RestartPolicy ?? { Name: 'no', MaximumRetryCount: 0 })
    const store = await this.#release(first)
    await this.#recordExit(outcome)
    if (!this.#helloSent) this.#opts.hello({ ok: false, error: outcome.error, exitCode: outcome.exitCode })
    // dockerd logs die for every exit, before an AutoRemove's destroy; an API wait for "removed" reads the exit code here when the record went first.
    const journal = new EventJournal(this.#root)
    const image = first.Config.Image ?? first.Image
    // The name as it is now: a rename while the container ran shows in its die event, as in dockerd's.
    const current = this.#recordGone ? first : await readRecord(this.#root, this.#id).catch(() => first)
    const name = current.Name.replace(/^\//, '')
    if (outcome.started) await journal.append(containerEvent('die', this.#id, image, name, { exitCode: String(outcome.exitCode) }))
    if (hostConfig.AutoRemove === true && !this.#recordGone && store !== undefined) {
      const { removeContainer } = await import('../lifecycle.js')
      const removed = await removeContainer(store, this.#id, { force: true }).then(
        () => true,
        (err: unknown) => {
          if (!isStrataError(err, 'NOT_FOUND')) log(`removing ${this.#id} (--rm) failed: ${(err as Error).message}`)
          return false
        },
      )
      if (removed) await journal.append(containerEvent('destroy', this.#id, image, name))
    }
    await store?.close()
  }

  /** A read-modify-write of the record under the data-root lock; undefined once the record is gone. */
  async #update(fn: (r: ContainerRecord) => void, beforeWrite?: () => Promise<void>): Promise<ContainerRecord | undefined> {
    if (this.#recordGone) return undefined
    try {
      return await this.#lock.withLock(async () => {
        const r = await readRecord(this.#root, this.#id)
        fn(r)
        await beforeWrite?.()
        await writeRecord(this.#root, this.#id, r)
        return r
      })
    } catch (err) {
      if (!isStrataError(err, 'NOT_FOUND')) throw err
      log(`the record of ${this.#id} is gone; cleaning up`)
      this.#recordGone = true
      return undefined
    }
  }

  /** The monitor file: this process's PID, start time and boot ID, for readers to tell a live monitor. */
  async #announce(): Promise<void> {
    const startTime = processStartTime(process.pid)
    const info: MonitorInfo = { pid: process.pid, startTime: startTime ?? 0, bootId: bootId() }
    await this.#lock.withLock(() => atomicWriteFile(monitorFilePath(this.#root, this.#id), JSON.stringify(info), 0o600))
  }

  /** Runs the container, and again as long as the restart policy says so (and nobody stopped it); the last run's outcome. */
  async #runWithRestarts(first: ContainerRecord, policy: RestartPolicy): Promise<RunOutcome> {
    const restartState: RestartState = { count: 0, delayMs: 0 }
    const logs = new JsonLogWriter(logPath(this.#root, this.#id))
    process.on('SIGUSR1', () => this.#wake?.())
    let outcome: RunOutcome
    for (;;) {
      const onStarted = (pid: number): Promise<void> => this.#started(pid)
      if (first.Config.Tty === true) {
        const o = this.#opts
        const tty: TtyRunOptions = { root: o.root, id: o.id, runtime: o.runtime, attachFirst: o.attachFirst === true && restartState.count === 0, ...(o.size === undefined ? {} : { size: o.size }) }
        outcome = await runOnceTty(tty, first, logs, onStarted)
      } else outcome = await runOnce(this.#opts, first, logs, onStarted)
      if (!outcome.started) break
      const now = await this.#update(() => {})
      if (now === undefined) break
      const decision = shouldRestart(policy, restartState, outcome.exitCode, now.HasBeenManuallyStopped, Date.now() - outcome.startedAtMs)
      if (!decision.restart) break
      const exitCode = outcome.exitCode
      await this.#update((r) => {
        r.State = { ...r.State, Running: true, Restarting: true, Paused: false, Pid: 0, ExitCode: exitCode, FinishedAt: formatRfc3339Nano(nowNs(), 0) }
        r.RestartCount = (r.RestartCount ?? 0) + 1
      })
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, decision.delayMs)
        this.#wake = () => {
          clearTimeout(timer)
          resolve()
        }
      })
      this.#wake = undefined
      const again = await this.#update(() => {})
      if (again === undefined || again.HasBeenManuallyStopped) break
    }
    logs.close()
    return outcome
  }

  /** A run started: the record says Running with its PID; the first time, the starter hears hello. */
  async #started(pid: number): Promise<void> {
    await this.#update((r) => {
      r.State = { ...r.State, Running: true, Paused: false, Restarting: false, Pid: pid, ExitCode: 0, Error: '', StartedAt: formatRfc3339Nano(nowNs(), 0) }
      r.HasBeenStartedBefore = true
    })
    if (!this.#helloSent) this.#opts.hello({ ok: true, pid })
    this.#helloSent = true
  }

  /** dockerd's stop path: runc state, bundle, stdin fifo, the layer's mount. Returns the store opened for it (undefined if that failed). */
  async #release(first: ContainerRecord): Promise<OpenedStore | undefined> {
    const root = this.#root
    const id = this.#id
    await runcQuiet(this.#opts.runtime, ['delete', '--force', id])
    await rm(bundleDir(root, id), { recursive: true, force: true }).catch(() => {})
    await unlink(stdinFifoPath(root, id)).catch(() => {})
    await removeRunDir(id)
    let store: OpenedStore | undefined
    try {
      const { Store } = await import('../../store/index.js')
      store = await Store.open({ root, driver: first.Driver })
      await store.layers.unmount(id).catch((err: unknown) => {
        if (!isStrataError(err, 'NOT_FOUND') && !isStrataError(err, 'INVALID_ARGUMENT')) throw err
      })
    } catch (err) {
      log(`unmounting the layer of ${id} failed: ${(err as Error).message}`)
    }
    return store
  }

  /**
   * The monitor file goes, then the stopped State is written, holding the container's lock (the one
   * start and reconcileContainer take): a reader that finds the file gone while the record still says
   * Running reconciles, waits for this lock and reads the stopped State; a start waits for it too, so
   * this monitor never removes a newer monitor's file. Before a hello the starter holds that lock
   * (and the record never said Running): the State is written without it then.
   */
  async #recordExit(outcome: RunOutcome): Promise<void> {
    const removeMonitorFile = (): Promise<void> =>
      unlink(monitorFilePath(this.#root, this.#id)).catch((err: unknown) => {
        if (!isErrno(err, 'ENOENT')) log(`removing the monitor file failed: ${(err as Error).message}`)
      })
    const containerLock = this.#helloSent ? await lockContainerDir(containerDir(this.#root, this.#id)) : undefined
    try {
      const recorded = await this.#update((r) => {
        if (outcome.started) {
          r.State = { ...r.State, Running: false, Paused: false, Restarting: false, Pid: 0, ExitCode: outcome.exitCode, Error: outcome.error, FinishedAt: formatRfc3339Nano(nowNs(), 0) }
        } else {
          r.State = { ...r.State, Running: false, Paused: false, Restarting: false, Pid: 0, ExitCode: outcome.exitCode, Error: outcome.error }
        }
      }, removeMonitorFile)
      if (recorded === undefined) await removeMonitorFile()
    } finally {
      containerLock?.close()
    }
  }
}

/** The container's lock (process.ts withContainerLock), waited for; undefined when the record is gone. */
async function lockContainerDir(dir: string): Promise<DirLock | undefined> {
  for (;;) {
    let lock: DirLock | undefined
    try {
      lock = DirLock.tryAcquire(dir, 'exclusive')
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND')) return undefined
      throw err
    }
    if (lock !== undefined) return lock
    await new Promise((r) => setTimeout(r, 10))
  }
}

/** One `runc run`: until it exits. `onStarted` runs once the pid file is there. */
async function runOnce(opts: MonitorOptions, record: ContainerRecord, logs: JsonLogWriter, onStarted: (pid: number) => Promise<void>): Promise<RunOutcome> {
  const { root, id, runtime } = opts
  const pidFile = pidFilePath(root, id)
  await unlink(pidFile).catch(() => {})
  await runcQuiet(runtime, ['delete', '--force', id])
  const openStdin = record.Config.OpenStdin === true
  const child = spawn(runtime, ['run', '--bundle', bundleDir(root, id), '--pid-file', pidFile, id], {
    stdio: [openStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  })
  let started = false
  let startedAtMs = 0
  // Until the container runs, stderr may be runc's own complaint: held back, and logged once it runs.
  const early: Buffer[] = []
  child.stdout!.on('data', (c: Buffer) => logs.write('stdout', c))
  child.stderr!.on('data', (c: Buffer) => (started ? logs.write('stderr', c) : early.push(c)))
  if (openStdin) feedStdin(root, id, record.Config.StdinOnce === true, child.stdin!)

  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }))
    child.once('close', (code, signal) => resolve({ code, signal }))
  })
  let exited = false
  void closed.then(() => (exited = true))
  const markStarted = async (): Promise<void> => {
    started = true
    startedAtMs = Date.now()
    for (const c of early) logs.write('stderr', c)
    early.length = 0
    const pid = Number(readFileSync(pidFile, 'utf8').trim())
    await onStarted(pid)
  }
  // runc writes the pid file once the process runs; poll for it until then (or until runc gives up).
  while (!exited && !existsSync(pidFile)) await new Promise((r) => setTimeout(r, 5))
  if (existsSync(pidFile)) await markStarted()
  const result = await closed
  logs.end('stdout')
  logs.end('stderr')
  if (result.error !== undefined) return { started, exitCode: 128, error: `${runtime} could not be started: ${result.error.message}`, startedAtMs }
  const exitCode = exitCodeOf(result.code, result.signal)
  if (!started) return { started, startedAtMs, ...startFailure(Buffer.concat(early).toString('utf8'), exitCode, record.Path, runtime) }
  return { started, exitCode, error: result.signal !== null ? `${runtime} was killed by ${result.signal}` : '', startedAtMs }
}

/**
 * Config.OpenStdin: the container's stdin is whatever an attach writes into
 * stdin.fifo. StdinOnce (run -i) closes it when the first writer is done;
 * otherwise the next attach can write again.
 */
function feedStdin(root: string, id: string, once: boolean, stdin: import('node:stream').Writable): void {
  const fifo = stdinFifoPath(root, id)
  try {
    mknod(fifo, S_IFIFO | 0o600)
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw err
  }
  stdin.on('error', () => {})
  const next = (): void => {
    const input = createReadStream(fifo)
    input.on('error', () => stdin.end())
    input.on('data', (c) => stdin.write(c))
    input.on('end', () => (once ? stdin.end() : next()))
  }
  next()
}
