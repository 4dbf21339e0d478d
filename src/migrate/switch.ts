/**
 * The end of a migration, and its undoing:
 *
 * - switchTrees: under the data-root lock, the source's trees go aside
 *   (`strata-migrate/source/`), the stage's come into the root, and the
 *   container records name the new driver. Every step checks where things
 *   are before moving them, so a switch killed half-way finishes when run
 *   again; the journal says "switching" until the last step, and no other
 *   strata process opens the root meanwhile (migration-guard.ts).
 * - cleanupMigration: after the switch, deletes the source's trees (each
 *   driver layer through the source driver, so btrfs subvolumes and the
 *   like go the way they were made) and the migration's own files.
 * - abortMigration: before the switch, deletes what was staged; the root
 *   stays the source's, untouched.
 */
import { mkdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { CONFIG_FILE, containerDir, listRecords, writeRecord } from '../containerdb/index.js'
import { StrataError, isErrno } from '../errors/index.js'
import { mountEntries, openDriver } from '../graphdriver/index.js'
import { listDriverLayerIds, removeDriverLayers } from '../layer/index.js'
import { readJournal, writeJournal, type Journal, type MigrationPaths } from './journal.js'
import type { CleanupResult } from './types.js'

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false
    throw err
  }
}

/** Moves `from` to `to` unless that was done already; both present is CORRUPT (a human must look). */
async function moveOnce(from: string, to: string): Promise<void> {
  const [a, b] = [await exists(from), await exists(to)]
  if (a && b) throw new StrataError('CORRUPT', `Both "${from}" and "${to}" exist; the migration cannot tell which to keep`, { details: { from, to } })
  if (a) await rename(from, to)
}

/**
 * Sets "Driver" to `to` in every container record naming `from` (or none,
 * which dockerd reads as aufs), replacing the file atomically. Records that
 * do not parse are left as they are.
 */
async function retagContainers(root: string, from: string, to: string): Promise<void> {
  for (const record of await listRecords(root)) {
    const driver = record.Driver as string | undefined
    if (driver !== from && !(from === 'aufs' && (driver === '' || driver === undefined))) continue
    record.Driver = to
    const mode = (await stat(join(containerDir(root, record.ID), CONFIG_FILE))).mode & 0o777
    await writeRecord(root, record.ID, record, mode)
  }
}

/** Trees of `driver` under `base` (a root, the stage or the aside): its home and its metadata. */
function trees(paths: MigrationPaths, base: string, driver: string): [home: string, metadata: string] {
  return [paths.home(base, driver), paths.metadata(base, driver)]
}

/** Performs (or finishes) the switch of a migration whose journal is copying or switching; see the file header. */
export async function switchTrees(paths: MigrationPaths, journal: Journal): Promise<void> {
  if (journal.state === 'copying') {
    journal.state = 'switching'
    await writeJournal(paths, journal)
  }
  const [srcHome, srcMeta] = trees(paths, paths.root, journal.from)
  const [asideHome, asideMeta] = trees(paths, paths.aside, journal.from)
  const [stageHome, stageMeta] = trees(paths, paths.stage, journal.to)
  const [dstHome, dstMeta] = trees(paths, paths.root, journal.to)
  await mkdir(join(paths.aside, 'image'), { recursive: true, mode: 0o700 })
  await moveOnce(srcHome, asideHome)
  await moveOnce(srcMeta, asideMeta)
  await moveOnce(stageHome, dstHome)
  await moveOnce(stageMeta, dstMeta)
  await retagContainers(paths.root, journal.from, journal.to)
  await rm(paths.stage, { recursive: true, force: true })
  await rm(paths.pending, { recursive: true, force: true })
  journal.state = 'done'
  await writeJournal(paths, journal)
}

/** IN_USE when anything is mounted at or under `dir` (a recursive delete would cross into it). */
async function assertNothingMounted(dir: string): Promise<void> {
  const mounted = (await mountEntries()).filter((e) => e.mountPoint === dir || e.mountPoint.startsWith(`${dir}/`))
  if (mounted.length > 0) throw new StrataError('IN_USE', `"${mounted[0]!.mountPoint}" is mounted; unmount it before the migration's files are deleted`, { details: { mounts: mounted.map((m) => m.mountPoint) } })
}

/**
 * Deletes a data root of one driver at `base` (the aside or the stage):
 * each layer through the driver opened there, then the rest. A driver that
 * cannot be opened here any more is deleted as plain directories.
 */
async function deleteTrees(paths: MigrationPaths, base: string, driver: string, options: Record<string, string>): Promise<string[]> {
  await assertNothingMounted(base)
  const [home, metadata] = trees(paths, base, driver)
  if (await exists(home)) {
    let opened
    try {
      opened = await openDriver(base, driver, options)
    } catch {
      opened = undefined
    }
    if (opened !== undefined) {
      try {
        const outcome = await removeDriverLayers(opened, (await listDriverLayerIds(opened)) ?? [])
        if (outcome.failed.length > 0) throw outcome.failed[0]!.error
      } finally {
        await opened.cleanup()
      }
    }
  }
  const removed: string[] = []
  for (const p of [home, metadata]) {
    if (!(await exists(p))) continue
    await rm(p, { recursive: true, force: true })
    removed.push(p)
  }
  return removed
}

/** After a finished migration: deletes the source's trees kept aside and the migration's files. Nothing to do is not an error. */
export async function cleanupFinished(paths: MigrationPaths): Promise<CleanupResult> {
  const journal = await readJournal(paths)
  if (journal === undefined) return { removed: [] }
  if (journal.state !== 'done') {
    throw new StrataError('INVALID_ARGUMENT', `The migration of "${paths.root}" from ${journal.from} to ${journal.to} is not finished`, {
      hint: `finish it with \`strata migrate --to ${journal.to}\`${journal.state === 'copying' ? ', or drop it with `strata migrate --abort`' : ''}`,
    })
  }
  const removed = await deleteTrees(paths, paths.aside, journal.from, journal.sourceOptions)
  await rm(paths.dir, { recursive: true, force: true })
  removed.push(paths.dir)
  return { removed }
}

/** Before the switch: deletes what was staged and the journal; the root stays the source's. */
export async function abortUnfinished(paths: MigrationPaths): Promise<CleanupResult> {
  const journal = await readJournal(paths)
  if (journal === undefined) return { removed: [] }
  if (journal.state !== 'copying') {
    throw new StrataError('INVALID_ARGUMENT', `The migration of "${paths.root}" to ${journal.to} is ${journal.state === 'done' ? 'finished' : 'switching drivers'}; it cannot be aborted`, {
      hint: journal.state === 'done' ? '`strata migrate --cleanup` deletes the old trees' : `finish it with \`strata migrate --to ${journal.to}\``,
    })
  }
  const removed = await deleteTrees(paths, paths.stage, journal.to, journal.targetOptions)
  await rm(paths.dir, { recursive: true, force: true })
  removed.push(paths.dir)
  return { removed }
}
