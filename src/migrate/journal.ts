/**
 * The migration's files under `<root>/strata-migrate/` (drawn in
 * src/store/migration-guard.ts) and the journal: one JSON object replaced
 * atomically at each change of state, and a flock held by the running
 * migration.
 *
 *   strata-migrate/
 *   ├── journal.json       {"version":1,"from":..,"to":..,"state":..,"startedAt":..,"updatedAt":..,
 *   │                        "sourceOptions":{..},"targetOptions":{..}}
 *   ├── lock               exclusive flock while a migration runs
 *   ├── pending/<id>       a target driver layer being created (holds the chainID or mount name)
 *   ├── stage/<to>/        the target driver's home
 *   ├── stage/image/<to>/  its metadata: imagedb, repositories.json, distribution, layerdb
 *   └── source/<from>/, source/image/<from>/   the source's trees after the switch
 */
import { closeSync, ftruncateSync, openSync, writeFileSync, writeSync } from 'node:fs'
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { StrataError } from '../errors/index.js'
import { atomicWriteFile } from '../fs/index.js'
import { MIGRATION_DIR, MIGRATION_JOURNAL, MIGRATION_LOCK, readMigrationHead, type MigrationState } from '../store/index.js'
import { tryFlock } from '../sys/index.js'

export interface Journal {
  version: 1
  from: string
  to: string
  state: MigrationState
  startedAt: string
  updatedAt: string
  sourceOptions: Record<string, string>
  targetOptions: Record<string, string>
}

/** Where everything of a migration of `root` lives. */
export class MigrationPaths {
  readonly dir: string
  readonly journal: string
  readonly lock: string
  readonly pending: string
  /** The stage: a data root of its own. */
  readonly stage: string
  /** Where the source's trees go at the switch: a data root of its own too. */
  readonly aside: string

  constructor(readonly root: string) {
    this.dir = join(root, MIGRATION_DIR)
    this.journal = join(this.dir, MIGRATION_JOURNAL)
    this.lock = join(this.dir, MIGRATION_LOCK)
    this.pending = join(this.dir, 'pending')
    this.stage = join(this.dir, 'stage')
    this.aside = join(this.dir, 'source')
  }

  /** `<base>/<driver>`: a driver's home under the root, the stage or the aside. */
  home(base: string, driver: string): string {
    return join(base, driver)
  }

  /** `<base>/image/<driver>`: a driver's metadata under the root, the stage or the aside. */
  metadata(base: string, driver: string): string {
    return join(base, 'image', driver)
  }
}

/** The journal, or undefined when there is none (CORRUPT when it cannot be read). */
export async function readJournal(paths: MigrationPaths): Promise<Journal | undefined> {
  const head = readMigrationHead(paths.root)
  if (head === undefined) return undefined
  const j = JSON.parse(await readFile(paths.journal, 'utf8')) as Partial<Journal>
  return {
    version: 1,
    from: head.from,
    to: head.to,
    state: head.state,
    startedAt: typeof j.startedAt === 'string' ? j.startedAt : new Date().toISOString(),
    updatedAt: typeof j.updatedAt === 'string' ? j.updatedAt : new Date().toISOString(),
    sourceOptions: j.sourceOptions ?? {},
    targetOptions: j.targetOptions ?? {},
  }
}

/** Replaces the journal atomically (temp file, fsync, rename, fsync of the directory). */
export async function writeJournal(paths: MigrationPaths, journal: Journal): Promise<void> {
  journal.updatedAt = new Date().toISOString()
  await atomicWriteFile(paths.journal, `${JSON.stringify(journal)}\n`, 0o600)
}

/** Takes the migration lock without waiting; IN_USE when another migration holds it. Returns its release. */
export async function lockMigration(paths: MigrationPaths): Promise<() => void> {
  await mkdir(paths.dir, { recursive: true, mode: 0o700 })
  writeFileSync(paths.lock, '', { flag: 'a', mode: 0o600 })
  const fd = openSync(paths.lock, 'r+', 0o600)
  if (!tryFlock(fd, 'exclusive', paths.lock)) {
    closeSync(fd)
    throw new StrataError('IN_USE', `Another strata migrate is running on "${paths.root}"`, { details: { root: paths.root } })
  }
  // Who holds it, for the error other processes print (src/store/migration-guard.ts).
  ftruncateSync(fd, 0)
  writeSync(fd, `${process.pid}\n`, 0)
  return () => closeSync(fd)
}

/** Records that driver layer `id` (for `what`) is being created in the stage. */
export async function markPending(paths: MigrationPaths, id: string, what: string): Promise<void> {
  await mkdir(paths.pending, { recursive: true, mode: 0o700 })
  await writeFile(join(paths.pending, id), what, { mode: 0o600 })
}

export async function clearPending(paths: MigrationPaths, id: string): Promise<void> {
  await rm(join(paths.pending, id), { force: true })
}

/** The driver layer ids a crashed run was creating. */
export async function pendingIds(paths: MigrationPaths): Promise<string[]> {
  try {
    return (await readdir(paths.pending)).filter((n) => /^[a-f0-9]{64}(-init)?$/.test(n))
  } catch {
    return []
  }
}
