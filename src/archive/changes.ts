/**
 * What changed between two trees, in the vocabulary of `docker diff`:
 * "A /path" added, "C /path" changed, "D /path" deleted. Two ways to find
 * out, as moby 20.10's pkg/archive does:
 *
 *  - changesNaive (moby's ChangesDirs): walk a layer's full tree next to its
 *    parent's full tree and compare entry by entry. This is what `docker
 *    diff` lists on every driver, overlay2 included;
 *  - changesOverlay (moby's OverlayChanges): read an overlayfs upper dir,
 *    where whiteouts (0/0 char devices) and opaque directories say what was
 *    deleted and everything else was added or modified. dockerd's overlay2
 *    stopped using it for `docker diff` in 18.06 (moby PR #37313): it
 *    reports an opaque dir as deleted instead of its lost children, and
 *    leaves out a dir whose child changed when the dir's copy-up kept its
 *    mode, size and mtime.
 *
 * Nothing here follows a symlink: lstat, readlink and l*xattr only.
 *
 * Paths are absolute inside the layer ("/etc/passwd") and sorted as Go
 * sorts strings (byte order of their UTF-8), like moby's changesByPath.
 */
import { FUSE_OVERLAYFS_XATTR_PREFIX, OVERLAY_OPAQUE_XATTR, OVERLAY_XATTR_PREFIX } from './whiteout.js'
import { constants, type BigIntStats } from 'node:fs'
import { lstat, open, readdir, readlink, type FileHandle } from 'node:fs/promises'
import { StrataError, isErrno } from '../errors/index.js'
import { lgetxattr, llistxattr, type Timespec } from '../sys/index.js'

export type ChangeKind = 'A' | 'C' | 'D'

export interface Change {
  /** Absolute inside the layer, e.g. "/etc/passwd". */
  path: string
  kind: ChangeKind
}

// ---------------------------------------------------------------------------
// Shared helpers (also used by export.ts)

/** Go's `a < b` on strings: byte order of the UTF-8 encoding. */
export function compareBytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/** A copy of `changes` sorted by path in byte order (moby's sort.Sort(changesByPath)). */
export function sortChanges(changes: readonly Change[]): Change[] {
  return changes
    .map((c) => ({ c, key: Buffer.from(c.path) }))
    .sort((x, y) => Buffer.compare(x.key, y.key))
    .map((x) => x.c)
}

/** `docker diff` lines ("C /etc", "A /etc/new"), sorted by path. */
export function formatChanges(changes: Change[]): string[] {
  return sortChanges(changes).map((c) => `${c.kind} ${c.path}`)
}

/**
 * Names in a directory, sorted in byte order (as Go's filepath.Walk and
 * readdirnames list them). With `vanishedOk`, a directory that is gone (or
 * is no longer one) has no names instead of being an error.
 */
export async function sortedNames(dir: string, vanishedOk = false): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if (vanishedOk && isErrno(err, 'ENOENT', 'ENOTDIR')) return []
    throw err
  }
  return names
    .map((n) => ({ n, key: Buffer.from(n) }))
    .sort((x, y) => Buffer.compare(x.key, y.key))
    .map((x) => x.n)
}

/** True for overlayfs' (and fuse-overlayfs') private attributes, which never belong in a layer. */
export function isOverlayPrivateXattr(name: string): boolean {
  return name.startsWith(OVERLAY_XATTR_PREFIX) || name.startsWith(FUSE_OVERLAYFS_XATTR_PREFIX)
}

/**
 * The extended attributes of `path` itself (not a symlink's target), without
 * trusted.overlay.*, as name → raw bytes in byte order of the names. A
 * filesystem without xattr support gives an empty map.
 */
