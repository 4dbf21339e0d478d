/**
 * Loop devices and block device calls through their ioctls (linux/loop.h,
 * linux/fs.h), as dockerd's pkg/loopback does: a free device from
 * /dev/loop-control, the file attached with LOOP_CONFIGURE (one call,
 * Linux 5.8+; LOOP_SET_FD + LOOP_SET_STATUS64 before that), and the
 * device found again from its backing file's device and inode.
 *
 *   LOOP_SET_FD        0x4c00     LOOP_CONFIGURE     0x4c0a (struct loop_config, 304 bytes)
 *   LOOP_CLR_FD        0x4c01     LOOP_CTL_GET_FREE  0x4c82
 *   LOOP_SET_STATUS64  0x4c04     BLKGETSIZE64       0x80081272
 *   LOOP_GET_STATUS64  0x4c05     BLKDISCARD         0x1277
 *
 * struct loop_info64 (232 bytes): u64 lo_device @0, lo_inode @8,
 * lo_rdevice @16, lo_offset @24, lo_sizelimit @32; u32 lo_number @40,
 * lo_encrypt_type @44, lo_encrypt_key_size @48, lo_flags @52;
 * lo_file_name[64] @56. In loop_config it follows u32 fd and u32
 * block_size (@8).
 */
import { closeSync, existsSync, openSync, readdirSync, statSync } from 'node:fs'
import { constants as fsConstants } from 'node:fs'
import { libc, check, SysError } from './libc.js'
import { S_IFBLK, S_IFCHR, mknod } from './fs.js'

const ioctlPtrC = libc.func('int ioctl(int fd, unsigned long request, _Inout_ void *arg)')
const ioctlIntC = libc.func('int ioctl(int fd, unsigned long request, unsigned long arg)')

const LOOP_SET_FD = 0x4c00
const LOOP_CLR_FD = 0x4c01
const LOOP_SET_STATUS64 = 0x4c04
const LOOP_GET_STATUS64 = 0x4c05
const LOOP_CONFIGURE = 0x4c0a
const LOOP_CTL_GET_FREE = 0x4c82
const BLKGETSIZE64 = 0x80081272
const BLKDISCARD = 0x1277

/** The loop device detaches itself when its last user closes it (dockerd attaches its pool's files this way). */
export const LO_FLAGS_AUTOCLEAR = 4
export const LO_FLAGS_READ_ONLY = 1

const LOOP_INFO64_SIZE = 232
const LOOP_CONFIG_SIZE = 304
const LO_NAME_SIZE = 64
const LOOP_MAJOR = 7

export const LOOP_CONTROL = '/dev/loop-control'
/** The misc device numbers of /dev/loop-control (LOOP_CTRL_MINOR). */
const LOOP_CONTROL_DEV = [10, 237] as const

/** Opens /dev/loop-control, making the node when the loop module was just loaded and devtmpfs has not made it yet. */
function openLoopControl(): number {
  if (!existsSync(LOOP_CONTROL)) {
    try {
      mknod(LOOP_CONTROL, S_IFCHR | 0o660, LOOP_CONTROL_DEV[0], LOOP_CONTROL_DEV[1])
    } catch (err) {
      if (!(err instanceof SysError && err.code === 'EEXIST')) throw err
    }
  }
  return openSync(LOOP_CONTROL, fsConstants.O_RDWR)
}

export interface LoopAttachOptions {
  /** LO_FLAGS_AUTOCLEAR and friends. */
  flags?: number
  readOnly?: boolean
}

/** An attached loop device, open. Close it (close()) when done; with autoclear that may detach it. */
export interface LoopDevice {
  path: string
  number: number
  fd: number
  close(): void
}

function loopInfo(file: string, flags: number): Buffer {
  const info = Buffer.alloc(LOOP_INFO64_SIZE)
  info.writeUInt32LE(flags, 52)
  // Truncated like losetup does: the name is only a label; the device and inode identify the file.
  Buffer.from(file, 'utf8').subarray(0, LO_NAME_SIZE - 1).copy(info, 56)
  return info
}

/** Opens /dev/loopN, making the node if this /dev lacks it (a minimal /dev without devtmpfs). */
function openLoop(n: number, readOnly: boolean): number {
  const path = `/dev/loop${n}`
  if (!existsSync(path)) {
    try {
      mknod(path, S_IFBLK | 0o660, LOOP_MAJOR, n)
    } catch (err) {
      if (!(err instanceof SysError && err.code === 'EEXIST')) throw err
    }
  }
  return openSync(path, (readOnly ? fsConstants.O_RDONLY : fsConstants.O_RDWR))
}

/**
 * Attaches `file` to a free loop device and returns it open. Another
 * process may take the same free device between LOOP_CTL_GET_FREE and the
 * attach (EBUSY): then the next free one is tried.
 */
