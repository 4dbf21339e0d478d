/**
 * What a data root looks like while `strata migrate` (src/migrate) moves it
 * from one graph driver to another, and the one check every other opener
 * makes: a root whose migration is running, or is half-way through its
 * switch, is not opened (IN_USE naming the migration). A migration killed
 * while it was still copying leaves the root as it was, so that one opens.
 *
 *   <root>/strata-migrate/          0700
 *   ├── journal.json                {"from":"aufs","to":"overlay2","state":"copying"|"switching"|"done",...}
 *   ├── lock                        flock held for as long as a migration runs
 *   ├── stage/                      the target driver's tree being built (a data root of its own)
 *   └── source/                     after the switch: the old driver's trees, until pruned
 *
 * The journal's format belongs to src/migrate; only `state`, `from` and
 * `to` are read here.
 */
import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { StrataError, isErrno } from '../errors/index.js'
import { tryFlock } from '../sys/index.js'

export const MIGRATION_DIR = 'strata-migrate'
export const MIGRATION_JOURNAL = 'journal.json'
export const MIGRATION_LOCK = 'lock'

/** The journal's states: copying (the root is still the source's), switching (neither's), done (the target's). */
export type MigrationState = 'copying' | 'switching' | 'done'

export interface MigrationJournalHead {
  from: string
  to: string
  state: MigrationState
}

/** The journal's head, or undefined when there is no migration; CORRUPT when it cannot be read. */
export function readMigrationHead(root: string): MigrationJournalHead | undefined {
  const path = join(root, MIGRATION_DIR, MIGRATION_JOURNAL)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined
    throw err
  }
  try {
    const j = JSON.parse(text) as Partial<MigrationJournalHead>
    if (typeof j.from !== 'string' || typeof j.to !== 'string' || !['copying', 'switching', 'done'].includes(j.state as string)) throw new Error('unexpected shape')
    return { from: j.from, to: j.to, state: j.state as MigrationState }
  } catch (err) {
    throw new StrataError('CORRUPT', `The migration journal "${path}" cannot be read`, { cause: err, details: { path } })
  }
}

/**
 * The PID of the live process holding the migration lock of `root` (the
 * lock file holds it), or undefined when no migration runs.
 */
export function migrationRunning(root: string): number | undefined {
  const path = join(root, MIGRATION_DIR, MIGRATION_LOCK)
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined
    throw err
  }
  try {
    if (tryFlock(fd, 'shared', path)) return undefined
  } finally {
    closeSync(fd)
  }
  const pid = Number(readFileSync(path, 'utf8').trim())
  return Number.isInteger(pid) && pid > 0 ? pid : -1
}

/**
 * IN_USE when a migration of `root` is running (in another process: the
 * migration itself opens the root it migrates) or stopped half-way through
 * its switch.
 */
export function assertNoMigrationInProgress(root: string): void {
  const head = readMigrationHead(root)
  if (head === undefined || head.state === 'done') return
  const pid = migrationRunning(root)
  if (pid === process.pid) return
  if (pid !== undefined) {
    throw new StrataError('IN_USE', `"${root}" is being migrated from ${head.from} to ${head.to} by another strata process${pid > 0 ? ` (pid ${pid})` : ''}`, {
      hint: 'wait for `strata migrate` to finish',
      details: { root, ...head },
    })
  }
  if (head.state === 'switching') {
    throw new StrataError('IN_USE', `The migration of "${root}" from ${head.from} to ${head.to} stopped while switching drivers`, {
      hint: `run \`strata migrate --to ${head.to}\` to finish it`,
      details: { root, ...head },
    })
  }
}
