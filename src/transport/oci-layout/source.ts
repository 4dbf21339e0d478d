/**
 * Reading an OCI image layout: a directory (`oci-layout`) or the same
 * layout in a tar file (`oci-archive`, indexed in place). The `oci-layout`
 * file must say version 1.x; index.json lists the images. A descriptor in
 * it may point to a manifest, or to an index (a multi-platform image, or
 * nested indexes), which is followed down to the manifest for this
 * machine's platform (linux/<arch>); top-level entries for another
 * platform are passed over.
 *
 * Everything is checked before it is offered: every manifest and config
 * blob against its descriptor's size and digest (they are small, so read
 * whole), every layer blob for presence and size; layer blobs are verified
 * against their digest while they stream (open()), except when the digest
 * is the diffID itself (an uncompressed layer), which the layer store
 * verifies anyway. Several index entries may name the same manifest (one
 * per tag); they make one image with several names.
 *
 * Names: docker 25+ and containerd write the full name in
 * `io.containerd.image.name` and only the tag in `ref.name`; podman and
 * skopeo write the full name in `ref.name`. Both are offered (full name
 * first); loadImages skips a ref.name that is a bare tag.
 */
import type { Readable } from 'node:stream'
import type { Digest } from '../../digest/index.js'
import { StrataError } from '../../errors/index.js'
import { MAX_JSON_BYTES, parseJsonDocument, verifyingStream } from '../blob-stream.js'
import { readArchiveFile, type ArchiveFiles } from '../files.js'
import { formatPlatform, hostPlatform, platformMatches, type Platform } from '../platform.js'
import { checkSourceConfig } from '../source-config.js'
import { CONTAINERD_IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION, type ImageSource, type SourceImage, type SourceLayer, type TransportFormat } from '../types.js'
import {
  CONFIG_MEDIA_TYPES,
  INDEX_FILE,
  INDEX_MEDIA_TYPES,
  LAYER_MEDIA_TYPES,
  LAYOUT_FILE,
  MANIFEST_MEDIA_TYPES,
  blobPath,
  checkLayoutFile,
  documentKind,
  parseIndex,
  parseManifest,
  type Descriptor,
} from './documents.js'

/** How deep indexes may nest before the layout is taken as broken. */
const MAX_INDEX_DEPTH = 8

export interface OciLayoutSourceOptions {
  /** The platform to pick from multi-platform indexes; default this machine's. */
  platform?: Platform
}

/** The names an index entry gives its image, full name first. */
function namesOf(d: Descriptor): string[] {
  const out: string[] = []
  for (const key of [CONTAINERD_IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION]) {
    const v = d.annotations?.[key]
    if (v !== undefined && v !== '' && !out.includes(v)) out.push(v)
  }
  return out
}

export class OciLayoutSource implements ImageSource {
  readonly format: TransportFormat
  readonly #files: ArchiveFiles
  readonly #platform: Platform
  #images: Promise<SourceImage[]> | undefined
  #closed = false

  /** Reads through `files` (owned from now on); `format` is what it reports ('oci-layout' or 'oci-archive'). */
  constructor(files: ArchiveFiles, format: 'oci-layout' | 'oci-archive', opts: OciLayoutSourceOptions = {}) {
    this.#files = files
    this.format = format
    this.#platform = opts.platform ?? hostPlatform()
  }

  images(): Promise<SourceImage[]> {
    this.#images ??= this.#read()
    return this.#images
  }

