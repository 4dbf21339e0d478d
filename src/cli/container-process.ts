/**
 * The verbs on a container's process, as docker's CLI words and prints
 * them: start (detached unless -a), stop, kill, wait, logs, restart,
 * pause, unpause, exec, top. Each is a library call (src/container
 * process.ts, logs.ts, exec.ts); attached starts and `logs -f` stream
 * the container's output to this process's stdout and stderr as it comes.
 */
import {
  attachContainer,
  execContainer,
  fixedNanoTime,
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
import { StrataError } from '../errors/index.js'
import { DOCKER_TABWRITER, tabwrite } from '../format/index.js'
import type { Store } from '../store/index.js'
import { checkArgCount, intFlag, parseFlags } from './args.js'
import { UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import { withStore } from './store.js'

export const PROCESS_HELPS: Record<string, string> = {
  start: `Usage: strata start [OPTIONS] CONTAINER [CONTAINER...]

Start one or more stopped containers (in the background: a monitor process per container runs it).

Options:
  -a, --attach        Attach STDOUT/STDERR and forward signals; exit with the container's status
  -i, --interactive   Attach container's STDIN
`,
  stop: `Usage: strata stop [OPTIONS] CONTAINER [CONTAINER...]

Stop one or more running containers (the stop signal, then SIGKILL after the timeout).

Options:
  -t, --time int   Seconds to wait for stop before killing it (default 10)
`,
  kill: `Usage: strata kill [OPTIONS] CONTAINER [CONTAINER...]

Kill one or more running containers.

Options:
  -s, --signal string   Signal to send to the container (default "KILL")
`,
  wait: `Usage: strata wait CONTAINER [CONTAINER...]

Block until one or more containers stop, then print their exit codes.
`,
  logs: `Usage: strata logs [OPTIONS] CONTAINER

Fetch the logs of a container.

Options:
  -f, --follow         Follow log output
      --since string   Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
  -n, --tail string    Number of lines to show from the end of the logs (default "all")
  -t, --timestamps     Show timestamps
      --until string   Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)
`,
  restart: `Usage: strata restart [OPTIONS] CONTAINER [CONTAINER...]

Restart one or more containers.

Options:
  -t, --time int   Seconds to wait for stop before killing the container (default 10)
`,
  pause: `Usage: strata pause CONTAINER [CONTAINER...]

Pause all processes within one or more containers (the cgroup freezer).
`,
  unpause: `Usage: strata unpause CONTAINER [CONTAINER...]

Unpause all processes within one or more containers.
`,
  exec: `Usage: strata exec [OPTIONS] CONTAINER COMMAND [ARG...]

Run a command in a running container.

Options:
  -e, --env list        Set environment variables
  -i, --interactive     Keep STDIN open even if not attached
  -t, --tty             Allocate a pseudo-TTY
  -u, --user string     Username or UID (format: <name|uid>[:<group|gid>])
  -w, --workdir string  Working directory inside the container
`,
  top: `Usage: strata top CONTAINER [ps OPTIONS]

Display the running processes of a container.
`,
}

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

/** Starts `id` and stays attached until it exits; the exit code, or the start's failure in docker's words. */
export async function startAttached(store: Store, id: string, interactive: boolean): Promise<CommandResult> {
  const offset = await logSize(store, id)
  try {
    await startContainer(store, id)
  } catch (err) {
    if (err instanceof StrataError && typeof err.details.exitCode === 'number') {
      return { stdout: '', stderr: `Error: ${err.message}\n`, exitCode: err.details.exitCode }
    }
    throw err
  }
  const undo = proxySignals(store, id)
  try {
    const { exitCode } = await attachContainer(store, id, {
      fromOffset: offset,
      stdout: process.stdout,
      stderr: process.stderr,
      ...(interactive ? { stdin: process.stdin } : {}),
    })
    if (interactive) process.stdin.destroy()
    return { stdout: '', exitCode }
  } finally {
    undo()
  }
}

export async function processVerb(verb: string, args: string[], global: GlobalOptions): Promise<CommandResult> {
  const help = PROCESS_HELPS[verb]!
  switch (verb) {
    case 'start': {
      const { values, positionals } = parseFlags(args, { attach: { type: 'boolean', short: 'a' }, interactive: { type: 'boolean', short: 'i' } }, help)
      checkArgCount(positionals, { min: 1 }, help)
      if (values.attach === true || values.interactive === true) {
        if (positionals.length > 1) throw new UsageError('you cannot start and attach multiple containers at once')
        return withStore(global, async (store) => startAttached(store, (await store.containers.get(positionals[0]!)).id, values.interactive === true))
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
  if (values.detach === true) throw new UsageError('strata exec does not run detached processes (-d): run it attached')
  const [ref, ...cmd] = rest as [string, ...string[]]
  const env = (values.env ?? []).map((v) => (v.includes('=') ? v : `${v}=${process.env[v] ?? ''}`))
  const exitCode = await withStore(global, (store) =>
    execContainer(store, ref, {
      cmd,
      env,
      ...(values.workdir === undefined ? {} : { workingDir: values.workdir }),
      ...(values.user === undefined ? {} : { user: values.user }),
      tty: values.tty === true,
      interactive: values.interactive === true,
      stdio: 'inherit',
    }),
  )
  return { stdout: '', exitCode }
}
