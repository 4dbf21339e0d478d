/**
 * containerStats: docker stats' numbers for a running container, read
 * from its cgroup files and shaped as dockerd 20.10 shapes them
 * (types.StatsJSON of API 1.41: cpu_stats, precpu_stats, memory_stats,
 * pids_stats, blkio_stats, read/preread).
 *
 * Which cgroup: the container's init process's (/proc/PID/cgroup), each
 * controller's directory found through /proc/self/mountinfo (mount point
 * plus the path below the mount's root). A machine whose cpu and memory
 * controllers sit on cgroup v1 (hybrid hosts: runc puts the container in
 * both trees) is read as dockerd reads it with "Cgroup Version: 1"
 * (cpuacct.usage, per-CPU usage, max usage, the memory.stat keys
 * dockerd takes from containerd's metrics); on a cgroup v2 host as dockerd's statsV2 (cpu.stat's usec ×
 * 1000, no per-CPU figures, the memory.stat keys it picks, io.stat's read
 * and write bytes). As dockerd: a memory limit above the machine's memory
 * is the machine's memory; system_cpu_usage is /proc/stat's first seven
 * cpu fields in nanoseconds; a container that does not run has an
 * all-zero record with its name and ID.
 */
import { readFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join, relative } from 'node:path'
import { mountEntries } from '../graphdriver/index.js'
import type { Store } from '../store/index.js'
import { getContainer } from './process.js'

export interface CpuUsage {
  total_usage: number
  percpu_usage?: number[]
  usage_in_kernelmode: number
  usage_in_usermode: number
}

export interface CpuStats {
  cpu_usage: CpuUsage
  system_cpu_usage?: number
  online_cpus?: number
  throttling_data: { periods: number; throttled_periods: number; throttled_time: number }
}

export interface BlkioEntry {
  major: number
  minor: number
  op: string
  value: number
}

export interface BlkioStats {
  io_service_bytes_recursive: BlkioEntry[] | null
  io_serviced_recursive: BlkioEntry[] | null
  io_queue_recursive: BlkioEntry[] | null
  io_service_time_recursive: BlkioEntry[] | null
  io_wait_time_recursive: BlkioEntry[] | null
  io_merged_recursive: BlkioEntry[] | null
  io_time_recursive: BlkioEntry[] | null
  sectors_recursive: BlkioEntry[] | null
}

export interface MemoryStats {
  usage?: number
  max_usage?: number
  stats?: Record<string, number>
  failcnt?: number
  limit?: number
}

/** One sample, as GET /containers/{id}/stats sends it (dockerd 20.10's field order). */
export interface ContainerStats {
  /** When it was read (RFC 3339, nanoseconds); Go's zero time for a container that does not run. */
  read: string
  /** When the previous sample was read (the zero time without one). */
  preread: string
  pids_stats: { current?: number; limit?: number }
  blkio_stats: BlkioStats
  num_procs: number
  storage_stats: Record<string, never>
  cpu_stats: CpuStats
  precpu_stats: CpuStats
  memory_stats: MemoryStats
  /** `/name`. */
  name: string
  id: string
}

export interface ContainerStatsOptions {
  /** The sample before this one: its cpu_stats and read become precpu_stats and preread. */
  previous?: ContainerStats
}

/** Go's zero time.Time in JSON. */
export const ZERO_TIME = '0001-01-01T00:00:00Z'

/** USER_HZ: the unit of cpuacct.stat and /proc/stat (libcontainer's clock ticks). */
const CLOCK_TICKS = 100
const NS_PER_TICK = 1e9 / CLOCK_TICKS

/**
 * The memory.stat keys dockerd 20.10 sends (it takes them from
 * containerd's metrics, a fixed set, a missing one as 0): on a cgroup v1
 * host, and on a v2 host (statsV2).
 */
