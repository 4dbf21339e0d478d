/**
 * The container verbs: create, ps, mount, umount, diff, commit, export, rm,
 * run, start (and `strata container VERB` for each). Output as docker's
 * (podman's for mount/umount, which docker lacks): create prints the full
 * ID, mount the rootfs path, commit the image ID, rm and umount the names
 * given, diff "A/C/D /path" lines; ps a table or, with --format json, one
 * object per line like `docker ps --format '{{json .}}'`. run and start
 * give the container's stdio to the container and exit with its status.
 */
// The library is imported by the verb that runs (a `strata --help` or a
// usage error does not initialise it; ps loads the template engine only
// for itself), through src/container's surface as docs/architecture.md
// requires.
import type { ContainerSummary, CreateContainerOptions } from '../container/index.js'
import { PROCESS_HELPS } from './container-process-helps.js'
import { StrataError } from '../errors/index.js'
import { goTimeString } from '../fs/index.js'
import { ellipsis, humanSize4, humanSizeWithPrecision } from './docker-format.js'
import { checkFilterKeys, FILTER_FLAG, parseFilterFlags } from './filters.js'
import type { VerbIO } from './progress.js'
import { checkArgCount, intFlag, parseFlags } from './args.js'
import { FlagError, UnknownCommandError, UsageError } from './errors.js'
import type { GlobalOptions } from './global.js'
import { validateOutputPath, writeOutput } from './io.js'
import type { CommandResult } from './output.js'
import type { ContainerRowPayload } from './list-formats.js'
import type { GoType, Template } from '../format/index.js'
import { withStore } from './store.js'
import { strataVersion } from './version.js'
import { humanDuration } from '../containerdb/index.js'

const CREATE_OPTIONS = `Options:
      --name NAME            Assign a name to the container
  -e, --env KEY=VALUE        Set an environment variable (repeatable)
  -w, --workdir DIR          Working directory inside the container
  -u, --user UID[:GID]       User (numeric or from the image's /etc/passwd)
      --entrypoint CMD       Overwrite the image's entrypoint ("" clears it)
  -l, --label KEY=VALUE      Set a label (repeatable)
  -i, --interactive          Keep STDIN open
  -t, --tty                  Allocate a pseudo-TTY (the monitor holds it; Ctrl-P Ctrl-Q detaches)`

export const CONTAINER_HELPS: Record<string, string> = {
  create: `Usage: strata create [OPTIONS] IMAGE [COMMAND] [ARG...]

Create a container (its layer on the image, with Docker's init layer) and print its ID.

${CREATE_OPTIONS}
`,
  run: `Usage: strata run [OPTIONS] IMAGE [COMMAND] [ARG...]

Create a container and run it with runc (a monitor process per container), attached
unless -d; exit with its status. No network is set up: the container gets its own
network namespace with only loopback.

${CREATE_OPTIONS}
  -d, --detach               Run container in background and print container ID
      --detach-keys KEYS     Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
      --restart POLICY       no, on-failure[:max-retries], always, unless-stopped
                             (applied by the monitor while the host runs; nothing restarts after a reboot)
      --rm                   Remove the container when it exits
`,
  ...PROCESS_HELPS,
  ps: `Usage: strata ps [OPTIONS]

List containers (running ones only, unless -a).

Options:
  -a, --all             Show all containers
  -f, --filter FILTER   Filter output based on conditions provided (status=created|restarting|running|
                        removing|paused|exited|dead, name=, id=, label=)
  -q, --quiet           Only display container IDs
  -f, --filter KEY=VAL  Keep what matches (repeatable): id=, name= (a regexp), status=,
                        ancestor=IMAGE, label=KEY[=VALUE], exited=CODE, before=, since=
  -n, --last N          The N newest containers (stopped ones too)
  -l, --latest          The newest container
  -s, --size            Show the read-write layer's size and the virtual size
      --no-trunc        Do not truncate output
      --format FORMAT   A Go template as docker's ('table {{.ID}}\\t{{.Names}}', '{{json .}}',
                        'json'). Fields: ID Names Image Command CreatedAt RunningFor
                        Ports State Status Size Labels Mounts LocalVolumes Networks,
                        and .Label "KEY"
`,
  mount: `Usage: strata mount CONTAINER

Mount a container's root filesystem and print its path (counted: umount as often).
`,
  umount: `Usage: strata umount CONTAINER...

Undo one "strata mount" of each container; the last one unmounts.
`,
  diff: `Usage: strata diff CONTAINER

List the files a container changed: A added, C changed, D deleted.
`,
  commit: `Usage: strata commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]

Create a new image from a container's changes.

Options:
  -a, --author STRING    Author
  -m, --message STRING   Commit message
  -c, --change LIST      Apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR)
`,
  export: `Usage: strata export [-o FILE] CONTAINER

Write a container's filesystem as a tar archive (to stdout without -o).
`,
  cp: `Usage: strata cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
       strata cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH

Copy files/folders between a container and the local filesystem

Use '-' as the source to read a tar archive from stdin
and extract it to a directory destination in a container.
Use '-' as the destination to stream a tar archive of a
container source to stdout.

Options:
  -a, --archive       Archive mode (accepted; ownership is kept from the source)
  -L, --follow-link   Always follow symbol link in SRC_PATH
`,
  rename: `Usage: strata rename CONTAINER NEW_NAME

Rename a container.
`,
  prune: `Usage: strata container prune -f [--filter until=TIME|label=KEY[=VALUE]|label!=...]

Remove every container that is not running. Prints their IDs and the space
reclaimed, as docker does. docker asks first; strata never prompts, and
refuses to run without -f (exit 125).

Options:
  -f, --force           Do it (required)
      --filter FILTER   until=TIMESTAMP|DURATION, label=KEY[=VALUE], label!=KEY[=VALUE]
`,
  rm: `Usage: strata rm [-f] CONTAINER...

Remove containers (their layers and records).

Options:
  -f, --force   Remove even when mounted or running (killing it and waiting for its exit)
`,
}

