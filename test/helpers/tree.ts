/**
 * A snapshot of a directory tree holding everything a layer tar can carry
 * (type, mode incl. setuid/setgid/sticky, owner, nanosecond mtime, device
 * numbers, link targets, xattrs, content, hardlink structure), so tests can
 * say "extracting this layer gives exactly the tree it was made from".
 *
 * Nothing here follows a symlink: lstat, readlink and l*xattr only.
 */
import { AssertionError } from 'node:assert'
import { createHash } from 'node:crypto'
import { createReadStream, type BigIntStats } from 'node:fs'
import { lstat, readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { lgetxattr, llistxattr, major, minor } from '../../src/sys/index.js'

export type EntryType = 'file' | 'dir' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket'

export interface TreeEntry {
  type: EntryType
  /** Permission bits including setuid/setgid/sticky (07777), without the type bits. */
  mode: number
  uid: number
  gid: number
  /** Byte size of regular files; 0 for everything else (a symlink's is its target, compared via linkTarget). */
  size: number
  /** mtime in nanoseconds since the epoch; 0n when the snapshot was told to leave mtimes out. */
  mtimeNs: bigint
  /** Device numbers of char and block devices; 0 otherwise. */
  rdevMajor: number
  rdevMinor: number
  linkTarget?: string
  /** Attribute name -> value as lowercase hex; names in sorted order. */
  xattrs: Record<string, string>
  /** Hex sha256 of the content, regular files only. */
  sha256?: string
  /**
   * Link count of non-directories. Directories get 0: their count is a
   * filesystem artifact (ext4 counts subdirs, btrfs always says 1) that no
   * tar carries, and comparing it would fail across filesystems.
   */
  nlink: number
  /** For files with nlink > 1: every path in this tree sharing the inode, sorted, joined by '|'. */
  inodeGroup?: string
}

export interface SnapshotOptions {
  /** Record mtimes (default true). False sets every mtimeNs to 0n. */
  mtimes?: boolean
  /**
   * Record directory mtimes (default true). Turn it off when comparing with
   * a tree whose directories were written in an order that cannot preserve
   * them (e.g. an extractor that sets dir times before filling the dir).
   */
  dirMtimes?: boolean
  /**
   * Paths to leave out, relative to the root with '/' separators (the root
   * itself is '.'). An ignored directory is not descended into, except the
   * root: ignoring '.' drops only the root's own entry.
   */
  ignore?: (relPath: string) => boolean
}

function typeOf(st: BigIntStats): EntryType {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isCharacterDevice()) return 'char'
  if (st.isBlockDevice()) return 'block'
  if (st.isFIFO()) return 'fifo'
  if (st.isSocket()) return 'socket'
  throw new Error(`unknown file type ${st.mode.toString(8)}`)
}

/** Byte order, as tar writers and `LC_ALL=C ls` sort, so snapshots list the same way on every machine. */
function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

function readXattrs(path: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of llistxattr(path).sort(byteOrder)) {
    // A name listed but gone by the time we read it raced with someone; skip it.
    const value = lgetxattr(path, name)
    if (value !== undefined) out[name] = value.toString('hex')
  }
  return out
}

/**
 * Snapshots the tree under `root` into a Map keyed by relative path ('.'
 * for the root itself, then 'a', 'a/b', ... depth-first in byte order).
 */