  get #where(): string {
    return this.#files.description
  }

  async #readBlob(d: Descriptor, what: string): Promise<Buffer> {
    const name = blobPath(d.digest)
    const file = await this.#files.stat(name, what)
    if (file === undefined) throw new StrataError('CORRUPT', `${what} ${d.digest} is not in the ${this.#where} (no ${name})`, { details: { digest: d.digest } })
    if (file.size !== d.size) throw new StrataError('CORRUPT', `${what} ${d.digest} in the ${this.#where} is ${file.size} bytes, not the ${d.size} its descriptor says`, { details: { digest: d.digest } })
    if (d.size > MAX_JSON_BYTES) throw new StrataError('CORRUPT', `${what} ${d.digest} is ${d.size} bytes, over the ${MAX_JSON_BYTES}-byte limit for a JSON document`)
    const stream = verifyingStream(await this.#files.open(name, what), { digest: d.digest, size: d.size, what: `${what} ${d.digest} in the ${this.#where}` })
    const chunks: Buffer[] = []
    for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c)
    return Buffer.concat(chunks)
  }

  async #read(): Promise<SourceImage[]> {
    const where = this.#where
    if ((await this.#files.stat(LAYOUT_FILE, 'OCI layout file')) === undefined) {
      throw new StrataError('CORRUPT', `The ${where} is not an OCI image layout: it has no "${LAYOUT_FILE}" file`)
    }
    const layoutBytes = await readArchiveFile(this.#files, LAYOUT_FILE, 'OCI layout file', MAX_JSON_BYTES)
    checkLayoutFile(parseJsonDocument(layoutBytes, `"${LAYOUT_FILE}" in the ${where}`), where)
    const indexWhere = `${INDEX_FILE} in the ${where}`
    const index = parseIndex(parseJsonDocument(await readArchiveFile(this.#files, INDEX_FILE, 'OCI index', MAX_JSON_BYTES), indexWhere), indexWhere)

    const images: SourceImage[] = []
    const byManifest = new Map<Digest, SourceImage>()
    const otherPlatforms: string[] = []
    for (const entry of index.manifests) {
      if (entry.platform !== undefined && !platformMatches(entry.platform, this.#platform)) {
        otherPlatforms.push(formatPlatform(entry.platform))
        continue
      }
      const manifestDesc = await this.#resolveManifest(entry, 0, otherPlatforms)
      if (manifestDesc === undefined) continue
      const names = namesOf(entry)
      const known = byManifest.get(manifestDesc.digest)
      if (known !== undefined) {
        for (const n of names) if (!known.names.includes(n)) known.names.push(n)
        continue
      }
      const image = await this.#image(manifestDesc, names)
      byManifest.set(manifestDesc.digest, image)
      images.push(image)
    }
    if (images.length === 0) {
      if (otherPlatforms.length > 0) {
        throw new StrataError('NOT_FOUND', `The ${where} has no image for ${formatPlatform(this.#platform)} (it has ${[...new Set(otherPlatforms)].join(', ')})`)
      }
      throw new StrataError('CORRUPT', `The ${where} lists no images in ${INDEX_FILE}`)
    }
    return images
  }

  /** The manifest descriptor `d` leads to: itself, or through indexes the one for our platform; undefined for something that is no image. */
  async #resolveManifest(d: Descriptor, depth: number, otherPlatforms: string[]): Promise<Descriptor | undefined> {
    if (MANIFEST_MEDIA_TYPES.has(d.mediaType)) return d
    if (depth > MAX_INDEX_DEPTH) throw new StrataError('CORRUPT', `The ${this.#where} nests image indexes more than ${MAX_INDEX_DEPTH} deep`)
    let kind: 'index' | 'manifest' | undefined = INDEX_MEDIA_TYPES.has(d.mediaType) ? 'index' : undefined
    let doc: unknown
    if (kind === undefined) {
      // No or an unknown media type: what the blob holds decides (artifacts are passed over).
      if (d.mediaType !== '' && !d.mediaType.endsWith('+json')) return undefined
      doc = parseJsonDocument(await this.#readBlob(d, 'Blob'), `Blob ${d.digest}`)
      kind = documentKind(doc)
      if (kind === 'manifest') return d
      if (kind === undefined) return undefined
    }
    const where = `Image index ${d.digest} in the ${this.#where}`
    doc ??= parseJsonDocument(await this.#readBlob(d, 'Image index'), where)
    const index = parseIndex(doc, where)
    const candidates = index.manifests.filter((m) => {
      if (m.platform === undefined) return true
      if (platformMatches(m.platform, this.#platform)) return true
      otherPlatforms.push(formatPlatform(m.platform))
      return false
    })
    // Entries for our platform before entries that name none (sort is stable: index order within each).
    for (const m of candidates.sort((a, b) => Number(b.platform !== undefined) - Number(a.platform !== undefined))) {
      const found = await this.#resolveManifest(m, depth + 1, otherPlatforms)
      if (found !== undefined) return found
    }
    return undefined
  }

  async #image(manifestDesc: Descriptor, names: string[]): Promise<SourceImage> {
    const where = `Image manifest ${manifestDesc.digest} in the ${this.#where}`
    const manifest = parseManifest(parseJsonDocument(await this.#readBlob(manifestDesc, 'Image manifest'), where), where)
    const configDesc = manifest.config
    if (!CONFIG_MEDIA_TYPES.has(configDesc.mediaType)) {
      throw new StrataError('NOT_SUPPORTED', `${where} is not a container image: its config has media type "${configDesc.mediaType}"`)
    }
    const configBytes = await this.#readBlob(configDesc, 'Image config')
    const { id, config } = checkSourceConfig(configBytes, `${configDesc.digest} in the ${this.#where}`, configDesc.digest, manifest.layers.length)
    const layers: SourceLayer[] = []
    for (const [j, d] of manifest.layers.entries()) {
      const what = `Layer blob ${d.digest}`
      if (!LAYER_MEDIA_TYPES.has(d.mediaType)) {
        throw new StrataError('NOT_SUPPORTED', `Layer ${j + 1} of ${where} has media type "${d.mediaType}", which is not a layer tar strata can apply`)
      }
      const name = blobPath(d.digest)
      const file = await this.#files.stat(name, what)
      if (file === undefined) {
        if (d.urls !== undefined && d.urls.length > 0) {
          throw new StrataError('NOT_SUPPORTED', `Layer ${j + 1} of ${where} is a foreign layer (${d.digest}) the layout does not hold; strata does not download foreign layers`)
        }
        throw new StrataError('CORRUPT', `${what} (layer ${j + 1} of ${where}) is not in the ${this.#where}`, { details: { digest: d.digest } })
      }
      if (file.size !== d.size) {
        throw new StrataError('CORRUPT', `${what} in the ${this.#where} is ${file.size} bytes, not the ${d.size} its descriptor says`, { details: { digest: d.digest } })
      }
      const diffId = config.rootfs.diff_ids[j]!
      const files = this.#files
      const whereLabel = this.#where
      layers.push({
        diffId,
        digest: d.digest,
        size: d.size,
        mediaType: d.mediaType,
        // An uncompressed blob's digest is its diffID, which the layer store checks: hashing it here too would only cost time.
        open: async (): Promise<Readable> =>
          verifyingStream(await files.open(name, what), {
            ...(d.digest === diffId ? {} : { digest: d.digest }),
            size: d.size,
            what: `${what} in the ${whereLabel}`,
          }),
      })
    }
    return { id, configBytes, layers, names: [...names], manifestDigest: manifestDesc.digest }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#files.close()
  }
}
