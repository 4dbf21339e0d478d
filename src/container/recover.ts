/**
 * Cleaning up after strata processes that crashed in the middle of a
 * container verb. dockerd does this at daemon start; strata has no daemon,
 * so createContainer runs it (creates are what leave these behind):
 *
 * - `containers/.tmp-<id>`: a create that died before publishing; its
 *   mount (`layerdb/mounts/<id>`), if it got that far, goes too;
 * - `containers/.tmp-rm-<id>`: a remove that died after renaming the
 *   record away (its mount was removed before);
 * - a mount with no record and no temp record: a create that died between
 *   the mount and... nothing else makes one in a strata data root.
 *
 * A create in progress holds a flock on its temp record from before its
 * mount exists until after the record is published (the publish rename is
 * under the data-root lock): what can be locked exclusively here is dead,
 * and orphans are decided under the data-root lock, so a publish cannot
 * slip between the checks.
 */
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno, isStrataError } from '../errors/index.js'
import type { Store } from '../store/index.js'
import { containerDir, containersDir, TEMP_RECORD_PREFIX } from './records.js'
import { pathExists, DirLock } from '../fs/index.js'

const ID_RE = /^[a-f0-9]{64}$/

export interface ContainerRecoveryReport {
  /** Temp records of dead creates and removes deleted. */
  tempRecords: string[]
  /** Mounts without a container removed. */
  orphanMounts: string[]
}

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
}

export async function recoverContainers(store: Store): Promise<ContainerRecoveryReport> {
  const report: ContainerRecoveryReport = { tempRecords: [], orphanMounts: [] }
  const dir = containersDir(store.root)
  for (const name of (await entries(dir)).filter((n) => n.startsWith(TEMP_RECORD_PREFIX))) {
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
      const id = name.slice(TEMP_RECORD_PREFIX.length)
      if (ID_RE.test(id)) {
        await store.layers.removeMount(id, { force: true }).catch((err: unknown) => {
          if (!isStrataError(err, 'NOT_FOUND')) throw err
        })
      }
      await rm(path, { recursive: true, force: true })
      report.tempRecords.push(name)
    } finally {
      lock.close()
    }
  }
  const orphans = await store.layers.lock.withLock(async () => {
    const out: string[] = []
    for (const m of await store.layers.listMounts()) {
      if (!ID_RE.test(m.name)) continue
      if (await pathExists(containerDir(store.root, m.name))) continue
      if (await pathExists(join(dir, `${TEMP_RECORD_PREFIX}${m.name}`))) continue
      out.push(m.name)
    }
    return out
  })
  for (const name of orphans) {
    await store.layers.removeMount(name, { force: true }).catch((err: unknown) => {
      if (!isStrataError(err, 'NOT_FOUND')) throw err
    })
    report.orphanMounts.push(name)
  }
  return report
}
