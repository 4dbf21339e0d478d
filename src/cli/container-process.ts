/**
 * The verbs on a container's process, as docker's CLI words and prints
 * them: start (detached unless -a), stop, kill, wait, logs, restart,
 * pause, unpause, exec, top. Each is a library call (src/container
 * process.ts, logs.ts, exec.ts); attached starts and `logs -f` stream
 * the container's output to this process's stdout and stderr as it comes.
 */
import {
  attachContainer,
  attachTty,
  execContainer,
  fixedNanoTime,
  getContainer,
  killContainer,
  logSize,
  parseLogTime,
  pauseContainer,
  readLogs,
  restartContainer,
  startContainer,
  stopContainer,
  topContainer,
  waitContainer,
} from '../container/index.js'
import type { StartOptions } from '../container/index.js'
import { StrataError } from '../errors/index.js'
import { makeRaw } from '../sys/index.js'
import { DOCKER_TABWRITER, tabwrite } from '../format/index.js'
import type { Store } from '../store/index.js'
import { checkArgCount, intFlag, parseFlags } from './args.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'
import { PROCESS_HELPS } from './container-process-helps.js'


/** Runs `fn` on each ref in turn; docker goes on after a failure and fails at the end with every message. */
async function each(global: GlobalOptions, refs: string[], fn: (store: Store, ref: string) => Promise<string | undefined>): Promise<CommandResult> {
  return withStore(global, async (store) => {
    const out: string[] = []
    const errors: string[] = []
    for (const ref of refs) {
      try {
        const line = await fn(store, ref)
        if (line !== undefined) out.push(line)
      } catch (err) {
        errors.push(`Error: ${(err as Error).message}\n`)
      }
    }
    return { stdout: out.join(''), stderr: errors.join(''), exitCode: errors.length > 0 ? 1 : 0 }
  })
}

/** Passes SIGINT/SIGTERM/SIGHUP on to the container while attached (docker's --sig-proxy); returns the undo. */
function proxySignals(store: Store, id: string): () => void {
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => {
    const h = (): void => void killContainer(store, id, sig).catch(() => {})
    process.on(sig, h)
    return [sig, h] as const
  })
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h)
  }
}

export interface AttachedRun {
  /** Typed input goes to the container (-i). */
  interactive: boolean
  /** docker's --detach-keys (a terminal only). */
  detachKeys?: string
  /** Start it first (start -a, run); otherwise it runs already (attach). */
  start: boolean
}

/** docker's CheckTty: input from something that is not a terminal cannot feed a container's terminal. */
export function ttyInputError(interactive: boolean, tty: boolean): CommandResult | undefined {
  if (interactive && tty && process.stdin.isTTY !== true) return { stdout: '', stderr: 'the input device is not a TTY\n', exitCode: 1 }
  return undefined
}

/**
 * Attached to a container with a terminal: the local terminal in raw mode
 * (restored on every way out: the end, a detach, an error, SIGTERM/SIGHUP,
 * the process's exit), its size passed at the start and on every SIGWINCH
 * (stdout's 'resize'). The detach keys leave the container running and
 * exit 0 printing nothing, as docker 20.10; otherwise the container's
 * exit code.
 */
async function attachTerminal(store: Store, id: string, how: AttachedRun): Promise<CommandResult & { detached?: boolean }> {
  const stdin = process.stdin
  const out = process.stdout
  const size = out.isTTY === true ? { rows: out.rows, cols: out.columns } : undefined
  if (how.start) {
    const failed = await startOrExitCode(store, id, { attachFirst: true, ...(size === undefined ? {} : { consoleSize: size }) })
    if (failed !== undefined) return failed
  }
  const raw = how.interactive && stdin.isTTY === true
  const restore = (): void => {
    if (raw && stdin.isTTY === true) stdin.setRawMode(false)
  }
  let session: Awaited<ReturnType<typeof attachTty>> | undefined
  const bye = (): void => session?.close()
  try {
    session = await attachTty(store, id, {
      stdout: out,
      ...(how.interactive ? { stdin } : {}),
      ...(size === undefined ? {} : { size }),
      ...(how.detachKeys === undefined ? {} : { detachKeys: how.detachKeys }),
    })
    if (raw) {
      stdin.setRawMode(true)
      makeRaw(0)
    }
    process.once('exit', restore)
    process.once('SIGTERM', bye)
    process.once('SIGHUP', bye)
    const onResize = (): void => session?.resize(out.rows, out.columns)
    out.on('resize', onResize)
    let detached: boolean
    try {
      ;({ detached } = await session.done)
    } finally {
      out.off('resize', onResize)
    }
    if (detached) return { stdout: '', exitCode: 0, detached: true }
    const { exitCode } = await waitContainer(store, id)
    return { stdout: '', exitCode }
  } finally {
    restore()
    process.off('exit', restore)
    process.off('SIGTERM', bye)
    process.off('SIGHUP', bye)
    if (how.interactive) stdin.pause()
  }
}

