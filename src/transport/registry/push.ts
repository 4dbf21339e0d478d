/**
 * `push`: an image from a store to a registry, as dockerd 20.10's push
 * does it (docker v2 schema 2):
 *
 * 1. The reference is parsed as docker parses it, the tag defaulting to
 *    `latest`; the image is the one the reference names in the store.
 *    Credentials come from docker's config.json (see auth.ts).
 * 2. Per layer, bottom first, a few at a time: the distribution metadata
 *    (v2metadata-by-diffid) names the blobs this layer was pulled from or
 *    pushed to. A blob recorded for this repository is checked with HEAD
 *    (present: "Layer already exists"); one recorded for another
 *    repository on the same registry is mounted (POST
 *    `uploads/?mount=&from=`; 201: "Mounted from <repo>"; 202: the
 *    registry opened an upload instead, which is cancelled). Otherwise the
 *    layer is exported (rebuilt from tar-split, verified against its
 *    diffID), gzip'd and streamed chunked in one PATCH while its sha256
 *    and size are computed, and the upload closed with PUT `?digest=`.
 * 3. The config blob (HEAD, else POST + PUT with the bytes), then the
 *    manifest is PUT under the tag; the registry's Docker-Content-Digest
 *    must be the sha256 of the bytes sent.
 * 4. Each layer's blob ↔ diffID is recorded with this repository in the
 *    distribution metadata as soon as the layer is done (so the next push,
 *    or a retry of a failed one, only checks it with HEAD); the RepoDigest
 *    (`name@sha256:...`) is recorded for the image once the manifest is in.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { chainIds, Digester, parseDigest, sha256Of, type Digest } from '../../digest/index.js'
import { StrataError, isStrataError } from '../../errors/index.js'
import { familiarName, parseReference, referenceName, referenceString, withDefaultTag, type ImageID, type Reference } from '../../image/index.js'
import type { Store } from '../../store/index.js'
import { MediaTypes } from '../types.js'
import { readRegistryAuth, type Credentials } from './auth.js'
import { RegistryClient, discardResponse, readResponse, type RegistryResponse } from './client.js'
import { openVerifiedLayer } from '../verified-export.js'

/** Layers uploaded at the same time (dockerd's max-concurrent-uploads is 5). */
export const PUSH_CONCURRENCY = 3

/** Blobs recorded for this repository checked with HEAD, and mounts tried, per layer at most (the newest first). */
const MAX_EXISTENCE_CHECKS = 3
const MAX_MOUNT_ATTEMPTS = 3

export type PushLayerStatus = 'pushed' | 'exists' | 'mounted'

/** What happened to one layer. */
export interface PushedLayer {
  diffId: Digest
  /** The blob's digest in the registry (gzip'd layer). */
  digest: Digest
  size: number
  status: PushLayerStatus
  /** For 'mounted': the repository (path on the registry) it was mounted from. */
  from?: string
}

/** Progress of layer `layer` (index in the image's rootfs, bottom first). */
export type PushProgress =
  | { layer: number; diffId: Digest; phase: 'preparing' | 'pushing' }
  /**
   * Bytes moving: `bytes` of gzip sent so far, `read` of the layer's tar
   * read so far, and `total`, the layer's size in the store, which is what
   * docker's "Pushing x/y" counts against (the tar runs a little over it:
   * headers and padding).
   */
  | { layer: number; diffId: Digest; phase: 'uploaded'; bytes: number; read: number; total: number }
  | { layer: number; diffId: Digest; phase: 'done'; result: PushedLayer }

export interface PushOptions {
  /** Plain HTTP even for a registry not on loopback (docker's --insecure-registry). */
  insecure?: boolean
  /** docker's client config to read credentials from; default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
  dockerConfig?: string
  /** Credentials to use instead of the config's (the Engine API's X-Registry-Auth); the config is not read then. */
  credentials?: Credentials
  /** Layers uploaded at once; default PUSH_CONCURRENCY. */
  concurrency?: number
  /** Called once the image is resolved, before anything is sent (the CLI's "The push refers to repository" line). */
  onResolved?: (info: { id: ImageID; repository: string; tag: string; diffIds: Digest[] }) => void
  onProgress?: (event: PushProgress) => void
}

