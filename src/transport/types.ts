/**
 * The transport contract: how images move between a strata store and the
 * formats the ecosystem uses. One ImageSource / ImageDestination pair per
 * format (docker-archive, OCI layout, OCI archive), one copy routine each
 * way (`loadImages`, `saveImages` in copy.ts), and rootfs import.
 *
 * Sources are read in place where they can be: an archive file on disk is
 * indexed (tar headers only) and each blob is streamed from its offset, so
 * `load` never unpacks the archive into a temp dir first as dockerd does. A
 * stream (stdin) or a compressed archive is spooled once to a temp file in
 * the data root and then read the same way.
 *
 * Everything a source says is checked before it is believed: blob paths
 * stay inside the archive (no `..`, no absolute paths, no links that lead
 * out of it; a link to a regular file inside it is followed, since docker
 * save itself links a layer it already wrote), every blob is verified
 * against its digest while it streams (an uncompressed layer's digest is
 * its diffID, which the layer store verifies), the config against the
 * image ID, each layer against its diffID (the layer store does that).
 * A load that fails keeps nothing it registered: freshly registered layers
 * are released (and so deleted), no image or tag is written.
 */
import type { Readable } from 'node:stream'
import type { Compression } from '../archive/index.js'
import type { Digest } from '../digest/index.js'
import type { ImageID } from '../image/index.js'
import type { DiffID, LayerFileExport } from '../layer/index.js'

export type TransportFormat = 'docker-archive' | 'oci-layout' | 'oci-archive' | 'registry'

/** OCI and Docker media types strata reads and writes. */
export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  /** An uncompressed Docker layer (what a docker-archive layer file is, unless it is gzip'd). */
  dockerLayerTar: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerForeignLayer: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const

/** The OCI annotation naming an image in an index (`index.json`). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name'

/**
 * containerd's (and docker 25+'s) annotation with the image's full name,
 * written beside a ref.name that is only a tag (`latest`).
 */
export const CONTAINERD_IMAGE_NAME_ANNOTATION = 'io.containerd.image.name'

/** One layer blob of a source image. */
export interface SourceLayer {
  /** rootfs.diff_ids[i] of the image's config: what the uncompressed tar must hash to. */
  diffId: DiffID
  /**
   * The blob's digest as the source names it (an OCI descriptor's digest);
   * undefined when the format does not name one (a docker-archive layer
   * file). When set, open() verifies the blob against it while it streams.
   */
  digest?: Digest
  /** The blob's size in bytes when known (progress totals; a mismatch is an error). */
  size?: number
  /** The descriptor's media type, or the one implied by the format. */
  mediaType: string
  /**
   * Opens the blob as stored (possibly gzip or zstd compressed). The stream
   * errors with DIGEST_MISMATCH (digest) or CORRUPT (size) at its end when
   * the blob is not what the source said; the layer store then keeps
   * nothing from it.
   */
  open(): Promise<Readable>
}

/** One image a source holds. */
export interface SourceImage {
  /** sha256 of configBytes; verified by the source. */
  id: ImageID
  /** The config JSON exactly as stored (its bytes are the image ID). */
  configBytes: Buffer
  /** Bottom first, one per diff_id of the config (count and order checked). */
  layers: SourceLayer[]
  /**
   * Names to tag the image with after loading, as written in the source
   * (`busybox:latest`, `localhost/x:1`, an OCI ref.name such as `1.0`);
   * loadImages normalises them and skips those that are not references.
   */
  names: string[]
  /**
   * Names must be tagged references (docker-archive RepoTags, as dockerd
   * 20.10 reads them): the first that is not ends the load there, with
   * dockerd's error (LoadResult.refused). Otherwise (OCI ref.name) a name
   * that is no reference is skipped.
   */
  strictNames?: boolean
  /** The manifest's digest when the source has a manifest blob (OCI), else undefined. */
  manifestDigest?: Digest
  /** The image it was built from, as docker-archive's manifest `Parent` names it; load records it when that image is loaded too. */
  parent?: ImageID
}

export interface ImageSource {
  readonly format: TransportFormat
  /** Every image in the source, in the order the source lists them. */
  images(): Promise<SourceImage[]>
  /** Closes files and removes any spool/temp copy. Idempotent. */
  close(): Promise<void>
}

