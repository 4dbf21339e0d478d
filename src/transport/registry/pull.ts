/**
 * `pull`: an image from a registry into a store, as dockerd's pull does it.
 *
 * 1. The reference is parsed as docker parses it (`busybox` is
 *    `docker.io/library/busybox:latest`); credentials come from docker's
 *    config.json.
 * 2. The manifest is resolved and checked (see source.ts): by digest, the
 *    bytes must hash to it; a list or index is resolved to the platform
 *    asked for (default this machine's).
 * 3. loadImages stores it from a RegistryImageSource: layers present by
 *    diffID are not downloaded; the others are downloaded, verified
 *    against their blob digest while they stream, decompressed and applied
 *    at once, several at a time; all or nothing.
 * 4. The tag (for a tag pull) points at the image, the manifest digest is
 *    recorded as its RepoDigest (`name@sha256:...`), and each layer's blob
 *    digest ↔ diffID goes into the distribution metadata (diffid-by-digest,
 *    v2metadata-by-diffid) with the repository it came from, as dockerd
 *    records them.
 */
import { parseReference, referenceName, referenceString, withDefaultTag, type ImageID, type Reference } from '../../image/index.js'
import type { Store } from '../../store/index.js'
import { loadImages } from '../copy.js'
import { StrataError } from '../../errors/index.js'
import { formatPlatform, platformMatches, type Platform } from '../platform.js'
import type { ProgressListener } from '../types.js'
import { readRegistryAuth, type Credentials } from './auth.js'
import { RegistryClient } from './client.js'
import { RegistryImageSource, resolveImage, type ResolvedImage } from './source.js'

export interface PullOptions {
  /** The platform to pick from a manifest list or index; default this machine's (linux/amd64 here). */
  platform?: Platform
  /** Plain HTTP even for a registry not on loopback (docker's --insecure-registry). */
  insecure?: boolean
  /** docker's client config to read credentials from; default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
  dockerConfig?: string
  /** Credentials to use instead of the config's (the Engine API's X-Registry-Auth); the config is not read then. */
  credentials?: Credentials
  /** Called once the manifest is resolved, before any layer is fetched (the CLI's "Pulling from" line). */
  onResolved?: (image: ResolvedImage) => void
  /** Per-layer progress (layer i of the manifest): waiting, copying (compressed bytes), done, exists. */
  onProgress?: ProgressListener
}

export interface PullResult {
  id: ImageID
  /** The reference pulled, full form, with the default tag added when it had neither tag nor digest. */
  reference: string
  /**
   * What the reference resolved to, and the image's RepoDigest is
   * `<name>@<digest>`: the manifest list / index digest when it named one
   * (as dockerd 20.10 records and prints it), else the manifest's.
   */
  digest: string
  /** The digest of the image's own (platform) manifest. */
  manifestDigest: string
  /** Full reference of the RepoDigest recorded (`127.0.0.1:5000/test/img@sha256:...`). */
  repoDigest: string
  /** Layers downloaded, and layers found in the store already (by diffID). */
  layersCreated: number
  layersExisting: number
  /** The compressed blob digests of the layers, bottom first (what docker shows short per layer). */
  layerDigests: string[]
  /** What went half right (a RepoDigest that could not be recorded), one line each. */
  warnings: string[]
  /** false when the tag already pointed to this image and no layer was downloaded ("Image is up to date"). */
  updated: boolean
}

/** An image resolved in its registry, not stored yet: what preparePull gives and pullImage takes. */
export interface PreparedPull {
  /** The reference, with the default tag added when it had neither tag nor digest. */
  readonly ref: Reference
  readonly client: RegistryClient
  readonly resolved: ResolvedImage
}

/**
 * The part of a pull that needs no store: credentials, the manifest
 * resolved (to the platform), the config fetched and checked; calls
 * opts.onResolved. The CLI runs it while the store opens (the two take
 * ~0.1 s each on a cold start and do not depend on each other), then
 * hands the result to pullImage.
 */