export interface PushResult {
  id: ImageID
  /** The reference pushed, full form (`127.0.0.1:5000/test/img:1`). */
  reference: string
  /** `127.0.0.1:5000/test/img`. */
  repository: string
  tag: string
  /** The manifest's digest, as the registry answered and as computed from the bytes sent. */
  digest: Digest
  /** The manifest's size in bytes. */
  size: number
  /** The manifest as sent. */
  manifest: Buffer
  repoDigest: string
  configDigest: Digest
  /** Per layer, bottom first. */
  layers: PushedLayer[]
  /** What went half right (a RepoDigest or metadata that could not be recorded), one line each. */
  warnings: string[]
}

/** How a blob is named in messages. */
function blobWhat(repo: string, digest: string): string {
  return `blob ${digest} of ${repo}`
}

/** The upload URL a Location header names, resolved against the URL it answered. */
function locationOf(res: RegistryResponse, base: string, what: string): string {
  const location = res.headers.get('location')
  if (location === null || location === '') {
    throw new StrataError('CORRUPT', `Registry answered ${res.status} without a Location header for the ${what}`)
  }
  try {
    return new URL(location, base).toString()
  } catch (err) {
    throw new StrataError('CORRUPT', `Registry's Location "${location}" for the ${what} is not a URL`, { cause: err })
  }
}

/** `url` with query parameter `name=value` added to what it has (`_state=...`). */
function withQuery(url: string, name: string, value: string): string {
  const u = new URL(url)
  u.searchParams.append(name, value)
  return u.toString()
}

/** Counts and hashes bytes on their way to the registry. */
class CountingHasher extends Transform {
  readonly digester = new Digester()
  readonly #onBytes: ((n: number) => void) | undefined
  constructor(onBytes?: (n: number) => void) {
    super()
    this.#onBytes = onBytes
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.digester.update(chunk)
    this.#onBytes?.(this.digester.size)
    cb(null, chunk)
  }
}

/** One push: a client, a repository and its scope. */
class Pusher {
  readonly client: RegistryClient
  readonly ref: Reference
  /** `test/img`: the repository's path on the registry. */
  readonly path: string
  /** `127.0.0.1:5000/test/img`. */
  readonly repository: string
  readonly scope: string

  constructor(client: RegistryClient, ref: Reference) {
    this.client = client
    this.ref = ref
    this.path = ref.path
    this.repository = referenceName(ref)
    this.scope = `repository:${ref.path}:pull,push`
  }

