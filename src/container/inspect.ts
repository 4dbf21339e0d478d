/**
 * `docker container inspect`: the API's types.ContainerJSON built from the
 * record (config.v2.json), hostconfig.json and the mounted layer's driver
 * metadata, in the field order dockerd 20.10 marshals it, so that the
 * docker CLI, docker-py and dockerode read it as dockerd's. strata's
 * containers have the `none` network and no mounts, and say so.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno, isStrataError } from '../errors/index.js'
import type { Store } from '../store/index.js'
import { HOSTCONFIG_FILE } from '../containerdb/index.js'
import { stateName } from '../containerdb/index.js'
import { type Container } from '../containerdb/index.js'
import { MASKED_PATHS, READONLY_PATHS } from './bundle.js'

/** docker's types.ContainerJSON (the fields strata fills, in dockerd's order). */
export interface ContainerInspect {
  Id: string
  Created: string
  Path: string
  Args: string[]
  State: Record<string, unknown>
  Image: string
  ResolvConfPath: string
  HostnamePath: string
  HostsPath: string
  LogPath: string
  Name: string
  RestartCount: number
  Driver: string
  Platform: string
  MountLabel: string
  ProcessLabel: string
  AppArmorProfile: string
  ExecIDs: string[] | null
  HostConfig: Record<string, unknown>
  GraphDriver: { Data: Record<string, string> | null; Name: string }
  Mounts: never[]
  Config: Record<string, unknown>
  NetworkSettings: Record<string, unknown>
}

/** The endpoint docker shows for a container on the `none` network. */
export const NONE_ENDPOINT = {
  IPAMConfig: null,
  Links: null,
  Aliases: null,
  NetworkID: '',
  EndpointID: '',
  Gateway: '',
  IPAddress: '',
  IPPrefixLen: 0,
  IPv6Gateway: '',
  GlobalIPv6Address: '',
  GlobalIPv6PrefixLen: 0,
  MacAddress: '',
  DriverOpts: null,
}

/**
 * Every field of docker's container.HostConfig in Go's order, with the
 * value dockerd 20.10 shows for a container the docker 20.10 CLI created with no options: what
 * hostconfig.json lacks reads as this, so inspect shows the whole struct
 * as dockerd marshals it.
 */
const HOST_CONFIG_DEFAULTS: Record<string, unknown> = {
  Binds: null, ContainerIDFile: '', LogConfig: { Type: 'json-file', Config: {} }, NetworkMode: 'default', PortBindings: {},
  RestartPolicy: { Name: 'no', MaximumRetryCount: 0 }, AutoRemove: false, VolumeDriver: '', VolumesFrom: null, CapAdd: null, CapDrop: null,
  CgroupnsMode: 'host', Dns: [], DnsOptions: [], DnsSearch: [], ExtraHosts: null, GroupAdd: null, IpcMode: 'private', Cgroup: '', Links: null,
  OomScoreAdj: 0, PidMode: '', Privileged: false, PublishAllPorts: false, ReadonlyRootfs: false, SecurityOpt: null, UTSMode: '', UsernsMode: '',
  ShmSize: 67108864, Runtime: 'runc', ConsoleSize: [0, 0], Isolation: '', CpuShares: 0, Memory: 0, NanoCpus: 0, CgroupParent: '', BlkioWeight: 0,
  BlkioWeightDevice: [], BlkioDeviceReadBps: null, BlkioDeviceWriteBps: null, BlkioDeviceReadIOps: null, BlkioDeviceWriteIOps: null, CpuPeriod: 0,
  CpuQuota: 0, CpuRealtimePeriod: 0, CpuRealtimeRuntime: 0, CpusetCpus: '', CpusetMems: '', Devices: [], DeviceCgroupRules: null,
  DeviceRequests: null, KernelMemory: 0, KernelMemoryTCP: 0, MemoryReservation: 0, MemorySwap: 0, MemorySwappiness: null, OomKillDisable: false,
  PidsLimit: null, Ulimits: null, CpuCount: 0, CpuPercent: 0, IOMaximumIOps: 0, IOMaximumBandwidth: 0,
  MaskedPaths: MASKED_PATHS, ReadonlyPaths: READONLY_PATHS,
}

