/**
 * The driver's layers as directories, for recovery: which layer ids a
 * driver has on disk (dockerd's layouts, by driver name), and removal of
 * a set of driver layers in an order that works whatever their parentage.
 *
 *   overlay2   <home>/<id>/               (not `l`, the short-link dir)
 *   vfs        <home>/dir/<id>/           (not `.tmp-*`, the driver's own scratch)
 *   btrfs      <home>/subvolumes/<id>/
 *   aufs       <home>/diff/<id>/          (its layers/<id> file may be missing after a crash)
 *
 * Only names shaped like the ids the layer store makes (64 hex, optionally
 * `-init`) are listed: anything else in a driver's home is not ours to judge.
 */
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno, isStrataError } from '../errors/index.js'
import type { GraphDriver } from '../graphdriver/index.js'
import { DRIVER_ID_RE } from './paths.js'

/** The directory holding one entry per layer, or undefined for a driver whose layout we do not know. */
export function driverLayersDir(driverName: string, home: string): string | undefined {
  switch (driverName) {
    case 'overlay2':
      return home
    case 'vfs':
      return join(home, 'dir')
    case 'btrfs':
      return join(home, 'subvolumes')
    case 'aufs':
      return join(home, 'diff')
    default:
      return undefined
  }
}

/** Ids of the layers the driver has on disk; undefined when its layout is unknown. */
export async function listDriverLayerIds(driver: GraphDriver): Promise<string[] | undefined> {
  const dir = driverLayersDir(driver.name, driver.home)
  if (dir === undefined) return undefined
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
  return names.filter((n) => DRIVER_ID_RE.test(n)).sort()
}

/** Removes driver layer `id`; a layer that is already gone is fine. */
export async function removeDriverLayer(driver: GraphDriver, id: string): Promise<void> {
  if (!(await driver.exists(id))) return
  try {
    await driver.remove(id)
  } catch (err) {
    if (isStrataError(err, 'NOT_FOUND')) return
    throw err
  }
}

export interface RemovalOutcome {
  removed: string[]
  failed: Array<{ id: string; error: unknown }>
}

/**
 * Removes every layer in `ids`. Drivers refuse to remove a layer with
 * children, and a set found on disk comes in no particular order, so
 * failures are retried after each pass that made progress: children go
 * first, then their parents succeed.
 */
export async function removeDriverLayers(driver: GraphDriver, ids: Iterable<string>): Promise<RemovalOutcome> {
  let pending = [...new Set(ids)]
  const removed: string[] = []
  let failed: Array<{ id: string; error: unknown }> = []
  for (;;) {
    failed = []
    for (const id of pending) {
      try {
        await removeDriverLayer(driver, id)
        removed.push(id)
      } catch (error) {
        failed.push({ id, error })
      }
    }
    if (failed.length === 0 || failed.length === pending.length) break
    pending = failed.map((f) => f.id)
  }
  return { removed, failed }
}
