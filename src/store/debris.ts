/**
 * Debris: what processes that died (kill -9, power loss) left under the
 * data root, found and removed when a store is opened, and reported by
 * `check`. Everything strata makes under a temporary name is owned by a
 * live process, by flock or by the owner tag in its name (pid and start
 * time, src/fs/owned.ts), never judged by age alone; what no live process
 * owns is debris:
 *
 *  - `<root>/tmp/*`: load and import spools (`strata-spool-*`), save
 *    spools (`save-*`), API uploads: swept here;
 *  - `.tmp-*` files of atomic writes that died before their rename, in the
 *    image store's top directories (imagedb content, repositories.json's
 *    directory): swept here under the data-root lock, which every writer
 *    there holds (per-image metadata dirs: `check --repair`);
 *  - layer transactions in `layerdb/tmp`, deletions that died midway,
 *    stale mounts, orphan driver layers: the layer store's recovery
 *    (src/layer/recover.ts), which reports them;
 *  - the graph driver's probe dirs (overlay2's `check-overlayfs-support*`,
 *    `opaque-bug-check*`, `supports-dtype-check-*`): the driver's open
 *    (GraphDriver.sweptOnOpen).
 *
 * API: `sweepDebris(root, layerdbDirs, lock)` → DebrisItem[];
 * `debrisOfRecovery(report, ...)`.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { sweepOwnedEntries, sweepTempFiles, type StoreLock } from '../fs/index.js'
import type { RecoveryReport } from '../layer/index.js'

/** `<root>/tmp`: the transports' scratch space on the data root's filesystem. */
export const SCRATCH_DIR = 'tmp'

/** One thing a dead process left, and what became of it. */
export interface DebrisItem {
  /** A path, or a layer/driver id where there is no single path. */
  subject: string
  /** What it was. */
  what: string
}

/** `<root>/tmp`, created on first use (mode 0700). */
export async function scratchDir(root: string): Promise<string> {
  const dir = join(root, SCRATCH_DIR)
  await mkdir(dir, { recursive: true, mode: 0o700 })
  return dir
}

/**
 * Removes the scratch and half-written files of dead processes (see the
 * file header). `imageDirs`: the image store's directories of atomic
 * writes. Returns what it removed.
 */
export async function sweepDebris(root: string, imageDirs: readonly string[], lock: StoreLock): Promise<DebrisItem[]> {
  const out: DebrisItem[] = []
  for (const path of await sweepOwnedEntries(join(root, SCRATCH_DIR), {})) {
    out.push({ subject: path, what: 'scratch (a spool of a load, import or save) of a process that died' })
  }
  const files = await lock.withLock(async () => {
    const found: string[] = []
    for (const dir of imageDirs) found.push(...(await sweepTempFiles(dir)))
    return found
  })
  for (const path of files) out.push({ subject: path, what: 'temp file of a write that died before its rename' })
  return out
}

/** What the layer store's recovery removed, as debris items. */
export function debrisOfRecovery(report: RecoveryReport | undefined, tmpDir: string): DebrisItem[] {
  if (report === undefined) return []
  return [
    ...report.transactions.map((t) => ({ subject: join(tmpDir, t), what: 'layer transaction of a process that died' })),
    ...report.removedLayers.map((c) => ({ subject: c, what: 'layer deletion that died midway (finished)' })),
    ...report.removedMounts.map((m) => ({ subject: m, what: 'mount record without a mount-id' })),
    ...report.unmounted.map((id) => ({ subject: id, what: 'driver mount a dead process left (unmounted)' })),
    ...report.driverLayers.map((id) => ({ subject: id, what: 'driver layer nothing refers to' })),
  ]
}
