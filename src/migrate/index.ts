/**
 * src/migrate: a data root moved from one graph driver to another, in
 * place, resumably (types.ts is the contract): migrateDataRoot, and what
 * comes after (cleanupMigration) or instead (abortMigration).
 *
 * @example
 * import { migrateDataRoot } from 'strata'
 * const plan = await migrateDataRoot({ root: '/var/lib/docker', to: 'overlay2', dryRun: true })
 * const result = await migrateDataRoot({ root: '/var/lib/docker', to: 'overlay2', pruneSource: true })
 */
import { resolve } from 'node:path'
import { MigrationPaths, readJournal, lockMigration, type Journal } from './journal.js'
import { abortUnfinished, cleanupFinished } from './switch.js'
import type { CleanupResult } from './types.js'

export type * from './types.js'
export { migrateDataRoot } from './migrate.js'
export { compareViews } from './verify-view.js'
export type { Journal as MigrationJournal } from './journal.js'

/** Deletes the old driver's trees a finished migration kept, and the migration's files (nothing to do is fine). */
export async function cleanupMigration(root: string): Promise<CleanupResult> {
  const paths = new MigrationPaths(resolve(root))
  if ((await readJournal(paths)) === undefined) return { removed: [] }
  const release = await lockMigration(paths)
  try {
    return await cleanupFinished(paths)
  } finally {
    release()
  }
}

/** Drops an unfinished migration that has not started its switch: what was staged is deleted, the root stays as it was. */
export async function abortMigration(root: string): Promise<CleanupResult> {
  const paths = new MigrationPaths(resolve(root))
  if ((await readJournal(paths)) === undefined) return { removed: [] }
  const release = await lockMigration(paths)
  try {
    return await abortUnfinished(paths)
  } finally {
    release()
  }
}

/** The migration journal of `root`, or undefined when none was started (or it was cleaned up). */
export async function migrationStatus(root: string): Promise<Journal | undefined> {
  return readJournal(new MigrationPaths(resolve(root)))
}