export function attachLoopDevice(file: string, opts: LoopAttachOptions = {}): LoopDevice {
  const readOnly = opts.readOnly === true
  const flags = (opts.flags ?? 0) | (readOnly ? LO_FLAGS_READ_ONLY : 0)
  const backing = openSync(file, (readOnly ? fsConstants.O_RDONLY : fsConstants.O_RDWR))
  try {
    for (let attempt = 0; ; attempt++) {
      const control = openLoopControl()
      let n: number
      try {
        n = check(ioctlIntC(control, LOOP_CTL_GET_FREE, 0), 'ioctl(LOOP_CTL_GET_FREE)', LOOP_CONTROL)
      } finally {
        closeSync(control)
      }
      const fd = openLoop(n, readOnly)
      try {
        configure(fd, backing, file, flags, n)
        return { path: `/dev/loop${n}`, number: n, fd, close: () => closeSync(fd) }
      } catch (err) {
        closeSync(fd)
        if (err instanceof SysError && err.code === 'EBUSY' && attempt < 100) continue
        throw err
      }
    }
  } finally {
    closeSync(backing)
  }
}

function configure(fd: number, backing: number, file: string, flags: number, n: number): void {
  const config = Buffer.alloc(LOOP_CONFIG_SIZE)
  config.writeUInt32LE(backing, 0)
  loopInfo(file, flags).copy(config, 8)
  try {
    check(ioctlPtrC(fd, LOOP_CONFIGURE, config), 'ioctl(LOOP_CONFIGURE)', `/dev/loop${n}`)
    return
  } catch (err) {
    // Kernels before 5.8: the two-step attach.
    if (!(err instanceof SysError && (err.code === 'EINVAL' || err.code === 'ENOTTY'))) throw err
  }
  check(ioctlIntC(fd, LOOP_SET_FD, backing), 'ioctl(LOOP_SET_FD)', `/dev/loop${n}`)
  try {
    check(ioctlPtrC(fd, LOOP_SET_STATUS64, loopInfo(file, flags)), 'ioctl(LOOP_SET_STATUS64)', `/dev/loop${n}`)
  } catch (err) {
    ioctlIntC(fd, LOOP_CLR_FD, 0)
    throw err
  }
}

/** What LOOP_GET_STATUS64 says about an attached loop device. */
export interface LoopStatus {
  /** Device and inode of the backing file. */
  backingDev: bigint
  backingIno: bigint
  flags: number
  fileName: string
}

/** LOOP_GET_STATUS64 on an open loop device; undefined when nothing is attached (ENXIO). */
export function loopStatus(fd: number, path?: string): LoopStatus | undefined {
  const info = Buffer.alloc(LOOP_INFO64_SIZE)
  try {
    check(ioctlPtrC(fd, LOOP_GET_STATUS64, info), 'ioctl(LOOP_GET_STATUS64)', path)
  } catch (err) {
    if (err instanceof SysError && err.code === 'ENXIO') return undefined
    throw err
  }
  const name = info.subarray(56, 56 + LO_NAME_SIZE)
  const nul = name.indexOf(0)
  return {
    backingDev: info.readBigUInt64LE(0),
    backingIno: info.readBigUInt64LE(8),
    flags: info.readUInt32LE(52),
    fileName: name.subarray(0, nul === -1 ? name.length : nul).toString('utf8'),
  }
}

/**
 * The loop device `file` is attached to, opened, or undefined: every
 * /dev/loopN is asked for its backing file's device and inode (dockerd's
 * FindLoopDeviceFor does the same).
 */
export function findLoopDevice(file: string): LoopDevice | undefined {
  const st = statSync(file, { bigint: true })
  let names: string[]
  try {
    names = readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n))
  } catch {
    names = readdirSync('/dev').filter((n) => /^loop\d+$/.test(n))
  }
  for (const name of names) {
    const n = Number(name.slice(4))
    let fd: number
    try {
      fd = openLoop(n, true)
    } catch {
      continue
    }
    let keep = false
    try {
      const status = loopStatus(fd, `/dev/${name}`)
      if (status !== undefined && status.backingDev === st.dev && status.backingIno === st.ino) {
        keep = true
        return { path: `/dev/${name}`, number: n, fd, close: () => closeSync(fd) }
      }
    } finally {
      if (!keep) closeSync(fd)
    }
  }
  return undefined
}

/** BLKGETSIZE64: a block device's size in bytes. */
export function blockDeviceSize(fd: number, path?: string): bigint {
  const out = Buffer.alloc(8)
  check(ioctlPtrC(fd, BLKGETSIZE64, out), 'ioctl(BLKGETSIZE64)', path)
  return out.readBigUInt64LE(0)
}

/** BLKGETSIZE64 by path. */
export function blockDeviceSizeOf(path: string): bigint {
  const fd = openSync(path, fsConstants.O_RDONLY)
  try {
    return blockDeviceSize(fd, path)
  } finally {
    closeSync(fd)
  }
}

/** BLKDISCARD of the whole device at `path`: tells it (a thin device: its pool) that no block holds data any more. */
export function discardBlockDevice(path: string): void {
  const fd = openSync(path, fsConstants.O_RDWR)
  try {
    const size = blockDeviceSize(fd, path)
    const range = Buffer.alloc(16)
    range.writeBigUInt64LE(0n, 0)
    range.writeBigUInt64LE(size, 8)
    check(ioctlPtrC(fd, BLKDISCARD, range), 'ioctl(BLKDISCARD)', path)
  } finally {
    closeSync(fd)
  }
}
