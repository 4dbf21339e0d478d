/**
 * The graph driver: how layers are stored and stacked on disk. This file is
 * the specification every driver follows; it is moby's graphdriver
 * (ProtoDriver + DiffDriver) in TypeScript.
 *
 * Words:
 * - A *layer* is a directory tree identified by an `id` chosen by the caller
 *   (the layer store uses a random 64-hex cache-id; a container's init
 *   layer is `<id>-init`). A layer has at most one *parent*; its content is
 *   the parent's content plus its own changes.
 * - A *read-only layer* (create) belongs to an image; once a child has been
 *   created on it, it must not change. A *read-write layer*
 *   (createReadWrite) is a container's; it is written through its mount.
 * - *get* makes a layer's full content visible at a path (for overlay2 a
 *   union mount, for vfs and btrfs the directory itself) and returns it;
 *   *put* releases it. get/put are reference counted per layer: the mount
 *   happens on the first get and goes away on the last put, however many
 *   callers there are. A driver never panics on a bad count: put of a layer
 *   that is not mounted is an error naming the layer. Every driver counts
 *   with the one RefCounter (refcount.ts).
 * - A *diff* is a layer tar of a layer's own changes against its parent,
 *   with aufs-style whiteouts (`.wh.name`, `.wh..wh..opq`); *applyDiff*
 *   writes such a tar into a freshly created layer (nothing else may have
 *   been written to it) and returns the applied size (dockerd's layer
 *   "size"; which figure depends on the driver, see LayerApplyResult).
 *
 * Rules:
 * - remove of a layer that has children is refused (IN_USE) by drivers
 *   that can know (overlay2 through `committed` markers and lower files,
 *   btrfs through snapshot parent uuids). vfs cannot tell (a copy keeps no
 *   link to its parent, and dockerd keeps no record either), so there the
 *   layer store is what refuses; it removes children first anyway.
 * - Mounts are shared between processes. A get whose mount already exists
 *   (made by another process, or by a persistent get) adopts it: the
 *   reference is counted here, but the last put here forgets the mount
 *   instead of unmounting it, since it was not ours. A persistent get
 *   (GetOpts.persistent) is not counted here at all; the matching
 *   put(id, { persistent: true }), from any process, unmounts the layer
 *   unless this instance still holds references on it (then the last of
 *   those unmounts). Opening a driver never unmounts anything: which mounts
 *   are stale is the layer store's call (mountedLayers + persistent put),
 *   made under its lock.
 * - put without a matching get is INVALID_ARGUMENT (NOT_FOUND for an
 *   unknown layer); getMetadata of an unknown layer is NOT_FOUND.
 * - Every driver lays its files out exactly as dockerd 20.10 does under
 *   `<root>/<driver name>/`, so a data root moves between strata and
 *   dockerd. Each driver's `layout.ts` draws that layout.
 * - Building a mount's options is a pure function (testable without root);
 *   performing the mount is separate.
 * - cleanup() unmounts what this instance mounted and still holds
 *   (persistent mounts excepted).
 */
import type { Readable } from 'node:stream'
import type { ApplyResult, Change, HeaderStyle, LineSink } from '../archive/index.js'
import type { Digest } from '../digest/index.js'

export type { Change }

export interface CreateOpts {
  /** Driver-specific options for this layer (dockerd's --storage-opt on create, e.g. size). */
  storageOpt?: Record<string, string>
}

export interface GetOpts {
  /** SELinux mount label; accepted for compatibility, unused on this host. */
  mountLabel?: string
  /**
   * The mount outlives this process (`strata mount` prints a path and
   * exits): the reference is not counted in this instance, and cleanup()
   * leaves the mount alone. Whoever tracks it (the layer store's mount
   * count) later calls put(), from any process, to unmount it.
   */
  persistent?: boolean
  /**
   * A short-lived read-write mount whose writes the caller wants durable
   * when put() returns (the init layer's files at create). overlay2 mounts
   * it with overlay's `volatile` option where the kernel has it (5.10+):
   * unmounting a plain overlay syncs the WHOLE upper filesystem (overlayfs'
   * sync_fs calls sync_filesystem on it), every other writer's dirty data
   * included, where the put of a volatile one fsyncs only what is in the
   * layer's diff dir. Other drivers ignore it.
   */
  volatile?: boolean
}

export interface PutOpts {
  /** Releases a persistent get (see GetOpts.persistent); never an error for a layer that is not mounted. */
  persistent?: boolean
}

export interface DiffOptions {
  /**
   * How the tar's headers are written: 'dockerd' (default) as dockerd
   * writes a layer (what commit and export of a layer need), 'lossless'
   * with nanosecond mtimes and every xattr (moving a container's files).
   */
  headers?: HeaderStyle
}

export interface ApplyLayerOptions {
  /** Receives the layer's tar-split JSON lines as the tar is applied. */
  tarSplit?: LineSink
  /** The diffID the uncompressed tar must hash to; DIGEST_MISMATCH otherwise. */
  expectedDiffId?: Digest
  /**
   * The digest the source's bytes (as given, compressed or not) are known
   * to have: whoever made the stream verifies them as they flow and fails
   * the stream at its end otherwise (a registry or OCI blob). They are not
   * hashed a second time here then; the result's digest is this one.
   */
  sourceDigest?: Digest
  /**
   * Apply on the calling thread. Drivers that apply in a worker thread
   * (overlay2) otherwise start one, a fresh V8 isolate that loads the
   * apply bundle: tens of ms of CPU, more than a small tar's whole apply
   * (a 1-file commit). Drivers that always apply in-thread ignore it.
   */
  inThread?: boolean
}

