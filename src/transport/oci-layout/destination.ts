/**
 * Writing images as an OCI image layout (a directory, `oci-layout`) or the
 * same layout in a tar file (`oci-archive`), as skopeo and podman write it:
 *
 *   blobs/sha256/<hex>   layers, configs (the exact config bytes: the image
 *                        ID is unchanged), manifests
 *   oci-layout           {"imageLayoutVersion":"1.0.0"}
 *   index.json           one manifest descriptor per reference, with the
 *                        full reference in `org.opencontainers.image.ref.name`
 *                        (podman's and skopeo's reading) and in
 *                        `io.containerd.image.name` (containerd's and docker
 *                        25+'s); an image saved by ID gets one entry without
 *                        annotations
 *
 * Layers are uncompressed (`application/vnd.oci.image.layer.v1.tar`, blob
 * digest = diffID) unless gzip or zstd is asked for; a layer shared by
 * several images is written once. Adding to an existing layout keeps its
 * blobs and its index entries, except those whose ref.name is written
 * again (the new image takes the name, as skopeo does).
 */
import { pipeline } from 'node:stream'
import { compressStream, type Compression } from '../../archive/index.js'
import type { Digest } from '../../digest/index.js'
import { StrataError } from '../../errors/index.js'
import { parseImageConfig, parseReference, referenceString } from '../../image/index.js'
import {
  CONTAINERD_IMAGE_NAME_ANNOTATION,
  MediaTypes,
  REF_NAME_ANNOTATION,
  type DestinationImage,
  type DestinationOptions,
  type ImageDestination,
  type ProgressListener,
  type TransportFormat,
} from '../types.js'
import type { Descriptor } from './documents.js'
import { ArchiveLayoutWriter, DirectoryLayoutWriter, type LayoutWriter } from './layout-writer.js'

const LAYER_MEDIA_TYPE: Record<Compression, string> = {
  none: MediaTypes.ociLayer,
  gzip: MediaTypes.ociLayerGzip,
  zstd: MediaTypes.ociLayerZstd,
}

/** Descriptor fields in the order the image spec lists them. */
function descriptorJson(d: Descriptor): Record<string, unknown> {
  const out: Record<string, unknown> = { mediaType: d.mediaType, digest: d.digest, size: d.size }
  if (d.annotations !== undefined) out.annotations = d.annotations
  if (d.platform !== undefined) out.platform = d.platform
  if (d.urls !== undefined) out.urls = d.urls
  return out
}

export class OciLayoutDestination implements ImageDestination {
  readonly format: TransportFormat
  readonly path: string
  readonly #compression: Compression
  #writer: LayoutWriter | undefined
  #opening: Promise<LayoutWriter> | undefined

  /** `format` 'oci-layout' writes a directory at `path`, 'oci-archive' a tar file. */
  constructor(path: string, format: 'oci-layout' | 'oci-archive', opts: DestinationOptions = {}) {
    this.path = path
    this.format = format
    this.#compression = opts.compression ?? 'none'
    if (!(this.#compression in LAYER_MEDIA_TYPE)) throw new StrataError('INVALID_ARGUMENT', `Unknown layer compression "${String(this.#compression)}": expected none, gzip or zstd`)
  }

  async write(images: DestinationImage[], progress?: ProgressListener): Promise<void> {
    if (this.#opening !== undefined) throw new StrataError('INVALID_ARGUMENT', `write() was called twice on the ${this.format} destination "${this.path}"`)
    this.#opening = this.format === 'oci-layout' ? DirectoryLayoutWriter.open(this.path) : ArchiveLayoutWriter.open(this.path)
    const writer = await this.#opening
    this.#writer = writer
    for (const [i, image] of images.entries()) {
      image.layers.forEach((l, j) => progress?.({ image: i, layer: j, diffId: l.diffId, phase: 'waiting', current: 0, ...(l.size === undefined ? {} : { total: l.size }) }))
    }
    const layerDescs = new Map<Digest, Descriptor>()
    const entries: Descriptor[] = []
    for (const [i, image] of images.entries()) {
      const { config } = parseImageConfig(image.configBytes)
      const layers: Descriptor[] = []
      for (const [j, layer] of image.layers.entries()) {
        const event = { image: i, layer: j, diffId: layer.diffId }
        let desc = layerDescs.get(layer.diffId)
        if (desc === undefined && this.#compression === 'none') {
          // An uncompressed layer's blob is named by its diffID: one the layout holds already is kept.
          const size = await writer.blobSize(layer.diffId)
          if (size !== undefined) desc = { mediaType: MediaTypes.ociLayer, digest: layer.diffId, size }
        }
        if (desc !== undefined) {
          progress?.({ ...event, phase: 'exists', current: 0 })
        } else {
          const withTotal = layer.size === undefined ? {} : { total: layer.size }
          progress?.({ ...event, phase: 'copying', current: 0, ...withTotal })
          let source = await layer.open()
          if (this.#compression !== 'none') {
            const compressor = compressStream(this.#compression)
            pipeline(source, compressor, () => {})
            source = compressor
          }
          const blob = await writer.putBlobStream(source, {
            ...(this.#compression === 'none' ? { expected: layer.diffId } : {}),
            onBytes: (n) => progress?.({ ...event, phase: 'copying', current: n, ...withTotal }),
          })
          desc = { mediaType: LAYER_MEDIA_TYPE[this.#compression], digest: blob.digest, size: blob.size }
          progress?.({ ...event, phase: 'done', current: blob.size, total: blob.size })
        }
        layerDescs.set(layer.diffId, desc)
        layers.push(desc)
      }
      const configBlob = await writer.putBlob(image.configBytes)
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: MediaTypes.ociConfig, digest: configBlob.digest, size: configBlob.size },
        layers: layers.map(descriptorJson),
      }
      const manifestBlob = await writer.putBlob(Buffer.from(JSON.stringify(manifest)))
      const base: Descriptor = { mediaType: MediaTypes.ociManifest, digest: manifestBlob.digest, size: manifestBlob.size }
      if (typeof config.os === 'string' && typeof config.architecture === 'string' && config.os !== '' && config.architecture !== '') {
        base.platform = { architecture: config.architecture, os: config.os }
        if (typeof config.variant === 'string' && config.variant !== '') base.platform.variant = config.variant
      }
      const names = [...new Set(image.references.map((r) => referenceString(parseReference(r))))]
      if (names.length === 0) entries.push(base)
      for (const name of names) entries.push({ ...base, annotations: { [CONTAINERD_IMAGE_NAME_ANNOTATION]: name, [REF_NAME_ANNOTATION]: name } })
    }
    const newNames = new Set(entries.map((e) => e.annotations?.[REF_NAME_ANNOTATION]).filter((n) => n !== undefined))
    const kept = (writer.existingIndex?.manifests ?? []).filter((d) => {
      const name = d.annotations?.[REF_NAME_ANNOTATION]
      if (name !== undefined) return !newNames.has(name)
      // An unnamed entry for a manifest written again would only be a duplicate.
      return !entries.some((e) => e.digest === d.digest && e.annotations === undefined)
    })
    const index = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [...kept, ...entries].map(descriptorJson) }
    await writer.finish(Buffer.from(JSON.stringify(index)))
  }

  async commit(): Promise<void> {
    if (this.#writer === undefined) throw new StrataError('INVALID_ARGUMENT', `Nothing was written to the ${this.format} destination "${this.path}"`)
    await this.#writer.commit()
  }

  async abort(): Promise<void> {
    const writer = this.#writer ?? (await this.#opening?.catch(() => undefined))
    await writer?.abort()
  }
}
