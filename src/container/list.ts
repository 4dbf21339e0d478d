/**
 * The container list (`docker ps`, the API's GET /containers/json): one
 * summary per container (docker's types.Container), newest first, as
 * dockerd 20.10's daemon/list.go builds it:
 *
 * - only running containers unless `all`, a `limit` (-n, -l) or a
 *   `status` filter is given (an `exited` filter alone does not widen it,
 *   as in dockerd);
 * - filters as `docker ps --filter`: `id` (prefix), `name` (a regular
 *   expression on `/NAME`), `status`, `ancestor` (an image reference or ID:
 *   containers of that image or of an image built on it), `label` (`key` or
 *   `key=value`), `exited` (an exit code), `before`/`since` (a container:
 *   only those created before/after it). Values of one key: any may hold;
 *   different keys: all must. Unknown keys and bad values are refused with
 *   dockerd's words (`Invalid filter 'nope'`);
 * - Command is dockerd's: `Path` then the arguments, each one holding a
 *   space wrapped in single quotes (no escaping: `sh -c 'a b'`);
 * - with `size`, SizeRw is the read-write layer's changes and SizeRootFs
 *   that plus the image's layers (docker's "virtual" size).
 */
import { StrataError, isStrataError } from '../errors/index.js'
import type { Store } from '../store/index.js'
import { stateName, stateStatus, type Container } from '../containerdb/index.js'
import type { ImageID } from '../image/index.js'
import { chainIds } from '../digest/index.js'
import { reconciledContainers } from './process.js'

/** docker's types.Container (API 1.41 field names and order). */
export interface ContainerSummary {
  Id: string
  Names: string[]
  Image: string
  ImageID: string
  Command: string
  Created: number
  Ports: never[]
  SizeRw?: number
  SizeRootFs?: number
  Labels: Record<string, string>
  State: string
  Status: string
  HostConfig: { NetworkMode: string }
  NetworkSettings: { Networks: Record<string, unknown> }
  Mounts: never[]
}

/** The filter keys dockerd's container list accepts (the others are `Invalid filter`). */
export const CONTAINER_LIST_FILTERS = ['id', 'name', 'status', 'ancestor', 'label', 'exited', 'before', 'since', 'is-task', 'volume', 'network', 'health', 'publish', 'expose', 'isolation'] as const

/** Keys dockerd accepts that strata cannot answer (no volumes, networks, health checks, ports or swarm). */
const UNSUPPORTED_FILTERS = new Set(['is-task', 'volume', 'network', 'health', 'publish', 'expose', 'isolation'])

const STATUS_WORDS = ['created', 'restarting', 'running', 'removing', 'paused', 'exited', 'dead']

export interface ListContainersOptions {
  /** Stopped containers too (`docker ps -a`). */
  all?: boolean
  /** The newest N containers, stopped ones included (`-n N`; `-l` is 1). 0 or less: no limit. */
  limit?: number
  /** Compute SizeRw and SizeRootFs (`-s`). */
  size?: boolean
  /** `--filter KEY=VALUE`s by key. */
  filters?: ReadonlyMap<string, ReadonlySet<string> | readonly string[]> | Record<string, readonly string[]>
  /** The time to word Status against (ms); default now. */
  now?: number
}

/** Path and arguments as dockerd's list joins them: an argument with a space in single quotes. */
export function commandLine(c: Container): string {
  return [c.record.Path, ...c.record.Args.map((a) => (a.includes(' ') ? `'${a}'` : a))].join(' ')
}

/** One container as the list shows it (no sizes). */
export function containerSummary(c: Container, now = Date.now()): ContainerSummary {
  const created = Date.parse(c.record.Created)
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Image: c.record.Config.Image ?? c.record.Image,
    ImageID: c.record.Image,
    Command: commandLine(c),
    Created: Number.isNaN(created) ? 0 : Math.floor(created / 1000),
    Ports: [],
    Labels: c.record.Config.Labels ?? {},
    State: stateName(c.record.State, c.running),
    Status: stateStatus(c.record.State, c.running, now),
    HostConfig: { NetworkMode: 'none' },
    NetworkSettings: { Networks: {} },
    Mounts: [],
  }
}

function filterMap(filters: ListContainersOptions['filters']): Map<string, string[]> {
  const out = new Map<string, string[]>()
  if (filters === undefined) return out
  const entries = filters instanceof Map ? [...filters.entries()] : Object.entries(filters)
  for (const [k, v] of entries as Array<[string, Iterable<string>]>) out.set(k, [...v])
  return out
}

/** The image IDs a container's image descends from, itself included (its recorded parents). */
async function lineage(store: Store, id: string, cache: Map<string, string[]>): Promise<string[]> {
  const known = cache.get(id)
  if (known !== undefined) return known
  const out: string[] = []
  const seen = new Set<string>()
  for (let p: string | undefined = id; p !== undefined && !seen.has(p); ) {
    seen.add(p)
    out.push(p)
    try {
      p = await store.images.getParent(p)
    } catch (err) {
      if (!isStrataError(err, 'NOT_FOUND')) throw err
      p = undefined
    }
  }
  cache.set(id, out)
  return out
}