  /** The blob's size when the repository has it, else undefined. */
  async stat(digest: string): Promise<number | undefined> {
    try {
      const res = await this.client.request(`/v2/${this.path}/blobs/${digest}`, { method: 'HEAD', scope: this.scope, what: blobWhat(this.repository, digest) })
      discardResponse(res)
      const size = Number(res.headers.get('content-length') ?? NaN)
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new StrataError('CORRUPT', `Registry ${this.client.domain} answered HEAD for ${blobWhat(this.repository, digest)} without a Content-Length`)
      }
      return size
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND') && (err.details as { status?: unknown }).status === 404) return undefined
      throw err
    }
  }

  /** Opens an upload session (POST), returning its URL. */
  async startUpload(what: string): Promise<string> {
    const path = `/v2/${this.path}/blobs/uploads/`
    const res = await this.client.request(path, { method: 'POST', scope: this.scope, what })
    discardResponse(res)
    return locationOf(res, `${this.client.baseUrl}${path}`, what)
  }

  /** Cancels an upload session, best effort (the registry purges abandoned ones anyway). */
  async cancelUpload(url: string, what: string): Promise<void> {
    try {
      const res = await this.client.request(url, { method: 'DELETE', scope: this.scope, what: `cancellation of the ${what}` })
      discardResponse(res)
    } catch {
      // best effort
    }
  }

  /** Closes an upload with PUT ?digest= (and the last bytes, if any). */
  async finishUpload(url: string, digest: Digest, what: string, body?: Buffer): Promise<void> {
    const res = await this.client.request(withQuery(url, 'digest', digest), {
      method: 'PUT',
      scope: this.scope,
      what,
      ...(body === undefined ? {} : { body, contentType: 'application/octet-stream' }),
    })
    discardResponse(res)
    const answered = res.headers.get('docker-content-digest')
    if (answered !== null && answered !== digest) {
      throw new StrataError('DIGEST_MISMATCH', `Registry ${this.client.domain} stored the ${what} as ${answered}, not as ${digest}`)
    }
  }

  /** Uploads a small blob in one PUT (the config). */
  async putBlob(bytes: Buffer, what: string): Promise<Digest> {
    const digest = sha256Of(bytes)
    if ((await this.stat(digest)) !== undefined) return digest
    const url = await this.startUpload(what)
    try {
      await this.finishUpload(url, digest, what, bytes)
    } catch (err) {
      await this.cancelUpload(url, what)
      throw err
    }
    return digest
  }

  /**
   * Mounts `digest` from repository `from` (a path on this registry).
   * True when mounted (201); false when the registry opened an upload
   * instead (202), which is cancelled.
   */
  async mount(digest: Digest, from: string): Promise<boolean> {
    const what = `mount of blob ${digest} from ${from} into ${this.repository}`
    const path = `/v2/${this.path}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`
    let res: RegistryResponse
    try {
      res = await this.client.request(path, { method: 'POST', scope: `${this.scope} repository:${from}:pull`, what })
    } catch (err) {
      // No pull access to the other repository, or it is gone: upload instead, as dockerd does.
      if (isStrataError(err, 'NOT_FOUND')) return false
      throw err
    }
    discardResponse(res)
    if (res.status === 201) return true
    if (res.headers.get('location') !== null) await this.cancelUpload(locationOf(res, `${this.client.baseUrl}${path}`, what), what)
    return false
  }

  /**
   * Streams `layer` (the uncompressed tar) gzip'd to a new upload: one
   * chunked PATCH while hashing, then PUT ?digest=. Resolves with the
   * blob's digest and size.
   */
  /** `onBytes(sent, read)`: gzip bytes sent and layer tar bytes compressed so far. */
  async uploadLayer(open: () => Promise<Readable>, diffId: Digest, onBytes?: (sent: number, read: number) => void): Promise<{ digest: Digest; size: number }> {
    const what = `upload of layer ${diffId} to ${this.repository}`
    const url = await this.startUpload(what)
    let layer: Readable
    try {
      layer = await open()
    } catch (err) {
      await this.cancelUpload(url, what)
      throw err
    }
    const gzip = createGzip()
    // Read: what gzip has consumed (not what sits in the buffers before it), so the count follows what goes out.
    const hasher = new CountingHasher(onBytes === undefined ? undefined : (n) => onBytes(n, gzip.bytesWritten))
    // Errors of the layer itself (a damaged layer, DIGEST_MISMATCH) win over the request's own error.
    let sourceError: unknown
    const piped = pipeline(layer, gzip, hasher).catch((err: unknown) => {
      sourceError = err
    })
    try {
      let res: RegistryResponse
      try {
        res = await this.client.request(url, { method: 'PATCH', scope: this.scope, what, body: hasher, contentType: 'application/octet-stream' })
      } catch (err) {
        // A failing layer errors the body first, so its error is already here; a later one is only the destroy below.
        const own = sourceError
        hasher.destroy()
        await piped
        throw own ?? err
      }
      discardResponse(res)
      await piped
      if (sourceError !== undefined) throw sourceError
      const next = locationOf(res, url, what)
      const digest = hasher.digester.digest()
      const size = hasher.digester.size
      await this.finishUpload(next, digest, what)
      return { digest, size }
    } catch (err) {
      layer.destroy()
      await this.cancelUpload(url, what)
      throw err
    }
  }
}