/** Starts `id`; a start failure with an exit code (127: no such command) is docker's message and that code. */
async function startOrExitCode(store: Store, id: string, opts: StartOptions = {}): Promise<CommandResult | undefined> {
  try {
    await startContainer(store, id, opts)
    return undefined
  } catch (err) {
    if (err instanceof StrataError && typeof err.details.exitCode === 'number') {
      return { stdout: '', stderr: `Error: ${err.message}\n`, exitCode: err.details.exitCode }
    }
    throw err
  }
}

/** Starts `id` (unless how.start is false) and stays attached until it exits or the detach keys; the exit code, or the start's failure in docker's words. */
export async function startAttached(store: Store, id: string, how: AttachedRun): Promise<CommandResult & { detached?: boolean }> {
  const c = await store.containers.get(id)
  if (c.record.Config.Tty === true) return attachTerminal(store, id, how)
  const offset = await logSize(store, id)
  if (how.start) {
    const failed = await startOrExitCode(store, id)
    if (failed !== undefined) return failed
  }
  const undo = proxySignals(store, id)
  try {
    const { exitCode } = await attachContainer(store, id, {
      fromOffset: offset,
      stdout: process.stdout,
      stderr: process.stderr,
      ...(how.interactive ? { stdin: process.stdin } : {}),
    })
    if (how.interactive) process.stdin.destroy()
    return { stdout: '', exitCode }
  } finally {
    undo()
  }
}

export async function processVerb(verb: string, args: string[], global: GlobalOptions): Promise<CommandResult> {
  const help = PROCESS_HELPS[verb]!
  switch (verb) {
    case 'start': {
      const { values, positionals } = parseFlags(args, { attach: { type: 'boolean', short: 'a' }, interactive: { type: 'boolean', short: 'i' }, 'detach-keys': { type: 'string' } }, help)
      checkArgCount(positionals, { min: 1 }, help)
      if (values.attach === true || values.interactive === true) {
        if (positionals.length > 1) throw new UsageError('you cannot start and attach multiple containers at once')
        return withStore(global, async (store) => {
          const c = await store.containers.get(positionals[0]!)
          const interactive = values.interactive === true
          const refused = ttyInputError(interactive, c.record.Config.Tty === true)
          if (refused !== undefined) return refused
          return startAttached(store, c.id, { interactive, start: true, ...(values['detach-keys'] === undefined ? {} : { detachKeys: values['detach-keys'] }) })
        })
      }
      return each(global, positionals, async (store, ref) => {
        await startContainer(store, ref)
        return `${ref}\n`
      })
    }
    case 'stop':
    case 'restart': {
      const { values, positionals } = parseFlags(args, { time: { type: 'string', short: 't', check: intFlag } }, help)
      checkArgCount(positionals, { min: 1 }, help)
      const opts = values.time === undefined ? {} : { timeout: Number(values.time) }
      return each(global, positionals, async (store, ref) => {
        if (verb === 'stop') await stopContainer(store, ref, opts)
        else await restartContainer(store, ref, opts)
        return `${ref}\n`
      })
    }
    case 'kill': {
      const { values, positionals } = parseFlags(args, { signal: { type: 'string', short: 's' } }, help)
      checkArgCount(positionals, { min: 1 }, help)
      return each(global, positionals, async (store, ref) => {
        await killContainer(store, ref, values.signal ?? 'KILL')
        return `${ref}\n`
      })
    }
    case 'wait': {
      const { positionals } = parseFlags(args, {}, help)
      checkArgCount(positionals, { min: 1 }, help)
      return each(global, positionals, async (store, ref) => `${(await waitContainer(store, ref)).exitCode}\n`)
    }
    case 'pause':
    case 'unpause': {
      const { positionals } = parseFlags(args, {}, help)
      checkArgCount(positionals, { min: 1 }, help)
      return each(global, positionals, async (store, ref) => {
        await pauseContainer(store, ref, verb === 'pause')
        return `${ref}\n`
      })
    }
    case 'logs':
      return logs(args, global)
    case 'attach':
      return attach(args, global)
    case 'exec':
      return exec(args, global)
    case 'top': {
      const [ref, ...psArgs] = args
      if (ref === '--help' || ref === '-h') return help
      checkArgCount(ref === undefined ? [] : [ref], { min: 1 }, help)
      const top = await withStore(global, (store) => topContainer(store, ref!, psArgs))
      const text = [top.Titles, ...top.Processes].map((row) => `${row.join('\t')}\n`).join('')
      return tabwrite(text, { ...DOCKER_TABWRITER, minWidth: 20, tabWidth: 1, padding: 3, padChar: ' ' })
    }
    default:
      throw new UsageError(`unknown verb ${verb}`)
  }
}

