/**
 * The vfs driver's files, exactly as dockerd 20.10 lays them out:
 *
 *   <root>/vfs/                          0700 root:root   the driver's home
 *   └── dir/                             0700 root:root
 *       ├── <id>/                        0755 root:root   a layer: its FULL tree, a complete copy of
 *       │   ├── bin/ ...                                  the parent's plus the layer's own changes
 *       │   └── etc/ ...
 *       ├── <id>-init/                                    a container's init layer (same kind of dir)
 *       ├── .tmp-<id><random>/                            strata only, transient: a layer being built
 *       │                                                 (copied, then renamed to <id>) or being removed
 *       │                                                 (renamed away from <id>, then deleted)
 *       └── .tmp-<id><random>.lock                        strata only: flock'd by the process building it
 *
 * Nothing else: no parent links, no metadata files. Which layer is whose
 * parent is known only to the layer store (image/vfs/layerdb/); a vfs
 * layer directory does not know it was copied from another.
 *
 * The `.tmp-` names never collide with a layer: ids starting with `.tmp-`
 * are refused. A crash can leave one behind; opening the driver deletes
 * them (one driver per data root at a time, as with dockerd). dockerd
 * itself never looks at names it did not create, so a leftover is harmless
 * to it.
 */
import { join } from 'node:path'
import { tempPathFor } from '../../fs/index.js'

/** The driver's directory name under the data root, and its name. */
export const VFS_NAME = 'vfs'
/** The directory under home holding one directory per layer. */
export const LAYERS_DIR = 'dir'

/** `<root>/vfs` */
export function vfsHome(root: string): string {
  return join(root, VFS_NAME)
}

/** `<home>/dir` */
export function layersDir(home: string): string {
  return join(home, LAYERS_DIR)
}

/** `<home>/dir/<id>`: the layer's full tree. */
export function layerDir(home: string, id: string): string {
  return join(home, LAYERS_DIR, id)
}

/** A fresh transient name for work on layer `id`: `<home>/dir/.tmp-<id><random decimal>` (src/fs temp.ts). */
export function tmpDir(home: string, id: string): string {
  return tempPathFor(layerDir(home, id))
}
