/**
 * Recovery: what a crash (or a kill) can leave behind, found and finished
 * or undone. Runs under the data-root lock (LayerStore.open runs it), so
 * the only live work it can meet is work that holds a directory lock:
 * handles, transactions, deletions in progress, held mount records.
 *
 *  1. stale mounts: a driver mount (driver.mountedLayers) that no mount
 *     record with mount-count > 0 owns and no live user holds is released
 *     (persistent put) — a process died between its get and its put;
 *  2. transactions (`tmp/*`) nobody holds: their driver layers (mount-id,
 *     init-id, cache-id files) and the directory are removed;
 *  3. `sha256/*-removing` nobody holds: a deletion that died midway; its
 *     driver layer and the directory are removed;
 *  4. mount records without a readable mount-id are removed (a record is
 *     published whole, so this is damage, not a crash of ours), and
 *     temp files of a mount-count update that died before its rename;
 *  5. driver layers nothing refers to (no layer's cache-id, no mount's
 *     mount-id or init-id, no live transaction or deletion) are removed.
 *
 * Failures do not stop recovery; they are reported.
 */
import { rm } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { parseDigest } from '../digest/index.js'
import { isStrataError } from '../errors/index.js'
import type { StoreContext } from './context.js'
import { listDriverLayerIds, removeDriverLayers } from './driver-layers.js'
import { DirLock, readTextIfExists, sweepTempFiles } from '../fs/index.js'
import { driverIdsIn, MOUNT_FILES, readCacheIdIfAny, readMountRecord } from './metadata.js'
import { HEX64_RE, REMOVING_RE } from './paths.js'
import { listDir } from './refs.js'
import type { ChainID } from './types.js'

export interface RecoveryReport {
  /** Names of transaction directories removed from layerdb/tmp. */
  transactions: string[]
  /** chainIDs of `-removing` layers whose deletion was finished. */
  removedLayers: ChainID[]
  /** Mount records removed for lack of a mount-id. */
  removedMounts: string[]
  /** Driver ids of stale mounts released. */
  unmounted: string[]
  /** Driver layers removed that nothing referred to (including those of the transactions and deletions above). */
  driverLayers: string[]
  /** What could not be done, and why. */
  failures: Array<{ subject: string; message: string }>
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Call under the data-root lock. */
export async function recoverUnderLock(ctx: StoreContext): Promise<RecoveryReport> {
  const report: RecoveryReport = { transactions: [], removedLayers: [], removedMounts: [], unmounted: [], driverLayers: [], failures: [] }
  const fail = (subject: string, err: unknown): void => {
    report.failures.push({ subject, message: message(err) })
  }
  /** Driver ids something on disk or alive refers to: never removed. */
  const kept = new Set<string>()
  /** Driver ids whose owning directory a live process holds: their mounts are not stale. */
  const inUse = new Set<string>()
  /** RW layers mounted through mount() (mount-count > 0). */
  const counted = new Set<string>()

  // Transactions.
  const deadTx: Array<{ dir: string; ids: string[] }> = []
  for (const name of await listDir(ctx.paths.tmp)) {
    const dir = join(ctx.paths.tmp, name)
    const ids = await driverIdsIn(dir).catch(() => [] as string[])
    if (DirLock.isHeld(dir)) {
      for (const id of ids) {
        kept.add(id)
        inUse.add(id)
      }
    } else {
      deadTx.push({ dir, ids })
    }
  }

  // Layers, and deletions in progress.
  const deadRemoving: Array<{ dir: string; chain: ChainID; ids: string[] }> = []
  for (const name of await listDir(ctx.paths.sha256)) {
    const dir = join(ctx.paths.sha256, name)
    const removing = REMOVING_RE.exec(name)
    if (!HEX64_RE.test(name) && removing === null) continue
    const id = await readCacheIdIfAny(dir).catch(() => undefined)
    const held = DirLock.isHeld(dir)
    if (removing === null || held) {
      if (id !== undefined) kept.add(id)
      if (id !== undefined && held) inUse.add(id)
    } else {
      deadRemoving.push({ dir, chain: parseDigest(removing[1]!), ids: id === undefined ? [] : [id] })
    }
  }

  // Mount records.
  for (const name of await listDir(ctx.paths.mounts)) {
    const dir = join(ctx.paths.mounts, name)
    const held = DirLock.isHeld(dir)
    // A mount-count replace that died before its rename.
    await sweepTempFiles(dir).catch((err: unknown) => fail(`mount ${name}`, err))
    try {
      const info = await readMountRecord(dir, name)
      for (const id of [info.mountId, info.initId]) {
        if (id === null) continue
        kept.add(id)
        if (held) inUse.add(id)
      }
      if (info.mountCount > 0) counted.add(info.mountId)
      continue
    } catch (err) {
      if (!isStrataError(err, 'CORRUPT')) {
        fail(`mount ${name}`, err)
        continue
      }
    }
    // Damaged. With a usable mount-id it stays for check() to report; without one it is no mount at all.
    const ids = await driverIdsIn(dir).catch(() => [] as string[])
    const mountIdText = await readTextIfExists(join(dir, MOUNT_FILES.mountId)).catch(() => undefined)
    if (mountIdText !== undefined && ids.includes(mountIdText.trim())) {
      for (const id of ids) kept.add(id)
      continue
    }
    try {
      await rm(dir, { recursive: true, force: true })
      report.removedMounts.push(name)
    } catch (err) {
      fail(`mount ${name}`, err)
    }
  }

  // 1. Stale mounts.
  let mounted: string[] = []
  try {
    mounted = await ctx.driver.mountedLayers()
  } catch (err) {
    fail('mounted layers', err)
  }
  for (const id of mounted) {
    if (counted.has(id) || inUse.has(id)) continue
    try {
      await ctx.driver.put(id, { persistent: true })
      report.unmounted.push(id)
    } catch (err) {
      fail(`mount of driver layer ${id}`, err)
    }
  }

  // 2, 3 and 5 in one batch: removal order among them is sorted out by retries.
  const doomed = new Set<string>()
  for (const t of deadTx) for (const id of t.ids) if (!kept.has(id)) doomed.add(id)
  for (const r of deadRemoving) for (const id of r.ids) if (!kept.has(id)) doomed.add(id)
  let onDisk: string[] | undefined
  try {
    onDisk = await listDriverLayerIds(ctx.driver)
  } catch (err) {
    fail('driver layers', err)
  }
  for (const id of onDisk ?? []) if (!kept.has(id)) doomed.add(id)

  const outcome = await removeDriverLayers(ctx.driver, doomed)
  const failedIds = new Set(outcome.failed.map((f) => f.id))
  for (const f of outcome.failed) fail(`driver layer ${f.id}`, f.error)
  const existed = new Set(onDisk ?? [])
  report.driverLayers.push(...outcome.removed.filter((id) => onDisk === undefined || existed.has(id)))

  for (const t of deadTx) {
    if (t.ids.some((id) => failedIds.has(id))) continue
    try {
      await rm(t.dir, { recursive: true, force: true })
      report.transactions.push(basename(t.dir))
    } catch (err) {
      fail(`transaction ${t.dir}`, err)
    }
  }
  for (const r of deadRemoving) {
    if (r.ids.some((id) => failedIds.has(id))) continue
    try {
      await rm(r.dir, { recursive: true, force: true })
      report.removedLayers.push(r.chain)
    } catch (err) {
      fail(`layer ${r.chain} being removed`, err)
    }
  }
  return report
}