export function layerXattrs(path: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  let names: string[]
  try {
    names = llistxattr(path)
  } catch (err) {
    if (isErrno(err, 'ENOTSUP', 'EOPNOTSUPP')) return out
    throw err
  }
  names.sort(compareBytewise)
  for (const name of names) {
    if (isOverlayPrivateXattr(name)) continue
    // Listed but gone by the time we read it: raced with a writer, leave it out.
    const value = lgetxattr(path, name)
    if (value !== undefined) out.set(name, Buffer.from(value))
  }
  return out
}

/** A stat time in nanoseconds as a Timespec (nsec always 0..999999999, also before 1970). */
export function timespecOf(ns: bigint): Timespec {
  let sec = ns / 1_000_000_000n
  let nsec = ns % 1_000_000_000n
  if (nsec < 0n) {
    sec -= 1n
    nsec += 1_000_000_000n
  }
  return { sec: Number(sec), nsec: Number(nsec) }
}

/** lstat that says `undefined` for a path that is not there (or whose parent stopped being a directory). */
export async function lstatOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true })
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined
    throw err
  }
}

const S_IFMT = 0o170000n
const S_IFDIR = 0o040000n
const S_IFCHR = 0o020000n
const S_IFREG = 0o100000n
const S_IFLNK = 0o120000n

function isDir(st: BigIntStats): boolean {
  return (st.mode & S_IFMT) === S_IFDIR
}

/** An overlayfs whiteout: a character device with device number 0/0. */
export function isOverlayWhiteout(st: BigIntStats): boolean {
  return (st.mode & S_IFMT) === S_IFCHR && st.rdev === 0n
}

/** An overlayfs opaque directory: trusted.overlay.opaque = "y" (moby checks exactly one byte 'y'). */
export function isOverlayOpaque(path: string): boolean {
  let v: Buffer | undefined
  try {
    v = lgetxattr(path, OVERLAY_OPAQUE_XATTR)
  } catch (err) {
    if (isErrno(err, 'ENOTSUP', 'EOPNOTSUPP', 'ENOENT', 'ENOTDIR')) return false
    throw err
  }
  return v !== undefined && v.length === 1 && v[0] === 0x79
}

function childPath(parent: string, name: string): string {
  return parent === '/' ? `/${name}` : `${parent}/${name}`
}

function rootError(what: string, dir: string, err: unknown): StrataError {
  if (isErrno(err, 'ENOENT', 'ENOTDIR')) return new StrataError('NOT_FOUND', `The ${what} "${dir}" does not exist`, { cause: err, details: { path: dir } })
  return new StrataError('SYSCALL', `Cannot read the ${what} "${dir}": ${(err as Error).message}`, { cause: err, details: { path: dir } })
}

async function statRoot(what: string, dir: string): Promise<BigIntStats> {
  let st: BigIntStats
  try {
    st = await lstat(dir, { bigint: true })
  } catch (err) {
    throw rootError(what, dir, err)
  }
  if (!isDir(st)) throw new StrataError('INVALID_ARGUMENT', `The ${what} "${dir}" is not a directory`, { details: { path: dir } })
  return st
}

// ---------------------------------------------------------------------------
// changesNaive

export interface NaiveChangesOptions {
  /**
   * Compare the bytes of regular files whose metadata (type, mode, owner,
   * size, mtime, xattrs) all match, to catch a content change hidden by a
   * restored mtime. Default true.
   */
  compareContent?: boolean
  /**
   * The layer tree is a copy-on-write snapshot of the parent tree (btrfs)
   * that nothing touched before this time (ns since the epoch): an entry
   * with the same inode number and ctime in both trees, and a ctime older
   * than this, is untouched since the snapshot, so its metadata is compared
   * but its content is not read. Pass the snapshot time minus a margin for
   * the coarse clock inode times come from.
   */
  untouchedBefore?: bigint
  /**
   * The overlayfs upper dir of the layer tree, when the layer tree is an
   * overlay mount of it over exactly the stack of lower dirs the parent
   * tree is mounted from (a container's rootfs against its init layer's):
   * a path the upper dir does not hold is then the same in both trees and
   * is skipped, so only what the upper dir holds is walked; below an opaque
   * dir, a path the upper dir does not hold is gone from the layer tree.
   * The result is the full comparison's. Valid only when the kernel writes
   * no redirects or metacopy files (what overlay2's native diff needs too).
   */
  upperDir?: string
}

