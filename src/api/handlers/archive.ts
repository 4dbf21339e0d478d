/**
 * `docker cp`: HEAD, GET and PUT /containers/{id}/archive?path=, on the
 * container library's archive calls (src/container/archive.ts holds the
 * path rules and the confinement to the container). The stat travels in
 * `X-Docker-Container-Path-Stat` (base64 JSON), as dockerd sends it.
 */
import { archiveFromContainer, extractToContainer, statContainerPath, type ContainerPathStat } from '../../container/index.js'
import { containerEvent } from '../../events/index.js'
import { ApiError } from '../errors.js'
import { boolParam, uploadStream } from '../request.js'
import type { RequestContext } from '../types.js'

const STAT_HEADER = 'X-Docker-Container-Path-Stat'

function pathParam(ctx: RequestContext): string {
  const path = ctx.query.get('path')
  if (path === null || path === '') throw new ApiError(400, 'the "path" parameter is required')
  if (path.includes('\0')) throw new ApiError(400, 'the "path" parameter holds a NUL byte')
  return path
}

function statHeader(stat: ContainerPathStat): string {
  return Buffer.from(JSON.stringify(stat)).toString('base64')
}

/** dockerd's events for a copy out (archive-path) and in (extract-to-dir). */
async function event(ctx: RequestContext, action: string): Promise<void> {
  const c = await ctx.store.containers.get(ctx.params.id!).catch(() => undefined)
  if (c !== undefined) await ctx.events.append(containerEvent(action, c.id, c.record.Config.Image ?? c.record.Image, c.name))
}

/** HEAD /containers/{id}/archive?path= */
export async function headArchive(ctx: RequestContext): Promise<void> {
  const stat = await statContainerPath(ctx.store, ctx.params.id!, pathParam(ctx))
  ctx.res.writeHead(200, { [STAT_HEADER]: statHeader(stat) })
  ctx.res.end()
}

/** GET /containers/{id}/archive?path=: the stat header and a tar of the path. */
export async function getArchive(ctx: RequestContext): Promise<void> {
  const { stat, tar } = await archiveFromContainer(ctx.store, ctx.params.id!, pathParam(ctx))
  await event(ctx, 'archive-path')
  ctx.res.writeHead(200, { 'Content-Type': 'application/x-tar', [STAT_HEADER]: statHeader(stat) })
  ctx.res.on('close', () => tar.destroy())
  tar.on('error', (err) => ctx.res.destroy(err))
  tar.pipe(ctx.res)
  await new Promise<void>((resolve) => ctx.res.on('close', resolve))
}

/** PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=: the body is a tar to extract into the directory `path`. */
export async function putArchive(ctx: RequestContext): Promise<void> {
  const path = pathParam(ctx)
  await extractToContainer(ctx.store, ctx.params.id!, path, uploadStream(ctx), { noOverwriteDirNonDir: boolParam(ctx.query, 'noOverwriteDirNonDir') })
  await event(ctx, 'extract-to-dir')
  ctx.res.writeHead(200)
  ctx.res.end()
}