export const CONTAINER_HELP = `Usage: strata container COMMAND

Manage containers.

Commands:
  create, run, start, stop, kill, wait, logs, restart, pause, unpause, exec, top,
  stats, ls (ps), inspect, mount, umount, diff, commit, export, cp, rename, rm, prune
`

function help(verb: string, args: string[]): string | undefined {
  return args.includes('--help') || args.includes('-h') ? CONTAINER_HELPS[verb] : undefined
}

/** `strata container VERB ...`. */
export async function containerCommand(args: string[], global: GlobalOptions, io?: VerbIO): Promise<CommandResult> {
  void io
  const [verb, ...rest] = args
  const alias: Record<string, string> = { ls: 'ps', list: 'ps', remove: 'rm', unmount: 'umount' }
  const name = verb === undefined ? undefined : (alias[verb] ?? verb)
  if (name === undefined || name === '--help' || name === '-h') return CONTAINER_HELP
  if (name === 'inspect') return (await import('./inspect.js')).inspectCommand(rest, global, 'container')
  if (!(name in CONTAINER_HELPS)) throw new UnknownCommandError(verb!, 'container')
  return containerVerb(name, rest, global)
}

/** Dispatches one of the verbs in CONTAINER_HELPS. */
export async function containerVerb(verb: string, args: string[], global: GlobalOptions): Promise<CommandResult> {
  const h = help(verb, verb === 'create' || verb === 'run' ? args.slice(0, Math.max(0, firstPositional(args))) : verb === 'exec' || verb === 'top' ? args.slice(0, 1) : args)
  if (h !== undefined) return h
  switch (verb) {
    case 'create':
      return create(args, global)
    case 'run':
      return run(args, global)
    case 'start':
    case 'stop':
    case 'kill':
    case 'wait':
    case 'logs':
    case 'restart':
    case 'pause':
    case 'unpause':
    case 'exec':
    case 'top':
    case 'attach':
      return (await import('./container-process.js')).processVerb(verb, args, global)
    case 'stats':
      return (await import('./stats.js')).statsCommand(args, global)
    case 'ps':
      return ps(args, global)
    case 'mount':
      return mount(args, global)
    case 'umount':
      return umount(args, global)
    case 'diff':
      return diff(args, global)
    case 'commit':
      return commit(args, global)
    case 'export':
      return exportCmd(args, global)
    case 'rm':
      return rm(args, global)
    case 'rename':
      return renameCmd(args, global)
    case 'cp':
      return (await import('./cp.js')).cpCommand(args, global, CONTAINER_HELPS.cp!)
    case 'prune':
      return prune(args, global)
    default:
      throw new UnknownCommandError(verb)
  }
}

