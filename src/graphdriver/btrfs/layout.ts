/**
 * Where the btrfs driver keeps things: exactly dockerd 20.10's layout, so a
 * data root moves between strata and dockerd.
 *
 *   <root>/                      the data root (dockerd makes it 0711)
 *   └── btrfs/                   home, 0710 root:root
 *       ├── subvolumes/          0710 root:root, made by the first create
 *       │   ├── <id>/            a subvolume: a base layer is created empty
 *       │   │                    (its root dir 0755 root:root), a layer with
 *       │   │                    a parent is a writable snapshot of the
 *       │   │                    parent's subvolume, so the snapshot's
 *       │   │                    parent_uuid is the parent's uuid
 *       │   └── <id>-init/       a container's init layer, like any other
 *       └── quotas/              0700, only with `--storage-opt size`: a
 *           └── <id>             file holding the byte limit (decimal).
 *                                strata does not support quotas yet and
 *                                never creates it.
 *
 * Modes: dockerd ≤ 20.10.2 made home and subvolumes 0700, 20.10.3 (the
 * CVE-2021-21284 fix) 0701, and 20.10.9 on (CVE-2021-41091) 0710 owned by
 * the daemon's uid and the remapped root's gid, root:root here since we do
 * not remap. Only a missing directory is created with the mode; an existing
 * one keeps its own, as dockerd's MkdirAllAndChown does.
 *
 * What dockerd has and strata does not: dockerd bind-mounts home onto
 * itself at start (a mount-propagation workaround for containers it runs)
 * and unmounts it in Cleanup. strata runs no containers, so it mounts
 * nothing at all; get() is the subvolume's own path.
 */
import { join } from 'node:path'

/** The driver's name and the directory under the data root. */
export const DRIVER_NAME = 'btrfs'

/** Mode of a freshly created home and subvolumes directory (dockerd 20.10.9+). */
export const DIR_MODE = 0o710
/** Mode of a freshly created data root (dockerd 20.10.9+ without userns remapping). */
export const DATA_ROOT_MODE = 0o711
/**
 * Mode of a base layer's root directory. The kernel creates a subvolume's
 * root honouring the caller's umask; dockerd, run with umask 022, gets
 * 0755, and so must we whatever our umask.
 */
export const LAYER_ROOT_MODE = 0o755

/** Paths of one driver home. */
export class BtrfsLayout {
  /** `<root>/btrfs`. */
  readonly home: string

  constructor(root: string) {
    this.home = join(root, DRIVER_NAME)
  }

  /** `<home>/subvolumes`: where every layer's subvolume lives. */
  get subvolumes(): string {
    return join(this.home, 'subvolumes')
  }

  /** `<home>/subvolumes/<id>`: the layer's subvolume and its content. */
  subvolume(id: string): string {
    return join(this.subvolumes, id)
  }

  /** `<home>/quotas/<id>`: dockerd's record of a layer's size limit. */
  quota(id: string): string {
    return join(this.home, 'quotas', id)
  }
}
