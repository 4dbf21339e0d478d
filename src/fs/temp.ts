/**
 * The one temp-name convention, and the one sweep that removes what an
 * interrupted write left behind.
 *
 * Convention: everything strata builds under a temporary name starts with
 * `.tmp-` (TEMP_PREFIX) and sits in the directory of what it will become,
 * so publishing it is one rename(2) on one filesystem:
 *
 * - a file replaced atomically (atomicWriteFile): `.tmp-<name><random
 *   decimal>`, the name moby's ioutils.AtomicWriteFile gives its temp file
 *   (ioutil.TempFile(dir, ".tmp-"+name)), so dockerd's leftovers and ours
 *   look alike and one sweep removes both;
 * - an output file or directory staged beside its destination (save -o,
 *   an OCI layout, a CLI output file): `tempPathFor(dest)`, the same form;
 * - a directory a module stages and recovers itself (a vfs layer being
 *   copied, a container record being created or removed):
 *   `.tmp-<what>` in that module's directory. Those are NOT swept here:
 *   a live process may be building one, and only the owning module knows
 *   its lock (vfs: a `<dir>.lock` flock; containers: a DirLock on the dir).
 *   Layer transactions live in `layerdb/tmp/` instead (dockerd's place).
 *
 * Sweep: `sweepTempFiles(dir)` removes the `.tmp-*` entries of `dir` that
 * are not directories, i.e. the temp files of atomic writes that died
 * before their rename. Call it only where no atomic write can be in
 * progress: under the lock every writer of that directory holds (for the
 * data root: its DataRootLock). Callers: layer recovery (the mount
 * records' `mount-count`), the image store's check --repair (imagedb).
 */
import { randomInt } from 'node:crypto'
import { lstat, readdir, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { isErrno } from '../errors/index.js'

/** The prefix of every name strata builds something under before publishing it. */
export const TEMP_PREFIX = '.tmp-'

/** Whether a directory entry is something being built (or left over) under a temp name. */
export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX)
}

/**
 * A fresh temp path beside `target`: `<dir>/.tmp-<name><random decimal>`,
 * as Go's ioutil.TempFile makes it from moby's pattern.
 */
export function tempPathFor(target: string): string {
  return join(dirname(target), `${TEMP_PREFIX}${basename(target)}${randomInt(1, 2 ** 31 - 1)}`)
}

/**
 * Removes the temp files (non-directories named `.tmp-*`) in `dir` and
 * returns their paths. A missing `dir` is empty. Call it under the lock all
 * writers of `dir` hold, so that none is in progress.
 */
export async function sweepTempFiles(dir: string): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return []
    throw err
  }
  const removed: string[] = []
  for (const name of names.filter(isTempName)) {
    const path = join(dir, name)
    try {
      if ((await lstat(path)).isDirectory()) continue
      await rm(path, { force: true })
    } catch (err) {
      if (isErrno(err, 'ENOENT')) continue
      throw err
    }
    removed.push(path)
  }
  return removed
}