// create / run: options stop at the image; everything after it is the command.

const VALUE_FLAGS: Record<string, string> = {
  '--name': 'name',
  '-e': 'env',
  '--env': 'env',
  '-w': 'workdir',
  '--workdir': 'workdir',
  '-u': 'user',
  '--user': 'user',
  '--entrypoint': 'entrypoint',
  '-l': 'label',
  '--label': 'label',
  '--restart': 'restart',
  '--detach-keys': 'detach-keys',
}

/** create/run booleans: which verbs take them. */
const BOOL_FLAGS: Record<string, { key: 'rm' | 'detach' | 'interactive' | 'tty'; verbs: string[] }> = {
  '-t': { key: 'tty', verbs: ['run', 'create'] },
  '--tty': { key: 'tty', verbs: ['run', 'create'] },
  '--rm': { key: 'rm', verbs: ['run'] },
  '-d': { key: 'detach', verbs: ['run'] },
  '--detach': { key: 'detach', verbs: ['run'] },
  '-i': { key: 'interactive', verbs: ['run', 'create'] },
  '--interactive': { key: 'interactive', verbs: ['run', 'create'] },
}

/** Index of the first argument that is not an option or an option's value (args.length when none). */
function firstPositional(args: string[]): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--') return i + 1
    if (!a.startsWith('-') || a === '-') return i
    if (!a.includes('=') && (a in VALUE_FLAGS || lastShortTakesValue(a))) i++
  }
  return args.length
}

/** `-it`, `-dit`: grouped short booleans (pflag), spread out; anything else as it is. */
function spreadShorts(args: string[]): string[] {
  const out: string[] = []
  for (const [i, a] of args.entries()) {
    if (a === '--' || (!a.startsWith('-') && !(i > 0 && (args[i - 1]! in VALUE_FLAGS)))) return [...out, ...args.slice(i)]
    if (/^-[a-zA-Z]{2,}$/.test(a) && [...a.slice(1)].every((c) => `-${c}` in BOOL_FLAGS)) out.push(...[...a.slice(1)].map((c) => `-${c}`))
    else out.push(a)
  }
  return out
}

/** `-ie VALUE`: a group ending in a flag that takes a value. */
function lastShortTakesValue(a: string): boolean {
  return /^-[a-zA-Z]{2,}$/.test(a) && `-${a.at(-1)!}` in VALUE_FLAGS
}

interface CreateArgs {
  image: string
  opts: CreateContainerOptions
  rm: boolean
  detach: boolean
  detachKeys?: string
}