const V1_MEMORY_KEYS = [
  'active_anon', 'active_file', 'cache', 'dirty', 'hierarchical_memory_limit', 'hierarchical_memsw_limit', 'inactive_anon',
  'inactive_file', 'mapped_file', 'pgfault', 'pgmajfault', 'pgpgin', 'pgpgout', 'rss', 'rss_huge', 'total_active_anon',
  'total_active_file', 'total_cache', 'total_dirty', 'total_inactive_anon', 'total_inactive_file', 'total_mapped_file',
  'total_pgfault', 'total_pgmajfault', 'total_pgpgin', 'total_pgpgout', 'total_rss', 'total_rss_huge', 'total_unevictable',
  'total_writeback', 'unevictable', 'writeback',
]
const V2_MEMORY_KEYS = [
  'anon', 'file', 'kernel_stack', 'slab', 'sock', 'shmem', 'file_mapped', 'file_dirty', 'file_writeback', 'anon_thp',
  'inactive_anon', 'active_anon', 'inactive_file', 'active_file', 'unevictable', 'slab_reclaimable', 'slab_unreclaimable',
  'pgfault', 'pgmajfault', 'workingset_refault', 'workingset_activate', 'workingset_nodereclaim', 'pgrefill', 'pgscan',
  'pgsteal', 'pgactivate', 'pgdeactivate', 'pglazyfree', 'pglazyfreed', 'thp_fault_alloc', 'thp_collapse_alloc',
]

function emptyCpu(): CpuStats {
  return { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } }
}

function emptyBlkio(entries: BlkioEntry[] | null): BlkioStats {
  return {
    io_service_bytes_recursive: entries,
    io_serviced_recursive: entries === null ? null : [],
    io_queue_recursive: entries === null ? null : [],
    io_service_time_recursive: entries === null ? null : [],
    io_wait_time_recursive: entries === null ? null : [],
    io_merged_recursive: entries === null ? null : [],
    io_time_recursive: entries === null ? null : [],
    sectors_recursive: entries === null ? null : [],
  }
}

/** The record of a container that does not run (dockerd's zero StatsJSON with name and ID). */
export function emptyContainerStats(name: string, id: string): ContainerStats {
  return {
    read: ZERO_TIME,
    preread: ZERO_TIME,
    pids_stats: {},
    blkio_stats: emptyBlkio(null),
    num_procs: 0,
    storage_stats: {},
    cpu_stats: emptyCpu(),
    precpu_stats: emptyCpu(),
    memory_stats: {},
    name,
    id,
  }
}

/** RFC 3339 with nanoseconds, trailing zeros trimmed (Go's RFC3339Nano). */
function rfc3339Nano(ms: number, extraNs: number): string {
  const iso = new Date(ms).toISOString()
  const frac = `${iso.slice(20, 23)}${String(extraNs).padStart(6, '0')}`.replace(/0+$/, '')
  return `${iso.slice(0, 19)}${frac === '' ? '' : `.${frac}`}Z`
}

/** A cgroup hierarchy of one process: v1 controllers and the v2 path. */
interface ProcessCgroups {
  v1: Map<string, string>
  v2?: string
}

function parseProcCgroup(text: string): ProcessCgroups {
  const out: ProcessCgroups = { v1: new Map() }
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line)
    if (m === null) continue
    if (m[1] === '0' && m[2] === '') out.v2 = m[3]!
    else for (const c of m[2]!.split(',')) if (c !== '') out.v1.set(c, m[3]!)
  }
  return out
}

interface CgroupMount {
  root: string
  point: string
  v2: boolean
  controllers: string[]
}

/** The cgroup hierarchies mounted here, from mountinfo (v1: one per controller set; v2: one). */
async function cgroupMounts(): Promise<CgroupMount[]> {
  const entries = await mountEntries().catch(() => [])
  return entries
    .filter((e) => e.fsType === 'cgroup' || e.fsType === 'cgroup2')
    .map((e) => ({ root: e.root, point: e.mountPoint, v2: e.fsType === 'cgroup2', controllers: e.superOptions }))
}

/** The directory of a cgroup `path` under `mount` (path is relative to the hierarchy's root, the mount shows `root` of it). */
function under(mount: CgroupMount, path: string): string | undefined {
  const rel = relative(mount.root, path)
  if (rel.startsWith('..')) return undefined
  return join(mount.point, rel)
}

async function readText(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined
  try {
    return await readFile(path, 'utf8')
  } catch {
    return undefined
  }
}

