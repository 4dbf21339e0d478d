#!/usr/bin/env node
/**
 * The strata command. Every verb is a function that returns its output;
 * this file alone prints and chooses the exit status, as docker's CLI:
 * 0 success, 1 a failed operation ("Error: ..." on stderr), 125 a flag it
 * refuses, 1 a wrong number of arguments or an unknown command (the texts
 * in errors.ts).
 */
import { StrataError } from '../errors/index.js'
import { ArgCountError, FlagError, HelpRequest, UnknownCommandError, UsageError } from './errors.js'
import { GLOBAL_HELP, parseGlobal, type GlobalOptions } from './global.js'
import type { CommandResult } from './output.js'
import type { VerbIO } from './progress.js'
import { watchStdio, writeStd } from './stdio.js'

/** The container verbs that also stand alone (`strata ps` = `strata container ps`); container.ts holds their help. */
const CONTAINER_VERBS = new Set(['create', 'run', 'start', 'stop', 'kill', 'wait', 'logs', 'restart', 'pause', 'unpause', 'exec', 'top', 'stats', 'attach', 'ps', 'mount', 'umount', 'diff', 'commit', 'export', 'rm'])

const HELP = `Usage: strata COMMAND [ARGS...]

Docker's image and layer storage, without a daemon.

Commands:
  info      Show the numbers of images and containers, the storage driver and the data root
  version   Show strata's version, and the data root and storage driver it uses (--version: one line)
  check     Verify every layer, image and reference in the store (--repair)
  layer     Manage read-only layers: ls, inspect, import, export, rm
  images    List images (docker images)
  image     Manage images: ls, inspect, history, tag, rm, prune
  inspect   Show images' details as JSON (docker image inspect)
  history   Show an image's build steps (--layers: what each layer changed)
  explore   Browse images layer by layer in a web page on 127.0.0.1 (what each layer added, changed, wasted)
  tag       Tag an image
  rmi       Untag and delete images
  load      Load images from a docker-archive, OCI archive or layout (-i FILE or stdin)
  pull      Download an image from a registry (NAME[:TAG|@DIGEST], --platform OS/ARCH)
  push      Upload an image to a registry (NAME[:TAG])
  login     Store a registry's credentials in docker's config.json (-u USER, -p PASS or --password-stdin)
  logout    Remove a registry's credentials from docker's config.json
  save      Save images to a docker-archive, OCI archive or layout (-o FILE or stdout)
  import    Create an image from a root filesystem tar
  system    Disk usage (system df), migrate
  migrate   Move the data root to another storage driver, in place (--to DRIVER)
  archive   Apply and rebuild layer tars on plain directories
  serve     Serve the Docker Engine API on a unix socket (docker, docker-py, dockerode)

Containers (no daemon; run/start use runc in the foreground):
  create    Create a container from an image (prints its ID)
  run       Create a container and run it (-d, -i, --rm, --restart)
  start     Start containers in the background (-a: attached)
  stop      Stop running containers (the stop signal, then SIGKILL)
  kill      Send a signal to running containers (-s)
  wait      Wait for containers to stop; print their exit codes
  logs      Print a container's output (-f, --tail, -t, --since, --until)
  restart   Restart containers
  pause     Freeze a container's processes (unpause: thaw them)
  exec      Run a command in a running container (-i, -t, -e, -w, -u)
  top       List a container's processes
  stats     Show containers' CPU, memory, block I/O and PIDs (--no-stream: once)
  attach    Attach to a running container (a terminal: Ctrl-P Ctrl-Q detaches)
  ps        List containers (-a: all)
  mount     Mount a container's root filesystem (prints the path)
  umount    Undo one mount
  diff      List a container's changes (A/C/D)
  commit    Create an image from a container's changes
  export    Write a container's filesystem as a tar archive
  cp        Copy files between a container and the host (- : a tar on stdin/stdout)
  rm        Remove containers
  rename    Rename a container
  inspect   Show a container's details as JSON (also images)
  container Manage containers (the verbs above as subcommands)

${GLOBAL_HELP}
Run 'strata COMMAND --help' for more on a command.
`

