/**
 * System endpoints: GET/HEAD /_ping, GET /version, GET /info. The shapes
 * are dockerd 20.10's; the values are strata's and this host's, told
 * truthfully: the engine is strata (with its own version; the API version
 * is 1.41), resource limits strata does not apply are reported false, and
 * the only networks are none and host.
 */
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { arch, cpus, hostname, machine, release, totalmem } from 'node:os'
import { storeCounts } from '../../store/index.js'
import { writeJson } from '../response.js'
import { strataVersion } from '../server-version.js'
import { API_VERSION, MIN_API_VERSION, type RequestContext } from '../types.js'

/** GET|HEAD /_ping: "OK", uncached, as dockerd answers it. */
export async function ping(ctx: RequestContext): Promise<void> {
  ctx.res.writeHead(200, {
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Pragma: 'no-cache',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': ctx.req.method === 'HEAD' ? 0 : 2,
  })
  ctx.res.end(ctx.req.method === 'HEAD' ? undefined : 'OK')
}

/** Go's GOARCH for Node's arch names. */
function goArch(): string {
  const a = arch()
  return a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a
}

let osRelease: Promise<Record<string, string>> | undefined

/** /etc/os-release as key → value (quotes removed). */
function readOsRelease(): Promise<Record<string, string>> {
  osRelease ??= readFile('/etc/os-release', 'utf8').then(
    (text) => {
      const out: Record<string, string> = {}
      for (const line of text.split('\n')) {
        const m = /^([A-Z_]+)=(.*)$/.exec(line)
        if (m !== null) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1')
      }
      return out
    },
    () => ({}),
  )
  return osRelease
}

/** GET /version */
export async function version(ctx: RequestContext): Promise<void> {
  const v = strataVersion()
  const details = {
    ApiVersion: API_VERSION,
    Arch: goArch(),
    BuildTime: '',
    Experimental: 'false',
    GitCommit: '',
    GoVersion: '',
    KernelVersion: release(),
    MinAPIVersion: MIN_API_VERSION,
    Os: 'linux',
  }
  writeJson(ctx.res, 200, {
    Platform: { Name: 'strata' },
    Components: [
      { Name: 'Engine', Version: v, Details: details },
      { Name: 'Node.js', Version: process.versions.node, Details: {} },
    ],
    Version: v,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: '',
    GoVersion: '',
    Os: 'linux',
    Arch: goArch(),
    KernelVersion: release(),
    BuildTime: '',
  })
}

/** A stable ID for this data root on this host, in the shape of dockerd's (12 groups of 4 base32 characters). */
function engineId(root: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'
  const hash = createHash('sha256').update(`${hostname()}\0${root}`).digest()
  let out = ''
  for (let i = 0; i < 48; i++) out += alphabet[hash[i % hash.length]! % 32]
  return out.match(/.{4}/g)!.join(':')
}

/** GET /info */
export async function info(ctx: RequestContext): Promise<void> {
  const { store } = ctx
  const [counts, containers, status, os] = await Promise.all([storeCounts(store), store.containers.list(), store.driver.status(), readOsRelease()])
  const running = containers.filter((c) => c.running).length
  writeJson(ctx.res, 200, {
    ID: engineId(store.root),
    Containers: containers.length,
    ContainersRunning: running,
    ContainersPaused: 0,
    ContainersStopped: containers.length - running,
    Images: counts.images,
    Driver: store.driver.name,
    DriverStatus: status,
    Plugins: { Volume: [], Network: ['host', 'null'], Authorization: null, Log: ['json-file'] },
    MemoryLimit: false,
    SwapLimit: false,
    KernelMemory: false,
    KernelMemoryTCP: false,
    CpuCfsPeriod: false,
    CpuCfsQuota: false,
    CPUShares: false,
    CPUSet: false,
    PidsLimit: false,
    IPv4Forwarding: false,
    BridgeNfIptables: false,
    BridgeNfIp6tables: false,
    Debug: false,
    NFd: 0,
    OomKillDisable: false,
    NGoroutines: 0,
    SystemTime: new Date().toISOString(),
    LoggingDriver: 'json-file',
    CgroupDriver: 'cgroupfs',
    CgroupVersion: '1',
    NEventsListener: 0,
    KernelVersion: release(),
    OperatingSystem: os.PRETTY_NAME ?? 'Linux',
    OSVersion: os.VERSION_ID ?? '',
    OSType: 'linux',
    Architecture: machine(),
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: {
      AllowNondistributableArtifactsCIDRs: [],
      AllowNondistributableArtifactsHostnames: [],
      InsecureRegistryCIDRs: ['127.0.0.0/8'],
      IndexConfigs: { 'docker.io': { Name: 'docker.io', Mirrors: [], Secure: true, Official: true } },
      Mirrors: [],
    },
    NCPU: cpus().length,
    MemTotal: totalmem(),
    GenericResources: null,
    DockerRootDir: store.root,
    HttpProxy: process.env.HTTP_PROXY ?? process.env.http_proxy ?? '',
    HttpsProxy: process.env.HTTPS_PROXY ?? process.env.https_proxy ?? '',
    NoProxy: process.env.NO_PROXY ?? process.env.no_proxy ?? '',
    Name: hostname(),
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: strataVersion(),
    Runtimes: { runc: { path: 'runc' } },
    DefaultRuntime: 'runc',
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    LiveRestoreEnabled: false,
    Isolation: '',
    InitBinary: '',
    ContainerdCommit: { ID: '', Expected: '' },
    RuncCommit: { ID: '', Expected: '' },
    InitCommit: { ID: '', Expected: '' },
    SecurityOptions: [],
    Warnings: ['strata: no daemon; containers run under runc with no network but none/host, no resource limits, no volumes'],
  })
}
