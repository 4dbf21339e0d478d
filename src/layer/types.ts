/**
 * The layer store's contract: read-only layers keyed by chainID and mounted
 * (container) layers, in dockerd 20.10's `image/<driver>/layerdb/` files,
 * shared safely by several strata processes on one data root.
 *
 * References. dockerd counts references in memory; strata has no daemon,
 * so a reference is either on disk or held by a live process:
 * - on disk: a child layer (its `parent` file), a mounted layer (its
 *   `mounts/<id>/parent`), an image (its config's top chainID, reported by
 *   the `ImageReferences` the store is opened with);
 * - live: a `LayerHandle`, which is a shared flock(2) on the layer's
 *   `layerdb/sha256/<chainID-hex>` directory, taken by get() and
 *   register() and dropped by release() or by the process dying.
 * A layer is deleted (driver data, then metadata) only by release(), and
 * only when no reference of either kind is left; release then goes on to
 * the parent. Layers nothing refers to are otherwise kept (a crash between
 * registering layers and creating their image leaves them, as dockerd's do).
 *
 * Locks. One exclusive flock on `<root>/strata.lock` (the data-root lock)
 * guards short metadata steps: committing a registration, deleting, taking
 * a handle, recovery. Long work (applying a tar, exporting) runs outside it
 * under handles and transaction locks, so two processes load at once.
 */
import type { Readable } from 'node:stream'
import type { Change, Compression } from '../archive/index.js'
import type { Digest } from '../digest/index.js'

export type ChainID = Digest
export type DiffID = Digest

/** What layerdb/sha256/<chainID>/ records about a read-only layer. */
export interface LayerInfo {
  chainId: ChainID
  diffId: DiffID
  /** null for a base layer. */
  parent: ChainID | null
  /** The driver's layer id (random 64 hex). */
  cacheId: string
  /** Decimal bytes in the `size` file (the driver's applied size). */
  size: number
  /** Whether tar-split.json.gz is present (export is then byte-exact). */
  hasTarSplit: boolean
}

/** A live reference to a read-only layer; release() it when done. */
export interface LayerHandle extends LayerInfo {
  /** Drops this reference; deletes the layer (and then unreferenced parents) if it was the last. */
  release(): Promise<void>
}

export interface RegisterOptions {
  /** The diffID the layer must have (from an image config); DIGEST_MISMATCH and nothing kept otherwise. */
  expectedDiffId?: DiffID
  /** Bytes of the source read so far (compressed), for progress bars. */
  onProgress?: (bytesRead: number) => void
  /** Apply on this thread, not in a worker (see ApplyLayerOptions.inThread): for a small tar, such as a commit's changes. */
  inThread?: boolean
  /** The digest the source stream verifies itself (see ApplyLayerOptions.sourceDigest): not hashed again. */
  sourceDigest?: Digest
}

export interface RegisterResult {
  layer: LayerHandle
  /** false when the chainID existed already and the new copy was thrown away. */
  created: boolean
  /** Digest and size of the source as given (compressed when it was), for distribution metadata. */
  digest: Digest
  compressedSize: number
  compression: Compression
  /**
   * false when the source was not read at all (expectedDiffId named a layer
   * that exists; the source was destroyed unread): digest is then the
   * expected diffID, compressedSize 0 and compression 'none', since the
   * source's own were never seen.
   */
  sourceRead: boolean
}

/** One layer of a chain for registerChain(): opened lazily, so nothing is read for layers already present. */
export interface ChainLayerSource {
  /**
   * Opens the layer tar (plain, gzip or zstd). Not called when
   * expectedDiffId names a layer that exists. Called a second time in one
   * case: another process registered a layer below this one while the
   * chain was being applied concurrently (this layer is then applied
   * again, on theirs).
   */
  open(): Promise<Readable>
  /** The diffID the layer must have; with it, chainIDs are known before anything is read. */
  expectedDiffId?: DiffID
  /** Bytes of this layer's source read so far (compressed). */
  onProgress?: (bytesRead: number) => void
  /** The digest open()'s stream verifies itself as it flows (a registry or OCI blob): the apply does not hash it again. */
  sourceDigest?: Digest
  /**
   * How many bytes open()'s stream will give, when known: layers applied
   * side by side start largest first (the largest is the longest apply,
   * so it should not be the one left running alone at the end).
   */
  size?: number
}

