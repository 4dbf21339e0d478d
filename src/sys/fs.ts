/** File calls Node's fs lacks: mknod, nanosecond times, renameat2, FICLONE, statfs. */
import { statfsSync } from 'node:fs'
import { libc, check } from './libc.js'

const mknodC = libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)')
const utimensatC = libc.func('int utimensat(int dirfd, const char *path, const void *times, int flags)')
const futimensC = libc.func('int futimens(int fd, const void *times)')
const renameat2C = libc.func('int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)')
const ioctlIntC = libc.func('int ioctl(int fd, unsigned long request, int arg)')
const statfsC = libc.func('int statfs(const char *path, _Out_ void *buf)')
const syncfsC = libc.func('int syncfs(int fd)')

const AT_FDCWD = -100
const AT_SYMLINK_NOFOLLOW = 0x100
const FICLONE = 0x40049409

export const S_IFMT = 0o170000
export const S_IFCHR = 0o020000
export const S_IFBLK = 0o060000
export const S_IFIFO = 0o010000
export const S_IFREG = 0o100000

/** Linux's dev_t encoding of major/minor (the glibc makedev layout). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major)
  const mi = BigInt(minor)
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n)
}

export function major(dev: number | bigint): number {
  const d = BigInt(dev)
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn))
}

export function minor(dev: number | bigint): number {
  const d = BigInt(dev)
  return Number((d & 0xffn) | ((d >> 12n) & 0xffffff00n))
}

/** mknod(2): `mode` includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO). */
export function mknod(path: string, mode: number, devMajor = 0, devMinor = 0): void {
  check(mknodC(path, mode, makedev(devMajor, devMinor)), 'mknod', path)
}

/** A time with nanosecond precision: Node's fs.utimes rounds through a double. */
export interface Timespec {
  sec: number
  nsec: number
}

/** Sets atime and mtime of `path` itself (not a symlink's target), to the nanosecond. */
export function lutimens(path: string, atime: Timespec, mtime: Timespec): void {
  check(utimensatC(AT_FDCWD, path, timespecPair(atime, mtime), AT_SYMLINK_NOFOLLOW), 'utimensat', path)
}

/** Sets atime and mtime of an open file, to the nanosecond. */
export function futimens(fd: number, atime: Timespec, mtime: Timespec, path?: string): void {
  check(futimensC(fd, timespecPair(atime, mtime)), 'futimens', path)
}

/**
 * The struct timespec[2] the calls above take, in one buffer reused by every
 * call (they are synchronous, and each thread has its own): a layer apply
 * sets the times of every file, and a fresh buffer and four BigInts each
 * time were a visible part of its per-file cost.
 */
const TIMES = Buffer.alloc(32)

function timespecPair(atime: Timespec, mtime: Timespec): Buffer {
  putInt64(TIMES, 0, atime.sec)
  putInt64(TIMES, 8, atime.nsec)
  putInt64(TIMES, 16, mtime.sec)
  putInt64(TIMES, 24, mtime.nsec)
  return TIMES
}

/** A safe integer as a little-endian int64 (two's complement), without BigInt. */
function putInt64(buf: Buffer, at: number, value: number): void {
  if (!Number.isSafeInteger(value)) throw new RangeError(`Time field ${value} is not a whole number of seconds or nanoseconds`)
  const hi = Math.floor(value / 0x1_0000_0000)
  buf.writeUInt32LE(value - hi * 0x1_0000_0000, at)
  buf.writeInt32LE(hi, at + 4)
}

export const RENAME_NOREPLACE = 1
export const RENAME_EXCHANGE = 2
export const RENAME_WHITEOUT = 4

/** renameat2(2) relative to the working directory, e.g. RENAME_NOREPLACE to publish without clobbering. */
export function renameat2(oldPath: string, newPath: string, flags: number): void {
  check(renameat2C(AT_FDCWD, oldPath, AT_FDCWD, newPath, flags), 'renameat2', `${oldPath} -> ${newPath}`)
}

/** ioctl(FICLONE): makes `destFd` share `srcFd`'s extents (btrfs, xfs with reflink). */
export function ficlone(destFd: number, srcFd: number, path?: string): void {
  check(ioctlIntC(destFd, FICLONE, srcFd), 'ioctl(FICLONE)', path)
}

export interface StatfsResult {
  /** f_type, the filesystem magic (e.g. 0xEF53 ext4, 0x9123683E btrfs, 0x794C7630 overlay). */
  type: number
  blockSize: number
  blocks: bigint
  blocksFree: bigint
  blocksAvailable: bigint
  files: bigint
  filesFree: bigint
  nameMax: number
  flags: number
}

export function statfs(path: string): StatfsResult {
  const buf = Buffer.alloc(120)
  check(statfsC(path, buf), 'statfs', path)
  return {
    type: Number(buf.readBigInt64LE(0)) >>> 0,
    blockSize: Number(buf.readBigInt64LE(8)),
    blocks: buf.readBigUInt64LE(16),
    blocksFree: buf.readBigUInt64LE(24),
    blocksAvailable: buf.readBigUInt64LE(32),
    files: buf.readBigUInt64LE(40),
    filesFree: buf.readBigUInt64LE(48),
    nameMax: Number(buf.readBigInt64LE(64)),
    flags: Number(buf.readBigInt64LE(80)),
  }
}

/**
 * statfs(2)'s f_type alone, through Node's own fs.statfsSync: the graph
 * drivers' open and probe ask for it on every command, and koffi (loaded
 * on the first libc call) would cost a read-only command ~10 ms for it.
 */
export function statfsType(path: string): number {
  return Number(statfsSync(path, { bigint: true }).type & 0xffffffffn)
}

/** Well-known f_type values. */
export const FS_MAGIC: Record<string, number> = {
  ext4: 0xef53,
  btrfs: 0x9123683e,
  xfs: 0x58465342,
  tmpfs: 0x01021994,
  overlay: 0x794c7630,
  zfs: 0x2fc12fc1,
  nfs: 0x6969,
}

export function fsName(type: number): string {
  for (const [name, magic] of Object.entries(FS_MAGIC)) if (magic === type) return name
  return `0x${type.toString(16)}`
}


/**
 * syncfs(2) of the filesystem holding `fd`: writes back its dirty data and
 * reports a writeback error (EIO, ENOSPC) that happened since the fd was
 * opened, which a close never does.
 */
export function syncfs(fd: number, path?: string): void {
  check(syncfsC(fd), 'syncfs', path)
}
