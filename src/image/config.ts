/**
 * The image config: the JSON document whose sha256 is the image ID (Docker's
 * image.Image, a superset of the OCI image config). The store keeps the
 * bytes exactly as given, since re-serialising would change the ID; these
 * types describe what is in them, and parseImageConfig validates only what
 * strata relies on (rootfs and its diff_ids, the shape of history), leaving
 * every other field as it came.
 */
import { StrataError } from '../errors/index.js'
import { chainId, chainIds, isDigest, type Digest } from '../digest/index.js'

/** `sha256:<hex>` of the config bytes. */
export type ImageID = Digest

/** Docker's container.Config as stored in `config` and `container_config` (OCI uses a subset). */
export interface ContainerConfig {
  Hostname?: string
  Domainname?: string
  User?: string
  AttachStdin?: boolean
  AttachStdout?: boolean
  AttachStderr?: boolean
  /** `{"80/tcp": {}}` */
  ExposedPorts?: Record<string, Record<string, never>> | null
  Tty?: boolean
  OpenStdin?: boolean
  StdinOnce?: boolean
  Env?: string[] | null
  Cmd?: string[] | null
  Healthcheck?: {
    Test?: string[] | null
    Interval?: number
    Timeout?: number
    StartPeriod?: number
    Retries?: number
  } | null
  ArgsEscaped?: boolean
  Image?: string
  /** `{"/data": {}}` */
  Volumes?: Record<string, Record<string, never>> | null
  WorkingDir?: string
  Entrypoint?: string[] | null
  NetworkDisabled?: boolean
  MacAddress?: string
  OnBuild?: string[] | null
  Labels?: Record<string, string> | null
  StopSignal?: string
  StopTimeout?: number
  Shell?: string[] | null
  [key: string]: unknown
}

export interface HistoryEntry {
  /** RFC 3339 time. */
  created?: string
  created_by?: string
  author?: string
  comment?: string
  /** True for a step that made no layer (it has no diff_id). */
  empty_layer?: boolean
  [key: string]: unknown
}

export interface RootFS {
  type: 'layers'
  /** Uncompressed layer digests, base first. */
  diff_ids: Digest[]
}

/** An image config (Docker image JSON v1.2 / OCI image config). */
export interface ImageConfig {
  architecture?: string
  os?: string
  'os.version'?: string
  'os.features'?: string[]
  variant?: string
  created?: string
  author?: string
  comment?: string
  docker_version?: string
  config?: ContainerConfig | null
  container?: string
  container_config?: ContainerConfig | null
  /** Legacy v1 fields some old configs still carry. */
  id?: string
  parent?: string
  size?: number
  history?: HistoryEntry[]
  rootfs: RootFS
  [key: string]: unknown
}

export interface ParsedImageConfig {
  config: ImageConfig
  /** The bytes parsed, unchanged: their sha256 is the image ID. */
  raw: Buffer
}

export interface ParseImageConfigOptions {
  /**
   * Where the bytes were read from (a file in the store). When given, a
   * failure is CORRUPT and names it; otherwise the bytes came from a caller
   * and a failure is INVALID_ARGUMENT.
   */
  origin?: string
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Parses and validates an image config, keeping `raw` as given.
 * Checks: a JSON object; `rootfs` an object with type "layers"; `diff_ids`
 * (absent or null means none, as Go reads it) an array of sha256 digests;
 * `history`, when present, an array of objects whose `empty_layer` is a
 * boolean; `os`/`architecture`/`variant`/`created` strings when present.
 */
export function parseImageConfig(raw: Buffer, opts: ParseImageConfigOptions = {}): ParsedImageConfig {
  const fail = (what: string, cause?: unknown): never => {
    if (opts.origin !== undefined) {
      throw new StrataError('CORRUPT', `Image config "${opts.origin}" is invalid: ${what}`, {
        cause,
        details: { path: opts.origin },
      })
    }
    throw new StrataError('INVALID_ARGUMENT', `Invalid image config: ${what}`, { cause })
  }
  let value: unknown
  try {
    value = JSON.parse(raw.toString('utf8'))
  } catch (err) {
    return fail(`not JSON (${(err as Error).message})`, err)
  }
  if (!isObject(value)) return fail('not a JSON object')
  // dockerd's NewFromJSON: "invalid image JSON, no RootFS key".
  const rootfs = value.rootfs
  if (rootfs === undefined || rootfs === null) return fail('no "rootfs" field')
  if (!isObject(rootfs)) return fail('"rootfs" is not an object')
  if (rootfs.type !== 'layers') return fail(`"rootfs.type" is ${JSON.stringify(rootfs.type)}, expected "layers"`)
  const diffIds = rootfs.diff_ids ?? []
  if (!Array.isArray(diffIds)) return fail('"rootfs.diff_ids" is not an array')
  diffIds.forEach((d: unknown, i) => {
    if (!isDigest(d)) return fail(`"rootfs.diff_ids[${i}]" is ${JSON.stringify(d)}, expected sha256:<64 lowercase hex>`)
  })
  // Normalise a missing/null list to [] so callers need not care (raw keeps the original).
  rootfs.diff_ids = diffIds
  for (const key of ['os', 'architecture', 'variant', 'created', 'author'] as const) {
    if (value[key] !== undefined && value[key] !== null && typeof value[key] !== 'string') return fail(`"${key}" is not a string`)
  }
  const history = value.history
  if (history !== undefined && history !== null) {
    if (!Array.isArray(history)) return fail('"history" is not an array')
    history.forEach((h: unknown, i) => {
      if (!isObject(h)) return fail(`"history[${i}]" is not an object`)
      if (h.empty_layer !== undefined && h.empty_layer !== null && typeof h.empty_layer !== 'boolean') {
        return fail(`"history[${i}].empty_layer" is not a boolean`)
      }
    })
  }
  for (const key of ['config', 'container_config'] as const) {
    if (value[key] !== undefined && value[key] !== null && !isObject(value[key])) return fail(`"${key}" is not an object`)
  }
  return { config: value as unknown as ImageConfig, raw }
}

/**
 * What dockerd's image store Create checks beyond parsing: no more
 * non-empty history entries than layers ("too many non-empty layers in
 * History section"). INVALID_ARGUMENT otherwise.
 */
export function validateForCreate(config: ImageConfig): void {
  const nonEmpty = (config.history ?? []).filter((h) => h.empty_layer !== true).length
  if (nonEmpty > config.rootfs.diff_ids.length) {
    throw new StrataError(
      'INVALID_ARGUMENT',
      `Invalid image config: too many non-empty layers in History section (${nonEmpty} history entries make a layer, rootfs has ${config.rootfs.diff_ids.length} diff_ids)`,
    )
  }
}

/** The chainID of every layer of the image, base first ([] for an image with no layers). */
export function imageChainIds(config: ImageConfig): Digest[] {
  return chainIds(config.rootfs.diff_ids)
}

/** The chainID of the image's top layer, the one the image keeps alive; null when it has no layers. */
export function topChainId(config: ImageConfig): Digest | null {
  return config.rootfs.diff_ids.length === 0 ? null : chainId(config.rootfs.diff_ids)
}

/** The image's OS as dockerd reads it (image.OperatingSystem): `os`, or the host's when empty. */
export function imageOperatingSystem(config: ImageConfig): string {
  return config.os !== undefined && config.os !== '' ? config.os : process.platform
}
