/**
 * Subvolume operations by path, on top of the raw btrfs ioctls in src/sys:
 * what dockerd's btrfs driver does with its cgo helpers (subvolCreate,
 * subvolSnapshot, subvolDelete). Errors are the SysErrors of the failing
 * call; the driver turns them into StrataErrors, since only it knows which
 * layer a path belongs to.
 *
 * Every ioctl here is synchronous. koffi can run a call on a worker thread,
 * but errno is per thread and would be lost, and these calls are short: a
 * snapshot is a metadata copy of the source's root node, whatever its size.
 */
import { closeSync, constants, lstatSync, openSync } from 'node:fs'
import { lstat, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../../errors/index.js'
import {
  BTRFS_FIRST_FREE_OBJECTID,
  btrfsSnapshotCreate,
  btrfsSubvolCreate,
  btrfsSubvolDestroy,
  btrfsSubvolInfo,
  type BtrfsSubvolInfo,
} from '../../sys/index.js'

export type { BtrfsSubvolInfo }

/**
 * Opens a directory for an ioctl. O_NOFOLLOW: a layer directory is never a
 * symlink, and following one planted in its place would snapshot or delete
 * whatever it points at.
 */
function openDir(path: string, noFollow: boolean): number {
  return openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | (noFollow ? constants.O_NOFOLLOW : 0))
}

function withDir<T>(path: string, noFollow: boolean, fn: (fd: number) => T): T {
  const fd = openDir(path, noFollow)
  try {
    return fn(fd)
  } finally {
    closeSync(fd)
  }
}

/** Creates the empty subvolume `dir/name`. EEXIST when the name is taken. */
export function createSubvolume(dir: string, name: string): void {
  withDir(dir, false, (fd) => btrfsSubvolCreate(fd, name, join(dir, name)))
}

/** Creates `destDir/name` as a writable snapshot of the subvolume `src`. */
export function snapshotSubvolume(src: string, destDir: string, name: string): void {
  withDir(src, true, (srcFd) => withDir(destDir, false, (destFd) => btrfsSnapshotCreate(destFd, srcFd, name, false, join(destDir, name))))
}

/** Facts about the subvolume whose root is `path` (uuid, and for a snapshot its source's uuid). */
export function subvolumeInfo(path: string): BtrfsSubvolInfo {
  return withDir(path, true, (fd) => btrfsSubvolInfo(fd, path))
}

/**
 * True when `path` is the root of a subvolume: on btrfs every subvolume's
 * root directory, and nothing else in it, has inode number 256.
 */
export function isSubvolume(path: string): boolean {
  const st = lstatSync(path)
  return st.isDirectory() && st.ino === BTRFS_FIRST_FREE_OBJECTID
}

/**
 * Deletes the subvolume `dir/name`, and first every subvolume nested inside
 * it: the kernel refuses (ENOTEMPTY) to delete a subvolume that still holds
 * others, and a container can create them (a nested btrfs-backed dockerd,
 * `btrfs subvolume create` inside a container). Like dockerd, the tree is
 * only walked when the plain delete says it must be.
 */
export async function deleteSubvolume(dir: string, name: string): Promise<void> {
  const path = join(dir, name)
  try {
    withDir(dir, false, (fd) => btrfsSubvolDestroy(fd, name, path))
    return
  } catch (err) {
    if (!isErrno(err, 'ENOTEMPTY')) throw err
  }
  await deleteNestedSubvolumes(path)
  withDir(dir, false, (fd) => btrfsSubvolDestroy(fd, name, path))
}

/**
 * Finds the subvolumes nested anywhere under `root` and deletes each (with
 * its own nested ones). Symlinks are not followed; a nested subvolume is
 * not descended into here, deleteSubvolume does that for it. The empty
 * directory a snapshot shows where its source had a nested subvolume has
 * inode 2, not 256, so it is correctly left for the final delete.
 */
async function deleteNestedSubvolumes(root: string): Promise<void> {
  let entries
  try {
    entries = await readdir(root, { withFileTypes: true })
  } catch (err) {
    // Gone already (removed concurrently, or a nested subvolume deleted
    // with its parent a moment ago): nothing left to find below it.
    if (isErrno(err, 'ENOENT')) return
    throw err
  }
  for (const entry of entries) {
    if (!entry.isDirectory()) continue
    const path = join(root, entry.name)
    let ino: number
    try {
      ino = (await lstat(path)).ino
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue
      throw err
    }
    if (ino === BTRFS_FIRST_FREE_OBJECTID) await deleteSubvolume(root, entry.name)
    else await deleteNestedSubvolumes(path)
  }
}