/** Runs `fn` on every item, at most `limit` at a time; the first failure rejects (after the running ones settle). */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0
  let failed = false
  let firstError: unknown
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const i = next++
      try {
        await fn(items[i]!, i)
      } catch (err) {
        if (!failed) firstError = err
        failed = true
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  if (failed) throw firstError
}

/** The registry path (`test/img`) of a full repository name on registry `domain`, or undefined when it is on another one. */
function pathOnRegistry(repository: string, domain: string): string | undefined {
  return repository.startsWith(`${domain}/`) ? repository.slice(domain.length + 1) : undefined
}

/** docker's schema2 manifest bytes (MarshalIndent with three spaces, fields in Go's order). */
function schema2Manifest(config: { size: number; digest: Digest }, layers: readonly PushedLayer[]): Buffer {
  const doc = {
    schemaVersion: 2,
    mediaType: MediaTypes.dockerManifest,
    config: { mediaType: MediaTypes.dockerConfig, size: config.size, digest: config.digest },
    layers: layers.map((l) => ({ mediaType: MediaTypes.dockerLayer, size: l.size, digest: l.digest })),
  }
  return Buffer.from(JSON.stringify(doc, null, 3))
}

/**
 * Pushes the image `name` (`127.0.0.1:5000/test/img:1`; tag default
 * `latest`) names in `store` to its registry.
 * @example
 * const r = await pushImage(store, '127.0.0.1:5000/test/img:1')
 * console.log(r.digest, r.layers.map((l) => l.status))
 */
export async function pushImage(store: Store, name: string, opts: PushOptions = {}): Promise<PushResult> {
  const parsed = parseReference(name)
  if (parsed.digest !== undefined) {
    throw new StrataError('INVALID_ARGUMENT', `Cannot push ${name}: a push names a tag, not a digest (the registry computes the digest)`)
  }
  const ref = withDefaultTag(parsed)
  const tag = ref.tag!
  let id: ImageID
  try {
    id = await store.findImage(referenceString(ref))
  } catch (err) {
    // dockerd 20.10's words.
    if (isStrataError(err, 'NOT_FOUND')) throw new StrataError('NOT_FOUND', `An image does not exist locally with the tag: ${familiarName(ref)}`, { cause: err })
    throw err
  }
  const image = await store.images.get(id)
  const diffIds = image.config.rootfs.diff_ids.map((d) => parseDigest(d))
  const chains = chainIds(diffIds)
  const auth = opts.credentials !== undefined ? { credentials: opts.credentials } : await readRegistryAuth(ref.domain, ...(opts.dockerConfig === undefined ? [] : [opts.dockerConfig]))
  const client = new RegistryClient(ref.domain, { auth, ...(opts.insecure === undefined ? {} : { insecure: opts.insecure }) })
  const pusher = new Pusher(client, ref)
  opts.onResolved?.({ id, repository: pusher.repository, tag, diffIds })

  // Hold the top layer (and so the chain under it) while its layers are read.
  const handle = chains.length === 0 ? undefined : await store.layers.get(chains[chains.length - 1]!)
  const results: PushedLayer[] = new Array<PushedLayer>(diffIds.length)
  const warnings: string[] = []
  try {
    // The same diffID twice in an image is pushed once.
    const once = new Map<Digest, Promise<PushedLayer>>()
    const recorded = new Set<Digest>()
    await eachLimited(diffIds, opts.concurrency ?? PUSH_CONCURRENCY, async (diffId, i) => {
      opts.onProgress?.({ layer: i, diffId, phase: 'preparing' })
      let p = once.get(diffId)
      if (p === undefined) {
        p = pushLayer(store, pusher, diffId, chains[i]!, (n, read, total) => opts.onProgress?.({ layer: i, diffId, phase: 'uploaded', bytes: n, read, total }), () =>
          opts.onProgress?.({ layer: i, diffId, phase: 'pushing' }),
        )
        once.set(diffId, p)
      }
      const result = await p
      results[i] = result
      // Recorded at once (as dockerd does), so a push that fails later only checks this layer next time.
      if (once.get(diffId) === p && !recorded.has(diffId)) {
        recorded.add(diffId)
        try {
          await store.distribution.addMapping(result.digest, diffId, pusher.repository)
        } catch (err) {
          warnings.push(`Cannot record distribution metadata of layer ${diffId}: ${(err as Error).message}`)
        }
      }
      opts.onProgress?.({ layer: i, diffId, phase: 'done', result })
    })

    const configDigest = sha256Of(image.raw)
    if (configDigest !== id) {
      throw new StrataError('CORRUPT', `Image ${id}'s config hashes to ${configDigest}; the image store is damaged (run \`strata check\`)`)
    }
    await pusher.putBlob(image.raw, `config blob ${configDigest} of image ${id}`)
    const manifest = schema2Manifest({ size: image.raw.length, digest: configDigest }, results)
    const digest = sha256Of(manifest)
    const what = `manifest ${tag} of ${pusher.repository}`
    const res = await client.request(`/v2/${pusher.path}/manifests/${encodeURIComponent(tag)}`, {
      method: 'PUT',
      scope: pusher.scope,
      what,
      body: manifest,
      contentType: MediaTypes.dockerManifest,
    })
    await readResponse(res, 64 * 1024, `answer to the ${what}`).catch(() => Buffer.alloc(0))
    const answered = res.headers.get('docker-content-digest')
    if (answered !== null && answered !== digest) {
      throw new StrataError('DIGEST_MISMATCH', `Registry ${client.domain} stored the ${what} as ${answered}, not as ${digest}, the sha256 of the bytes sent`)
    }

    const repoDigest = `${pusher.repository}@${digest}`
    try {
      const existing = await store.references.get(repoDigest)
      if (existing === undefined) await store.references.addDigest(repoDigest, id)
      else if (existing !== id) warnings.push(`${repoDigest} already points to image ${existing}, not to ${id}: left as it is`)
    } catch (err) {
      warnings.push(`Cannot record ${repoDigest}: ${(err as Error).message}`)
    }
    return { id, reference: referenceString(ref), repository: pusher.repository, tag, digest, size: manifest.length, manifest, repoDigest, configDigest, layers: results, warnings }
  } finally {
    await handle?.release().catch(() => {})
  }
}

