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
import { DirLock, pathExists, readTextIfExists, sweepTempFiles } from '../fs/index.js'
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

/** What the phases of one recovery share. */
interface Recovery {
  ctx: StoreContext
  report: RecoveryReport
  /** Driver ids something on disk or alive refers to: never removed. */
  kept: Set<string>
  /** Driver ids whose owning directory a live process holds: their mounts are not stale. */
  inUse: Set<string>
  /** RW layers mounted through mount() (mount-count > 0). */
  counted: Set<string>
}

/** Work a dead process left: a transaction dir or a `-removing` layer dir, and the driver layers it names. */
interface DeadWork {
  dir: string
  ids: string[]
}

function fail(r: Recovery, subject: string, err: unknown): void {
  r.report.failures.push({ subject, message: message(err) })
}

/** Call under the data-root lock. */
export async function recoverUnderLock(ctx: StoreContext): Promise<RecoveryReport> {
  const r: Recovery = {
    ctx,
    report: { transactions: [], removedLayers: [], removedMounts: [], unmounted: [], driverLayers: [], failures: [] },
    kept: new Set(),
    inUse: new Set(),
    counted: new Set(),
  }
  // The driver's layers are listed BEFORE anything that refers to them is
  // read. A live registration or container create writes the ids it will
  // use (cache-id, mount-id, init-id) in its transaction and only then
  // creates the driver layers, outside the data-root lock: listed first,
  // every layer on the list has its id on disk by the time the scans read
  // them. Listed last (as before), an init layer created between the scan
  // of its transaction and the listing was taken for an orphan and removed
  // under a live create (found by the torture test: a container's record
  // left without its -init layer).
  let onDisk: string[] | undefined
  try {
    onDisk = await listDriverLayerIds(ctx.driver)
  } catch (err) {
    fail(r, 'driver layers', err)
  }
  const deadTx = await scanTransactions(r)
  const deadRemoving = await scanLayers(r)
  await scanMountRecords(r)
  await releaseStaleMounts(r)
  const failedIds = await removeUnreferencedDriverLayers(r, [...deadTx, ...deadRemoving], onDisk)
  await removeDeadTransactions(r, deadTx, failedIds)
  await finishDeletions(r, deadRemoving, failedIds)
  return r.report
}

/** Transactions (`tmp/*`): a held one keeps its driver layers (and they are in use); the others are dead. */
async function scanTransactions(r: Recovery): Promise<DeadWork[]> {
  const dead: DeadWork[] = []
  for (const name of await listDir(r.ctx.paths.tmp)) {
    const dir = join(r.ctx.paths.tmp, name)
    const ids = await driverIdsIn(dir).catch(() => [] as string[])
    if (DirLock.isHeld(dir)) {
      for (const id of ids) {
        r.kept.add(id)
        r.inUse.add(id)
      }
    } else if (await pathExists(dir)) {
      // (Gone already: a live process finished or cancelled it between the listing and the probe.)
      dead.push({ dir, ids })
    }
  }
  return dead
}

/** Layers keep their cache-ids; a `-removing` dir nobody holds is a deletion that died midway. */
async function scanLayers(r: Recovery): Promise<Array<DeadWork & { chain: ChainID }>> {
  const dead: Array<DeadWork & { chain: ChainID }> = []
  for (const name of await listDir(r.ctx.paths.sha256)) {
    const dir = join(r.ctx.paths.sha256, name)
    const removing = REMOVING_RE.exec(name)
    if (!HEX64_RE.test(name) && removing === null) continue
    const id = await readCacheIdIfAny(dir).catch(() => undefined)
    const held = DirLock.isHeld(dir)
    if (removing === null || held) {
      if (id !== undefined) r.kept.add(id)
      if (id !== undefined && held) r.inUse.add(id)
    } else if (await pathExists(dir)) {
      // (Gone already: the live deleter finished between the listing and the probe.)
      dead.push({ dir, chain: parseDigest(removing[1]!), ids: id === undefined ? [] : [id] })
    }
  }
  return dead
}