/** The commands whose first argument is a subcommand (`strata image ls`). */
const GROUPS = new Set(['image', 'container', 'system', 'layer', 'archive'])

/** The words that named the verb, as docker's cmd.CommandPath(): "strata images", "strata image ls". */
function commandPath(verbArgs: string[]): string {
  const [command, sub] = verbArgs
  if (command === undefined || command.startsWith('-')) return 'strata'
  return GROUPS.has(command) && sub !== undefined && !sub.startsWith('-') ? `strata ${command} ${sub}` : `strata ${command}`
}

async function main(argv: string[]): Promise<number> {
  let verbArgs: string[] = []
  watchStdio()
  try {
    const parsed = parseGlobal(argv, process.env)
    verbArgs = parsed.rest
    const [command, ...rest] = verbArgs
    const out = await runVerb(command, rest, parsed.global)
    const { stdout, stderr, exitCode } = typeof out === 'string' ? { stdout: out, stderr: undefined, exitCode: 0 } : out
    writeStd('stdout', stdout)
    if (stderr !== undefined) writeStd('stderr', stderr)
    return exitCode ?? 0
  } catch (err) {
    return report(err, commandPath(verbArgs))
  }
}

/** A verb: its arguments after the verb word, and the global options; returns what it prints. */
type Verb = (rest: string[], global: GlobalOptions) => Promise<CommandResult>

/**
 * Every verb, by the word that names it. A verb's module is imported when
 * it runs, not up front: a process pays for loading the modules of its own
 * verb only (`strata ps` does not load the transports).
 */
const VERBS: Readonly<Record<string, Verb>> = {
  info: async (rest, global) => (await import('./info.js')).infoCommand(rest, global),
  version: async (rest, global) => (await import('./version.js')).versionCommand(rest, global),
  '--version': async () => (await import('./version.js')).versionLine(),
  '-v': async () => (await import('./version.js')).versionLine(),
  check: async (rest, global) => (await import('./check.js')).checkCommand(rest, global),
  layer: async (rest, global) => (await import('./layer.js')).layerCommand(rest, global),
  images: async (rest, global) => (await import('./images.js')).imagesCommand(rest, global),
  image: async (rest, global) => (await import('./image.js')).imageCommand(rest, global, verbIO()),
  inspect: async (rest, global) => (await import('./inspect.js')).inspectCommand(rest, global),
  history: async (rest, global) => (await import('./history.js')).historyCommand(rest, global),
  tag: async (rest, global) => (await import('./tag.js')).tagCommand(rest, global),
  explore: async (rest, global) => (await import('./explore.js')).exploreCommand(rest, global, verbIO()),
  rmi: async (rest, global) => (await import('./rmi.js')).rmiCommand(rest, global),
  system: async (rest, global) => (await import('./system.js')).systemCommand(rest, global, verbIO()),
  migrate: async (rest, global) => (await import('./migrate.js')).migrateCommand(rest, global, verbIO()),
  load: async (rest, global) => (await import('./load.js')).loadCommand(rest, global, verbIO()),
  pull: async (rest, global) => (await import('./pull.js')).pullCommand(rest, global, verbIO()),
  push: async (rest, global) => (await import('./push.js')).pushCommand(rest, global, verbIO()),
  save: async (rest, global) => (await import('./save.js')).saveCommand(rest, global, verbIO()),
  import: async (rest, global) => (await import('./import.js')).importCommand(rest, global, verbIO()),
  archive: async (rest) => (await import('./archive.js')).archiveCommand(rest),
  login: async (rest) => (await import('./login.js')).loginCommand(rest, process.stdin.isTTY === true),
  logout: async (rest) => (await import('./login.js')).logoutCommand(rest),
  rename: async (rest, global) => (await import('./container.js')).containerVerb('rename', rest, global),
  cp: async (rest, global) => (await import('./container.js')).containerVerb('cp', rest, global),
  serve: async (rest, global) => (await import('./serve.js')).serveCommand(rest, global, verbIO()),
  container: async (rest, global) => (await import('./container.js')).containerCommand(rest, global, verbIO()),
}

