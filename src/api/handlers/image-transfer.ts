/**
 * Image endpoints that move images, with docker's JSON message stream:
 * POST /images/create (pull from a registry, or `fromSrc=-` import of a
 * rootfs tar), POST /images/{name}/push, POST /images/load, and GET
 * /images/get | /images/{name}/get (save). The library does the work
 * (src/transport/registry pullImage/pushImage, src/transport loadImages/
 * saveImages/importRootfs), all or nothing; these handlers turn its
 * progress callbacks into docker's messages.
 *
 * A client that leaves: an upload cut short (load, import) fails the
 * library call, which keeps nothing; a pull or push goes on to its end
 * with nobody reading its progress (see types.ts).
 */
import { createReadStream } from 'node:fs'
import { mkdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { pullImage, pushImage, type Credentials } from '../../transport/registry/index.js'
import { imageEvent } from '../../events/index.js'
import { StrataError } from '../../errors/index.js'
import { makeOwnedDir } from '../../fs/index.js'
import { familiarString, parseReference, referenceString, withDefaultTag, type Reference } from '../../image/index.js'
import { importRootfs, loadImages, openImageDestination, openImageSource, saveImages, type LayerProgress, type Platform } from '../../transport/index.js'
import { ApiError } from '../errors.js'
import { boolParam, uploadStream } from '../request.js'
import { JsonMessageStream, writeError } from '../response.js'
import { PullProgress } from './pull-progress.js'
import type { RequestContext } from '../types.js'

/** A layer's byte counts are sent at most this often (dockerd's progress reader: 100 ms), the last one always. */
const PROGRESS_INTERVAL_MS = 100

/** Drops progress events of a layer that come sooner than PROGRESS_INTERVAL_MS after the last one sent. */
function throttled(send: (e: LayerProgress) => void): (e: LayerProgress) => void {
  const last = new Map<string, number>()
  return (e) => {
    if (e.phase === 'copying' && e.current !== e.total) {
      const key = `${e.image}/${e.layer}`
      const now = Date.now()
      if (now - (last.get(key) ?? 0) < PROGRESS_INTERVAL_MS) return
      last.set(key, now)
    }
    send(e)
  }
}

function short(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12)
}

/** `<root>/tmp`: scratch space on the data root's filesystem (spools of uploads and saves). */
async function scratchDir(ctx: RequestContext): Promise<string> {
  const dir = join(ctx.store.root, 'tmp')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  return dir
}

/** `os/arch[/variant]` from the `platform` parameter; undefined when absent or empty. */
function platformParam(ctx: RequestContext): Platform | undefined {
  const raw = ctx.query.get('platform')
  if (raw === null || raw === '') return undefined
  const parts = raw.toLowerCase().split('/')
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new ApiError(400, `invalid platform "${raw}": expected os/arch[/variant]`)
  }
  const p: Platform = { os: parts[0]!, architecture: parts[1]! }
  if (parts[2] !== undefined) p.variant = parts[2]
  return p
}

/**
 * Credentials from X-Registry-Auth (base64url JSON with username and
 * password; an identity token alone is not supported). Absent or `{}`:
 * undefined, and the library falls back to the server's docker config.
 */
export function registryCredentials(ctx: RequestContext): Credentials | undefined {
  const header = ctx.req.headers['x-registry-auth']
  if (typeof header !== 'string' || header.trim() === '') return undefined
  let doc: unknown
  try {
    doc = JSON.parse(Buffer.from(header.trim(), 'base64').toString('utf8'))
  } catch (err) {
    throw new ApiError(400, `Bad parameters and missing X-Registry-Auth: ${(err as Error).message}`, { cause: err })
  }
  if (typeof doc !== 'object' || doc === null) throw new ApiError(400, 'Bad parameters and missing X-Registry-Auth: not a JSON object')
  const { username, password } = doc as { username?: unknown; password?: unknown }
  if (typeof username === 'string' && username !== '' && typeof password === 'string') return { username, password }
  return undefined
}