const CHUNK = 64 * 1024

/** Reads up to `buf.length` bytes at `pos`, looping over short reads; returns how many were read (less only at EOF). */
async function readFull(fh: FileHandle, buf: Buffer, pos: number): Promise<number> {
  let filled = 0
  while (filled < buf.length) {
    const { bytesRead } = await fh.read(buf, filled, buf.length - filled, pos + filled)
    if (bytesRead === 0) break
    filled += bytesRead
  }
  return filled
}

/** True when two regular files hold the same bytes; streams both in 64 KiB chunks and stops at the first difference. */
async function sameContent(a: string, b: string): Promise<boolean> {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK
  const fa = await open(a, flags)
  try {
    const fb = await open(b, flags)
    try {
      const ba = Buffer.allocUnsafe(CHUNK)
      const bb = Buffer.allocUnsafe(CHUNK)
      for (let pos = 0; ; pos += CHUNK) {
        const [na, nb] = await Promise.all([readFull(fa, ba, pos), readFull(fb, bb, pos)])
        if (na !== nb) return false
        if (ba.compare(bb, 0, nb, 0, na) !== 0) return false
        if (na < CHUNK) return true
      }
    } finally {
      await fb.close()
    }
  } finally {
    await fa.close()
  }
}

function sameXattrs(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  if (a.size !== b.size) return false
  for (const [k, v] of a) {
    const w = b.get(k)
    if (w === undefined || !w.equals(v)) return false
  }
  return true
}

/** The same inode seen through both trees (a hardlink across them, a bind mount): nothing can differ. */
function sameInode(a: BigIntStats, b: BigIntStats): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.ctimeNs === b.ctimeNs
}

/**
 * moby's statDifferent plus what we check on top: the full st_mode (type
 * and permission bits), uid, gid and rdev for everything; mtime (to the
 * nanosecond, where moby forgives a zero nsec on either side) and size for
 * non-directories; every xattr but trusted.overlay.* (moby: only
 * security.capability); symlink targets; and, when all of that matches,
 * the content of regular files.
 */
async function entryDiffers(oldAbs: string, o: BigIntStats, newAbs: string, n: BigIntStats, compareContent: boolean): Promise<boolean> {
  if (o.mode !== n.mode || o.uid !== n.uid || o.gid !== n.gid || o.rdev !== n.rdev) return true
  const type = n.mode & S_IFMT
  if (type !== S_IFDIR && (o.mtimeNs !== n.mtimeNs || o.size !== n.size)) return true
  if (!sameXattrs(layerXattrs(oldAbs), layerXattrs(newAbs))) return true
  if (type === S_IFLNK && (await readlink(oldAbs)) !== (await readlink(newAbs))) return true
  if (type === S_IFREG && compareContent && n.size > 0n && !(await sameContent(oldAbs, newAbs))) return true
  return false
}

/**
 * The changes that turn the tree `parentDir` into the tree `layerDir`
 * (parentDir null: an empty parent, so everything is added), as moby's
 * ChangesDirs computes them, with stricter comparisons:
 *
 *  - a path only in the layer is "A", and so is everything below a new dir;
 *  - a path only in the parent is "D", once: its children are not listed
 *    (the whiteout removes the whole subtree);
 *  - a path in both is "C" when it differs (see entryDiffers); a path that
 *    changed type is "C" too: a dir that replaced a file lists its children
 *    as "A", a file that replaced a dir lists nothing for the old children;
 *  - a directory with a change anywhere below it that is not itself marked
 *    gets a "C" (never the root "/");
 *  - the root's own metadata is not compared (moby never reports "/");
 *  - an entry that is the very same inode in both trees (same st_dev,
 *    st_ino and ctime) is unchanged, without looking inside;
 *  - with `upperDir`, what the upper dir does not hold is unchanged (see
 *    NaiveChangesOptions.upperDir).
 *
 * Returns the changes sorted by path.
 */