export interface RegisterChainOptions {
  /**
   * How many layers may be applied at once when the driver allows it (a
   * layer's files do not depend on its parent's, as in overlay2). Default:
   * the store's choice. 1 forces one at a time.
   */
  concurrency?: number
  /** Called as each layer finishes (in chain order), e.g. for "Loaded layer" lines. */
  onLayer?: (index: number, result: RegisterResult) => void
}

/**
 * A layer's tar ready to be written into a file (LayerStore.planFileExport):
 * its size is known before a byte is read, so an archive can write the
 * member's header first.
 */
export interface LayerFileExport {
  /** Bytes of the tar. */
  size: number
  /**
   * Writes the tar into the open file `fd` at `position`. Rejects with
   * DIGEST_MISMATCH when the layer's files no longer rebuild the tar its
   * diffID names (what was written is garbage then).
   */
  writeAt(fd: number, position: number, onBytes?: (written: number) => void): Promise<void>
  /** Lets go of the layer. Call once, whether or not writeAt ran. */
  release(): Promise<void>
}

/** The export of a layer: the tar stream, and after it ends, what it hashed to. */
export interface LayerExport {
  stream: Readable
  /**
   * Settles after the stream ends. With tar-split the stream itself fails
   * (DIGEST_MISMATCH) if the rebuilt tar does not hash to the diffID. Without
   * tar-split the tar is generated from the layer's files and `matches`
   * says whether it hashes to the diffID; a mismatch is reported here, not
   * hidden and not fatal (dockerd allows layers without tar-split).
   */
  verified: Promise<{ digest: Digest; matches: boolean; fromTarSplit: boolean }>
}

/** layerdb/mounts/<name>/: a container's read-write layer. */
export interface MountInfo {
  /** The container id the mount is stored under. */
  name: string
  /** Driver id of the read-write layer (random 64 hex). */
  mountId: string
  /** Driver id of the init layer, `<mountId>-init`, or null when created without one. */
  initId: string | null
  /** The image's top chainID (null: a container on no image). */
  parent: ChainID | null
  /** How many mount() calls are outstanding (strata's own file, `mount-count`; dockerd ignores it). */
  mountCount: number
}

export interface CreateMountOptions {
  /**
   * Writes the init layer (`<mountId>-init`) between the image and the RW
   * layer with Docker's init files. Default true, as dockerd does for every
   * container.
   */
  init?: boolean
  /**
   * Called with the init layer's mounted rootfs after Docker's init files
   * are written and before the RW layer is created on it, to give those
   * files content (a container's /etc/hostname, /etc/hosts, ...): the only
   * time the init layer is writable (overlay2 mounts a layer with a child
   * read-only, and vfs/btrfs copy it into the RW layer). Ignored with
   * `init: false`. A failure undoes the create.
   */
  initContent?: (rootfs: string) => Promise<void>
}

/** Which chainIDs images keep alive: the top chainID of every image's rootfs. */
export type ImageReferences = () => Promise<ReadonlySet<ChainID>>

/** A problem check() found. */
export interface CheckProblem {
  kind:
    | 'layer-metadata' // a layerdb entry with missing or malformed files
    | 'layer-content' // exported tar does not hash to the diffID
    | 'layer-missing-parent'
    | 'layer-missing-driver-data'
    | 'mount-metadata'
    | 'mount-missing-parent'
    | 'image-config' // content does not hash to the image ID, or is not a valid config
    | 'image-missing-layer'
    | 'reference-dangling' // a tag pointing to an image that does not exist
    | 'driver' // the graph driver's own records disagree (GraphDriver.check)
    | 'debris' // what a dead process left under the root (removed on open, src/store/debris.ts)
    | 'layer-orphan' // a layer no image, container or child layer refers to
  /** 'warning': reported, not a failure (check exits 0 for warnings alone). */
  severity?: 'warning'
  /** chainID, mount name, image ID or reference. */
  subject: string
  message: string
  /** What --repair did about it, when it did something. */
  repaired?: string
}

export type { Change }
