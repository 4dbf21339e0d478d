/**
 * Container endpoints on the container library (src/container): create,
 * list, inspect, changes, export, delete and commit. A create asks for
 * what a strata container can be; a setting strata cannot honour (a bind
 * mount, a published port, privileged mode, resource limits, ...) is a
 * 501 naming it, never silently dropped, while the defaults every client
 * sends (empty lists, zeros, `NetworkMode: default`) pass.
 */
import {
  commitContainer,
  containerChanges,
  createContainer,
  exportContainer,
  inspectContainer,
  listContainers,
  CONTAINER_LIST_FILTERS,
  pruneContainers,
  removeContainer,
  type CreateContainerOptions,
} from '../../container/index.js'
import { containerEvent, imageEvent, pruneEvent } from '../../events/index.js'
import { familiarString, parseReference, referenceString, withDefaultTag } from '../../image/index.js'
import { ApiError, notImplemented } from '../errors.js'
import { boolParam, intParam, parseFilters, readJsonBody, readJsonObject, type Filters } from '../request.js'
import { writeEmpty, writeJson } from '../response.js'
import type { RequestContext } from '../types.js'
import { noteConsoleSize } from './tty.js'
import { strataVersion } from '../server-version.js'

/** Whether a JSON value is what a client sends for "not set". */
function isUnset(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return true
  if (Array.isArray(v)) return v.length === 0
  if (typeof v === 'object') return Object.keys(v as object).length === 0
  return false
}

/** HostConfig values strata accepts beyond "unset", by key; every other key must be unset. */
const HOST_CONFIG_ACCEPTS: Record<string, (v: unknown) => boolean> = {
  NetworkMode: (v) => v === 'default' || v === 'none' || v === 'bridge',
  RestartPolicy: (v) => {
    const name = (v as { Name?: unknown } | null)?.Name
    return name === undefined || name === '' || name === 'no'
  },
  LogConfig: (v) => {
    const type = (v as { Type?: unknown } | null)?.Type
    return type === undefined || type === '' || type === 'json-file'
  },
  MemorySwappiness: (v) => v === -1,
  Runtime: (v) => v === 'runc',
  IpcMode: (v) => v === 'private' || v === 'shareable',
  CgroupnsMode: (v) => v === 'host' || v === 'private',
  Isolation: (v) => v === 'default',
  // Sizes and limits strata sets on its own (shm 64 MiB, nofile/nproc 1024): what a client asks is not applied.
  ShmSize: () => true,
  ConsoleSize: () => true,
  Ulimits: () => true,
  ContainerIDFile: () => true,
  MaskedPaths: () => true,
  ReadonlyPaths: () => true,
}

/**
 * Config keys strata cannot honour when set. The others are mapped (Cmd,
 * Env, ...), only describe (ExposedPorts, StopSignal, ...), or are not
 * docker's at all (dockerode repeats `name` in the body): those pass, as
 * the spec's open model has servers ignore what they do not know.
 */
const CONFIG_REFUSED = new Set(['Volumes', 'Healthcheck'])

/** The fields of docker's container.Config (API 1.41). */
const CONFIG_KEYS = new Set(['Hostname', 'Domainname', 'User', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'ExposedPorts', 'Tty', 'OpenStdin', 'StdinOnce', 'Env', 'Cmd', 'Healthcheck', 'ArgsEscaped', 'Image', 'Volumes', 'WorkingDir', 'Entrypoint', 'NetworkDisabled', 'MacAddress', 'OnBuild', 'Labels', 'StopSignal', 'StopTimeout', 'Shell'])

function stringArray(value: unknown, what: string): string[] | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'string') return [value]
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new ApiError(400, `${what} must be a list of strings`)
  return value as string[]
}

function stringField(value: unknown, what: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined
  if (typeof value !== 'string') throw new ApiError(400, `${what} must be a string`)
  return value
}

