/**
 * docker's API types (Engine API 1.41, docker 20.10's api/types) as Go
 * types, for templates that run over them as the docker CLI's do: field
 * order (what `{{.Config}}` prints), Go field names (`.ID`, not `.Id`),
 * integer sizes, named types (nat.PortSet, strslice.StrSlice), pointers
 * (a missing Config is `<nil>`), and the JSON tags `{{json .}}` follows.
 * Payloads are the JSON objects the Engine API returns (strata's inspect).
 */
import { ANY, ANY_USE_NUMBER, BOOL, INT, INT64, mapOf, namedType, pointerTo, sliceOf, STRING, structOf } from './go-types.js'
import { TIME } from './go-time.js'
import type { GoType, StructField } from './types.js'
import { intOf, valueOf } from './value.js'

function field(name: string, type: GoType, extra: Omit<StructField, 'name' | 'type'> = {}): StructField {
  return { name, type, ...extra }
}

/** Go's Duration.String(): "1h2m3.5s", "1.5ms", "0s". */
export function durationString(ns: bigint): string {
  const neg = ns < 0n
  let u = neg ? -ns : ns
  if (u === 0n) return '0s'
  const frac = (v: bigint, prec: number): [string, bigint] => {
    let digits = ''
    let printed = false
    for (let i = 0; i < prec; i++) {
      const d = v % 10n
      printed ||= d !== 0n
      if (printed) digits = d.toString() + digits
      v /= 10n
    }
    return [printed ? `.${digits}` : '', v]
  }
  let out: string
  if (u < 1_000_000_000n) {
    const [unit, prec] = u < 1000n ? ['ns', 0] : u < 1_000_000n ? ['µs', 3] : ['ms', 6]
    const [f, whole] = frac(u, prec)
    out = `${whole}${f}${unit}`
  } else {
    const [f, seconds] = frac(u, 9)
    u = seconds
    out = `${u % 60n}${f}s`
    u /= 60n
    if (u > 0n) {
      out = `${u % 60n}m${out}`
      u /= 60n
      if (u > 0n) out = `${u}h${out}`
    }
  }
  return neg ? `-${out}` : out
}

/** time.Duration: an int64 of nanoseconds that prints as "1m30s". */
export const DURATION = namedType('time.Duration', INT64, {
  String: { params: [], result: STRING, call: (recv) => durationString(intOf(valueOf(INT64, recv))) },
})

/** strslice.StrSlice: a []string (Cmd, Entrypoint, Shell). */
export const STR_SLICE = namedType('strslice.StrSlice', sliceOf(STRING))

/** nat.Port ("80/tcp") and nat.PortSet (ExposedPorts), whose values are empty structs. */
export const PORT = namedType('nat.Port', STRING)
const EMPTY_STRUCT = structOf([])
export const PORT_SET = namedType('nat.PortSet', mapOf(PORT, EMPTY_STRUCT))

/** container.HealthConfig. */
export const HEALTH_CONFIG = structOf(
  [
    field('Test', sliceOf(STRING), { omitempty: true }),
    field('Interval', DURATION, { omitempty: true }),
    field('Timeout', DURATION, { omitempty: true }),
    field('StartPeriod', DURATION, { omitempty: true }),
    field('Retries', INT, { omitempty: true }),
  ],
  'container.HealthConfig',
)

/** container.Config (an image's Config and ContainerConfig). */
export const CONTAINER_CONFIG = structOf(
  [
    field('Hostname', STRING),
    field('Domainname', STRING),
    field('User', STRING),
    field('AttachStdin', BOOL),
    field('AttachStdout', BOOL),
    field('AttachStderr', BOOL),
    field('ExposedPorts', PORT_SET, { omitempty: true }),
    field('Tty', BOOL),
    field('OpenStdin', BOOL),
    field('StdinOnce', BOOL),
    field('Env', sliceOf(STRING)),
    field('Cmd', STR_SLICE),
    field('Healthcheck', pointerTo(HEALTH_CONFIG), { omitempty: true }),
    field('ArgsEscaped', BOOL, { omitempty: true }),
    field('Image', STRING),
    field('Volumes', mapOf(STRING, EMPTY_STRUCT)),
    field('WorkingDir', STRING),
    field('Entrypoint', STR_SLICE),
    field('NetworkDisabled', BOOL, { omitempty: true }),
    field('MacAddress', STRING, { omitempty: true }),
    field('OnBuild', sliceOf(STRING)),
    field('Labels', mapOf(STRING, STRING)),
    field('StopSignal', STRING, { omitempty: true }),
    field('StopTimeout', pointerTo(INT), { omitempty: true }),
    field('Shell', STR_SLICE, { omitempty: true }),
  ],
  'container.Config',
)