export async function changesNaive(layerDir: string, parentDir: string | null, opts: NaiveChangesOptions = {}): Promise<Change[]> {
  const compareContent = opts.compareContent ?? true
  const untouchedBefore = opts.untouchedBefore
  const upperDir = opts.upperDir
  await statRoot('layer directory', layerDir)
  if (parentDir !== null) await statRoot('parent directory', parentDir)
  if (upperDir !== undefined) await statRoot('upper directory', upperDir)
  const out: Change[] = []

  /** Adds every path below `rel` in the layer as "A". */
  const allAdded = async (rel: string): Promise<void> => {
    for (const name of await sortedNames(layerDir + rel, true)) {
      const path = childPath(rel, name)
      const st = await lstatOrUndefined(layerDir + path)
      if (st === undefined) continue
      out.push({ path, kind: 'A' })
      if (isDir(st)) await allAdded(path)
    }
  }

  /**
   * Compares the directory `rel`, present in both trees as directories
   * (and, with `upperDir`, in the upper dir too; `opaque`: at or below an
   * opaque dir there). Returns true when anything was recorded for a path
   * below it.
   */
  const compareDir = async (rel: string, opaque: boolean): Promise<boolean> => {
    const before = out.length
    let newNames = await sortedNames(layerDir + rel, true)
    const oldNames = new Set(await sortedNames(parentDir + rel, true))
    if (upperDir !== undefined && !opaque) {
      // What the upper dir does not hold is the lower stack's, in both trees alike.
      const inUpper = new Set(await sortedNames(upperDir + rel, true))
      newNames = newNames.filter((name) => inUpper.has(name))
      for (const name of oldNames) if (!inUpper.has(name)) oldNames.delete(name)
    }
    for (const name of newNames) {
      const path = childPath(rel, name)
      const n = await lstatOrUndefined(layerDir + path)
      if (n === undefined) continue
      const o = oldNames.has(name) ? await lstatOrUndefined(parentDir + path) : undefined
      oldNames.delete(name)
      if (o === undefined) {
        out.push({ path, kind: 'A' })
        if (isDir(n)) await allAdded(path)
        continue
      }
      if (sameInode(o, n)) continue
      const at = out.length
      // In a snapshot, a file nobody touched keeps its inode and a ctime from
      // before the snapshot: its bytes need not be read. (Same ctime alone
      // proves nothing: a write in the same clock tick keeps it.)
      const untouched = untouchedBefore !== undefined && o.ino === n.ino && o.ctimeNs === n.ctimeNs && n.ctimeNs < untouchedBefore
      const changed = await entryDiffers(parentDir + path, o, layerDir + path, n, compareContent && !untouched)
      if (changed) out.push({ path, kind: 'C' })
      if (!isDir(n)) continue
      if (!isDir(o)) {
        // A dir that replaced a non-dir (already "C": its type changed) has no old children.
        await allAdded(path)
        continue
      }
      const inner = await compareDir(path, opaque || (upperDir !== undefined && isOverlayOpaque(upperDir + path)))
      // A dir with changes below it is reported itself, placed before them (moby inserts it there).
      if (inner && !changed) out.splice(at, 0, { path, kind: 'C' })
    }
    // What is left was deleted; its children go with it.
    for (const name of oldNames) out.push({ path: childPath(rel, name), kind: 'D' })
    return out.length > before
  }

  if (parentDir === null) await allAdded('/')
  else await compareDir('/', false)
  return sortChanges(out)
}

// ---------------------------------------------------------------------------
// changesOverlay