/** The create options a request body asks for; 501 for what strata cannot do, 400 for what is malformed. */
export function createOptions(body: Record<string, unknown>, name: string | null): { image: string; opts: CreateContainerOptions } {
  const image = stringField(body.Image, 'Image')
  if (image === undefined) throw new ApiError(400, 'Config cannot be empty in order to create a container')
  for (const [key, value] of Object.entries(body)) {
    if (CONFIG_REFUSED.has(key) && !isUnset(value)) {
      throw notImplemented(`the container setting ${key}`)
    }
  }
  const host = (body.HostConfig ?? {}) as Record<string, unknown>
  if (typeof host !== 'object' || Array.isArray(host)) throw new ApiError(400, 'HostConfig must be an object')
  for (const [key, value] of Object.entries(host)) {
    if (isUnset(value)) continue
    const accepts = HOST_CONFIG_ACCEPTS[key]
    if (accepts !== undefined && accepts(value)) continue
    if (key === 'NetworkMode') throw notImplemented(`the network "${String(value)}" (containers get the "none" network)`)
    if (key === 'AutoRemove' && value === true) continue
    throw notImplemented(`HostConfig.${key}`)
  }
  const endpoints = ((body.NetworkingConfig ?? {}) as { EndpointsConfig?: Record<string, unknown> }).EndpointsConfig ?? {}
  for (const network of Object.keys(endpoints)) {
    if (network !== 'default' && network !== 'none' && network !== 'bridge') throw notImplemented(`the network "${network}" (containers get the "none" network)`)
  }
  const labels = body.Labels ?? undefined
  if (labels !== undefined && labels !== null && (typeof labels !== 'object' || Array.isArray(labels) || Object.values(labels).some((v) => typeof v !== 'string'))) {
    throw new ApiError(400, 'Labels must be an object of strings')
  }
  const opts: CreateContainerOptions = {}
  if (name !== null && name !== '') opts.name = name
  const cmd = stringArray(body.Cmd, 'Cmd')
  if (cmd !== undefined) opts.cmd = cmd
  const entrypoint = stringArray(body.Entrypoint, 'Entrypoint')
  // `--entrypoint ""` arrives as [""]: clear the image's.
  if (entrypoint !== undefined) opts.entrypoint = entrypoint.length === 1 && entrypoint[0] === '' ? [] : entrypoint
  const env = stringArray(body.Env, 'Env')
  if (env !== undefined) opts.env = env
  const workingDir = stringField(body.WorkingDir, 'WorkingDir')
  if (workingDir !== undefined) opts.workingDir = workingDir
  const user = stringField(body.User, 'User')
  if (user !== undefined) opts.user = user
  if (labels !== undefined && labels !== null && Object.keys(labels).length > 0) opts.labels = labels as Record<string, string>
  // docker run -d attaches nothing; the record says so as dockerd's does (Config.Attach*).
  if (body.AttachStdout === false && body.AttachStderr === false && body.AttachStdin !== true) opts.detached = true
  if (host.AutoRemove === true) opts.autoRemove = true
  // docker run -i / -t: stdin kept open, a terminal (StdinOnce follows from the attach, as the CLI sets it).
  if (body.OpenStdin === true) opts.interactive = true
  if (body.Tty === true) opts.tty = true
  return { image, opts }
}

/** POST /containers/create?name= : 201 {"Id","Warnings"}. */
export async function createContainerHandler(ctx: RequestContext): Promise<void> {
  const body = await readJsonObject(ctx)
  const { image, opts } = createOptions(body, ctx.query.get('name'))
  const c = await createContainer(ctx.store, image, opts)
  noteConsoleSize(c.id, body)
  await ctx.events.append(containerEvent('create', c.id, image, c.name))
  writeJson(ctx.res, 201, { Id: c.id, Warnings: [] })
}

/** GET /containers/json?all=&limit=&size=&filters= */
export async function listContainersHandler(ctx: RequestContext): Promise<void> {
  const filters = parseFilters(ctx.query.get('filters'), CONTAINER_LIST_FILTERS)
  const list = await listContainers(ctx.store, {
    all: boolParam(ctx.query, 'all'),
    limit: intParam(ctx.query, 'limit', -1)!,
    size: boolParam(ctx.query, 'size'),
    filters,
  })
  writeJson(ctx.res, 200, list)
}

/** GET /containers/{id}/json */
export async function inspectContainerHandler(ctx: RequestContext): Promise<void> {
  writeJson(ctx.res, 200, await inspectContainer(ctx.store, ctx.params.id!))
}

/** docker's archive.ChangeType numbers: Modify 0, Add 1, Delete 2. */
const CHANGE_KIND: Record<string, number> = { C: 0, A: 1, D: 2 }

/** GET /containers/{id}/changes */
export async function containerChangesHandler(ctx: RequestContext): Promise<void> {
  const changes = await containerChanges(ctx.store, ctx.params.id!)
  writeJson(ctx.res, 200, changes.length === 0 ? null : changes.map((c) => ({ Path: c.path, Kind: CHANGE_KIND[c.kind] ?? 0 })))
}

/** GET /containers/{id}/export: the container's filesystem as a tar. */
export async function exportContainerHandler(ctx: RequestContext): Promise<void> {
  const c = await ctx.store.containers.get(ctx.params.id!)
  const tar = await exportContainer(ctx.store, c.id)
  ctx.res.writeHead(200, { 'Content-Type': 'application/x-tar' })
  await ctx.events.append(containerEvent('export', c.id, c.record.Config.Image ?? c.record.Image, c.name))
  // A client that leaves destroys the stream, which unmounts (exportContainer's contract).
  ctx.res.on('close', () => tar.destroy())
  tar.on('error', (err) => ctx.res.destroy(err))
  tar.pipe(ctx.res)
  await new Promise<void>((resolve) => ctx.res.on('close', resolve))
}