/** Parses a reference for the API: a bad one is a 400 with docker's words. */
function referenceParam(value: string): Reference {
  try {
    return parseReference(value)
  } catch (err) {
    if (err instanceof StrataError) throw new ApiError(400, err.message.replace(/^Invalid reference "[^"]*": /, ''), { cause: err })
    throw err
  }
}

/** POST /images/create: pull (`fromImage`) or import (`fromSrc`). */
export async function createImage(ctx: RequestContext): Promise<void> {
  const fromSrc = ctx.query.get('fromSrc')
  if (fromSrc !== null && fromSrc !== '') return importImage(ctx, fromSrc)
  const fromImage = ctx.query.get('fromImage')
  if (fromImage === null || fromImage === '') throw new ApiError(400, 'either "fromImage" or "fromSrc" is required')
  return pull(ctx, fromImage)
}

/** The reference a pull asks for: `fromImage`, with `tag` (a tag or a digest) replacing what it named, as dockerd's postImagesCreate does. */
function pullReference(fromImage: string, tag: string): Reference {
  const ref = referenceParam(fromImage)
  if (tag === '') {
    if (ref.tag === undefined && ref.digest === undefined) {
      throw new ApiError(501, 'strata does not implement pulling every tag of a repository (docker pull --all-tags); name a tag')
    }
    return ref
  }
  if (/^[a-z0-9]+:[a-f0-9]+$/.test(tag)) return { domain: ref.domain, path: ref.path, digest: referenceParam(`x@${tag}`).digest! }
  const tagged = referenceParam(`x:${tag}`).tag
  if (tagged === undefined) throw new ApiError(400, `invalid tag "${tag}"`)
  return { domain: ref.domain, path: ref.path, tag: tagged, ...(ref.digest === undefined ? {} : { digest: ref.digest }) }
}

async function pull(ctx: RequestContext, fromImage: string): Promise<void> {
  const ref = pullReference(fromImage, ctx.query.get('tag') ?? '')
  const platform = platformParam(ctx)
  const credentials = registryCredentials(ctx)
  const name = referenceString(ref)
  const out = new JsonMessageStream(ctx.res)
  const progress = new PullProgress(out)
  try {
    const result = await pullImage(ctx.store, name, {
      ...(platform === undefined ? {} : { platform }),
      ...(credentials === undefined ? {} : { credentials }),
      onResolved: (image) => {
        progress.resolved(image.manifest.layers.map((l) => l.digest))
        out.status(`Pulling from ${image.reference.path}`, ref.digest ?? ref.tag)
      },
      onProgress: (e) => progress.event(e),
    })
    progress.finish(result.updated)
    const shown = familiarString(parseReference(result.reference))
    // dockerd: the reference as the ID, the repository without its tag as the name.
    await ctx.events.append(imageEvent('pull', shown, familiarString({ ...parseReference(result.reference), tag: undefined, digest: undefined })))
    out.status(`Digest: ${result.digest}`)
    out.status(`Status: ${result.updated ? 'Downloaded newer image' : 'Image is up to date'} for ${shown}`)
    out.end()
  } catch (err) {
    out.end(err)
  }
}

/** POST /images/create?fromSrc=-&repo=&tag=&message=&changes=: the request body is a rootfs tar. */
async function importImage(ctx: RequestContext, fromSrc: string): Promise<void> {
  if (fromSrc !== '-') throw new ApiError(501, `strata does not implement importing from a URL (${fromSrc}); send the tar as the request body with fromSrc=-`)
  const repo = ctx.query.get('repo') ?? ''
  const tag = ctx.query.get('tag') ?? ''
  let reference: string | undefined
  if (repo !== '') {
    const ref = referenceParam(tag === '' ? repo : `${repo}:${tag}`)
    if (ref.digest !== undefined) throw new ApiError(400, `cannot import to a digest reference "${repo}"`)
    reference = referenceString(withDefaultTag(ref))
  }
  const platform = platformParam(ctx)
  const message = ctx.query.get('message') ?? ''
  const changes = ctx.query.getAll('changes').filter((c) => c !== '')
  const out = new JsonMessageStream(ctx.res)
  try {
    const result = await importRootfs(ctx.store, uploadStream(ctx), {
      sourceName: '-',
      ...(reference === undefined ? {} : { reference }),
      ...(message === '' ? {} : { message }),
      ...(changes.length === 0 ? {} : { changes }),
      ...(platform === undefined ? {} : { platform }),
    })
    await ctx.events.append(imageEvent('import', result.id, result.id))
    if (result.tagged !== undefined) await ctx.events.append(imageEvent('tag', result.id, result.tagged))
    out.status(result.id)
    out.end()
  } catch (err) {
    out.end(err)
  }
}

/** POST /images/load?quiet=: the request body is a docker-archive, OCI archive (tar, gzip or zstd). */
export async function loadImagesHandler(ctx: RequestContext): Promise<void> {
  const quiet = boolParam(ctx.query, 'quiet')
  const out = new JsonMessageStream(ctx.res)
  const tmpDir = await scratchDir(ctx)
  try {
    const source = await openImageSource(uploadStream(ctx), { tmpDir })
    try {
      const result = await loadImages(ctx.store, source, {
        ...(quiet ? {} : { onProgress: throttled((e: LayerProgress) => e.phase === 'copying' && out.progress(short(e.diffId), 'Loading layer', e.current, e.total ?? 0)) }),
      })
      for (const image of result.images) {
        await ctx.events.append(imageEvent('load', image.id, image.id))
        if (image.tagged.length === 0) out.stream(`Loaded image ID: ${image.id}\n`)
        for (const ref of image.tagged) {
          // dockerd 20.10 logs the load alone, no tag event for the names it sets.
          out.stream(`Loaded image: ${familiarString(parseReference(ref))}\n`)
        }
      }
      // dockerd 20.10: what loaded before a refused RepoTags name stays, and the stream ends with its error.
      if (result.refused !== undefined) throw new StrataError('INVALID_ARGUMENT', result.refused.message)
    } finally {
      await source.close()
    }
    out.end()
  } catch (err) {
    out.end(err)
  }
}

/**
 * GET /images/get?names=A&names=B and GET /images/{name}/get: a
 * docker-archive of the images. It is written to the data root's scratch
 * space first and then sent, so a save that fails answers with an HTTP
 * error instead of half an archive.
 */
export async function saveImagesHandler(ctx: RequestContext): Promise<void> {
  const names = ctx.params.name !== undefined ? [ctx.params.name] : ctx.query.getAll('names').filter((n) => n !== '')
  if (names.length === 0) throw new ApiError(400, 'no images to save: give them with names=')
  // Owned by this process (src/fs/owned.ts): a killed server leaves nothing the next open keeps.
  const spool = makeOwnedDir(await scratchDir(ctx), 'save-')
  try {
    const path = join(spool.path, 'image.tar')
    await saveImages(ctx.store, names, openImageDestination(path, 'docker-archive'))
    for (const name of names) {
      const id = await ctx.store.findImage(name).catch(() => undefined)
      if (id !== undefined) await ctx.events.append(imageEvent('save', id, id))
    }
    const { size } = await stat(path)
    ctx.res.writeHead(200, { 'Content-Type': 'application/x-tar', 'Content-Length': size })
    try {
      await pipeline(createReadStream(path), ctx.res)
    } catch (err) {
      // The client went away mid-download: nothing to undo.
      ctx.log(`GET ${ctx.req.url}: sending the archive stopped: ${(err as Error).message}`)
    }
  } catch (err) {
    writeError(ctx.res, err)
  } finally {
    await spool.remove()
  }
}

/** POST /images/{name}/push?tag= with X-Registry-Auth. */
export async function pushImageHandler(ctx: RequestContext): Promise<void> {
  const tag = ctx.query.get('tag') ?? ''
  const ref = referenceParam(ctx.params.name!)
  if (ref.digest !== undefined) throw new ApiError(400, `cannot push a digest reference: ${ctx.params.name}`)
  const target: Reference = tag === '' ? withDefaultTag(ref) : { domain: ref.domain, path: ref.path, tag: referenceParam(`x:${tag}`).tag! }
  const credentials = registryCredentials(ctx)
  const out = new JsonMessageStream(ctx.res)
  try {
    const result = await pushImage(ctx.store, referenceString(target), {
      ...(credentials === undefined ? {} : { credentials }),
      onResolved: (info) => out.status(`The push refers to repository [${info.repository}]`),
      onProgress: (e) => {
        const id = short(e.diffId)
        if (e.phase === 'done') {
          const l = e.result
          out.layer(id, l.status === 'pushed' ? 'Pushed' : l.status === 'exists' ? 'Layer already exists' : `Mounted from ${l.from ?? ''}`)
        } else if (e.phase === 'uploaded') out.progress(id, 'Pushing', e.bytes, 0)
        else out.layer(id, e.phase === 'preparing' ? 'Preparing' : 'Pushing')
      },
    })
    const shown = familiarString(target)
    await ctx.events.append(imageEvent('push', shown, shown))
    out.status(`${result.tag}: digest: ${result.digest} size: ${result.size}`)
    out.aux({ Tag: result.tag, Digest: result.digest, Size: result.size })
    out.end()
  } catch (err) {
    out.end(err)
  }
}
