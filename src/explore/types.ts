/**
 * The layer explorer's vocabulary: what an image's layers hold, what each
 * layer changed relative to the layers below it, and what it wasted. The
 * same shapes travel as JSON from the explorer's HTTP API to the page, and
 * `strata image layers` prints them.
 *
 * Words:
 * - layer index: what one layer's tar holds, read from its tar-split
 *   metadata (the recorded tar headers) without unpacking anything: one
 *   `LayerEntry` per tar member, whiteouts and opaque markers included.
 * - image tree: every path any layer of an image names, with the version
 *   each layer gave it (an entry, or a removal). From it the view of the
 *   image "at layer k" (layers 0..k stacked, as overlayfs would show them)
 *   is computed for any k without stacking anything again.
 * - view at layer k: the files of the image as they are once layers 0..k
 *   are applied, each marked relative to the view at layer k-1:
 *     added      the path is visible at k and was not at k-1;
 *     modified   the path was visible at k-1 and layer k wrote it again
 *                (any non-directory it rewrites, a directory whose type,
 *                mode, owner or xattrs changed, or that it made opaque);
 *     removed    the path was visible at k-1 and is not at k (a whiteout
 *                of it or of a parent, an opaque parent, a parent replaced
 *                by a non-directory);
 *     unchanged  visible at both and not rewritten (a directory that layer
 *                k lists again only because something below it changed is
 *                unchanged: its mtime is all that moved).
 *   Counts of a layer (added / modified / removed) count every path so
 *   marked in its view: removing a directory of 50 files removes 51 paths.
 * - wasted bytes of a layer: the bytes of files from the layers below that
 *   layer k overwrites or removes. They still travel in the image, in the
 *   lower layer, but nobody sees them any more.
 * - efficiency (dive's): wagoodman/dive's score and "wasted space", which
 *   count differently from the per-layer figure above (see efficiency.ts).
 *
 * Rules:
 * - Read-only: nothing here writes to the store, takes a layer handle
 *   (whose release could delete an unreferenced layer) or mounts anything.
 * - A layer that cannot be read (metadata or tar-split missing or corrupt,
 *   driver files gone) is reported with a `LayerProblem` and counted as
 *   empty; the other layers and the views above it still work, and every
 *   answer that depends on it says so (`incomplete`).
 * - Paths are absolute and clean (`/etc/passwd`); `/` is the root. Names
 *   are whatever the tar held (any UTF-8, up to the kernel's 4096 bytes):
 *   escaping them for display is the renderer's job.
 */
import type { Digest } from '../digest/index.js'

export type EntryKind = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo'

/** One tar member of a layer, as its header recorded it. */
export interface LayerEntry {
  /** Clean absolute path (`/etc/passwd`); for a whiteout, the path it removes. */
  path: string
  kind: EntryKind
  /** Permission bits with setuid/setgid/sticky (0o7777). */
  mode: number
  uid: number
  gid: number
  /** Content bytes in the tar (0 for everything but regular files, hardlinks included). */
  size: number
  /** Seconds since the epoch. */
  mtime: number
  /** Symlink target, or the path (clean, absolute) a hardlink points to; '' otherwise. */
  link: string
  /** `major,minor` of a device; '' otherwise. */
  device: string
  /** Names of the entry's extended attributes. */
  xattrs: string[]
  /** tar-split's CRC-64 of the content (hex), '' when not recorded: tells a rewrite with the same bytes. */
  crc: string
}

/** What one layer's tar holds, in tar order. */
export interface LayerIndex {
  /** Entries that are files, dirs, links, devices: not whiteouts. */
  entries: LayerEntry[]
  /** Paths the layer removes (`.wh.NAME` members), clean and absolute. */
  whiteouts: string[]
  /** Directories the layer made opaque (`.wh..wh..opq` members). */
  opaque: string[]
  /** Sum of the members' content sizes (dive's layer size). */
  contentSize: number
}

export type Mark = 'added' | 'modified' | 'removed' | 'unchanged'

/** Why a layer could not be read. */
export interface LayerProblem {
  code: string
  message: string
}

/** One layer of an image, bottom first. */
export interface ExploreLayer {
  index: number
  chainId: Digest
  diffId: Digest
  /** The driver's applied size (layerdb `size`), -1 when its metadata is unreadable. */
  size: number
  /** The history step that made the layer (`created_by`), '' when the image records none. */
  createdBy: string
  /** RFC 3339, '' when unknown. */
  created: string
  comment: string
  problem?: LayerProblem
}