async function readNumber(path: string | undefined): Promise<number | undefined> {
  const t = (await readText(path))?.trim()
  if (t === undefined || !/^[0-9]+$/.test(t)) return undefined
  return Number(t)
}

/** `key value` lines (memory.stat, cpu.stat, cpuacct.stat). */
function flatKeyed(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/)
    if (k !== undefined && k !== '' && v !== undefined && /^[0-9]+$/.test(v)) out.set(k, Number(v))
  }
  return out
}

/** /proc/stat's cpu line: user, nice, system, idle, iowait, irq, softirq in nanoseconds (dockerd's getSystemCPUUsage). */
async function systemCpuUsage(): Promise<number | undefined> {
  const line = (await readText('/proc/stat'))?.split('\n').find((l) => l.startsWith('cpu '))
  if (line === undefined) return undefined
  const f = line.trim().split(/\s+/).slice(1, 8).map(Number)
  return f.reduce((a, b) => a + b, 0) * NS_PER_TICK
}

/** blkio.throttle.* lines `MAJ:MIN Op value` (the device-less Total line skipped, as libcontainer does). */
function blkioEntries(text: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = []
  for (const line of (text ?? '').split('\n')) {
    const m = /^(\d+):(\d+) (\S+) (\d+)$/.exec(line.trim())
    if (m !== null) out.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3]!, value: Number(m[4]) })
  }
  return out
}

/** io.stat lines `MAJ:MIN rbytes=N wbytes=N ...` as dockerd's statsV2 shapes them: a read and a write entry per device. */
function ioStatEntries(text: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = []
  for (const line of (text ?? '').split('\n')) {
    const m = /^(\d+):(\d+) (.*)$/.exec(line.trim())
    if (m === null) continue
    const kv = new Map(m[3]!.split(' ').map((p) => p.split('=') as [string, string]))
    out.push({ major: Number(m[1]), minor: Number(m[2]), op: 'read', value: Number(kv.get('rbytes') ?? 0) })
    out.push({ major: Number(m[1]), minor: Number(m[2]), op: 'write', value: Number(kv.get('wbytes') ?? 0) })
  }
  return out
}

/** `keys` of a memory.stat, in dockerd's (sorted) order, 0 for a missing one. */
function pick(stat: Map<string, number>, keys: readonly string[]): Record<string, number> {
  return Object.fromEntries([...keys].sort().map((k) => [k, stat.get(k) ?? 0]))
}

function capToMachine(limit: number | undefined): number | undefined {
  const machine = totalmem()
  if (limit === undefined) return machine
  return limit > machine && machine > 0 ? machine : limit
}

/** A number file that may say `max` (no limit). */
async function readLimit(path: string | undefined): Promise<number | undefined> {
  const t = (await readText(path))?.trim()
  if (t === undefined || t === 'max' || !/^[0-9]+$/.test(t)) return undefined
  return Number(t)
}

