/**
 * Migrating a data root from one graph driver to another, in place: the
 * specification of src/migrate.
 *
 * Words:
 * - The *source* is the driver the root uses now (its home `<root>/<from>`,
 *   its metadata `<root>/image/<from>/`); the *target* is the driver asked
 *   for (`<root>/<to>`, `<root>/image/<to>/`).
 * - The *stage* is `<root>/strata-migrate/stage/`, a data root of its own
 *   where the target's trees are built: the target driver opened there, and
 *   `image/<to>/` with the source's imagedb, repositories.json and
 *   distribution metadata copied as they are and a layerdb filled layer by
 *   layer. A layer or a container's mount is *staged* once its layerdb
 *   entry exists in the stage (written last, renamed into place).
 * - The *journal* (`strata-migrate/journal.json`) says where a migration
 *   is: copying (the root is the source's, untouched), switching (trees are
 *   being renamed), done (the root is the target's; the source's trees are
 *   kept aside in `strata-migrate/source/` until pruned).
 * - A *pending* marker (`strata-migrate/pending/<driver id>`) names a
 *   target layer being created; one left by a crash is removed on resume.
 *
 * Rules:
 * - What changes: each layer's `cache-id` and `size` (the new driver's
 *   applied size, as dockerd would have written it), each mount's
 *   `mount-id` and `init-id`, and each container record's "Driver" (dockerd
 *   ignores a container whose Driver is not its own). What does not:
 *   image IDs, chainIDs, diffIDs, tar-split files, tags, digests,
 *   distribution metadata, container IDs and records otherwise.
 * - Every read-only layer is rebuilt from its tar-split and the source's
 *   files (verified against its diffID on the way), applied to the target,
 *   and rebuilt again from the target's files: that second rebuild must
 *   hash to the diffID too before the layer is staged. A layer without
 *   tar-split is exported by the source driver's diff and must hash to its
 *   diffID; the tar-split recorded while applying it is staged with it.
 * - A container's init and read-write layers are moved as their diffs
 *   (whiteouts converted by the target's applyDiff) and verified by
 *   comparing the container's whole filesystem as both drivers mount it:
 *   every entry's type, mode, owner, size, mtime, link target, device and
 *   attributes, and the bytes of every file the container or its init
 *   layer changed (the rest comes from layers verified by their diffIDs).
 * - The switch happens only once everything is staged and verified, under
 *   the data-root lock, after checking again that no container runs and
 *   no strata process holds a layer. Each step of it can be repeated, so a
 *   switch that was killed finishes when the migration is run again.
 * - Refused (IN_USE): a running container, a mounted container (`strata
 *   mount`), a layer held by another strata process, a running migration.
 *   Refused before any work (INVALID_ARGUMENT naming the paths): a target
 *   whose trees already exist in the root, a source kept aside by an
 *   earlier migration that was not cleaned up, a journal for another target.
 * - Resumable: killed at any point, `migrate` run again continues from the
 *   journal (what is staged stays staged; layers added to the root since
 *   are migrated too, layers removed since are dropped from the stage). A
 *   full disk stops it with an error naming the layer and the filesystem;
 *   the journal and what is staged stay for the next run.
 * - Space: before copying, the space the target needs (estimated: a full
 *   copy per layer for vfs, each layer's own size otherwise, plus the
 *   containers' layers) is compared with the free space of the root's
 *   filesystem; too little is refused with both figures.
 */
import type { Digest } from '../digest/index.js'

export interface MigrateOptions {
  /** The data root. */
  root: string
  /** The target driver's name. */
  to: string
  /** The source driver's name (default: the root's, as the registry finds it). */
  from?: string
  /** `--storage-opt`s for the source and the target driver. */
  sourceOptions?: Record<string, string>
  targetOptions?: Record<string, string>
  /** Only plan: what moves, the space it needs, an estimate of the time. Nothing is written. */
  dryRun?: boolean
  /** Delete the source's trees once the switch is done (otherwise they stay until cleanupMigration). */
  pruneSource?: boolean
  /** Called as layers and mounts move (see MigrateProgress). */
  onProgress?: (event: MigrateProgress) => void
}

/** One read-only layer in the plan. */
export interface PlannedLayer {
  chainId: Digest
  diffId: Digest
  parent: Digest | null
  /** The source driver's id. */
  cacheId: string
  /** layerdb's size (the source driver's applied size). */
  size: number
  /** Already staged by an earlier run. */
  staged: boolean
}

/** One container mount in the plan. */
export interface PlannedMount {
  name: string
  mountId: string
  initId: string | null
  parent: Digest | null
  /** Bytes of its read-write and init layers' changes (the source driver's diffSize). */
  size: number
  staged: boolean
}

export interface MigratePlan {
  root: string
  from: string
  to: string
  layers: PlannedLayer[]
  mounts: PlannedMount[]
  /** Container records (each with a mount). */
  containers: number
  /** Bytes the target needs for what is not staged yet (estimate). */
  spaceNeeded: number
  /** Free bytes on the root's filesystem now. */
  spaceFree: number
  /** Seconds the copy should take, from a read of the source measured now (estimate). */
  estimatedSeconds: number
  /** Whether an earlier, interrupted run of this migration is continued. */
  resumed: boolean
}

export interface MigrateResult {
  plan: MigratePlan
  /** Layers and mounts copied by this run (the others were staged before). */
  layersCopied: number
  mountsCopied: number
  /** Where the source's trees are kept (undefined once pruned). */
  sourceKeptAt: string | undefined
  seconds: number
}

/**
 * Progress, per layer: `copy` with bytes as they move (the source's tar),
 * `verify` while the target's copy is checked, then `done`; `staged` for a
 * layer an earlier run finished. Containers' mounts the same way, named by
 * container. `switch` once, when the trees change places.
 */
export type MigrateProgress =
  | { kind: 'layer'; index: number; total: number; chainId: Digest; diffId: Digest; step: 'copy' | 'verify' | 'done' | 'staged'; bytes: number; totalBytes: number }
  | { kind: 'mount'; index: number; total: number; name: string; step: 'copy' | 'verify' | 'done' | 'staged'; bytes: number; totalBytes: number }
  | { kind: 'switch' }

export interface CleanupResult {
  /** Paths deleted. */
  removed: string[]
}
