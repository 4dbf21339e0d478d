/**
 * Image endpoints that answer with one JSON document: list, inspect,
 * history, tag, delete, prune, and system df. Each is the library call
 * the CLI's verb makes (src/store), formatted as the API's JSON.
 */
import { imageEvent, pruneEvent } from '../../events/index.js'
import { diskUsage, imageHistory, inspectImage, listImages, pruneImages, removeImage, tagImage } from '../../store/index.js'
import { ApiError } from '../errors.js'
import { boolFilter, boolParam, parseFilters } from '../request.js'
import { writeEmpty, writeJson } from '../response.js'
import type { RequestContext } from '../types.js'
import { containerSummaries } from './container-format.js'

/** GET /images/json?all=&filters=&digests= */
export async function listImagesHandler(ctx: RequestContext): Promise<void> {
  const filters = parseFilters(ctx.query.get('filters'), ['dangling', 'label', 'before', 'since', 'reference'])
  const dangling = boolFilter(filters, 'dangling')
  const reference = filters.get('reference')
  const opts = {
    all: boolParam(ctx.query, 'all'),
    ...(reference === undefined ? {} : { reference: [...reference] }),
    ...(dangling === undefined ? {} : { dangling }),
    ...(filters.has('label') ? { labels: [...filters.get('label')!] } : {}),
    ...(filters.has('before') ? { before: [...filters.get('before')!] } : {}),
    ...(filters.has('since') ? { since: [...filters.get('since')!] } : {}),
  }
  // From the server's in-memory view: read again only when the data root's image files changed.
  writeJson(ctx.res, 200, await listImages(ctx.store, opts, ctx.imageView))
}

/** GET /images/{name}/json */
export async function inspectImageHandler(ctx: RequestContext): Promise<void> {
  writeJson(ctx.res, 200, await inspectImage(ctx.store, ctx.params.name!))
}

/** GET /images/{name}/history */
export async function imageHistoryHandler(ctx: RequestContext): Promise<void> {
  writeJson(ctx.res, 200, await imageHistory(ctx.store, ctx.params.name!))
}

/** POST /images/{name}/tag?repo=&tag=: 201 with no body. */
export async function tagImageHandler(ctx: RequestContext): Promise<void> {
  const repo = ctx.query.get('repo') ?? ''
  const tag = ctx.query.get('tag') ?? ''
  if (repo === '') throw new ApiError(400, 'invalid reference format: the "repo" parameter is required')
  const result = await tagImage(ctx.store, ctx.params.name!, tag === '' ? repo : `${repo}:${tag}`)
  await ctx.events.append(imageEvent('tag', result.id, result.tag))
  writeEmpty(ctx.res, 201)
}

/** DELETE /images/{name}?force=&noprune= : docker's list of what was untagged and deleted. */
export async function removeImageHandler(ctx: RequestContext): Promise<void> {
  const before = await namesSnapshot(ctx)
  const items = await removeImage(ctx.store, ctx.params.name!, {
    force: boolParam(ctx.query, 'force'),
    noPrune: boolParam(ctx.query, 'noprune'),
  })
  await appendDeleteEvents(ctx, before, items)
  writeJson(ctx.res, 200, items)
}

interface NamesSnapshot {
  ids: Set<string>
  /** Familiar reference → image ID. */
  byRef: Map<string, string>
}

/** Which images exist and what their references name, before a removal (to say afterwards which image each item was about). */
async function namesSnapshot(ctx: RequestContext): Promise<NamesSnapshot> {
  const snap: NamesSnapshot = { ids: new Set(), byRef: new Map() }
  for (const image of await listImages(ctx.store, { all: true }, ctx.imageView)) {
    snap.ids.add(image.Id)
    for (const ref of [...image.RepoTags, ...image.RepoDigests]) snap.byRef.set(ref, image.Id)
  }
  return snap
}

/** untag and delete events for what a removal did, as dockerd logs them: the image's ID as actor and as name (layers deleted are not images and get none). */
async function appendDeleteEvents(ctx: RequestContext, before: NamesSnapshot, items: ReadonlyArray<{ Untagged?: string; Deleted?: string }>): Promise<void> {
  for (const item of items) {
    if (item.Untagged !== undefined) {
      const id = before.byRef.get(item.Untagged) ?? item.Untagged
      await ctx.events.append(imageEvent('untag', id, id))
    } else if (item.Deleted !== undefined && before.ids.has(item.Deleted)) {
      await ctx.events.append(imageEvent('delete', item.Deleted, item.Deleted))
    }
  }
}

/** POST /images/prune?filters={"dangling":{"false":true}} */
export async function pruneImagesHandler(ctx: RequestContext): Promise<void> {
  const filters = parseFilters(ctx.query.get('filters'), ['dangling', 'until', 'label', 'label!'])
  for (const unsupported of ['until', 'label', 'label!']) {
    if (filters.has(unsupported)) throw new ApiError(501, `strata does not implement the "${unsupported}" filter of image prune`)
  }
  const dangling = boolFilter(filters, 'dangling')
  const before = await namesSnapshot(ctx)
  const report = await pruneImages(ctx.store, { all: dangling === false })
  await appendDeleteEvents(ctx, before, report.ImagesDeleted)
  await ctx.events.append(pruneEvent('image', report.SpaceReclaimed))
  writeJson(ctx.res, 200, { ImagesDeleted: report.ImagesDeleted.length === 0 ? null : report.ImagesDeleted, SpaceReclaimed: report.SpaceReclaimed })
}

/** GET /system/df: images with their shared sizes and container counts, containers with their read-write sizes. */
export async function systemDf(ctx: RequestContext): Promise<void> {
  const du = await diskUsage(ctx.store)
  const sizes = new Map(du.Containers.map((c) => [c.Id, c.SizeRw]))
  const containers = await containerSummaries(ctx.store, { all: true })
  writeJson(ctx.res, 200, {
    LayersSize: du.LayersSize,
    Images: du.Images,
    Containers: containers.map((c) => ({ ...c, SizeRw: sizes.get(c.Id) ?? 0, SizeRootFs: 0 })),
    Volumes: [],
    BuildCache: [],
    // Deprecated in 1.41, still sent by dockerd 20.10.
    BuilderSize: 0,
  })
}
