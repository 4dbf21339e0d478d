/**
 * An image in a registry, resolved and checked before anything is stored:
 * the manifest (a list or an OCI index resolved to one platform's
 * manifest), the manifest digest (checked against `name@sha256:...` when
 * the reference has one, else against the registry's
 * Docker-Content-Digest), the config blob (verified against its digest,
 * which is the image ID) and one SourceLayer per manifest layer whose
 * open() streams the blob from the registry through a digest and size
 * check. That makes it an ImageSource, so `loadImages` stores it: layers
 * registered through the layer store's registerChain (several downloads
 * and applies at once, layers present by diffID never fetched) and all or
 * nothing.
 */
import { Readable } from 'node:stream'
import { sha256Of, type Digest } from '../../digest/index.js'
import { StrataError } from '../../errors/index.js'
import { parseImageConfig, referenceName, referenceString, type ImageID, type Reference } from '../../image/index.js'
import { MAX_JSON_BYTES, parseJsonDocument, verifyingStream } from '../blob-stream.js'
import {
  INDEX_MEDIA_TYPES,
  LAYER_MEDIA_TYPES,
  documentKind,
  parseIndex,
  parseManifest,
  type Descriptor,
  type ImageManifest,
} from '../oci-layout/documents.js'
import { formatPlatform, hostPlatform, platformMatches, type Platform } from '../platform.js'
import { MediaTypes, type ImageSource, type SourceImage, type SourceLayer } from '../types.js'
import { MAX_MANIFEST_BYTES, RegistryClient, readResponse, responseStream } from './client.js'

/** What a manifest GET accepts, in docker's order of preference. */
export const MANIFEST_ACCEPT: readonly string[] = [MediaTypes.dockerManifest, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.ociIndex]

const SCHEMA1_TYPES = new Set([
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/json',
])

/** The manifest document as the registry served it. */
export interface FetchedManifest {
  bytes: Buffer
  /** sha256 of bytes: what `name@digest` names. */
  digest: Digest
  mediaType: string
}

/** An image resolved in a registry, ready to be stored. */
export interface ResolvedImage {
  /** The reference as asked for (tag or digest). */
  reference: Reference
  /** The digest of the image's own manifest (the RepoDigest): the platform manifest when the reference named a list. */
  manifestDigest: Digest
  /** The digest of the list/index the reference named, when it named one. */
  indexDigest?: Digest
  /** The manifest's platform entry in the index, when there was one. */
  platform?: Platform
  manifest: ImageManifest
  manifestBytes: Buffer
  id: ImageID
  configBytes: Buffer
}

export interface ResolveOptions {
  /** The platform to pick from a manifest list or index; default this machine's. */
  platform?: Platform
}

function repoScope(ref: Reference): string {
  return `repository:${ref.path}:pull`
}

/** GETs a manifest by tag or digest; checks its digest when `expected` is given. */
export async function fetchManifest(client: RegistryClient, ref: Reference, tagOrDigest: string, expected?: Digest): Promise<FetchedManifest> {
  const what = `manifest ${tagOrDigest} of ${referenceName(ref)}`
  const res = await client.request(`/v2/${ref.path}/manifests/${tagOrDigest}`, { accept: MANIFEST_ACCEPT, scope: repoScope(ref), what })
  const bytes = await readResponse(res, MAX_MANIFEST_BYTES, what)
  const digest = sha256Of(bytes)
  if (expected !== undefined && digest !== expected) {
    throw new StrataError('DIGEST_MISMATCH', `The ${what} served by ${client.domain} hashes to ${digest}, not to the digest asked for`, {
      details: { expected, actual: digest },
    })
  }
  const header = res.headers.get('docker-content-digest')
  if (expected === undefined && header !== null && header.startsWith('sha256:') && header !== digest) {
    throw new StrataError('DIGEST_MISMATCH', `The ${what} served by ${client.domain} hashes to ${digest}, not to the ${header} its Docker-Content-Digest header says`, {
      details: { expected: header, actual: digest },
    })
  }
  const contentType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim()
  return { bytes, digest, mediaType: contentType }
}

