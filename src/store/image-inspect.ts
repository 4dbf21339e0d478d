/**
 * `docker image inspect`: the API's types.ImageInspect for one image, built
 * as dockerd 20.10's LookupImage builds it, with its fields in the order Go
 * marshals them, so that the JSON strata prints matches docker's.
 *
 * Config and ContainerConfig go through Go's container.Config on the way
 * (dockerd unmarshals the config and marshals it again), which puts their
 * fields in container.Config's order, fills in the ones the image left out
 * (`"Env": null`), drops empty optional ones and unknown ones; configConfig
 * does the same here. GraphDriver.Data is the driver's metadata for the top
 * layer (overlay2: LowerDir, MergedDir, UpperDir, WorkDir) and null when the
 * driver has none (vfs, btrfs), as Go marshals an empty map it returned nil.
 */
import { StrataError } from '../errors/index.js'
import { familiarString, imageOperatingSystem, type ContainerConfig, type Image } from '../image/index.js'
import type { ChainID, LayerInfo } from '../layer/index.js'
import type { Store } from './index.js'
import { GO_ZERO_TIME, goRfc3339Nano } from '../fs/index.js'
import { chainOf, imageSize, topChainOf } from './image-query.js'

/** Go's container.Config as the API marshals it (field order matters: JSON output follows it). */
export type GoContainerConfig = Record<string, unknown>

/** docker's types.ImageInspect. Optional fields are Go's `omitempty` ones. */
export interface ImageInspect {
  Id: string
  RepoTags: string[]
  RepoDigests: string[]
  Parent: string
  Comment: string
  Created: string
  Container: string
  ContainerConfig: GoContainerConfig
  DockerVersion: string
  Author: string
  Config: GoContainerConfig | null
  Architecture: string
  Variant?: string
  Os: string
  OsVersion?: string
  Size: number
  VirtualSize: number
  GraphDriver: { Data: Record<string, string> | null; Name: string }
  RootFS: { Type: string; Layers?: string[]; BaseLayer?: string }
  Metadata: { LastTagTime: string }
}

/** Inspects an image by ID, short ID or reference (NOT_FOUND "No such image: X" otherwise). */
export async function inspectImage(store: Store, nameOrId: string): Promise<ImageInspect> {
  const image = await store.images.get(await store.findImage(nameOrId))
  const repoTags: string[] = []
  const repoDigests: string[] = []
  for (const ref of await store.references.referencesTo(image.id)) {
    if (ref.digest !== undefined) repoDigests.push(familiarString(ref))
    else if (ref.tag !== undefined) repoTags.push(familiarString(ref))
  }
  let size = 0
  let data: Record<string, string> | null = null
  const top = topChainOf(image)
  if (top !== null) {
    // Side by side (each is a handful of small reads), and the top one read once.
    const chains = chainOf(image)
    const settled = await Promise.allSettled(chains.map((chain) => store.layers.info(chain)))
    const layers = new Map<ChainID, LayerInfo>()
    for (const [i, r] of settled.entries()) {
      // The lowest failing layer is reported, as when they were read in order.
      if (r.status === 'rejected') throw r.reason
      layers.set(chains[i]!, r.value)
    }
    size = imageSize(image, layers) ?? 0
    // top is the last of chains: read above.
    const meta = await store.driver.getMetadata(layers.get(top)!.cacheId)
    data = Object.keys(meta).length === 0 ? null : sortedObject(meta)
  }
  return inspectObject(image, { repoTags, repoDigests, size, driver: store.driver.name, driverData: data })
}

/** The inspect object of an image from what the store told about it. */
export function inspectObject(
  image: Image,
  extra: { repoTags: string[]; repoDigests: string[]; size: number; driver: string; driverData: Record<string, string> | null },
): ImageInspect {
  const c = image.config
  const history = c.history ?? []
  let comment = c.comment ?? ''
  if (comment === '' && history.length > 0) comment = history.at(-1)!.comment ?? ''
  const out: ImageInspect = {
    Id: image.id,
    RepoTags: extra.repoTags,
    RepoDigests: extra.repoDigests,
    Parent: image.parent ?? '',
    Comment: comment,
    Created: goRfc3339Nano(c.created) ?? GO_ZERO_TIME,
    Container: c.container ?? '',
    ContainerConfig: goContainerConfig(c.container_config ?? {}),
    DockerVersion: c.docker_version ?? '',
    Author: c.author ?? '',
    Config: c.config === undefined || c.config === null ? null : goContainerConfig(c.config),
    Architecture: c.architecture ?? '',
    Os: imageOperatingSystem(c),
    Size: extra.size,
    VirtualSize: extra.size,
    GraphDriver: { Data: extra.driverData, Name: extra.driver },
    RootFS: rootFs(c.rootfs as unknown as Record<string, unknown>),
    Metadata: { LastTagTime: goRfc3339Nano(image.lastUpdated) ?? GO_ZERO_TIME },
  }
  // omitempty fields, placed where Go puts them.
  return reorder(out, {
    Variant: typeof c.variant === 'string' && c.variant !== '' ? c.variant : undefined,
    OsVersion: typeof c['os.version'] === 'string' && c['os.version'] !== '' ? c['os.version'] : undefined,
  })
}