/** Lists containers as `docker ps` does; see the file header. */
export async function listContainers(store: Store, opts: ListContainersOptions = {}): Promise<ContainerSummary[]> {
  const filters = filterMap(opts.filters)
  for (const key of filters.keys()) {
    if (!(CONTAINER_LIST_FILTERS as readonly string[]).includes(key)) throw new StrataError('INVALID_ARGUMENT', `Invalid filter '${key}'`)
    if (UNSUPPORTED_FILTERS.has(key)) throw new StrataError('NOT_SUPPORTED', `strata does not implement the "${key}" filter of the container list`)
  }
  for (const s of filters.get('status') ?? []) {
    if (!STATUS_WORDS.includes(s)) throw new StrataError('INVALID_ARGUMENT', `Invalid filter 'status=${s}'`)
  }
  const exitCodes = (filters.get('exited') ?? []).map((v) => {
    if (!/^[+-]?\d+$/.test(v)) throw new StrataError('INVALID_ARGUMENT', `strconv.Atoi: parsing "${v}": invalid syntax`)
    return Number(v)
  })
  // A record whose monitor is gone is made true first (process.ts reconcileContainer).
  const containers = await reconciledContainers(store)
  const find = (ref: string): Container => {
    const name = ref.replace(/^\//, '')
    const c = containers.find((x) => x.id === ref) ?? containers.find((x) => x.name === name) ?? containers.find((x) => x.id.startsWith(ref))
    if (c === undefined) throw new StrataError('NOT_FOUND', `no such container ${ref}`)
    return c
  }
  const before = (filters.get('before') ?? []).map((r) => find(r).record.Created)
  const since = (filters.get('since') ?? []).map((r) => find(r).record.Created)
  const names = (filters.get('name') ?? []).map((v) => {
    try {
      return new RegExp(v)
    } catch (err) {
      throw new StrataError('INVALID_ARGUMENT', `error parsing regexp: ${(err as Error).message}`)
    }
  })
  // An ancestor that names no image matches nothing (dockerd skips it).
  const ancestors: ImageID[] = []
  for (const v of filters.get('ancestor') ?? []) {
    try {
      ancestors.push(await store.findImage(v))
    } catch (err) {
      if (!isStrataError(err, 'NOT_FOUND') && !isStrataError(err, 'INVALID_ARGUMENT')) throw err
    }
  }
  const labels = (filters.get('label') ?? []).map((l) => {
    const eq = l.indexOf('=')
    return eq < 0 ? { key: l } : { key: l.slice(0, eq), value: l.slice(eq + 1) }
  })
  const ids = filters.get('id') ?? []
  const statuses = filters.get('status') ?? []
  const limit = opts.limit ?? -1
  const all = opts.all === true || limit > 0 || statuses.length > 0
  const now = opts.now ?? Date.now()
  const lineages = new Map<string, string[]>()

  const out: ContainerSummary[] = []
  for (const c of containers) {
    if (limit > 0 && out.length >= limit) break
    if (!all && !c.running) continue
    const s = containerSummary(c, now)
    if (ids.length > 0 && !ids.some((v) => c.id.startsWith(v))) continue
    // dockerd 20.10 tries the name with and without its slash, so ^web$ matches.
    if (names.length > 0 && !names.some((re) => re.test(`/${c.name}`) || re.test(c.name))) continue
    if (statuses.length > 0 && !statuses.includes(s.State)) continue
    if (exitCodes.length > 0 && !(s.State === 'exited' && exitCodes.includes(c.record.State.ExitCode))) continue
    if (filters.has('ancestor')) {
      const line = await lineage(store, c.record.Image, lineages)
      if (!ancestors.some((a) => line.includes(a))) continue
    }
    const own = c.record.Config.Labels ?? {}
    if (!labels.every((l) => Object.hasOwn(own, l.key) && (l.value === undefined || own[l.key] === l.value))) continue
    if (before.some((t) => !(c.record.Created < t))) continue
    if (since.some((t) => !(c.record.Created > t))) continue
    if (opts.size === true) Object.assign(s, await sizesOf(store, c))
    out.push(s)
  }
  return out
}

/** docker's SizeRw (the read-write layer's changes) and SizeRootFs (those plus the image's layers) of a container (ID, prefix or name). */
export async function containerSizes(store: Store, ref: string): Promise<{ SizeRw: number; SizeRootFs: number }> {
  return sizesOf(store, await store.containers.get(ref))
}

async function sizesOf(store: Store, c: Container): Promise<{ SizeRw: number; SizeRootFs: number }> {
  const rw = await rwSize(store, c.id)
  return { SizeRw: rw, SizeRootFs: rw + (await imageBytes(store, c.record.Image)) }
}

/** The container's read-write layer's bytes; 0 when its layer is gone (a remove that died midway). */
async function rwSize(store: Store, id: string): Promise<number> {
  try {
    return await store.layers.mountSize(id)
  } catch (err) {
    if (isStrataError(err, 'NOT_FOUND')) return 0
    throw err
  }
}

/** The image's layers' bytes (the sum of its chain's layer sizes); 0 when it is gone. */
async function imageBytes(store: Store, id: string): Promise<number> {
  try {
    const image = await store.images.get(id)
    let total = 0
    for (const chain of chainIds(image.config.rootfs.diff_ids)) total += (await store.layers.info(chain)).size
    return total
  } catch (err) {
    if (isStrataError(err, 'NOT_FOUND')) return 0
    throw err
  }
}