/** docker attach: refused for a container that is not running (docker's words), then attached until it exits or the detach keys. */
async function attach(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const help = PROCESS_HELPS.attach!
  const { values, positionals } = parseFlags(args, { 'detach-keys': { type: 'string' }, 'no-stdin': { type: 'boolean' }, 'sig-proxy': { type: 'boolean' } }, help)
  checkArgCount(positionals, { min: 1, max: 1 }, help)
  return withStore(global, async (store) => {
    const c = await getContainer(store, positionals[0]!)
    const s = c.record.State
    if (!c.running) return { stdout: '', stderr: 'You cannot attach to a stopped container, start it first\n', exitCode: 1 }
    if (s.Paused) return { stdout: '', stderr: 'You cannot attach to a paused container, unpause it first\n', exitCode: 1 }
    if (s.Restarting) return { stdout: '', stderr: 'You cannot attach to a restarting container, wait until it is running\n', exitCode: 1 }
    const tty = c.record.Config.Tty === true
    const refused = ttyInputError(values['no-stdin'] !== true, tty)
    if (refused !== undefined) return refused
    const interactive = values['no-stdin'] !== true && c.record.Config.OpenStdin === true
    const keys = values['detach-keys']
    return startAttached(store, c.id, { interactive, start: false, ...(keys === undefined ? {} : { detachKeys: keys }) })
  })
}

async function logs(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const help = PROCESS_HELPS.logs!
  const { values, positionals } = parseFlags(
    args,
    {
      follow: { type: 'boolean', short: 'f' },
      since: { type: 'string' },
      until: { type: 'string' },
      tail: { type: 'string', short: 'n' },
      timestamps: { type: 'boolean', short: 't' },
      details: { type: 'boolean' },
    },
    help,
  )
  checkArgCount(positionals, { min: 1, max: 1 }, help)
  const tailText = values.tail ?? 'all'
  // docker: "all" or anything that is not a number means every line.
  const tail = /^[0-9]+$/.test(tailText) ? Number(tailText) : -1
  const now = Date.now()
  const sinceNs = values.since === undefined || values.since === '' ? undefined : parseLogTime(values.since, now)
  const untilNs = values.until === undefined || values.until === '' ? undefined : parseLogTime(values.until, now)
  const stamps = values.timestamps === true
  await withStore(global, async (store) => {
    const abort = new AbortController()
    const stop = (): void => abort.abort()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    try {
      for await (const e of readLogs(store, positionals[0]!, {
        follow: values.follow === true,
        tail,
        ...(sinceNs === undefined ? {} : { sinceNs }),
        ...(untilNs === undefined ? {} : { untilNs }),
        signal: abort.signal,
      })) {
        const out = e.stream === 'stdout' ? process.stdout : process.stderr
        const text = stamps ? `${fixedNanoTime(e)} ${e.log}` : e.log
        if (!out.write(text)) await new Promise((r) => out.once('drain', r))
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err
    } finally {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
  })
  return ''
}

const EXEC_VALUE_FLAGS = new Set(['-e', '--env', '-u', '--user', '-w', '--workdir', '--detach-keys'])

async function exec(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const help = PROCESS_HELPS.exec!
  // Flags stop at the container: what follows is the command.
  let i = 0
  for (; i < args.length; i++) {
    const a = args[i]!
    if (a === '--') break
    if (!a.startsWith('-') || a === '-') break
    if (!a.includes('=') && EXEC_VALUE_FLAGS.has(a)) i++
  }
  const { values } = parseFlags(
    args.slice(0, i),
    {
      env: { type: 'string', short: 'e', multiple: true },
      interactive: { type: 'boolean', short: 'i' },
      tty: { type: 'boolean', short: 't' },
      user: { type: 'string', short: 'u' },
      workdir: { type: 'string', short: 'w' },
      detach: { type: 'boolean', short: 'd' },
    },
    help,
  )
  const rest = args.slice(args[i] === '--' ? i + 1 : i)
  checkArgCount(rest, { min: 2 }, help)
  const [ref, ...cmd] = rest as [string, ...string[]]
  // docker's CheckTty, for an attached exec only.
  const refused = values.detach === true ? undefined : ttyInputError(values.interactive === true, values.tty === true)
  if (refused !== undefined) return refused
  const env = (values.env ?? []).map((v) => (v.includes('=') ? v : `${v}=${process.env[v] ?? ''}`))
  const exitCode = await withStore(global, (store) =>
    execContainer(store, ref, {
      cmd,
      env,
      ...(values.workdir === undefined ? {} : { workingDir: values.workdir }),
      ...(values.user === undefined ? {} : { user: values.user }),
      tty: values.tty === true,
      interactive: values.interactive === true,
      detach: values.detach === true,
      stdio: 'inherit',
    }).catch((err: unknown) => {
      // A detached exec that could not start: docker 20.10 says it as the daemon's error, exit 1.
      if (err instanceof StrataError && typeof err.details.exitCode === 'number') return { message: `Error response from daemon: ${err.message}`, exitCode: 1 }
      throw err
    }),
  )
  if (typeof exitCode !== 'number') return { stdout: '', stderr: `${exitCode.message}\n`, exitCode: exitCode.exitCode }
  return { stdout: '', exitCode }
}