async function parseCreate(verb: string, given: string[]): Promise<CreateArgs> {
  const args = spreadShorts(given)
  const opts: CreateContainerOptions = {}
  const env: string[] = []
  const labels: Record<string, string> = {}
  const bools = { rm: false, detach: false, interactive: false, tty: false }
  let detachKeys: string | undefined
  let i = 0
  for (; i < args.length; i++) {
    const arg = args[i]!
    if (arg === '--') {
      i++
      break
    }
    if (!arg.startsWith('-') || arg === '-') break
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1
    const flag = eq > 0 ? arg.slice(0, eq) : arg
    const bool = BOOL_FLAGS[flag]
    if (bool !== undefined && bool.verbs.includes(verb)) {
      bools[bool.key] = eq > 0 ? arg.slice(eq + 1) !== 'false' : true
      continue
    }
    const key = VALUE_FLAGS[flag]
    if (key === undefined) throw new FlagError(flag.startsWith('--') ? `unknown flag: ${flag}` : `unknown shorthand flag: '${flag.slice(1, 2)}' in ${flag}`)
    let value: string
    if (eq > 0) value = arg.slice(eq + 1)
    else {
      const next = args[++i]
      if (next === undefined) throw new FlagError(flag.startsWith('--') ? `flag needs an argument: ${flag}` : `flag needs an argument: '${flag.slice(1)}' in ${flag}`)
      value = next
    }
    switch (key) {
      case 'name':
        opts.name = value
        break
      case 'env':
        // docker takes a bare KEY from its own environment.
        env.push(value.includes('=') ? value : `${value}=${process.env[value] ?? ''}`)
        break
      case 'workdir':
        opts.workingDir = value
        break
      case 'user':
        opts.user = value
        break
      case 'entrypoint':
        opts.entrypoint = value === '' ? [] : [value]
        break
      case 'label': {
        const at = value.indexOf('=')
        labels[at < 0 ? value : value.slice(0, at)] = at < 0 ? '' : value.slice(at + 1)
        break
      }
      case 'restart':
        opts.restartPolicy = (await import('../container/index.js')).parseRestartPolicy(value)
        break
      case 'detach-keys':
        detachKeys = value
        break
    }
  }
  if (bools.interactive) opts.interactive = true
  if (bools.tty) opts.tty = true
  if (bools.detach) opts.detached = true
  const policy = opts.restartPolicy?.Name ?? 'no'
  // docker's CLI refuses this pair itself (exit 125).
  if (bools.rm && policy !== 'no') throw new FlagError('Conflicting options: --restart and --rm')
  const [image, ...cmd] = args.slice(i)
  if (image === undefined) checkArgCount([], { min: 1 }, CONTAINER_HELPS[verb]!)
  if (cmd.length > 0) opts.cmd = cmd
  if (env.length > 0) opts.env = env
  if (Object.keys(labels).length > 0) opts.labels = labels
  return { image, opts, rm: bools.rm, detach: bools.detach, ...(detachKeys === undefined ? {} : { detachKeys }) }
}

async function create(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { image, opts } = await parseCreate('create', args)
  const { createContainer } = await import('../container/index.js')
  const c = await withStore(global, (store) => createContainer(store, image, opts))
  return `${c.id}\n`
}

async function run(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { image, opts, rm, detach, detachKeys } = await parseCreate('run', args)
  const { startAttached, ttyInputError } = await import('./container-process.js')
  const { createContainer, startContainer, removeContainer } = await import('../container/index.js')
  // docker's CheckTty, before anything is created.
  const refused = detach ? undefined : ttyInputError(opts.interactive === true, opts.tty === true)
  if (refused !== undefined) return refused
  return withStore(global, async (store) => {
    // A detached --rm container is removed by its monitor when it exits (AutoRemove, as dockerd).
    const c = await createContainer(store, image, { ...opts, autoRemove: detach && rm })
    if (detach) {
      try {
        await startContainer(store, c.id)
      } catch (err) {
        if (rm) await removeContainer(store, c.id, { force: true }).catch(() => {})
        throw err
      }
      return `${c.id}\n`
    }
    let detached = false
    try {
      const r = await startAttached(store, c.id, { interactive: opts.interactive === true, start: true, ...(detachKeys === undefined ? {} : { detachKeys }) })
      detached = r.detached === true
      return r
    } finally {
      // Detached from its terminal, it runs on: not removed (see the README's differences).
      if (rm && !detached) await removeContainer(store, c.id, { force: true })
    }
  })
}

// ps


async function ps(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(
    args,
    {
      all: { type: 'boolean', short: 'a' },
      quiet: { type: 'boolean', short: 'q' },
      'no-trunc': { type: 'boolean' },
      format: { type: 'string' },
      filter: FILTER_FLAG,
      last: { type: 'string', short: 'n', check: intFlag },
      latest: { type: 'boolean', short: 'l' },
      size: { type: 'boolean', short: 's' },
    },
    CONTAINER_HELPS.ps!,
  )
  checkArgCount(positionals, { max: 0 }, CONTAINER_HELPS.ps!)
  const source = values.format ?? ''
  const [{ listContainers }, { CONTAINER_HEADER, CONTAINER_ROW, containerFormat, renderList }, fmt] = await Promise.all([
    import('../container/index.js'),
    import('./list-formats.js'),
    import('../format/index.js'),
  ])
  // docker checks a --format template before listing: parsed as given, run once over an empty row.
  const invalid = source === '' ? undefined : psTemplateError(source, fmt, CONTAINER_ROW)
  if (invalid !== undefined) return { stdout: '', stderr: `${invalid}\n`, exitCode: 1 }
  const quiet = values.quiet === true
  // docker 20.10 computes sizes for a template that shows them, even with --size=false.
  const size = values.size === true || (!quiet && /\.Size\b/.test(source))
  const format = containerFormat(source, quiet, size)
  const last = values.last === undefined ? -1 : Number(values.last)
  const now = Date.now()
  const shown = await withStore(global, (store) =>
    listContainers(store, {
      all: values.all === true,
      limit: values.latest === true ? 1 : last,
      size,
      filters: parseFilterFlags(values.filter),
      now,
    }),
    // Sizes mount the containers' layers: a writing open then.
    { reading: !size },
  )
  const trunc = values['no-trunc'] !== true
  return renderList(
    format,
    shown.map((c) => psRow(c, trunc, now, fmt.quote)),
    { type: CONTAINER_ROW, header: CONTAINER_HEADER },
  )
}