export async function snapshotTree(root: string, opts: SnapshotOptions = {}): Promise<Map<string, TreeEntry>> {
  const withMtimes = opts.mtimes ?? true
  const withDirMtimes = opts.dirMtimes ?? true
  const ignore = opts.ignore ?? (() => false)
  const entries = new Map<string, TreeEntry>()
  // dev:ino -> paths, to fill in inodeGroup once every name has been seen.
  const inodes = new Map<string, string[]>()

  const visit = async (rel: string, abs: string): Promise<void> => {
    const isRoot = rel === '.'
    if (ignore(rel) && !isRoot) return
    const st = await lstat(abs, { bigint: true })
    const type = typeOf(st)
    if (!(isRoot && ignore(rel))) {
      const keepMtime = withMtimes && (type !== 'dir' || withDirMtimes)
      const isDev = type === 'char' || type === 'block'
      const entry: TreeEntry = {
        type,
        mode: Number(st.mode & 0o7777n),
        uid: Number(st.uid),
        gid: Number(st.gid),
        size: type === 'file' ? Number(st.size) : 0,
        mtimeNs: keepMtime ? st.mtimeNs : 0n,
        rdevMajor: isDev ? major(st.rdev) : 0,
        rdevMinor: isDev ? minor(st.rdev) : 0,
        xattrs: readXattrs(abs),
        nlink: type === 'dir' ? 0 : Number(st.nlink),
      }
      if (type === 'symlink') entry.linkTarget = await readlink(abs)
      if (type === 'file') entry.sha256 = await sha256File(abs)
      entries.set(rel, entry)
      if (type !== 'dir' && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`
        const paths = inodes.get(key)
        if (paths) paths.push(rel)
        else inodes.set(key, [rel])
      }
    }
    if (type !== 'dir') return
    const names = (await readdir(abs)).sort(byteOrder)
    for (const name of names) await visit(isRoot ? name : `${rel}/${name}`, join(abs, name))
  }
  await visit('.', root)

  for (const paths of inodes.values()) {
    const group = paths.sort(byteOrder).join('|')
    for (const p of paths) entries.get(p)!.inodeGroup = group
  }
  return entries
}

function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0')
}

function fmtNs(ns: bigint): string {
  const sign = ns < 0n ? '-' : ''
  const abs = ns < 0n ? -ns : ns
  return `${sign}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, '0')}`
}

/** Shortens long hex values so a diff line stays readable. */
function fmtHex(hex: string | undefined): string {
  if (hex === undefined) return '(absent)'
  return hex.length > 72 ? `${hex.slice(0, 72)}... (${hex.length / 2} bytes)` : `0x${hex}`
}

function diffEntry(path: string, a: TreeEntry, b: TreeEntry): string[] {
  const out: string[] = []
  const field = (name: string, x: unknown, y: unknown, fmt: (v: never) => string = String): void => {
    if (x !== y) out.push(`${path}: ${name} ${fmt(x as never)} != ${fmt(y as never)}`)
  }
  field('type', a.type, b.type)
  field('mode', a.mode, b.mode, octal)
  field('uid', a.uid, b.uid)
  field('gid', a.gid, b.gid)
  field('size', a.size, b.size)
  field('mtime', a.mtimeNs, b.mtimeNs, fmtNs)
  if (a.rdevMajor !== b.rdevMajor || a.rdevMinor !== b.rdevMinor) {
    out.push(`${path}: rdev ${a.rdevMajor},${a.rdevMinor} != ${b.rdevMajor},${b.rdevMinor}`)
  }
  field('link target', a.linkTarget, b.linkTarget, JSON.stringify)
  const names = [...new Set([...Object.keys(a.xattrs), ...Object.keys(b.xattrs)])].sort(byteOrder)
  for (const name of names) {
    const x = a.xattrs[name]
    const y = b.xattrs[name]
    if (x !== y) out.push(`${path}: xattr ${name} ${fmtHex(x)} != ${fmtHex(y)}`)
  }
  field('sha256', a.sha256, b.sha256)
  field('nlink', a.nlink, b.nlink)
  field('hardlinks', a.inodeGroup, b.inodeGroup, JSON.stringify)
  return out
}

/** Every difference between two snapshots as one readable line each (`only in a: x`, `x: mode 0755 != 0700`); empty when equal. */
export function diffTrees(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>): string[] {
  const out: string[] = []
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort(byteOrder)
  for (const p of paths) {
    const x = a.get(p)
    const y = b.get(p)
    if (x === undefined) out.push(`only in b: ${p}`)
    else if (y === undefined) out.push(`only in a: ${p}`)
    else out.push(...diffEntry(p, x, y))
  }
  return out
}

const MAX_LISTED = 50

/** Throws an AssertionError listing (up to 50 of) the differences when the snapshots differ. */
export function assertSameTree(a: Map<string, TreeEntry>, b: Map<string, TreeEntry>, msg?: string): void {
  const diffs = diffTrees(a, b)
  if (diffs.length === 0) return
  const shown = diffs.slice(0, MAX_LISTED).map((d) => `  ${d}`)
  if (diffs.length > MAX_LISTED) shown.push(`  ... and ${diffs.length - MAX_LISTED} more`)
  const head = `${msg ?? 'trees differ'} (${diffs.length} difference${diffs.length === 1 ? '' : 's'}):`
  throw new AssertionError({ message: `${head}\n${shown.join('\n')}`, operator: 'assertSameTree' })
}

/**
 * A snapshot as a layer tar in dockerd's headers carries it (the default
 * export style, archive/export.ts): mtimes truncated to the second, no
 * xattr but security.capability. For comparing a tree with one rebuilt
 * from a driver's diff.
 */
export function asDockerLayerCarries(snapshot: Map<string, TreeEntry>): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>()
  for (const [path, e] of snapshot) {
    const cap = e.xattrs['security.capability']
    const sec = e.mtimeNs >= 0n ? e.mtimeNs / 1_000_000_000n : -((-e.mtimeNs + 999_999_999n) / 1_000_000_000n)
    out.set(path, { ...e, mtimeNs: sec * 1_000_000_000n, xattrs: cap === undefined ? {} : { 'security.capability': cap } })
  }
  return out
}