export interface ExploreImageSummary {
  id: string
  /** Familiar `name:tag` strings. */
  tags: string[]
  digests: string[]
  /** RFC 3339, '' when unknown. */
  created: string
  /** Sum of the layers' applied sizes (-1 when a layer's metadata is unreadable). */
  size: number
  layerCount: number
}

export interface ExploreImage extends ExploreImageSummary {
  os: string
  architecture: string
  /** The config's Entrypoint + Cmd, as docker shows them. */
  command: string[]
  layers: ExploreLayer[]
  /** Every history step, empty ones included, oldest first. */
  history: Array<{ created: string; createdBy: string; comment: string; emptyLayer: boolean }>
}

/** What a layer changed, counted over its view (see "Counts" above). */
export interface LayerChangeCounts {
  index: number
  added: number
  modified: number
  removed: number
  /** Entries in the layer's tar (whiteouts and opaque markers included). */
  members: number
  /** Bytes of lower files this layer overwrites or removes. */
  wastedBytes: number
  /** Sum of the content sizes in the layer's tar. */
  contentSize: number
  problem?: LayerProblem
}

/** A path dive counts more than once: its total over every layer, and how many times it appears. */
export interface Inefficiency {
  path: string
  count: number
  /** dive's CumulativeSize: the sizes of every copy, whiteouts of directories counting what they hid. */
  cumulativeSize: number
}

/** dive's image efficiency, computed as dive computes it (see efficiency.ts). */
export interface Efficiency {
  /** minimum / discovered bytes over all paths, 1 when there are none. */
  score: number
  /** Sum of cumulativeSize over every inefficiency. */
  wastedBytes: number
  /** Content bytes of every layer but the first (dive's "user" size). */
  userSizeBytes: number
  sizeBytes: number
  /** wastedBytes / userSizeBytes (0 when userSizeBytes is 0). */
  wastedUserPercent: number
  /** Largest first; at most the limit asked for. */
  inefficiencies: Inefficiency[]
  /** How many inefficiencies there are in all. */
  inefficiencyCount: number
}

export interface ImageAnalysis {
  id: string
  layers: LayerChangeCounts[]
  efficiency: Efficiency
  /** True when a layer could not be read: the figures leave it out. */
  incomplete: boolean
}

/** One row of a directory listing or a search result in the view at a layer. */
export interface TreeEntry extends Pick<LayerEntry, 'path' | 'kind' | 'mode' | 'uid' | 'gid' | 'mtime' | 'link' | 'device' | 'xattrs'> {
  name: string
  mark: Mark
  /** A file's size; for a directory the total of the files below it in this view. */
  size: number
  /** The layer whose version of the path this view shows (for a removed path, the version it had). */
  layer: number
  /** Directories: visible children in this view (removed ones included). */
  childCount: number
  /** Directories: paths below marked added, modified or removed. */
  changeCount: number
  /** The directory was made opaque by this layer. */
  opaque: boolean
  /** No layer has an entry for this directory; it exists because paths below it do. */
  implicit: boolean
}

/** A slice of a long listing: a directory of 100k entries is read a page at a time. */
export interface Page {
  offset?: number
  /** Default: all. */
  limit?: number
}

export interface TreeFilter {
  /** Only paths marked added, modified or removed, and directories holding some. */
  onlyChanges?: boolean
  /** Only files of at least this many bytes, and directories holding some. */
  minSize?: number
}

export interface DirListing {
  path: string
  layer: number
  /** Entries in the directory (after filters); `entries` holds those from `offset` on, at most the limit asked. */
  total: number
  offset: number
  entries: TreeEntry[]
  /** A layer at or below this one could not be read; the view leaves it out. */
  incomplete: boolean
}

export interface SearchResult {
  layer: number
  query: string
  entries: TreeEntry[]
  /** Matches in all; `entries` stops at the limit. */
  total: number
  incomplete: boolean
}

/** Every version of one path, layer by layer. */
export interface PathHistory {
  path: string
  versions: Array<{ layer: number; kind: EntryKind | 'whiteout' | 'opaque'; size: number; mode: number; uid: number; gid: number; mtime: number; link: string }>
}

export type CompareChange = 'only-a' | 'only-b' | 'changed'

/** How two images differ: shared layers, then the files of their final views. */
export interface ImageComparison {
  a: string
  b: string
  /** Layers both images start with (same chainID), bottom first. */
  sharedLayers: Array<{ index: number; chainId: Digest; diffId: Digest; size: number }>
  /** How many layers each has above the shared ones. */
  onlyA: number
  onlyB: number
  counts: { onlyA: number; onlyB: number; changed: number }
  /** Largest first, at most the limit asked for. */
  differences: Array<{ path: string; change: CompareChange; kind: EntryKind; sizeA: number; sizeB: number }>
  incomplete: boolean
}
