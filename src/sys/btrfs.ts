/**
 * btrfs ioctls (linux/btrfs.h): subvolume create, snapshot, destroy and
 * subvolume info. Raw and fd-based like the other wrappers here; the btrfs
 * graph driver builds the path-level operations on top.
 *
 * Request numbers are _IOC(dir, 0x94, nr, sizeof arg) spelled out, checked
 * against the kernel headers of the build host:
 *   _IOW(0x94, 14, vol_args[4096])     SUBVOL_CREATE   0x5000940e
 *   _IOW(0x94, 15, vol_args[4096])     SNAP_DESTROY    0x5000940f
 *   _IOW(0x94, 23, vol_args_v2[4096])  SNAP_CREATE_V2  0x50009417
 *   _IOR(0x94, 60, subvol_info[504])   GET_SUBVOL_INFO 0x81f8943c
 */
import { constants } from 'node:os'
import { libc, check, SysError } from './libc.js'

// One prototype per direction: koffi copies an _Inout_ buffer back after
// the call, which the read-style ioctls need and the write-style ones do not.
const ioctlInC = libc.func('int ioctl(int fd, unsigned long request, const void *arg)')
const ioctlOutC = libc.func('int ioctl(int fd, unsigned long request, _Inout_ void *arg)')

const BTRFS_IOCTL_MAGIC = 0x94
const IOC_WRITE = 1
const IOC_READ = 2

function ioc(dir: number, nr: number, size: number): number {
  // dir in bits 30-31, size in 16-29, type in 8-15, nr in 0-7. Multiplying
  // instead of shifting keeps the result an unsigned JS number (bit 31 set).
  return dir * 2 ** 30 + size * 2 ** 16 + BTRFS_IOCTL_MAGIC * 2 ** 8 + nr
}

/** sizeof(struct btrfs_ioctl_vol_args): __s64 fd + char name[4088]. */
const VOL_ARGS_SIZE = 4096
/** sizeof(struct btrfs_ioctl_vol_args_v2): fd, transid, flags, 32-byte union, name[4040] at offset 56. */
const VOL_ARGS_V2_SIZE = 4096
const VOL_ARGS_V2_NAME_OFFSET = 56
/** sizeof(struct btrfs_ioctl_get_subvol_info_args). */
const SUBVOL_INFO_SIZE = 504

export const BTRFS_IOC_SUBVOL_CREATE = ioc(IOC_WRITE, 14, VOL_ARGS_SIZE)
export const BTRFS_IOC_SNAP_DESTROY = ioc(IOC_WRITE, 15, VOL_ARGS_SIZE)
export const BTRFS_IOC_SNAP_CREATE_V2 = ioc(IOC_WRITE, 23, VOL_ARGS_V2_SIZE)
export const BTRFS_IOC_GET_SUBVOL_INFO = ioc(IOC_READ, 60, SUBVOL_INFO_SIZE)

/** The inode number of every subvolume's root directory: how a subvolume is recognised by stat alone. */
export const BTRFS_FIRST_FREE_OBJECTID = 256
/** vol_args_v2 flag: the snapshot is read-only. */
export const BTRFS_SUBVOL_RDONLY = 1n << 1n
/** A btrfs directory entry name is at most 255 bytes (BTRFS_NAME_LEN). */
export const BTRFS_NAME_MAX = 255

/**
 * The name bytes (NUL-terminated) for an args struct. The kernel rejects a
 * bad name too, but with errnos that do not say which rule was broken, and
 * a '/' would be silently taken as a path by nothing at all: refuse here.
 */
function nameBytes(name: string, syscall: string, path?: string): Buffer {
  const bytes = Buffer.from(name, 'utf8')
  if (bytes.length > BTRFS_NAME_MAX) throw new SysError(syscall, constants.errno.ENAMETOOLONG, path)
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new SysError(syscall, constants.errno.EINVAL, path)
  }
  return bytes
}

/** BTRFS_IOC_SUBVOL_CREATE: creates the empty subvolume `name` in the directory open as `dirFd`. */
export function btrfsSubvolCreate(dirFd: number, name: string, path?: string): void {
  const syscall = 'ioctl(BTRFS_IOC_SUBVOL_CREATE)'
  const args = Buffer.alloc(VOL_ARGS_SIZE)
  nameBytes(name, syscall, path).copy(args, 8)
  check(ioctlInC(dirFd, BTRFS_IOC_SUBVOL_CREATE, args), syscall, path)
}