/** One layer: present already (HEAD), mounted from another repository, or uploaded. */
async function pushLayer(store: Store, pusher: Pusher, diffId: Digest, chain: Digest, onBytes: (n: number, read: number, total: number) => void, onPushing: () => void): Promise<PushedLayer> {
  const domain = pusher.client.domain
  // Newest first, as dockerd tries them.
  const known = (await store.distribution.v2MetadataFor(diffId)).reverse()
  const here = known.filter((m) => m.SourceRepository === pusher.repository).slice(0, MAX_EXISTENCE_CHECKS)
  for (const m of here) {
    const size = await pusher.stat(m.Digest)
    if (size !== undefined) return { diffId, digest: m.Digest, size, status: 'exists' }
  }
  const tried = new Set<string>()
  for (const m of known) {
    const from = pathOnRegistry(m.SourceRepository, domain)
    if (from === undefined || from === pusher.path || tried.has(`${m.Digest} ${from}`)) continue
    if (tried.size >= MAX_MOUNT_ATTEMPTS) break
    tried.add(`${m.Digest} ${from}`)
    if (await pusher.mount(m.Digest, from)) {
      const size = await pusher.stat(m.Digest)
      if (size === undefined) {
        throw new StrataError('CORRUPT', `Registry ${domain} mounted blob ${m.Digest} from ${from} into ${pusher.repository} but does not have it there`)
      }
      return { diffId, digest: m.Digest, size, status: 'mounted', from }
    }
  }
  onPushing()
  const total = (await store.layers.info(chain)).size
  const { digest, size } = await pusher.uploadLayer(() => openVerifiedLayer(store, chain, diffId), diffId, (n, read) => onBytes(n, read, total))
  return { diffId, digest, size, status: 'pushed' }
}
