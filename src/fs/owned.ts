/**
 * Scratch directories owned by a live process, and the sweep that removes
 * those whose owner died (a kill -9 runs no cleanup).
 *
 * Ownership is told two ways, never by age:
 *  - the owner holds a flock on the directory for as long as it uses it
 *    (works across pid namespaces; the kernel drops it when the process
 *    dies);
 *  - the name carries the owner's tag, `<pid>.<start time>` (the start
 *    time in clock ticks since boot, /proc/<pid>/stat field 22), which
 *    covers the instant between mkdir(2) and flock(2) and survives pid
 *    reuse: a recycled pid has another start time.
 * A directory is live when either says so; otherwise it is debris.
 *
 * API: `ownerTag()`, `ownerAlive(tag)`, `makeOwnedDir(parent, prefix)`
 * (an OwnedDir: `path`, `remove()`), `sweepOwnedEntries(parent, opts)`.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../errors/index.js'
import { tryFlock } from '../sys/index.js'

/** The start time of `pid` (clock ticks since boot), undefined when no such process. */
function startTime(pid: number | 'self'): string | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ESRCH')) return undefined
    throw err
  }
  // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // rest[0] is field 3 (state); field 22 is rest[19].
  return rest[19]
}

let selfTag: string | undefined

/** This process's tag, `<pid>.<start time>`. */
export function ownerTag(): string {
  selfTag ??= `${process.pid}.${startTime('self') ?? '0'}`
  return selfTag
}

/** Whether the process a tag names is alive (same pid, same start time). */
export function ownerAlive(tag: string): boolean {
  const m = /^(\d+)\.(\d+)$/.exec(tag)
  if (m === null) return false
  if (`${process.pid}.${startTime('self')}` === tag) return true
  return startTime(Number(m[1])) === m[2]
}

/** The tag inside a name made by makeOwnedDir (`<prefix><pid>.<start>-<8 hex>`), if it has one. */
export function tagOf(name: string): string | undefined {
  return /(?:^|[^0-9.])(\d+\.\d+)-[0-9a-f]{8}$/.exec(name)?.[1]
}

export interface OwnedDir {
  readonly path: string
  /** Removes the directory and drops the lock. Idempotent. */
  remove(): Promise<void>
  /** The same, synchronously. */
  removeSync(): void
}

/**
 * A fresh directory `<parent>/<prefix><pid>.<start>-<random>`, mode 0700,
 * flock'd by this process until remove(). `parent` must exist.
 */
export function makeOwnedDir(parent: string, prefix: string): OwnedDir {
  let path = ''
  for (let attempt = 0; ; attempt++) {
    path = join(parent, `${prefix}${ownerTag()}-${randomBytes(4).toString('hex')}`)
    try {
      mkdirSync(path, { mode: 0o700 })
      break
    } catch (err) {
      if (!isErrno(err, 'EEXIST') || attempt > 10) throw err
    }
  }
  let fd: number | undefined = openSync(path, 'r')
  tryFlock(fd, 'exclusive', path)
  return {
    path,
    remove: async () => {
      if (fd === undefined) return
      try {
        await rm(path, { recursive: true, force: true })
      } finally {
        closeSync(fd)
        fd = undefined
      }
    },
    removeSync: () => {
      if (fd === undefined) return
      try {
        rmSync(path, { recursive: true, force: true })
      } finally {
        closeSync(fd)
        fd = undefined
      }
    },
  }
}

/** Whether a live process holds a lock on `path` (false when it is gone). */
function lockHeld(path: string): boolean {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false
    throw err
  }
  try {
    return !tryFlock(fd, 'exclusive', path)
  } finally {
    closeSync(fd)
  }
}

export interface SweepOptions {
  /** Which entries are candidates (default: all). */
  match?: (name: string) => boolean
  /** Candidates without an owner tag (made by older strata or by dockerd) are swept only when this says so (default: when unlocked). */
  untagged?: (path: string) => Promise<boolean>
  /** Run before removing a dead entry (e.g. unmount what it left mounted under it). */
  beforeRemove?: (path: string) => Promise<void>
}

/**
 * Removes the entries of `parent` that `match` accepts and that no live
 * process owns (see the file header). Returns their paths.
 * A missing `parent` is empty.
 */
export async function sweepOwnedEntries(parent: string, opts: SweepOptions): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(parent)
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return []
    throw err
  }
  const removed: string[] = []
  for (const name of names) {
    if (opts.match !== undefined && !opts.match(name)) continue
    const path = join(parent, name)
    const tag = tagOf(name)
    if (tag !== undefined && ownerAlive(tag)) continue
    if (tag === undefined && opts.untagged !== undefined && !(await opts.untagged(path))) continue
    // Held: alive whatever its name says (another pid namespace, say).
    // Checked last: a lock taken here would be dropped before the rm anyway.
    if (lockHeld(path)) continue
    await opts.beforeRemove?.(path)
    await rm(path, { recursive: true, force: true })
    removed.push(path)
  }
  return removed
}