/** Mount records keep their driver layers; a record without a usable mount-id is removed, and every record's dead temp files swept. */
async function scanMountRecords(r: Recovery): Promise<void> {
  for (const name of await listDir(r.ctx.paths.mounts)) {
    const dir = join(r.ctx.paths.mounts, name)
    const held = DirLock.isHeld(dir)
    // A mount-count replace that died before its rename.
    await sweepTempFiles(dir).catch((err: unknown) => fail(r, `mount ${name}`, err))
    try {
      const info = await readMountRecord(dir, name)
      for (const id of [info.mountId, info.initId]) {
        if (id === null) continue
        r.kept.add(id)
        if (held) r.inUse.add(id)
      }
      if (info.mountCount > 0) r.counted.add(info.mountId)
      continue
    } catch (err) {
      if (!isStrataError(err, 'CORRUPT')) {
        fail(r, `mount ${name}`, err)
        continue
      }
    }
    // Damaged. With a usable mount-id it stays for check() to report; without one it is no mount at all.
    const ids = await driverIdsIn(dir).catch(() => [] as string[])
    const mountIdText = await readTextIfExists(join(dir, MOUNT_FILES.mountId)).catch(() => undefined)
    if (mountIdText !== undefined && ids.includes(mountIdText.trim())) {
      for (const id of ids) r.kept.add(id)
      continue
    }
    try {
      await rm(dir, { recursive: true, force: true })
      r.report.removedMounts.push(name)
    } catch (err) {
      fail(r, `mount ${name}`, err)
    }
  }
}

/** 1. Stale mounts: mounted, but no counted record owns them and no live user holds them. */
async function releaseStaleMounts(r: Recovery): Promise<void> {
  let mounted: string[] = []
  try {
    mounted = await r.ctx.driver.mountedLayers()
  } catch (err) {
    fail(r, 'mounted layers', err)
  }
  for (const id of mounted) {
    if (r.counted.has(id) || r.inUse.has(id)) continue
    try {
      await r.ctx.driver.put(id, { persistent: true })
      r.report.unmounted.push(id)
    } catch (err) {
      fail(r, `mount of driver layer ${id}`, err)
    }
  }
}

/**
 * 2, 3 and 5 in one batch: the driver layers of dead work and those nothing
 * refers to (removal order among them is sorted out by retries). Returns
 * the ids that could not be removed.
 */
async function removeUnreferencedDriverLayers(r: Recovery, dead: DeadWork[], onDisk: string[] | undefined): Promise<Set<string>> {
  const doomed = new Set<string>()
  for (const w of dead) for (const id of w.ids) if (!r.kept.has(id)) doomed.add(id)
  // Listed before the scans: a layer a live deletion removed since (its driver layer
  // first, then its -removing dir, which the scan then no longer saw) is gone, not an orphan.
  for (const id of onDisk ?? []) if (!r.kept.has(id) && (await r.ctx.driver.exists(id))) doomed.add(id)

  const outcome = await removeDriverLayers(r.ctx.driver, doomed)
  for (const f of outcome.failed) fail(r, `driver layer ${f.id}`, f.error)
  const existed = new Set(onDisk ?? [])
  r.report.driverLayers.push(...outcome.removed.filter((id) => onDisk === undefined || existed.has(id)))
  return new Set(outcome.failed.map((f) => f.id))
}

/** 2. Dead transactions' directories, once their driver layers are gone. */
async function removeDeadTransactions(r: Recovery, deadTx: DeadWork[], failedIds: Set<string>): Promise<void> {
  for (const t of deadTx) {
    if (t.ids.some((id) => failedIds.has(id))) continue
    try {
      if (!(await pathExists(t.dir))) continue
      await rm(t.dir, { recursive: true, force: true })
      r.report.transactions.push(basename(t.dir))
    } catch (err) {
      fail(r, `transaction ${t.dir}`, err)
    }
  }
}

/** 3. Deletions that died midway, finished once their driver layer is gone. */
async function finishDeletions(r: Recovery, deadRemoving: Array<DeadWork & { chain: ChainID }>, failedIds: Set<string>): Promise<void> {
  for (const d of deadRemoving) {
    if (d.ids.some((id) => failedIds.has(id))) continue
    try {
      if (!(await pathExists(d.dir))) continue
      await rm(d.dir, { recursive: true, force: true })
      r.report.removedLayers.push(d.chain)
    } catch (err) {
      fail(r, `layer ${d.chain} being removed`, err)
    }
  }
}