/** Picks `wanted`'s manifest out of an index; NOT_FOUND with docker's wording when it has none. */
export function pickPlatform(manifests: readonly Descriptor[], wanted: Platform, where: string): Descriptor {
  const candidates = manifests.filter((d) => d.platform !== undefined && platformMatches(d.platform, wanted))
  // An exact variant match wins over an entry that leaves the variant out.
  const exact = candidates.find((d) => (d.platform!.variant ?? '') === (wanted.variant ?? ''))
  const chosen = exact ?? candidates[0]
  if (chosen === undefined) {
    const have = manifests.map((d) => (d.platform === undefined ? 'unknown' : formatPlatform(d.platform))).join(', ')
    throw new StrataError('NOT_FOUND', `no matching manifest for ${formatPlatform(wanted)} in the manifest list entries of ${where} (it has: ${have || 'none'})`, {
      details: { platform: formatPlatform(wanted) },
    })
  }
  return chosen
}

/**
 * Resolves `ref` (tag or digest; a reference without either is not
 * accepted here: add the default tag first) to one image and fetches its
 * config. Throws before anything is stored when something does not check.
 */
export async function resolveImage(client: RegistryClient, ref: Reference, opts: ResolveOptions = {}): Promise<ResolvedImage> {
  const tagOrDigest = ref.digest ?? ref.tag
  if (tagOrDigest === undefined) throw new StrataError('INVALID_ARGUMENT', `Reference ${referenceString(ref)} names neither a tag nor a digest`)
  if (ref.digest !== undefined && !ref.digest.startsWith('sha256:')) {
    throw new StrataError('NOT_SUPPORTED', `Reference ${referenceString(ref)} uses a digest algorithm strata does not support (only sha256)`)
  }
  const name = referenceName(ref)
  const wanted = opts.platform ?? hostPlatform()
  let fetched = await fetchManifest(client, ref, tagOrDigest, ref.digest as Digest | undefined)
  const first = parseJsonDocument(fetched.bytes, `manifest ${tagOrDigest} of ${name}`)
  const result: Partial<ResolvedImage> = { reference: ref }
  let doc = first
  if (SCHEMA1_TYPES.has(fetched.mediaType) && (first as { schemaVersion?: unknown }).schemaVersion === 1) {
    throw new StrataError('NOT_SUPPORTED', `${name}:${tagOrDigest} has a docker schema 1 manifest, which strata does not pull (docker 20.10 deprecated it)`)
  }
  const kind = INDEX_MEDIA_TYPES.has(fetched.mediaType) ? 'index' : documentKind(first)
  if (kind === 'index') {
    const index = parseIndex(first, `manifest list ${tagOrDigest} of ${name}`)
    const chosen = pickPlatform(index.manifests, wanted, `${name}:${tagOrDigest}`)
    result.indexDigest = fetched.digest
    if (chosen.platform !== undefined) result.platform = chosen.platform
    fetched = await fetchManifest(client, ref, chosen.digest, chosen.digest)
    if (fetched.bytes.length !== chosen.size) {
      throw new StrataError('CORRUPT', `Manifest ${chosen.digest} of ${name} is ${fetched.bytes.length} bytes, not the ${chosen.size} its list entry says`)
    }
    doc = parseJsonDocument(fetched.bytes, `manifest ${chosen.digest} of ${name}`)
    if (documentKind(doc) !== 'manifest') throw new StrataError('CORRUPT', `Manifest ${chosen.digest} of ${name}, listed for ${formatPlatform(wanted)}, is not an image manifest`)
  } else if (kind !== 'manifest') {
    throw new StrataError('NOT_SUPPORTED', `${name}:${tagOrDigest} is a "${fetched.mediaType || 'unknown'}" document, not an image manifest or manifest list`)
  }
  const where = `manifest ${fetched.digest} of ${name}`
  const manifest = parseManifest(doc, where)
  for (const l of manifest.layers) {
    if (!LAYER_MEDIA_TYPES.has(l.mediaType)) {
      throw new StrataError('NOT_SUPPORTED', `${where} has layer ${l.digest} of media type "${l.mediaType}", which is not a layer strata can apply`)
    }
  }

  // The config: its digest is the image ID.
  const cfgWhat = `config blob ${manifest.config.digest} of ${name}`
  const res = await client.request(`/v2/${ref.path}/blobs/${manifest.config.digest}`, { scope: repoScope(ref), what: cfgWhat })
  const configBytes = await readResponse(res, MAX_JSON_BYTES, cfgWhat)
  const configDigest = sha256Of(configBytes)
  if (configDigest !== manifest.config.digest) {
    throw new StrataError('DIGEST_MISMATCH', `The ${cfgWhat} served by ${client.domain} hashes to ${configDigest}, not to its digest`, {
      details: { expected: manifest.config.digest, actual: configDigest, blob: manifest.config.digest },
    })
  }
  if (configBytes.length !== manifest.config.size) {
    throw new StrataError('CORRUPT', `The ${cfgWhat} is ${configBytes.length} bytes, not the ${manifest.config.size} the manifest says`)
  }
  const { config } = parseImageConfig(configBytes)
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new StrataError('CORRUPT', `${where} lists ${manifest.layers.length} layers but its config has ${config.rootfs.diff_ids.length} diff_ids`)
  }
  return {
    ...(result as Pick<ResolvedImage, 'reference'>),
    ...(result.indexDigest === undefined ? {} : { indexDigest: result.indexDigest }),
    ...(result.platform === undefined ? {} : { platform: result.platform }),
    manifestDigest: fetched.digest,
    manifest,
    manifestBytes: fetched.bytes,
    id: configDigest as ImageID,
    configBytes,
  }
}