/**
 * BTRFS_IOC_SNAP_CREATE_V2: snapshots the subvolume open as `srcFd` as
 * `name` in the directory open as `destDirFd`; writable unless `readOnly`.
 */
export function btrfsSnapshotCreate(destDirFd: number, srcFd: number, name: string, readOnly = false, path?: string): void {
  const syscall = 'ioctl(BTRFS_IOC_SNAP_CREATE_V2)'
  const args = Buffer.alloc(VOL_ARGS_V2_SIZE)
  args.writeBigInt64LE(BigInt(srcFd), 0)
  args.writeBigUInt64LE(readOnly ? BTRFS_SUBVOL_RDONLY : 0n, 16)
  nameBytes(name, syscall, path).copy(args, VOL_ARGS_V2_NAME_OFFSET)
  check(ioctlInC(destDirFd, BTRFS_IOC_SNAP_CREATE_V2, args), syscall, path)
}

/**
 * BTRFS_IOC_SNAP_DESTROY: deletes the subvolume (or snapshot) `name` in the
 * directory open as `dirFd`. Fails with ENOTEMPTY when it holds nested
 * subvolumes and EINVAL when `name` is a plain directory.
 */
export function btrfsSubvolDestroy(dirFd: number, name: string, path?: string): void {
  const syscall = 'ioctl(BTRFS_IOC_SNAP_DESTROY)'
  const args = Buffer.alloc(VOL_ARGS_SIZE)
  nameBytes(name, syscall, path).copy(args, 8)
  check(ioctlInC(dirFd, BTRFS_IOC_SNAP_DESTROY, args), syscall, path)
}

/** What BTRFS_IOC_GET_SUBVOL_INFO tells about a subvolume. */
export interface BtrfsSubvolInfo {
  /** The subvolume id (its tree id). */
  treeId: bigint
  /** Its name in the directory that holds it. */
  name: string
  /** The id of the subvolume holding it. */
  parentId: bigint
  generation: bigint
  flags: bigint
  /** Its UUID, as btrfs subvolume show prints it. */
  uuid: string
  /** For a snapshot, the UUID of the subvolume it was taken of; null otherwise. */
  parentUuid: string | null
  receivedUuid: string | null
  /** The transaction that created it. */
  otransid: bigint
  /** When it was created (for a snapshot: when it was taken), seconds since the epoch. */
  otimeSec: bigint
  /** The nanoseconds of that time. */
  otimeNsec: number
}

function uuidAt(buf: Buffer, offset: number): string | null {
  const b = buf.subarray(offset, offset + 16)
  if (b.every((x) => x === 0)) return null
  const h = b.toString('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/**
 * BTRFS_IOC_GET_SUBVOL_INFO (Linux 4.18+) on an fd inside a subvolume:
 * describes the subvolume that contains it. Unprivileged, unlike the tree
 * search dockerd uses for the same facts.
 */
export function btrfsSubvolInfo(fd: number, path?: string): BtrfsSubvolInfo {
  const args = Buffer.alloc(SUBVOL_INFO_SIZE)
  check(ioctlOutC(fd, BTRFS_IOC_GET_SUBVOL_INFO, args), 'ioctl(BTRFS_IOC_GET_SUBVOL_INFO)', path)
  const nameField = args.subarray(8, 8 + BTRFS_NAME_MAX + 1)
  const nul = nameField.indexOf(0)
  return {
    treeId: args.readBigUInt64LE(0),
    name: nameField.subarray(0, nul === -1 ? nameField.length : nul).toString('utf8'),
    parentId: args.readBigUInt64LE(264),
    generation: args.readBigUInt64LE(280),
    flags: args.readBigUInt64LE(288),
    uuid: uuidAt(args, 296) ?? '',
    parentUuid: uuidAt(args, 312),
    receivedUuid: uuidAt(args, 328),
    otransid: args.readBigUInt64LE(352),
    otimeSec: args.readBigUInt64LE(392),
    otimeNsec: args.readUInt32LE(400),
  }
}
