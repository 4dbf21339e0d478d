/**
 * A private dockerd 20.10 for tests that compare strata with the reference
 * implementation: its own data root, exec root, pidfile and socket under a
 * scratch directory, no networking (no iptables, no bridge), ulimits this
 * host allows (root lacks CAP_SYS_RESOURCE), as ../shared/PEERS.md says.
 * dockerd starts its own containerd (exec root `<exec>/containerd`, state
 * in `<data>/containerd`) when none is given, which works here.
 *
 * Always `/usr/sbin/dockerd` and `/usr/bin/docker` (Debian's docker.io,
 * 20.10.24) by absolute path: PATH may hold another docker client (a 28.x
 * one sits in /usr/local/bin on these machines) that does not match the
 * daemon.
 *
 * stop() (also registered with t.after, so it runs however the test ends)
 * kills dockerd by the PID in its pidfile (SIGTERM, up to 20 s, then
 * SIGKILL), waits for it to exit, kills anything still running from its
 * exec root (its containerd, shims) by PID, unmounts what is left mounted
 * at or under the data root and the exec root (dockerd bind-mounts the data
 * root onto itself, containers leave overlay, shm and netns mounts), checks
 * /proc/self/mountinfo holds nothing there any more, and only then removes
 * the directories.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { MNT_DETACH, umount2 } from '../../src/sys/index.js'
import { requireTool, run, type RunResult } from './peers.js'

export const DOCKERD = '/usr/sbin/dockerd'
export const DOCKER = '/usr/bin/docker'

/** How long dockerd gets to answer `docker info` after it starts. */
const START_TIMEOUT_MS = 60_000
/** How long dockerd gets to exit after SIGTERM before SIGKILL. */
const STOP_TIMEOUT_MS = 20_000
/** sun_path is 108 bytes with its NUL; the longest socket dockerd makes is its containerd's ttrpc one. */
const MAX_SOCKET_PATH = 107
const LONGEST_SOCKET = 'exec/containerd/containerd.sock.ttrpc'
/** mkdtemp's template as created: prefix plus six characters. */
const DIR_PREFIX = 'strata-test-dockerd-'

export interface StartDockerdOptions {
  storageDriver: 'overlay2' | 'vfs' | 'devicemapper'
  /** `--storage-opt` values (devicemapper in the test VM needs dm.override_udev_sync_check=true). */
  storageOpts?: string[]
  /** The data root to use (created if missing, kept afterwards); default `<scratch>/data`, removed by stop. */
  dataRoot?: string
}

export interface Dockerd {
  /** `unix://<scratch>/docker.sock`. */
  host: string
  /** The data root, absolute. */
  dataRoot: string
  /** The exec root, absolute. */
  execRoot: string
  /** dockerd's PID (from its pidfile). */
  pid: number
  /**
   * Runs `/usr/bin/docker -H <host> args` (stdin `input`), with a private
   * client config dir and DOCKER_BUILDKIT=0 (the legacy builder, which
   * needs no buildx and no network). Rejects on a non-zero exit with stderr.
   */
  docker(args: string[], input?: Buffer): Promise<RunResult>
  /** dockerd's log so far. */
  log(): string
  /** Stops dockerd and everything it started, unmounts, removes the scratch dirs. Idempotent. */
  stop(): Promise<void>
}

/** True when dockerd and its client are installed; skips the test (fails it under CI) otherwise. */
export function requireDockerd(t: TestContext): boolean {
  return requireTool(t, DOCKERD, DOCKER)
}

