/**
 * Running a container with runc, in the foreground: mount the rootfs,
 * write the bundle (`containers/<id>/bundle/config.json`), record the
 * state (Running, the runc PID), `runc run --bundle DIR <id>` with the
 * caller's stdio, then record the exit, remove the bundle and unmount —
 * whatever happened in between. The exit code is the process's, or
 * 128 + the signal number when it was killed (a shell's convention, and
 * docker's).
 *
 * runc keeps its state in /run/runc/<id>; `runc run` deletes it when the
 * container exits, and a `runc delete --force` afterwards makes sure
 * nothing is left when runc itself was killed.
 */
import { spawn } from 'node:child_process'
import { constants as osConstants } from 'node:os'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { StrataError, isStrataError } from '../errors/index.js'
import { nowNs, formatRfc3339Nano } from '../fs/index.js'
import type { Store } from '../store/index.js'
import { resolveUser, runtimeSpec } from './bundle.js'
import { INIT_FILES } from './init-files.js'
import { existsSync } from 'node:fs'
import { shortContainerId } from '../containerdb/index.js'
import type { RunOptions } from './types.js'

const DEFAULT_RUNTIME = 'runc'

function runcQuiet(args: string[], runtime = DEFAULT_RUNTIME): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(runtime, args, { stdio: 'ignore' })
    child.on('error', () => resolve(-1))
    child.on('close', (code) => resolve(code ?? -1))
  })
}

/** Kills a running container's processes and deletes runc's state for it (best effort). */
export async function killRunc(id: string, runtime = DEFAULT_RUNTIME): Promise<void> {
  await runcQuiet(['kill', '--all', id, 'KILL'], runtime)
  await runcQuiet(['delete', '--force', id], runtime)
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code
  if (signal !== null) return 128 + (osConstants.signals[signal] ?? 0)
  return 255
}

/** The container directory's hostname, hosts and resolv.conf to bind over /etc (dockerd's order: resolv.conf, hostname, hosts); none for a container from before they were kept there. */
async function initFileBinds(dir: string): Promise<Array<{ source: string; destination: string }>> {
  const out: Array<{ source: string; destination: string }> = []
  for (const file of ['resolv.conf', 'hostname', 'hosts'] as const) {
    const source = join(dir, file)
    if (existsSync(source)) out.push({ source, destination: INIT_FILES[file] })
  }
  return out
}

/**
 * Starts an existing container with runc and waits for it (docker start -a).
 * Returns the exit code. IN_USE when it is running already.
 */
export async function startContainer(store: Store, ref: string, opts: RunOptions = {}): Promise<number> {
  const c = await store.containers.get(ref)
  if (c.running) throw new StrataError('IN_USE', `Container ${c.id} is already running`, { details: { id: c.id } })
  const runtime = opts.runtime ?? DEFAULT_RUNTIME
  const bundle = join(store.containers.path(c.id), 'bundle')
  const rootfs = await store.layers.mount(c.id)
  let started = false
  try {
    const user = await resolveUser(rootfs, c.record.Config.User ?? '')
    const spec = runtimeSpec(c.record.Config, rootfs, shortContainerId(c.id), user, await initFileBinds(store.containers.path(c.id)))
    await rm(bundle, { recursive: true, force: true })
    await mkdir(bundle, { mode: 0o700 })
    await writeFile(join(bundle, 'config.json'), JSON.stringify(spec))
    // A leftover runc container of this ID (a runner killed with it) would make `runc run` fail.
    await runcQuiet(['delete', '--force', c.id], runtime)

    const child = spawn(runtime, ['run', '--bundle', bundle, c.id], { stdio: opts.stdio === 'pipe' ? ['ignore', 'pipe', 'pipe'] : 'inherit' })
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
      child.once('error', (error) => resolve({ code: null, signal: null, error }))
      child.once('close', (code, signal) => resolve({ code, signal }))
    })
    opts.onSpawn?.(child)
    if (child.pid !== undefined) {
      started = true
      await store.containers.update(c.id, (r) => {
        r.State = { ...r.State, Running: true, Pid: child.pid!, ExitCode: 0, Error: '', StartedAt: formatRfc3339Nano(nowNs(), 0), FinishedAt: r.State.FinishedAt }
        r.HasBeenStartedBefore = true
      })
    }
    const result = await exited
    if (result.error !== undefined) {
      throw new StrataError('NOT_SUPPORTED', `Cannot run container ${c.id}: ${runtime} could not be started (${result.error.message})`, {
        cause: result.error,
        hint: 'install runc (apt-get install runc)',
      })
    }
    const code = exitCodeOf(result.code, result.signal)
    started = false
    await goneOk(
      store.containers.update(c.id, (r) => {
        r.State = { ...r.State, Running: false, Pid: 0, ExitCode: code, FinishedAt: formatRfc3339Nano(nowNs(), 0) }
      }),
    )
    return code
  } finally {
    if (started) {
      await store.containers.update(c.id, (r) => {
        r.State = { ...r.State, Running: false, Pid: 0, ExitCode: 255, Error: 'the runner failed', FinishedAt: formatRfc3339Nano(nowNs(), 0) }
      }).catch(() => {})
    }
    await runcQuiet(['delete', '--force', c.id], runtime)
    await rm(bundle, { recursive: true, force: true }).catch(() => {})
    await goneOk(store.layers.unmount(c.id))
  }
}

/**
 * A container removed with force while it ran (rm -f kills it, unmounts and
 * deletes record and layer) is not the runner's failure: the exit status
 * stands, as `docker run` reports 137 then.
 */
async function goneOk(p: Promise<unknown>): Promise<void> {
  try {
    await p
  } catch (err) {
    if (!isStrataError(err, 'NOT_FOUND')) throw err
  }
}