/**
 * What applyLayer learned in its one pass. `size` is the driver's applied
 * size, the figure dockerd writes to layerdb's `size` file: the sum of the
 * tar's entry sizes for the naive-diff drivers (vfs, btrfs), moby's
 * directory.Size of the diff dir for overlay2 (non-directory lstat sizes,
 * symlinks included, each inode once).
 */
export type LayerApplyResult = ApplyResult

export interface GraphDriver {
  /** "overlay2", "vfs", "btrfs". */
  readonly name: string
  /** The driver's home: `<root>/<name>`. */
  readonly home: string
  /**
   * True when applyLayer does not read the parent's files (overlay2 with
   * native diff: a layer's diff dir starts empty, its parent only matters
   * at mount time). The layers of a chain can then be applied at the same
   * time once each is created on the one below (LayerStore.registerChain
   * does). False or absent when an apply needs the parent's content (vfs
   * copies it, btrfs snapshots it, the naive diff mounts it).
   */
  readonly parallelApply?: boolean

  /** Creates a read-only (image) layer on `parent` (null: a base layer). */
  create(id: string, parent: string | null, opts?: CreateOpts): Promise<void>
  /** Creates a read-write (container) layer on `parent`. */
  createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void>
  /** Removes a layer and its data. Refuses (IN_USE) while it is mounted or has children. */
  remove(id: string): Promise<void>
  /** Makes the layer's full content visible and returns its path (reference counted). */
  get(id: string, opts?: GetOpts): Promise<string>
  /** Drops one reference taken by get; unmounts at zero (see the rules on shared mounts). */
  put(id: string, opts?: PutOpts): Promise<void>
  /** Ids of this driver's layers mounted now, by any process in this mount namespace (vfs: none). */
  mountedLayers(): Promise<string[]>
  exists(id: string): Promise<boolean>
  /** The "Storage Driver" lines of `info`, in order. */
  status(): Promise<Array<[string, string]>>
  /** Paths inspect shows (overlay2: LowerDir, UpperDir, WorkDir, MergedDir). */
  getMetadata(id: string): Promise<Record<string, string>>
  /** Unmounts what this instance mounted and still holds (not adopted or persistent mounts). */
  cleanup(): Promise<void>

  /** A layer tar of `id`'s changes against `parent` (aufs-style whiteouts). */
  diff(id: string, parent: string | null, opts?: DiffOptions): Promise<Readable>
  /** `id`'s changes against `parent`, sorted by path. */
  changes(id: string, parent: string | null): Promise<Change[]>
  /** Applies a layer tar (uncompressed) to the freshly created layer `id`; returns the applied size. */
  applyDiff(id: string, parent: string | null, tar: Readable): Promise<number>
  /**
   * applyDiff in full: the tar may be compressed (gzip, zstd), and one pass
   * yields the diffID, the compressed digest, the applied size and, when
   * asked, the tar-split lines. The layer store registers layers with it.
   */
  applyLayer(id: string, parent: string | null, source: Readable, opts?: ApplyLayerOptions): Promise<LayerApplyResult>
  /**
   * A directory holding the content of every file `id` itself added or
   * changed, readable without a mount (dockerd's DiffGetter): overlay2's
   * diff dir, vfs's copy, btrfs's subvolume. Rebuilding a layer tar from
   * tar-split reads file contents from here. NOT_FOUND for an unknown layer.
   */
  diffFilesDir(id: string): Promise<string>
  /** Bytes of `id`'s changes against `parent` (what diff would carry). */
  diffSize(id: string, parent: string | null): Promise<number>
  /**
   * For drivers whose files can only be read through a mount (devicemapper):
   * makes `id`'s files readable, as diffFilesDir would name them, until
   * release(). Callers that read a layer's files use it when present, and
   * diffFilesDir otherwise.
   */
  holdDiffFiles?(id: string): Promise<DiffFiles>
  /**
   * For drivers with records of their own beyond the layer directories
   * (devicemapper: a thin pool and a metadata file per device): what
   * disagrees between them, for `strata check`. Reports; repairs nothing.
   */
  check?(): Promise<DriverProblem[]>
  /**
   * Paths of scratch a dead process left (probe dirs and the like) that
   * open() removed; `strata check` reports them.
   */
  readonly sweptOnOpen?: readonly string[]
}

/** One thing GraphDriver.check found. */
export interface DriverProblem {
  /** The layer id or pool the problem is about. */
  subject: string
  message: string
}

/** A layer's files held readable (GraphDriver.holdDiffFiles). */
export interface DiffFiles {
  dir: string
  /** Gives the hold back; a second call does nothing. */
  release(): Promise<void>
}

/** Options common to every driver's constructor. */
export interface DriverOptions {
  /** The data root; the driver keeps its files in `<root>/<name>`. */
  root: string
  /** `--storage-opt k=v` pairs for the driver itself (e.g. `overlay2.mountapi=new`). */
  options?: Record<string, string>
}

/** Whether a driver can run on a data root here, and if not, why. */
export interface ProbeResult {
  ok: boolean
  /** When not ok: a sentence a user can act on ("/var/lib/strata is on ext4, btrfs needs a btrfs filesystem"). */
  reason?: string
}

/** A driver kind: how to probe for it and construct it. */
export interface DriverFactory {
  readonly name: string
  probe(root: string): Promise<ProbeResult>
  open(opts: DriverOptions): Promise<GraphDriver>
}