export async function preparePull(name: string, opts: Omit<PullOptions, 'onProgress'> = {}): Promise<PreparedPull> {
  const parsed = parseReference(name)
  const ref: Reference = parsed.digest === undefined ? withDefaultTag(parsed) : parsed
  const auth = opts.credentials !== undefined ? { credentials: opts.credentials } : await readRegistryAuth(ref.domain, ...(opts.dockerConfig === undefined ? [] : [opts.dockerConfig]))
  const client = new RegistryClient(ref.domain, { auth, ...(opts.insecure === undefined ? {} : { insecure: opts.insecure }) })
  const resolved = await resolveImage(client, ref, opts.platform === undefined ? {} : { platform: opts.platform })
  if (opts.platform !== undefined && resolved.indexDigest === undefined) {
    // dockerd 20.10: a single-platform image pulled with --platform must be of that platform.
    const doc = JSON.parse(resolved.configBytes.toString('utf8')) as { os?: unknown; architecture?: unknown; variant?: unknown }
    const actual: Platform = { os: String(doc.os ?? ''), architecture: String(doc.architecture ?? '') }
    if (typeof doc.variant === 'string' && doc.variant !== '') actual.variant = doc.variant
    if (!platformMatches(actual, opts.platform)) {
      throw new StrataError('NOT_FOUND', `image with reference ${referenceString(ref)} was found but does not match the specified platform: wanted ${formatPlatform(opts.platform)}, actual: ${formatPlatform(actual)}`)
    }
  }
  opts.onResolved?.(resolved)
  return { ref, client, resolved }
}

/**
 * Pulls `name` (`busybox`, `127.0.0.1:5000/a/b:1`, `a/b@sha256:...`)
 * into `store`; or stores what preparePull resolved.
 * @example
 * const r = await pullImage(store, '127.0.0.1:5000/test/img:1')
 * console.log(r.id, r.repoDigest)
 */
export async function pullImage(store: Store, name: string | PreparedPull, opts: PullOptions = {}): Promise<PullResult> {
  const { ref, client, resolved } = typeof name === 'string' ? await preparePull(name, opts) : name

  // A digest pull tags nothing (docker records only the digest reference).
  const tagRef: Reference | undefined = ref.tag !== undefined && ref.digest === undefined ? ref : undefined
  const previous = tagRef === undefined ? undefined : await store.references.get(tagRef)
  const source = new RegistryImageSource(client, resolved, tagRef === undefined ? [] : [referenceString(tagRef)])
  let loaded
  try {
    loaded = await loadImages(store, source, opts.onProgress === undefined ? {} : { onProgress: opts.onProgress })
  } catch (err) {
    // loadImages is all or nothing: say so, a pull that died mid-way leaves no layer behind.
    if (err instanceof StrataError) throw new StrataError(err.code, `${err.message}; nothing of the pull was kept`, { cause: err, details: err.details, ...(err.hint === undefined ? {} : { hint: err.hint }) })
    throw err
  } finally {
    await source.close()
  }
  const image = loaded.images[0]!
  const repo = referenceName(ref)
  // As dockerd 20.10 does: the digest the reference resolved to, the list's when it named a list.
  const digest = resolved.indexDigest ?? resolved.manifestDigest
  const repoDigest = `${repo}@${digest}`
  // As dockerd's addDigestReference: a digest reference already pointing to another image is
  // left as it is (the reference store never moves a digest); that is reported, not fatal.
  const warnings: string[] = []
  const existing = await store.references.get(repoDigest)
  if (existing === undefined) await store.references.addDigest(repoDigest, image.id)
  else if (existing !== image.id) warnings.push(`${repoDigest} already points to image ${existing}, not to ${image.id}: left as it is`)
  const { config } = await store.images.get(image.id)
  const diffIds = config.rootfs.diff_ids
  for (const [i, desc] of resolved.manifest.layers.entries()) {
    await store.distribution.addMapping(desc.digest, diffIds[i]!, repo)
  }
  return {
    id: image.id,
    reference: referenceString(ref),
    digest,
    manifestDigest: resolved.manifestDigest,
    repoDigest,
    layersCreated: image.layersCreated,
    layersExisting: image.layersExisting,
    layerDigests: resolved.manifest.layers.map((l) => l.digest),
    updated: !(previous === image.id && image.layersCreated === 0),
    warnings,
  }
}