/** The stored HostConfig laid over docker's whole struct, in its order; keys docker lacks at the end. */
function fullHostConfig(stored: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(HOST_CONFIG_DEFAULTS)) out[k] = Object.hasOwn(stored, k) ? stored[k] : v
  for (const [k, v] of Object.entries(stored)) if (!Object.hasOwn(out, k)) out[k] = v
  return out
}

/** hostconfig.json as written at create; `{}` when missing or unreadable (a record from an older strata). */
export async function readHostConfig(store: Store, id: string): Promise<Record<string, unknown>> {
  try {
    const doc = JSON.parse(await readFile(join(store.containers.path(id), HOSTCONFIG_FILE), 'utf8')) as unknown
    return typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as Record<string, unknown>) : {}
  } catch (err) {
    if (isErrno(err, 'ENOENT') || err instanceof SyntaxError) return {}
    throw err
  }
}

/** The driver's metadata for the container's read-write layer (overlay2: LowerDir, MergedDir, UpperDir, WorkDir), sorted by key; null when the driver has none. */
async function graphDriverData(store: Store, id: string): Promise<Record<string, string> | null> {
  try {
    const mount = await store.layers.getMount(id)
    const meta = await store.driver.getMetadata(mount.mountId)
    const keys = Object.keys(meta).sort()
    if (keys.length === 0) return null
    const out: Record<string, string> = {}
    for (const k of keys) out[k] = meta[k]!
    return out
  } catch (err) {
    if (isStrataError(err, 'NOT_FOUND')) return null
    throw err
  }
}

export function containerStateJson(c: Container): Record<string, unknown> {
  const s = c.record.State
  return {
    Status: stateName(s, c.running),
    Running: c.running,
    Paused: s.Paused,
    Restarting: s.Restarting,
    OOMKilled: s.OOMKilled,
    Dead: s.Dead,
    Pid: c.running ? s.Pid : 0,
    ExitCode: s.ExitCode,
    Error: s.Error,
    StartedAt: s.StartedAt,
    FinishedAt: s.FinishedAt,
  }
}

/** Inspects a container by ID, ID prefix or name (NOT_FOUND "No such container: X" otherwise). */
export async function inspectContainer(store: Store, ref: string): Promise<ContainerInspect> {
  const c = await store.containers.get(ref)
  const r = c.record
  const [hostConfig, data] = await Promise.all([readHostConfig(store, c.id), graphDriverData(store, c.id)])
  return {
    Id: c.id,
    Created: r.Created,
    Path: r.Path,
    Args: r.Args,
    State: containerStateJson(c),
    Image: r.Image,
    ResolvConfPath: r.ResolvConfPath,
    HostnamePath: r.HostnamePath,
    HostsPath: r.HostsPath,
    LogPath: r.LogPath,
    Name: r.Name,
    RestartCount: r.RestartCount,
    Driver: r.Driver,
    Platform: r.OS,
    MountLabel: r.MountLabel,
    ProcessLabel: r.ProcessLabel,
    AppArmorProfile: r.AppArmorProfile,
    ExecIDs: null,
    HostConfig: fullHostConfig(hostConfig),
    GraphDriver: { Data: data, Name: r.Driver },
    Mounts: [],
    Config: r.Config as Record<string, unknown>,
    NetworkSettings: {
      Bridge: '',
      SandboxID: '',
      HairpinMode: false,
      LinkLocalIPv6Address: '',
      LinkLocalIPv6PrefixLen: 0,
      Ports: {},
      SandboxKey: '',
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: '',
      Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      IPAddress: '',
      IPPrefixLen: 0,
      IPv6Gateway: '',
      MacAddress: '',
      Networks: { none: NONE_ENDPOINT },
    },
  }
}