/** DELETE /containers/{id}?force=&v=&link= : 204. */
export async function removeContainerHandler(ctx: RequestContext): Promise<void> {
  if (boolParam(ctx.query, 'link')) throw notImplemented('container links')
  const c = await ctx.store.containers.get(ctx.params.id!)
  await removeContainer(ctx.store, c.id, { force: boolParam(ctx.query, 'force') })
  await ctx.events.append(containerEvent('destroy', c.id, c.record.Config.Image ?? c.record.Image, c.name))
  writeEmpty(ctx.res, 204)
}

/** POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause= : 201 {"Id"}. */
export async function commitHandler(ctx: RequestContext): Promise<void> {
  const ref = ctx.query.get('container') ?? ''
  if (ref === '') throw new ApiError(400, 'the "container" parameter is required')
  const body = await readJsonBody(ctx)
  if (body !== undefined && body !== null && typeof body === 'object') {
    // The body is a container config to merge; strata takes the same through `changes`. Keys that are not a config's pass (dockerode repeats its options there).
    const set = Object.entries(body as Record<string, unknown>).filter(([k, v]) => CONFIG_KEYS.has(k) && !isUnset(v))
    if (set.length > 0) throw notImplemented(`a container config in the commit body (${set.map(([k]) => k).join(', ')}); give Dockerfile instructions in changes=`)
  }
  const repo = ctx.query.get('repo') ?? ''
  const tag = ctx.query.get('tag') ?? ''
  let reference: string | undefined
  if (repo !== '') {
    let parsed
    try {
      parsed = parseReference(tag === '' ? repo : `${repo}:${tag}`)
    } catch (err) {
      throw new ApiError(400, (err as Error).message, { cause: err })
    }
    if (parsed.digest !== undefined) throw new ApiError(400, 'cannot commit to a digest reference')
    reference = referenceString(withDefaultTag(parsed))
  } else if (tag !== '') {
    throw new ApiError(400, 'a tag without a repository')
  }
  const c = await ctx.store.containers.get(ref)
  const comment = ctx.query.get('comment') ?? ''
  const author = ctx.query.get('author') ?? ''
  const changes = ctx.query.getAll('changes').filter((x) => x !== '')
  const result = await commitContainer(ctx.store, c.id, {
    dockerVersion: strataVersion(),
    ...(reference === undefined ? {} : { reference }),
    ...(comment === '' ? {} : { message: comment }),
    ...(author === '' ? {} : { author }),
    ...(changes.length === 0 ? {} : { changes }),
  })
  // dockerd's order: the new image's tag, then the commit naming it (imageID, imageRef).
  const shownRef = reference === undefined ? undefined : familiarString(parseReference(reference))
  if (shownRef !== undefined) await ctx.events.append(imageEvent('tag', result.imageId, shownRef))
  await ctx.events.append(
    containerEvent('commit', c.id, c.record.Config.Image ?? c.record.Image, c.name, { comment, imageID: result.imageId, ...(shownRef === undefined ? {} : { imageRef: shownRef }) }),
  )
  writeJson(ctx.res, 201, { Id: result.imageId })
}

/** `until` of a prune filter: Unix seconds (with a fraction) or an RFC 3339 time, as the docker CLI sends it; Unix ms. */
function untilFilter(filters: Filters): number | undefined {
  const values = filters.get('until')
  if (values === undefined || values.size === 0) return undefined
  if (values.size > 1) throw new ApiError(400, 'invalid filter: "until" takes one value')
  const raw = [...values][0]!
  if (/^\d+(\.\d+)?$/.test(raw)) return Number(raw) * 1000
  const ms = Date.parse(raw)
  if (Number.isNaN(ms)) throw new ApiError(400, `invalid filter 'until=${raw}'`)
  return ms
}

/** POST /containers/prune?filters= : every container not running, as dockerd prunes them. */
export async function pruneContainersHandler(ctx: RequestContext): Promise<void> {
  const filters = parseFilters(ctx.query.get('filters'), ['until', 'label', 'label!'])
  const until = untilFilter(filters)
  const before = new Map((await ctx.store.containers.list()).map((c) => [c.id, c]))
  const report = await pruneContainers(ctx.store, {
    ...(until === undefined ? {} : { until }),
    ...(filters.has('label') ? { labels: [...filters.get('label')!] } : {}),
    ...(filters.has('label!') ? { notLabels: [...filters.get('label!')!] } : {}),
  })
  for (const id of report.ContainersDeleted) {
    const c = before.get(id)
    if (c !== undefined) await ctx.events.append(containerEvent('destroy', id, c.record.Config.Image ?? c.record.Image, c.name))
  }
  await ctx.events.append(pruneEvent('container', report.SpaceReclaimed))
  writeJson(ctx.res, 200, { ContainersDeleted: report.ContainersDeleted.length === 0 ? null : report.ContainersDeleted, SpaceReclaimed: report.SpaceReclaimed })
}