const INSPECT_ORDER = [
  'Id', 'RepoTags', 'RepoDigests', 'Parent', 'Comment', 'Created', 'Container', 'ContainerConfig', 'DockerVersion', 'Author',
  'Config', 'Architecture', 'Variant', 'Os', 'OsVersion', 'Size', 'VirtualSize', 'GraphDriver', 'RootFS', 'Metadata',
] as const

function reorder(base: ImageInspect, optional: { Variant: string | undefined; OsVersion: string | undefined }): ImageInspect {
  const all: Record<string, unknown> = { ...base, ...optional }
  const out: Record<string, unknown> = {}
  for (const key of INSPECT_ORDER) if (all[key] !== undefined) out[key] = all[key]
  return out as unknown as ImageInspect
}

function rootFs(rootfs: Record<string, unknown>): ImageInspect['RootFS'] {
  const out: ImageInspect['RootFS'] = { Type: String(rootfs.type ?? '') }
  const layers = rootfs.diff_ids as string[] | undefined
  if (layers !== undefined && layers.length > 0) out.Layers = [...layers]
  if (typeof rootfs.base_layer === 'string' && rootfs.base_layer !== '') out.BaseLayer = rootfs.base_layer
  return out
}

function sortedObject<T>(m: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(m).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}

/** A Go string slice field: null when absent; strslice.StrSlice also takes a single string. */
function strSlice(v: unknown, allowString: boolean): string[] | null {
  if (v === undefined || v === null) return null
  if (allowString && typeof v === 'string') return [v]
  if (Array.isArray(v)) return v.map(String)
  throw new StrataError('CORRUPT', `Image config has a ${typeof v} where a list of strings belongs`)
}

/** A Go map[string]struct{} field (ExposedPorts, Volumes): keys sorted, every value {}. */
function setMap(v: unknown): Record<string, Record<string, never>> | null {
  if (v === undefined || v === null || typeof v !== 'object') return null
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, {}]))
}

/**
 * An image's `config`/`container_config` as Go's container.Config
 * marshals it (docker 20.10's api/types/container): every field in its
 * order, absent ones as Go's zero values, `omitempty` ones only when set.
 */
export function goContainerConfig(cfg: ContainerConfig): GoContainerConfig {
  const s = (k: string): string => (typeof cfg[k] === 'string' ? (cfg[k] as string) : '')
  const b = (k: string): boolean => cfg[k] === true
  const out: GoContainerConfig = {
    Hostname: s('Hostname'),
    Domainname: s('Domainname'),
    User: s('User'),
    AttachStdin: b('AttachStdin'),
    AttachStdout: b('AttachStdout'),
    AttachStderr: b('AttachStderr'),
  }
  const ports = setMap(cfg.ExposedPorts)
  if (ports !== null && Object.keys(ports).length > 0) out.ExposedPorts = ports
  out.Tty = b('Tty')
  out.OpenStdin = b('OpenStdin')
  out.StdinOnce = b('StdinOnce')
  out.Env = strSlice(cfg.Env, false)
  out.Cmd = strSlice(cfg.Cmd, true)
  if (cfg.Healthcheck !== undefined && cfg.Healthcheck !== null) out.Healthcheck = healthConfig(cfg.Healthcheck)
  if (cfg.ArgsEscaped === true) out.ArgsEscaped = true
  out.Image = s('Image')
  out.Volumes = setMap(cfg.Volumes)
  out.WorkingDir = s('WorkingDir')
  out.Entrypoint = strSlice(cfg.Entrypoint, true)
  if (cfg.NetworkDisabled === true) out.NetworkDisabled = true
  if (s('MacAddress') !== '') out.MacAddress = s('MacAddress')
  out.OnBuild = strSlice(cfg.OnBuild, false)
  out.Labels = cfg.Labels === undefined || cfg.Labels === null ? null : sortedObject(cfg.Labels)
  if (s('StopSignal') !== '') out.StopSignal = s('StopSignal')
  if (typeof cfg.StopTimeout === 'number') out.StopTimeout = cfg.StopTimeout
  const shell = strSlice(cfg.Shell, true)
  if (shell !== null && shell.length > 0) out.Shell = shell
  return out
}

/** container.HealthConfig: every field omitempty. */
function healthConfig(h: NonNullable<ContainerConfig['Healthcheck']>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (Array.isArray(h.Test) && h.Test.length > 0) out.Test = h.Test
  for (const k of ['Interval', 'Timeout', 'StartPeriod', 'Retries'] as const) if (typeof h[k] === 'number' && h[k] !== 0) out[k] = h[k]
  return out
}
