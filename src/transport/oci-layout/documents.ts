/**
 * The JSON documents of an OCI image layout (image-spec v1: image-layout.md,
 * image-index.md, manifest.md, descriptor.md), parsed and validated as far
 * as strata relies on them. Docker's schema-2 manifest and manifest list
 * have the same shape and are accepted where the OCI ones are.
 *
 *   oci-layout     {"imageLayoutVersion":"1.0.0"}
 *   index.json     {"schemaVersion":2,"mediaType":"...index...","manifests":[descriptor...]}
 *   manifest       {"schemaVersion":2,"mediaType":"...manifest...","config":descriptor,"layers":[descriptor...]}
 *   descriptor     {"mediaType","digest","size","annotations"?,"platform"?,"urls"?}
 *   blobs          blobs/<algorithm>/<hex>
 */
import { isDigest, type Digest } from '../../digest/index.js'
import { StrataError } from '../../errors/index.js'
import type { Platform } from '../platform.js'
import { MediaTypes } from '../types.js'

export const LAYOUT_FILE = 'oci-layout'
export const INDEX_FILE = 'index.json'
export const LAYOUT_VERSION = '1.0.0'

export interface Descriptor {
  mediaType: string
  digest: Digest
  size: number
  annotations?: Record<string, string>
  platform?: Platform
  urls?: string[]
}

export interface ImageIndex {
  schemaVersion: 2
  mediaType?: string
  manifests: Descriptor[]
  annotations?: Record<string, string>
}

export interface ImageManifest {
  schemaVersion: 2
  mediaType?: string
  config: Descriptor
  layers: Descriptor[]
  annotations?: Record<string, string>
}

/** Media types of a layer strata can apply: a tar, plain, gzip'd or zstd'd. */
export const LAYER_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MediaTypes.ociLayer,
  MediaTypes.ociLayerGzip,
  MediaTypes.ociLayerZstd,
  MediaTypes.ociLayerNondistributable,
  MediaTypes.ociLayerNondistributableGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  MediaTypes.dockerLayer,
  MediaTypes.dockerLayerTar,
  MediaTypes.dockerForeignLayer,
])

export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociIndex, MediaTypes.dockerManifestList])
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociManifest, MediaTypes.dockerManifest])
export const CONFIG_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociConfig, MediaTypes.dockerConfig])

/** `blobs/sha256/<hex>` */
export function blobPath(digest: Digest): string {
  return `blobs/sha256/${digest.slice('sha256:'.length)}`
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function corrupt(where: string, why: string): StrataError {
  return new StrataError('CORRUPT', `${where} is invalid: ${why}`)
}

function stringMap(v: unknown, where: string, field: string): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined
  if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string')) throw corrupt(where, `"${field}" is not a map of strings`)
  return v as Record<string, string>
}

/** A descriptor; CORRUPT for a malformed one, NOT_SUPPORTED for a digest algorithm other than sha256. */
export function parseDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw corrupt(where, 'a descriptor is not an object')
  const { mediaType, digest, size } = v
  if (typeof digest !== 'string') throw corrupt(where, 'a descriptor has no "digest"')
  if (!isDigest(digest)) {
    if (/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(digest) && !digest.startsWith('sha256:')) {
      throw new StrataError('NOT_SUPPORTED', `${where}: digest "${digest}" uses an algorithm strata does not support (only sha256)`)
    }
    throw corrupt(where, `"${digest}" is not a valid sha256 digest`)
  }
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw corrupt(where, `descriptor ${digest} has no valid "size"`)
  const d: Descriptor = { mediaType: typeof mediaType === 'string' ? mediaType : '', digest, size }
  const annotations = stringMap(v.annotations, where, 'annotations')
  if (annotations !== undefined) d.annotations = annotations
  if (isObject(v.platform)) {
    const p = v.platform
    if (typeof p.os !== 'string' || typeof p.architecture !== 'string') throw corrupt(where, `descriptor ${digest} has a platform without os and architecture`)
    d.platform = { os: p.os, architecture: p.architecture }
    if (typeof p.variant === 'string' && p.variant !== '') d.platform.variant = p.variant
  }
  if (Array.isArray(v.urls)) d.urls = v.urls.filter((u): u is string => typeof u === 'string')
  return d
}

/** The `oci-layout` file: only image layout version 1.x is understood. */
export function checkLayoutFile(v: unknown, where: string): void {
  if (!isObject(v) || typeof v.imageLayoutVersion !== 'string') throw corrupt(`"${LAYOUT_FILE}" in the ${where}`, 'no "imageLayoutVersion"')
  if (!/^1\.\d+\.\d+$/.test(v.imageLayoutVersion)) {
    throw new StrataError('NOT_SUPPORTED', `The ${where} is an OCI image layout of version ${v.imageLayoutVersion}; strata reads version 1.x`)
  }
}

export function parseIndex(v: unknown, where: string): ImageIndex {
  if (!isObject(v)) throw corrupt(where, 'not a JSON object')
  if (v.schemaVersion !== 2) throw corrupt(where, `"schemaVersion" is ${JSON.stringify(v.schemaVersion)}, not 2`)
  if (!Array.isArray(v.manifests)) throw corrupt(where, 'no "manifests" list')
  if (v.mediaType !== undefined && (typeof v.mediaType !== 'string' || !INDEX_MEDIA_TYPES.has(v.mediaType))) {
    throw corrupt(where, `"mediaType" is ${JSON.stringify(v.mediaType)}, not an image index`)
  }
  const index: ImageIndex = { schemaVersion: 2, manifests: v.manifests.map((m: unknown) => parseDescriptor(m, where)) }
  if (typeof v.mediaType === 'string') index.mediaType = v.mediaType
  const annotations = stringMap(v.annotations, where, 'annotations')
  if (annotations !== undefined) index.annotations = annotations
  return index
}

export function parseManifest(v: unknown, where: string): ImageManifest {
  if (!isObject(v)) throw corrupt(where, 'not a JSON object')
  if (v.schemaVersion !== 2) throw corrupt(where, `"schemaVersion" is ${JSON.stringify(v.schemaVersion)}, not 2`)
  if (v.mediaType !== undefined && (typeof v.mediaType !== 'string' || !MANIFEST_MEDIA_TYPES.has(v.mediaType))) {
    throw corrupt(where, `"mediaType" is ${JSON.stringify(v.mediaType)}, not an image manifest`)
  }
  if (!Array.isArray(v.layers)) throw corrupt(where, 'no "layers" list')
  const manifest: ImageManifest = {
    schemaVersion: 2,
    config: parseDescriptor(v.config, where),
    layers: v.layers.map((l: unknown) => parseDescriptor(l, where)),
  }
  if (typeof v.mediaType === 'string') manifest.mediaType = v.mediaType
  return manifest
}

/** What a blob holding `doc` is, when its descriptor does not say: an index has "manifests", a manifest "layers". */
export function documentKind(doc: unknown): 'index' | 'manifest' | undefined {
  if (!isObject(doc)) return undefined
  if (typeof doc.mediaType === 'string') {
    if (INDEX_MEDIA_TYPES.has(doc.mediaType)) return 'index'
    if (MANIFEST_MEDIA_TYPES.has(doc.mediaType)) return 'manifest'
  }
  if (Array.isArray(doc.manifests)) return 'index'
  if (Array.isArray(doc.layers)) return 'manifest'
  return undefined
}