async function sampleV1(dir: (controller: string) => string | undefined): Promise<Pick<ContainerStats, 'pids_stats' | 'blkio_stats' | 'cpu_stats' | 'memory_stats'>> {
  const cpuacct = dir('cpuacct')
  const percpu = (await readText(cpuacct && join(cpuacct, 'cpuacct.usage_percpu')))?.trim().split(/\s+/).filter((x) => x !== '').map(Number)
  const ticks = flatKeyed(await readText(cpuacct && join(cpuacct, 'cpuacct.stat')))
  const cpu = dir('cpu')
  const throttle = flatKeyed(await readText(cpu && join(cpu, 'cpu.stat')))
  const memory = dir('memory')
  const memFile = (name: string): string | undefined => memory && join(memory, name)
  const failcnt = await readNumber(memFile('memory.failcnt'))
  const memStats = flatKeyed(await readText(memFile('memory.stat')))
  const usage = await readNumber(memFile('memory.usage_in_bytes'))
  const pids = dir('pids')
  const pidsLimit = await readLimit(pids && join(pids, 'pids.max'))
  const pidsCurrent = await readNumber(pids && join(pids, 'pids.current'))
  const blkio = dir('blkio')
  const blkioStats = emptyBlkio([])
  blkioStats.io_service_bytes_recursive = blkioEntries(await readText(blkio && join(blkio, 'blkio.throttle.io_service_bytes_recursive')))
  blkioStats.io_serviced_recursive = blkioEntries(await readText(blkio && join(blkio, 'blkio.throttle.io_serviced_recursive')))
  return {
    pids_stats: { ...(pidsCurrent === undefined ? {} : { current: pidsCurrent }), ...(pidsLimit === undefined ? {} : { limit: pidsLimit }) },
    blkio_stats: blkioStats,
    cpu_stats: {
      cpu_usage: {
        total_usage: (await readNumber(cpuacct && join(cpuacct, 'cpuacct.usage'))) ?? 0,
        ...(percpu === undefined || percpu.length === 0 ? {} : { percpu_usage: percpu }),
        usage_in_kernelmode: (ticks.get('system') ?? 0) * NS_PER_TICK,
        usage_in_usermode: (ticks.get('user') ?? 0) * NS_PER_TICK,
      },
      throttling_data: { periods: throttle.get('nr_periods') ?? 0, throttled_periods: throttle.get('nr_throttled') ?? 0, throttled_time: throttle.get('throttled_time') ?? 0 },
    },
    memory_stats:
      usage === undefined
        ? {}
        : {
            usage,
            max_usage: (await readNumber(memFile('memory.max_usage_in_bytes'))) ?? 0,
            stats: pick(memStats, V1_MEMORY_KEYS),
            ...(failcnt === undefined || failcnt === 0 ? {} : { failcnt }),
            limit: capToMachine(await readNumber(memFile('memory.limit_in_bytes')))!,
          },
  }
}

async function sampleV2(dir: string): Promise<Pick<ContainerStats, 'pids_stats' | 'blkio_stats' | 'cpu_stats' | 'memory_stats'>> {
  const cpu = flatKeyed(await readText(join(dir, 'cpu.stat')))
  const usage = await readNumber(join(dir, 'memory.current'))
  const memStats = flatKeyed(await readText(join(dir, 'memory.stat')))
  const pidsCurrent = await readNumber(join(dir, 'pids.current'))
  const pidsLimit = await readLimit(join(dir, 'pids.max'))
  const io = await readText(join(dir, 'io.stat'))
  const entries = ioStatEntries(io)
  return {
    pids_stats: { ...(pidsCurrent === undefined ? {} : { current: pidsCurrent }), ...(pidsLimit === undefined ? {} : { limit: pidsLimit }) },
    blkio_stats: { ...emptyBlkio(null), io_service_bytes_recursive: entries.length === 0 ? null : entries },
    cpu_stats: {
      cpu_usage: {
        total_usage: (cpu.get('usage_usec') ?? 0) * 1000,
        usage_in_kernelmode: (cpu.get('system_usec') ?? 0) * 1000,
        usage_in_usermode: (cpu.get('user_usec') ?? 0) * 1000,
      },
      throttling_data: { periods: cpu.get('nr_periods') ?? 0, throttled_periods: cpu.get('nr_throttled') ?? 0, throttled_time: (cpu.get('throttled_usec') ?? 0) * 1000 },
    },
    memory_stats:
      usage === undefined
        ? {}
        : {
            usage,
            stats: pick(memStats, V2_MEMORY_KEYS),
            limit: capToMachine(await readLimit(join(dir, 'memory.max')))!,
          },
  }
}

/** The cgroup figures of process `pid`; undefined when it is gone. */
async function sampleProcess(pid: number): Promise<Pick<ContainerStats, 'pids_stats' | 'blkio_stats' | 'cpu_stats' | 'memory_stats'> | undefined> {
  const own = await readText(`/proc/${pid}/cgroup`)
  if (own === undefined) return undefined
  const groups = parseProcCgroup(own)
  const mounts = await cgroupMounts()
  // Hybrid hosts keep cpu and memory on v1: read them there, as dockerd does (its "Cgroup Version" is 1 then).
  if (groups.v1.has('memory') || groups.v1.has('cpuacct')) {
    return sampleV1((controller) => {
      const path = groups.v1.get(controller)
      const mount = mounts.find((m) => !m.v2 && m.controllers.includes(controller))
      return path === undefined || mount === undefined ? undefined : under(mount, path)
    })
  }
  const mount = mounts.find((m) => m.v2)
  const dir = groups.v2 === undefined || mount === undefined ? undefined : under(mount, groups.v2)
  if (dir === undefined) return undefined
  return sampleV2(dir)
}