/** Mount points at or under any of `dirs` (absolute), deepest first: mountinfo order reversed (parents come first). */
export function mountsAtOrUnder(dirs: string[]): string[] {
  const out: string[] = []
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line === '') continue
    const field = line.split(' ')[4]
    if (field === undefined) continue
    const mp = field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
    if (dirs.some((d) => mp === d || mp.startsWith(`${d}/`))) out.push(mp)
  }
  return out.reverse()
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** A process's command line, NULs as spaces, or undefined when it is gone. */
function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`).toString().replace(/\0/g, ' ').trim()
  } catch {
    return undefined
  }
}

/**
 * PIDs of processes whose command line names `dir` (a unique scratch
 * path): what dockerd started there (containerd, containerd-shim-runc-v2
 * with `-address <exec>/containerd/containerd.sock`).
 */
function processesNaming(dir: string): number[] {
  const out: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const pid = Number(name)
    if (pid === process.pid) continue
    if (cmdline(pid)?.includes(dir)) out.push(pid)
  }
  return out
}

/** SIGTERM, wait up to `ms`, then SIGKILL and wait again; `exited` resolves when the process is gone. */
async function terminate(pid: number, ms: number, exited: () => Promise<boolean>): Promise<'term' | 'kill' | 'gone'> {
  if (!alive(pid)) return 'gone'
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return 'gone'
  }
  if (await exited()) return 'term'
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    return 'kill'
  }
  const deadline = Date.now() + ms
  while (alive(pid) && Date.now() < deadline) await sleep(50)
  if (alive(pid)) throw new Error(`process ${pid} (${cmdline(pid) ?? '?'}) survived SIGKILL`)
  return 'kill'
}

/** Polls until `pid` is gone (not even a zombie: Node reaps its children) or `ms` pass. */
async function pollGone(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (!alive(pid)) return true
    await sleep(50)
  }
  return !alive(pid)
}

/** A scratch dir short enough for dockerd's sockets under it. */
function scratchDir(): string {
  let base = tmpdir()
  const needed = join(base, `${DIR_PREFIX}XXXXXX`, LONGEST_SOCKET)
  if (Buffer.byteLength(needed) > MAX_SOCKET_PATH) base = '/tmp'
  return mkdtempSync(join(base, DIR_PREFIX))
}

export async function startDockerd(t: TestContext, opts: StartDockerdOptions): Promise<Dockerd> {
  const scratch = scratchDir()
  const ownDataRoot = opts.dataRoot === undefined
  const dataRoot = resolve(opts.dataRoot ?? join(scratch, 'data'))
  const execRoot = join(scratch, 'exec')
  const pidfile = join(scratch, 'dockerd.pid')
  const sock = join(scratch, 'docker.sock')
  const logPath = join(scratch, 'dockerd.log')
  const host = `unix://${sock}`
  const clientConfig = join(scratch, 'client')
  await mkdir(dataRoot, { recursive: true, mode: 0o711 })
  await mkdir(execRoot, { mode: 0o700 })
  await mkdir(clientConfig, { mode: 0o700 })

  const args = [
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '--pidfile', pidfile,
    '-H', host,
    '--iptables=false',
    '--ip6tables=false',
    '--bridge=none',
    '--storage-driver', opts.storageDriver,
    ...(opts.storageOpts ?? []).flatMap((o) => ['--storage-opt', o]),
    '--default-ulimit', 'nofile=1024:1024',
    '--default-ulimit', 'nproc=1024:1024',
  ]
  // System dirs first, so dockerd finds Debian's containerd, runc and docker-init, not a stray copy.
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}` }
  const clientEnv: NodeJS.ProcessEnv = { ...env, DOCKER_HOST: host, DOCKER_CONFIG: clientConfig, DOCKER_BUILDKIT: '0' }
  for (const k of ['DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH', 'DOCKER_API_VERSION']) delete clientEnv[k]

  const log = (): string => {
    try {
      return readFileSync(logPath, 'utf8')
    } catch {
      return ''
    }
  }
  const tail = (): string => log().split('\n').slice(-40).join('\n')

  let child: ChildProcess | undefined
  let exited = false
  let exitStatus = ''
  let stopped: Promise<void> | undefined

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      const problems: string[] = []
      const notes: string[] = []
      // 1. dockerd, by the PID in its pidfile (the child's own PID if it died before writing one).
      let pid: number | undefined
      try {
        pid = Number(readFileSync(pidfile, 'utf8').trim())
      } catch {
        pid = child?.pid
      }
      if (pid !== undefined && child?.pid !== undefined && pid !== child.pid) {
        problems.push(`pidfile says ${pid} but dockerd was started as ${child.pid}`)
      }
      if (pid !== undefined && !exited) {
        const exitPromise = new Promise<void>((r) => (exited ? r() : child?.once('exit', () => r())))
        // The timer is cancelled when dockerd exits first, so it does not hold the event loop for 20 s.
        const waitExit = async (): Promise<boolean> => {
          const ac = new AbortController()
          const timer = sleep(STOP_TIMEOUT_MS, false, { signal: ac.signal }).catch(() => false)
          try {
            return await Promise.race([exitPromise.then(() => true), timer])
          } finally {
            ac.abort()
          }
        }
        try {
          const how = await terminate(pid, STOP_TIMEOUT_MS, waitExit)
          if (how === 'kill') notes.push(`dockerd ${pid} ignored SIGTERM for ${STOP_TIMEOUT_MS / 1000} s and was killed`)
          // Wait for the exit event too, so the child is reaped.
          await waitExit()
        } catch (err) {
          problems.push((err as Error).message)
        }
      }
      // 2. Anything dockerd started that outlived it (containerd after a SIGKILL, shims), by PID.
      for (const p of processesNaming(scratch)) {
        const cmd = cmdline(p) ?? '?'
        try {
          await terminate(p, STOP_TIMEOUT_MS, () => pollGone(p, 5_000))
          notes.push(`process ${p} (${cmd}) outlived dockerd and was stopped`)
        } catch (err) {
          problems.push((err as Error).message)
        }
      }
      // 3. Mounts it left (the data root's self bind mount, overlay merged dirs, shm, netns).
      const dirs = [dataRoot, scratch]
      for (const mp of mountsAtOrUnder(dirs)) {
        try {
          umount2(mp, MNT_DETACH)
        } catch (err) {
          problems.push(`umount ${mp}: ${(err as Error).message}`)
        }
      }
      const left = mountsAtOrUnder(dirs)
      if (left.length > 0) {
        throw new Error(`dockerd left mounts that could not be removed (not deleting ${scratch}): ${left.join(', ')}`)
      }
      // 4. The directories.
      if (ownDataRoot) await rm(dataRoot, { recursive: true, force: true })
      await rm(scratch, { recursive: true, force: true })
      // A slow SIGTERM or a straggler is reported; only what could not be cleaned up fails.
      if (notes.length > 0) t.diagnostic(`dockerd stop: ${notes.join('; ')}`)
      if (problems.length > 0) throw new Error(`stopping dockerd: ${problems.join('; ')}`)
    })()
    return stopped
  }
  t.after(stop)

  const logFd = openSync(logPath, 'a', 0o600)
  try {
    child = spawn(DOCKERD, args, { env, stdio: ['ignore', logFd, logFd] })
  } finally {
    closeSync(logFd)
  }
  child.once('exit', (code, signal) => {
    exited = true
    exitStatus = signal !== null ? `killed by ${signal}` : `exit code ${code}`
  })
  child.once('error', (err) => {
    exited = true
    exitStatus = `could not run: ${err.message}`
  })

  const docker = (dockerArgs: string[], input?: Buffer): Promise<RunResult> =>
    run(DOCKER, ['-H', host, ...dockerArgs], input === undefined ? { env: clientEnv } : { env: clientEnv, input })

  // Wait for the API: `docker info` answers once the daemon has initialised.
  const deadline = Date.now() + START_TIMEOUT_MS
  let lastError = ''
  for (;;) {
    if (exited) throw new Error(`dockerd exited during startup (${exitStatus}); its log:\n${tail()}`)
    if (existsSync(sock)) {
      try {
        await docker(['info', '--format', '{{.ServerVersion}} {{.Driver}}'])
        break
      } catch (err) {
        lastError = (err as Error).message
      }
    }
    if (Date.now() > deadline) {
      throw new Error(`dockerd did not answer "docker info" within ${START_TIMEOUT_MS / 1000} s (${lastError || 'no socket'}); its log:\n${tail()}`)
    }
    await sleep(200)
  }
  const pid = Number(readFileSync(pidfile, 'utf8').trim())
  if (pid !== child.pid) throw new Error(`dockerd's pidfile says ${pid}, but it was started as ${child.pid}`)
  // Sanity: the exec root is ours (a reused /proc entry would not name it).
  if (!(cmdline(pid) ?? '').includes(execRoot)) throw new Error(`process ${pid} is not the dockerd started on ${execRoot}`)

  return { host, dataRoot, execRoot, pid, docker, log, stop }
}