/** types.GraphDriverData. */
export const GRAPH_DRIVER_DATA = structOf([field('Data', mapOf(STRING, STRING)), field('Name', STRING)], 'types.GraphDriverData')

/** types.RootFS. */
export const ROOT_FS = structOf([field('Type', STRING), field('Layers', sliceOf(STRING), { omitempty: true }), field('BaseLayer', STRING, { omitempty: true })], 'types.RootFS')

/** types.ImageMetadata. */
export const IMAGE_METADATA = structOf([field('LastTagTime', TIME, { omitempty: true })], 'types.ImageMetadata')

/** types.ImageInspect: what `docker image inspect` decodes (its Go field for "Id" is ID). */
export const IMAGE_INSPECT = structOf(
  [
    field('ID', STRING, { json: 'Id' }),
    field('RepoTags', sliceOf(STRING)),
    field('RepoDigests', sliceOf(STRING)),
    field('Parent', STRING),
    field('Comment', STRING),
    field('Created', STRING),
    field('Container', STRING),
    field('ContainerConfig', pointerTo(CONTAINER_CONFIG)),
    field('DockerVersion', STRING),
    field('Author', STRING),
    field('Config', pointerTo(CONTAINER_CONFIG)),
    field('Architecture', STRING),
    field('Variant', STRING, { omitempty: true }),
    field('Os', STRING),
    field('OsVersion', STRING, { omitempty: true }),
    field('Size', INT64),
    field('VirtualSize', INT64),
    field('GraphDriver', GRAPH_DRIVER_DATA),
    field('RootFS', ROOT_FS),
    field('Metadata', IMAGE_METADATA),
  ],
  'types.ImageInspect',
)

/** types.ContainerState. */
export const CONTAINER_STATE = structOf(
  [
    field('Status', STRING),
    field('Running', BOOL),
    field('Paused', BOOL),
    field('Restarting', BOOL),
    field('OOMKilled', BOOL),
    field('Dead', BOOL),
    field('Pid', INT),
    field('ExitCode', INT),
    field('Error', STRING),
    field('StartedAt', STRING),
    field('FinishedAt', STRING),
    field('Health', pointerTo(structOf([field('Status', STRING), field('FailingStreak', INT), field('Log', sliceOf(ANY))], 'types.Health')), { omitempty: true }),
  ],
  'types.ContainerState',
)

/**
 * types.ContainerJSON, what `docker container inspect` decodes: the
 * fields of its embedded ContainerJSONBase, then Mounts, Config and
 * NetworkSettings. HostConfig, Mounts and NetworkSettings are typed as
 * interface{} here (their JSON objects as maps): templates reach their
 * fields the same way, only printing a whole one differs from docker.
 */
export const CONTAINER_INSPECT = structOf(
  [
    field('ID', STRING, { json: 'Id' }),
    field('Created', STRING),
    field('Path', STRING),
    field('Args', sliceOf(STRING)),
    field('State', pointerTo(CONTAINER_STATE)),
    field('Image', STRING),
    field('ResolvConfPath', STRING),
    field('HostnamePath', STRING),
    field('HostsPath', STRING),
    field('LogPath', STRING),
    field('Name', STRING),
    field('RestartCount', INT),
    field('Driver', STRING),
    field('Platform', STRING),
    field('MountLabel', STRING),
    field('ProcessLabel', STRING),
    field('AppArmorProfile', STRING),
    field('ExecIDs', sliceOf(STRING)),
    field('HostConfig', ANY_USE_NUMBER),
    field('GraphDriver', GRAPH_DRIVER_DATA),
    field('SizeRw', pointerTo(INT64), { omitempty: true }),
    field('SizeRootFs', pointerTo(INT64), { omitempty: true }),
    field('Mounts', sliceOf(ANY_USE_NUMBER)),
    field('Config', pointerTo(CONTAINER_CONFIG)),
    field('NetworkSettings', ANY_USE_NUMBER),
  ],
  'types.ContainerJSON',
)