/** Why docker's ps would refuse a --format before listing anything, if it would. */
function psTemplateError(format: string, fmt: typeof import('../format/index.js'), row: GoType): string | undefined {
  let tmpl: Template
  try {
    tmpl = fmt.Template.parse(format, { funcs: fmt.DOCKER_FUNCS })
  } catch (err) {
    return `failed to parse template: ${(err as Error).message}`
  }
  try {
    tmpl.execute({ labels: {} }, { type: row })
  } catch (err) {
    return `failed to execute template: ${(err as Error).message}`
  }
  return undefined
}

/** A ps row's columns as docker's ContainerContext computes them from the list's summary. */
function psRow(c: ContainerSummary, trunc: boolean, now: number, quote: (s: string) => string): ContainerRowPayload {
  const labels = c.Labels
  return {
    labels,
    ID: trunc ? c.Id.slice(0, 12) : c.Id,
    Names: c.Names.map((n) => n.replace(/^\//, '')).join(','),
    Image: c.Image,
    Command: quote(trunc ? ellipsis(c.Command, 20) : c.Command),
    CreatedAt: goTimeString(c.Created),
    RunningFor: `${humanDuration(Math.max(0, now - c.Created * 1000))} ago`,
    Ports: '',
    State: c.State,
    Status: c.Status,
    Size: sizeText(c),
    Labels: Object.entries(labels)
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(','),
    Mounts: '',
    LocalVolumes: '0',
    Networks: 'none',
    Platform: null,
  }
}

/** docker's ContainerContext.Size: the rw layer, and the virtual size when known. */
function sizeText(c: ContainerSummary): string {
  const rw = humanSizeWithPrecision(c.SizeRw ?? 0, 3)
  return (c.SizeRootFs ?? 0) > 0 ? `${rw} (virtual ${humanSizeWithPrecision(c.SizeRootFs!, 3)})` : rw
}

// mount, umount, diff, commit, export, rm

/** The one argument of a verb that takes exactly one, parsed with no flags of its own. */
function onlyArgument(verb: string, args: string[]): string {
  const { positionals } = parseFlags(args, {}, CONTAINER_HELPS[verb]!)
  checkArgCount(positionals, { min: 1, max: 1 }, CONTAINER_HELPS[verb]!)
  return positionals[0]!
}

async function mount(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const ref = onlyArgument('mount', args)
  const { mountContainer } = await import('../container/index.js')
  return `${await withStore(global, (store) => mountContainer(store, ref))}\n`
}

async function umount(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { positionals } = parseFlags(args, {}, CONTAINER_HELPS.umount!)
  checkArgCount(positionals, { min: 1 }, CONTAINER_HELPS.umount!)
  const { unmountContainer } = await import('../container/index.js')
  return withStore(global, async (store) => {
    for (const ref of positionals) await unmountContainer(store, ref)
    return positionals.map((p) => `${p}\n`).join('')
  })
}

async function diff(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const ref = onlyArgument('diff', args)
  const { containerChanges, formatChangeLines } = await import('../container/index.js')
  return formatChangeLines(await withStore(global, (store) => containerChanges(store, ref)))
}

async function commit(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(
    args,
    { author: { type: 'string', short: 'a' }, message: { type: 'string', short: 'm' }, change: { type: 'string', short: 'c', multiple: true }, pause: { type: 'boolean', short: 'p' } },
    CONTAINER_HELPS.commit!,
  )
  checkArgCount(positionals, { min: 1, max: 2 }, CONTAINER_HELPS.commit!)
  const [ref, reference] = positionals as [string, string | undefined]
  const { commitContainer } = await import('../container/index.js')
  const result = await withStore(global, (store) =>
    commitContainer(store, ref, {
      dockerVersion: strataVersion(),
      ...(reference === undefined ? {} : { reference }),
      ...(values.author === undefined ? {} : { author: values.author }),
      ...(values.message === undefined ? {} : { message: values.message }),
      ...(values.change === undefined ? {} : { changes: values.change }),
    }),
  )
  return `${result.imageId}\n`
}

async function exportCmd(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { output: { type: 'string', short: 'o' } }, CONTAINER_HELPS.export!)
  checkArgCount(positionals, { min: 1, max: 1 }, CONTAINER_HELPS.export!)
  const ref = positionals[0]!
  const out = values.output ?? '-'
  await validateOutputPath(out, 'failed to export container')
  if (out === '-' && process.stdout.isTTY === true) {
    throw new StrataError('INVALID_ARGUMENT', 'cowardly refusing to save to a terminal. Use the -o flag or redirect')
  }
  const { exportContainer } = await import('../container/index.js')
  await withStore(global, async (store) => writeOutput(out, await exportContainer(store, ref)))
  return ''
}

async function renameCmd(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { positionals } = parseFlags(args, {}, CONTAINER_HELPS.rename!)
  checkArgCount(positionals, { min: 2, max: 2 }, CONTAINER_HELPS.rename!)
  const { renameContainer } = await import('../container/index.js')
  await withStore(global, (store) => renameContainer(store, positionals[0]!, positionals[1]!))
  return ''
}

async function prune(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { force: { type: 'boolean', short: 'f' }, filter: { type: 'string', multiple: true, check: FILTER_FLAG.check } }, CONTAINER_HELPS.prune!)
  checkArgCount(positionals, { max: 0 }, CONTAINER_HELPS.prune!)
  if (values.force !== true) throw new UsageError('"container prune" removes every stopped container and never asks: add -f (--force) to go ahead')
  const filters = parseFilterFlags(values.filter)
  checkFilterKeys(filters, ['until', 'label', 'label!'])
  const until = filters.get('until')?.[0]
  const { pruneContainers } = await import('../container/index.js')
  const report = await withStore(global, (store) =>
    pruneContainers(store, {
      ...(until === undefined ? {} : { until: untilTime(until) }),
      ...(filters.has('label') ? { labels: filters.get('label')! } : {}),
      ...(filters.has('label!') ? { notLabels: filters.get('label!')! } : {}),
    }),
  )
  let out = ''
  if (report.ContainersDeleted.length > 0) out += `Deleted Containers:\n${report.ContainersDeleted.map((id) => `${id}\n`).join('')}\n`
  return `${out}Total reclaimed space: ${humanSize4(report.SpaceReclaimed)}\n`
}