/** One layer of an image to be written. */
export interface DestinationLayer {
  diffId: DiffID
  /** The layer's uncompressed size when known (tar-split's total), for progress. */
  size?: number
  /**
   * Opens the uncompressed layer tar (the layer store's export: byte-exact
   * with what was loaded, verified against diffId as it streams).
   */
  open(): Promise<Readable>
  /**
   * The same tar planned for writing into a file at a position, its size
   * known first (a destination that writes a file uses it instead of
   * open()); undefined when the store can only stream it.
   */
  planFileWrite?(): Promise<LayerFileExport | undefined>
}

/** One image to be written. */
export interface DestinationImage {
  id: ImageID
  configBytes: Buffer
  /** Bottom first. */
  layers: DestinationLayer[]
  /**
   * Full references to record for it (`docker.io/library/busybox:latest`);
   * each format writes them its peers' way (RepoTags in familiar form for
   * docker-archive; ref.name annotations for OCI). Empty for an image saved
   * by ID.
   */
  references: string[]
  /**
   * The image it was built from, when that image is written too
   * (docker-archive records it as the manifest's `Parent`).
   */
  parent?: ImageID
}

export interface DestinationOptions {
  /**
   * Layer compression for formats that allow a choice (OCI). Default 'none':
   * uncompressed `application/vnd.oci.image.layer.v1.tar`, as podman save
   * and skopeo copy from local storage write. docker-archive is always
   * uncompressed, as docker save writes it.
   */
  compression?: Compression
}

export interface ImageDestination {
  readonly format: TransportFormat
  /**
   * Writes the images. Layers shared between images (same diffID) are
   * written once. Nothing appears at the destination path until commit():
   * archives are written to a temp file beside it and renamed; an OCI
   * layout directory gets its blobs first and index.json last (blobs
   * already in an existing layout are kept and reused, as skopeo does).
   */
  write(images: DestinationImage[], progress?: ProgressListener): Promise<void>
  /** Publishes what write() wrote (rename into place, index.json). */
  commit(): Promise<void>
  /** Removes whatever write() left behind; the destination is as before. Idempotent. */
  abort(): Promise<void>
}

/** Progress of one layer while loading, saving or importing, for the CLI's bars. */
export interface LayerProgress {
  /** Which image (index into the source's images) and which layer of it. */
  image: number
  layer: number
  /**
   * The layer's diffID (short form is what docker shows). During an import
   * it is '' until the layer is registered: only then is it known.
   */
  diffId: DiffID
  phase:
    | 'waiting' // not started
    | 'exists' // already in the store (load) or already written (save): skipped
    | 'copying' // bytes are moving; current/total below
    | 'verified' // every byte of the blob read and its digest checked (a source that names one); the apply may still be finishing
    | 'done' // registered (load) or written (save)
  /** Bytes of the blob read or written so far, and its size when known. */
  current: number
  total?: number
}

export type ProgressListener = (event: LayerProgress) => void

export interface LoadOptions {
  onProgress?: ProgressListener
}

/** One image loadImages stored. */
export interface LoadedImage {
  id: ImageID
  /** The references tagged, full form (`docker.io/library/busybox:latest`). */
  tagged: string[]
  /** Names from the source that were not valid references (reported, not fatal, as docker does). */
  skippedNames: string[]
  /** Layers registered (new) vs found in the store already. */
  layersCreated: number
  layersExisting: number
}

export interface LoadResult {
  images: LoadedImage[]
  /**
   * A docker-archive name that is not a tagged reference, as dockerd 20.10
   * treats it: its image is loaded with the names before it, the images
   * after it are not loaded, and the load fails with `message` (dockerd's
   * words: "invalid reference format: repository name must be lowercase",
   * `invalid tag "busybox"`). The CLI prints what loaded, then the error.
   */
  refused?: { image: ImageID; name: string; message: string }
}

export interface SaveOptions {
  onProgress?: ProgressListener
}

export interface ImportOptions {
  /** A reference to tag the new image with (`docker import FILE repo:tag`). */
  reference?: string
  /** The history comment; default `Imported from <source>` as docker writes it. */
  message?: string
  /** What docker writes as the source in the comment (a path or `-`). */
  sourceName?: string
  /** Config fields to set, as `docker import --change` takes them (src/image applyChanges: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR). */
  changes?: string[]
  /** os/architecture of the new config; default this machine's (linux/amd64 here). */
  platform?: { os: string; architecture: string; variant?: string }
  onProgress?: ProgressListener
}

export interface ImportResult {
  id: ImageID
  diffId: DiffID
  tagged?: string
}