/** Runs the verb `command` and returns its output; throws what the verb throws, or refuses an unknown command or flag. */
async function runVerb(command: string | undefined, rest: string[], global: GlobalOptions): Promise<CommandResult> {
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') return HELP
  const verb = Object.hasOwn(VERBS, command) ? VERBS[command] : undefined
  if (verb !== undefined) return verb(rest, global)
  if (CONTAINER_VERBS.has(command)) return (await import('./container.js')).containerVerb(command, rest, global)
  if (command.startsWith('-')) throw new FlagError(command.startsWith('--') ? `unknown flag: ${command.replace(/=.*$/, '')}` : `unknown shorthand flag: '${command.slice(1, 2)}' in ${command}`)
  throw new UnknownCommandError(command)
}

/** The terminal facts load/save/import need; their progress bars reach stdout only through this. */
function verbIO(): VerbIO {
  return {
    stdout: { isTTY: process.stdout.isTTY === true, columns: process.stdout.columns, write: (text) => void process.stdout.write(text) },
    stdinIsTTY: process.stdin.isTTY === true,
  }
}

/** The usage line of a verb's help that names `path` (else its first), and the first line of its description. */
function usageSummary(help: string, path: string): { usage: string; short: string } {
  const lines = help.split('\n')
  const usages: string[] = []
  let i = 0
  for (; i < lines.length; i++) {
    const m = (i === 0 ? /^Usage:\s+(strata .*)$/ : /^\s+(strata .*)$/).exec(lines[i]!)
    if (m === null) break
    usages.push(m[1]!)
  }
  const short = lines.slice(i).find((l) => l.trim() !== '') ?? ''
  const usage = usages.find((u) => u === path || u.startsWith(`${path} `)) ?? usages[0] ?? path
  return { usage, short }
}

/** Prints what went wrong as the docker CLI would and returns the exit status. */
function report(err: unknown, path: string): number {
  if (err instanceof HelpRequest) {
    writeStd('stdout', err.help)
    return 0
  }
  if (err instanceof UnknownCommandError) {
    const where = err.group === undefined ? 'strata' : `strata ${err.group}`
    writeStd('stderr', `strata: ${err.message}\nSee '${where} --help'\n`)
    return err.exitCode
  }
  if (err instanceof ArgCountError) {
    const { usage, short } = usageSummary(err.help, path)
    writeStd('stderr', `"${path}" ${err.detail}\nSee '${path} --help'.\n\nUsage:  ${usage}\n\n${short}\n`)
    return err.exitCode
  }
  if (err instanceof UsageError) {
    writeStd('stderr', `${err.message}\nSee '${path} --help'.\n`)
    return err.exitCode
  }
  const e = err as Error
  writeStd('stderr', `Error: ${e.message ?? String(err)}\n`)
  if (err instanceof StrataError && err.hint !== undefined) writeStd('stderr', `hint: ${err.hint}\n`)
  else if (!(err instanceof StrataError) && process.env.STRATA_DEBUG !== undefined) writeStd('stderr', `${e.stack}\n`)
  // A container's command that could not be run: docker's 127 (not found) or 126 (not executable).
  const exitCode = err instanceof StrataError ? err.details?.exitCode : undefined
  return typeof exitCode === 'number' ? exitCode : 1
}

// No top-level await: the bundled CLI (scripts/bundle-cli.mjs) is a CommonJS script, compiled with a V8 code cache.
/** The command's end (the launcher's cache warm-up runs several commands in one process and waits for each). */
export const done: Promise<void> = main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
})