/**
 * One stats sample of a container (ID, prefix or name): its cgroup's
 * figures when it runs, dockerd's zero record otherwise. NOT_FOUND when
 * there is no such container.
 */
export async function containerStats(store: Store, ref: string, opts: ContainerStatsOptions = {}): Promise<ContainerStats> {
  const c = await getContainer(store, ref)
  const name = c.record.Name
  const empty = emptyContainerStats(name, c.id)
  if (!c.running || c.record.State.Restarting || c.record.State.Pid <= 0) return empty
  const ms = Date.now()
  const ns = Number(process.hrtime.bigint() % 1_000_000n)
  const sample = await sampleProcess(c.record.State.Pid)
  if (sample === undefined) return empty
  const system = await systemCpuUsage()
  const online = cpus().length
  return {
    read: rfc3339Nano(ms, ns),
    preread: opts.previous?.read ?? ZERO_TIME,
    pids_stats: sample.pids_stats,
    blkio_stats: sample.blkio_stats,
    num_procs: 0,
    storage_stats: {},
    cpu_stats: {
      cpu_usage: sample.cpu_stats.cpu_usage,
      ...(system === undefined ? {} : { system_cpu_usage: system }),
      ...(online > 0 ? { online_cpus: online } : {}),
      throttling_data: sample.cpu_stats.throttling_data,
    },
    precpu_stats: opts.previous?.cpu_stats ?? emptyCpu(),
    memory_stats: sample.memory_stats,
    name,
    id: c.id,
  }
}

/**
 * The figures `docker stats` shows for one sample, computed as the docker
 * CLI computes them (cli/command/container/stats_helpers.go, Linux):
 * CPU % from this sample and its precpu_stats (the container's share of
 * the system's CPU time between the two, times the online CPUs); memory
 * without the inactive page cache (total_inactive_file on cgroup v1,
 * inactive_file on v2) and as a share of the limit; block I/O summed from
 * io_service_bytes_recursive by the op's first letter; network bytes
 * summed over the interfaces (none here: a strata container has only its
 * own loopback, which dockerd leaves out as well).
 */
export interface StatsSummary {
  cpuPercent: number
  /** Bytes in use, the inactive page cache left out. */
  memory: number
  memoryLimit: number
  memoryPercent: number
  networkRx: number
  networkTx: number
  blockRead: number
  blockWrite: number
  pids: number
}

/** docker's StatsEntry figures of one sample (see StatsSummary). */
export function summarizeStats(s: ContainerStats): StatsSummary {
  const cpuDelta = s.cpu_stats.cpu_usage.total_usage - s.precpu_stats.cpu_usage.total_usage
  const systemDelta = (s.cpu_stats.system_cpu_usage ?? 0) - (s.precpu_stats.system_cpu_usage ?? 0)
  const online = s.cpu_stats.online_cpus ?? s.cpu_stats.cpu_usage.percpu_usage?.length ?? 0
  const cpuPercent = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * online * 100 : 0
  const mem = s.memory_stats
  const usage = mem.usage ?? 0
  const v1Inactive = mem.stats?.total_inactive_file
  const v2Inactive = mem.stats?.inactive_file ?? 0
  const memory = v1Inactive !== undefined && v1Inactive < usage ? usage - v1Inactive : v2Inactive < usage ? usage - v2Inactive : usage
  const memoryLimit = mem.limit ?? 0
  let blockRead = 0
  let blockWrite = 0
  for (const e of s.blkio_stats.io_service_bytes_recursive ?? []) {
    const op = e.op.charAt(0)
    if (op === 'r' || op === 'R') blockRead += e.value
    else if (op === 'w' || op === 'W') blockWrite += e.value
  }
  return {
    cpuPercent,
    memory,
    memoryLimit,
    memoryPercent: memoryLimit !== 0 ? (memory / memoryLimit) * 100 : 0,
    networkRx: 0,
    networkTx: 0,
    blockRead,
    blockWrite,
    pids: s.pids_stats.current ?? 0,
  }
}