/** An until= value as docker takes it: Unix seconds, an RFC 3339 time, or a Go duration back from now (10m, 1h30m). */
function untilTime(value: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)]
  if (parts.length > 0 && parts.map((p) => p[0]).join('') === value) return Date.now() - parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]!]!, 0)
  const t = Date.parse(value)
  if (Number.isNaN(t)) throw new StrataError('INVALID_ARGUMENT', `failed to parse value as time or duration: "${value}"`)
  return t
}

async function rm(args: string[], global: GlobalOptions): Promise<CommandResult> {
  const { values, positionals } = parseFlags(args, { force: { type: 'boolean', short: 'f' } }, CONTAINER_HELPS.rm!)
  checkArgCount(positionals, { min: 1 }, CONTAINER_HELPS.rm!)
  const { removeContainer } = await import('../container/index.js')
  return withStore(global, async (store) => {
    const out: string[] = []
    const errors: string[] = []
    for (const ref of positionals) {
      try {
        await removeContainer(store, ref, { force: values.force === true })
        out.push(`${ref}\n`)
      } catch (err) {
        // docker goes on with the others and fails at the end.
        errors.push(`Error: ${(err as Error).message}\n`)
      }
    }
    return { stdout: out.join(''), stderr: errors.join(''), exitCode: errors.length > 0 ? 1 : 0 }
  })
}