/**
 * Opens layer blob `desc` of `ref` as a stream checked while it flows:
 * it ends with DIGEST_MISMATCH (naming the blob) when the bytes do not
 * hash to the digest, with CORRUPT when there are more or fewer than the
 * descriptor's size.
 */
export async function openBlob(client: RegistryClient, ref: Reference, desc: Descriptor): Promise<Readable> {
  const what = `layer blob ${desc.digest} of ${referenceName(ref)}`
  const res = await client.request(`/v2/${ref.path}/blobs/${desc.digest}`, { scope: repoScope(ref), what })
  return verifyingStream(responseStream(res), { digest: desc.digest, size: desc.size, what: `${what} from ${client.domain}` })
}

/**
 * openBlob, but returned at once: the request is sent on the first read,
 * and its failure (an HTTP error, an unreachable registry) is the
 * stream's error. The layer store opens several layers at once and
 * applies each as soon as its stream is there; a stream that exists
 * before the response does keeps open() from taking a round trip.
 */
export function lazyBlob(client: RegistryClient, ref: Reference, desc: Descriptor): Readable {
  return Readable.from(
    (async function* () {
      const stream = await openBlob(client, ref, desc)
      try {
        yield* stream as AsyncIterable<Buffer>
      } finally {
        stream.destroy()
      }
    })(),
    { objectMode: false },
  )
}

/** A resolved registry image as an ImageSource for loadImages. */
export class RegistryImageSource implements ImageSource {
  readonly format = 'registry' as const
  readonly #client: RegistryClient
  readonly #image: ResolvedImage
  readonly #names: string[]

  /** `names`: the references to tag the image with (a tag pull: the tag; a digest pull: none). */
  constructor(client: RegistryClient, image: ResolvedImage, names: string[]) {
    this.#client = client
    this.#image = image
    this.#names = names
  }

  async images(): Promise<SourceImage[]> {
    const image = this.#image
    const { config } = parseImageConfig(image.configBytes)
    const layers: SourceLayer[] = image.manifest.layers.map((desc, i) => ({
      diffId: config.rootfs.diff_ids[i]!,
      digest: desc.digest,
      size: desc.size,
      mediaType: desc.mediaType,
      open: async () => lazyBlob(this.#client, image.reference, desc),
    }))
    return [{ id: image.id, configBytes: image.configBytes, layers, names: [...this.#names], manifestDigest: image.manifestDigest }]
  }

  async close(): Promise<void> {}
}