/** Go's sameFsTime: equal, or the same second with a zero nanosecond part on either side. */
export function sameFsTime(a: bigint, b: bigint): boolean {
  if (a === b) return true
  const ta = timespecOf(a)
  const tb = timespecOf(b)
  return ta.sec === tb.sec && (ta.nsec === 0 || tb.nsec === 0)
}

/**
 * Looks `rel` up in a lower layer without following any symlink on the
 * way: an ancestor that is not a real directory means the path is not there.
 */
class LowerLookup {
  readonly #dirs = new Map<string, boolean>()
  constructor(readonly root: string) {}

  async #isRealDir(rel: string): Promise<boolean> {
    if (rel === '/') return true
    const cached = this.#dirs.get(rel)
    if (cached !== undefined) return cached
    const parent = rel.slice(0, Math.max(1, rel.lastIndexOf('/')))
    let result = false
    if (await this.#isRealDir(parent)) {
      const st = await lstatOrUndefined(this.root + rel)
      result = st !== undefined && isDir(st)
    }
    this.#dirs.set(rel, result)
    return result
  }

  async lstat(rel: string): Promise<BigIntStats | undefined> {
    const parent = rel.slice(0, Math.max(1, rel.lastIndexOf('/')))
    if (!(await this.#isRealDir(parent))) return undefined
    return lstatOrUndefined(this.root + rel)
  }
}

/**
 * The changes an overlayfs upper dir holds over its lower dirs (nearest
 * first), exactly as moby 20.10's OverlayChanges reports them:
 *
 *  - a whiteout (0/0 char device) is "D" of its path;
 *  - an opaque directory (trusted.overlay.opaque=y) is "D" of its path too,
 *    and what it contains is then reported like anything else;
 *  - any other entry is "A", unless the path exists in a lower dir: then
 *    "C", except a directory whose first lower match is a directory with
 *    the same size, mode and mtime (Go's sameFsTime), which is not reported
 *    (its children still are);
 *  - for every "A" and "D", the parent directory gets a "C" unless it was
 *    already reported (or is "/").
 *
 * One deliberate difference: moby looks paths up in the lower dirs with
 * stat(2), which follows symlinks (to wherever they point on the host);
 * we never follow them, so a lower symlink (even a dangling one) counts as
 * the path existing, and a symlink on the way means it does not.
 *
 * Returns the changes sorted by path.
 */
export async function changesOverlay(upperDir: string, lowerDirs: string[]): Promise<Change[]> {
  await statRoot('upper directory', upperDir)
  const lowers = lowerDirs.map((d) => new LowerLookup(d))
  const out: Change[] = []
  const changedDirs = new Set<string>()

  const walk = async (rel: string): Promise<void> => {
    for (const name of await sortedNames(upperDir + rel, true)) {
      const path = childPath(rel, name)
      const abs = upperDir + path
      const st = await lstatOrUndefined(abs)
      if (st === undefined) continue
      const dir = isDir(st)
      let kind: ChangeKind | undefined
      if (isOverlayWhiteout(st) || (dir && isOverlayOpaque(abs))) {
        kind = 'D'
      } else {
        kind = 'A'
        for (const lower of lowers) {
          const lst = await lower.lstat(path)
          if (lst === undefined) continue
          if (dir && isDir(lst) && lst.size === st.size && lst.mode === st.mode && sameFsTime(lst.mtimeNs, st.mtimeNs)) kind = undefined
          else kind = 'C'
          break
        }
      }
      if (kind !== undefined) {
        if (dir) changedDirs.add(path)
        if (kind === 'A' || kind === 'D') {
          const parent = rel
          if (parent !== '/' && !changedDirs.has(parent)) {
            out.push({ path: parent, kind: 'C' })
            changedDirs.add(parent)
          }
        }
        out.push({ path, kind })
      }
      if (dir) await walk(path)
    }
  }
  await walk('/')
  return sortChanges(out)
}
