/**
 * Cleaning up after strata processes that crashed in the middle of a
 * container verb. dockerd does this at daemon start; strata has no daemon,
 * so ContainerStore.recover() runs it, and the create verb calls that
 * first (creates are what leave these behind):
 *
 * - `containers/.tmp-<id>`: a draft nobody holds, a create that died before
 *   publishing; its mounted layer (`layerdb/mounts/<id>`), if it got that
 *   far, goes too;
 * - `containers/.tmp-rm-<id>`: a remove that died after renaming the
 *   record away (its mounted layer was removed before);
 * - a mounted layer named like a container (64 hex) with no record and no
 *   draft: a create that died between the mount and the draft... nothing
 *   else makes one in a strata data root.
 *
 * A create in progress holds a flock on its draft from before its mount
 * exists until after the record is published (the publish rename is under
 * the data-root lock): what can be locked exclusively here is dead, and
 * orphans are decided under the data-root lock, so a publish cannot slip
 * between the checks.
 */
import { readdir, rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { isErrno, isStrataError } from '../errors/index.js'
import { DirLock, isTempName, TEMP_PREFIX } from '../fs/index.js'
import { CONTAINER_ID_RE, containerDir, containersDir, draftDir } from './records.js'
import type { ContainerLayers } from './store.js'
import type { ContainerRecoveryReport } from './types.js'

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
}

async function removeMountIfAny(layers: ContainerLayers, name: string): Promise<void> {
  try {
    await layers.removeMount(name, { force: true })
  } catch (err) {
    if (!isStrataError(err, 'NOT_FOUND')) throw err
  }
}

export async function recoverContainers(root: string, layers: ContainerLayers): Promise<ContainerRecoveryReport> {
  const report: ContainerRecoveryReport = { tempRecords: [], orphanMounts: [] }
  const dir = containersDir(root)
  for (const name of (await entries(dir)).filter(isTempName)) {
    const path = join(dir, name)
    let lock: DirLock | undefined
    try {
      lock = DirLock.tryAcquire(path, 'exclusive')
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND')) continue
      throw err
    }
    if (lock === undefined) continue // alive
    try {
      const id = name.slice(TEMP_PREFIX.length)
      if (CONTAINER_ID_RE.test(id)) await removeMountIfAny(layers, id)
      await rm(path, { recursive: true, force: true })
      report.tempRecords.push(name)
    } finally {
      lock.close()
    }
  }
  const orphans = await layers.lock.withLock(async () => {
    // Every create runs this (the API server's too): names and one listing
    // of containers/, not four file reads and two stats per container. A
    // mount listed here had its draft before it existed, so the listing
    // after it shows the draft or (published under this lock) the record.
    const names = (await layers.listMountNames()).filter((n) => CONTAINER_ID_RE.test(n))
    const present = new Set(await entries(dir))
    const candidates = names.filter((n) => !present.has(basename(containerDir(root, n))) && !present.has(basename(draftDir(root, n))))
    if (candidates.length === 0) return []
    // Only mounts whose record reads well, as before (check() reports the others).
    const readable = new Set((await layers.listMounts()).map((m) => m.name))
    return candidates.filter((n) => readable.has(n))
  })
  for (const name of orphans) {
    await removeMountIfAny(layers, name)
    report.orphanMounts.push(name)
  }
  return report
}
