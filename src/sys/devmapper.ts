/**
 * device-mapper through its ioctls on /dev/mapper/control (linux/dm-ioctl.h),
 * what libdevmapper does underneath, without the library: strata needs a
 * dozen calls, and libdevmapper's udev cookies are what a machine without
 * udev cannot have (dockerd's dm.override_udev_sync_check). Here there are
 * no cookies: after a device is resumed its /dev/mapper/<name> node is made
 * (mknod) when udev has not made one, and removed with the device, as
 * libdevmapper does in its "no udev" mode.
 *
 * Every call is one ioctl on one buffer: struct dm_ioctl (312 bytes) then
 * the call's data. Layout, checked against the kernel headers
 * (sizeof(struct dm_ioctl) = 312, DM_VERSION = 0xc138fd00):
 *
 *   0  u32 version[3]    4.x.y: the caller's interface version in, the kernel's out
 *  12  u32 data_size     the whole buffer
 *  16  u32 data_start    where the data follows the header (312)
 *  20  u32 target_count
 *  24  s32 open_count
 *  28  u32 flags
 *  32  u32 event_nr      (libdevmapper's udev cookie; 0 here)
 *  36  u32 padding
 *  40  u64 dev           major/minor, kernel encoding
 *  48  char name[128]
 * 176  char uuid[129]
 * 305  char data[7]
 *
 * A table target (struct dm_target_spec, 40 bytes) is u64 sector_start,
 * u64 length, s32 status, u32 next, char target_type[16], then its
 * parameter string. Errors are SysErrors carrying the errno; ENXIO means
 * "no such device", EBUSY "device open", EEXIST "name or thin id taken".
 */
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, statSync, unlinkSync } from 'node:fs'
import { constants } from 'node:os'
import { constants as fsConstants } from 'node:fs'
import { libc, check, SysError } from './libc.js'
import { S_IFBLK, S_IFCHR, major as devMajor, minor as devMinor, mknod } from './fs.js'

const ioctlC = libc.func('int ioctl(int fd, unsigned long request, _Inout_ void *arg)')

export const DM_CONTROL = '/dev/mapper/control'
export const DM_DIR = '/dev/mapper'

const DM_IOCTL_SIZE = 312
const DM_TARGET_SPEC_SIZE = 40
const DM_NAME_LEN = 128
const DM_UUID_LEN = 129
const DM_MAX_TYPE_NAME = 16

/** _IOWR(0xfd, nr, struct dm_ioctl): every dm command has this shape. */
function dmIoctl(nr: number): number {
  return 3 * 2 ** 30 + DM_IOCTL_SIZE * 2 ** 16 + 0xfd * 2 ** 8 + nr
}

const DM_VERSION = dmIoctl(0)
const DM_LIST_DEVICES = dmIoctl(2)
const DM_DEV_CREATE = dmIoctl(3)
const DM_DEV_REMOVE = dmIoctl(4)
const DM_DEV_SUSPEND = dmIoctl(6)
const DM_DEV_STATUS = dmIoctl(7)
const DM_TABLE_LOAD = dmIoctl(9)
const DM_TABLE_DEPS = dmIoctl(11)
const DM_TABLE_STATUS = dmIoctl(12)
const DM_LIST_VERSIONS = dmIoctl(13)
const DM_TARGET_MSG = dmIoctl(14)

const COMMAND_NAMES = new Map<number, string>([
  [DM_VERSION, 'DM_VERSION'],
  [DM_LIST_DEVICES, 'DM_LIST_DEVICES'],
  [DM_DEV_CREATE, 'DM_DEV_CREATE'],
  [DM_DEV_REMOVE, 'DM_DEV_REMOVE'],
  [DM_DEV_SUSPEND, 'DM_DEV_SUSPEND'],
  [DM_DEV_STATUS, 'DM_DEV_STATUS'],
  [DM_TABLE_LOAD, 'DM_TABLE_LOAD'],
  [DM_TABLE_DEPS, 'DM_TABLE_DEPS'],
  [DM_TABLE_STATUS, 'DM_TABLE_STATUS'],
  [DM_LIST_VERSIONS, 'DM_LIST_VERSIONS'],
  [DM_TARGET_MSG, 'DM_TARGET_MSG'],
])

export const DM_READONLY_FLAG = 1 << 0
export const DM_SUSPEND_FLAG = 1 << 1
export const DM_STATUS_TABLE_FLAG = 1 << 4
export const DM_ACTIVE_PRESENT_FLAG = 1 << 5
export const DM_INACTIVE_PRESENT_FLAG = 1 << 6
export const DM_BUFFER_FULL_FLAG = 1 << 8
export const DM_NOFLUSH_FLAG = 1 << 11
export const DM_DEFERRED_REMOVE = 1 << 17

/** The interface version strata speaks: major 4 (the only one there is); minor 0 asks for nothing newer. */
const INTERFACE = [4, 0, 0] as const

/** One target line of a table: `start length type params`, in 512-byte sectors. */
export interface DmTarget {
  start: bigint
  length: bigint
  type: string
  params: string
}

/** What DM_DEV_STATUS tells about a device. */
export interface DmDeviceInfo {
  name: string
  /** Its block device (kernel encoding of major/minor). */
  major: number
  minor: number
  openCount: number
  eventNr: number
  targetCount: number
  suspended: boolean
  readOnly: boolean
  /** A live table is loaded. */
  activePresent: boolean
  /** A table is loaded but not yet resumed into use. */
  inactivePresent: boolean
  /** DM_DEV_REMOVE with DM_DEFERRED_REMOVE is pending: the device goes when its last opener closes it. */
  deferredRemove: boolean
}

/** The misc device numbers of /dev/mapper/control (MAPPER_CTRL_MINOR). */
const DM_CONTROL_DEV = [10, 236] as const

/** Opens /dev/mapper/control, making the node when dm-mod was just loaded and devtmpfs has not made it yet. */
function openControl(): number {
  if (!existsSync(DM_CONTROL)) {
    mkdirSync(DM_DIR, { recursive: true, mode: 0o755 })
    try {
      mknod(DM_CONTROL, S_IFCHR | 0o600, DM_CONTROL_DEV[0], DM_CONTROL_DEV[1])
    } catch (err) {
      if (!(err instanceof SysError && err.code === 'EEXIST')) throw err
    }
  }
  return openSync(DM_CONTROL, fsConstants.O_RDWR)
}

/** Runs one dm ioctl on device `name` (null: none) with `data` after the header; returns the whole buffer as the kernel left it. */
function call(cmd: number, name: string | null, opts: { flags?: number; uuid?: string; targetCount?: number; data?: Buffer; bufferSize?: number; what?: string } = {}): Buffer {
  let size = Math.max(opts.bufferSize ?? 16 * 1024, DM_IOCTL_SIZE + (opts.data?.length ?? 0) + 8)
  const syscall = `ioctl(${COMMAND_NAMES.get(cmd) ?? cmd})`
  const control = openControl()
  try {
    for (;;) {
      const buf = Buffer.alloc(size)
      buf.writeUInt32LE(INTERFACE[0], 0)
      buf.writeUInt32LE(INTERFACE[1], 4)
      buf.writeUInt32LE(INTERFACE[2], 8)
      buf.writeUInt32LE(size, 12)
      buf.writeUInt32LE(DM_IOCTL_SIZE, 16)
      buf.writeUInt32LE(opts.targetCount ?? 0, 20)
      buf.writeUInt32LE(opts.flags ?? 0, 28)
      if (name !== null) {
        const bytes = Buffer.from(name, 'utf8')
        if (bytes.length >= DM_NAME_LEN || name === '' || name.includes('/') || name.includes('\0')) {
          throw new SysError(syscall, constants.errno.EINVAL, name)
        }
        bytes.copy(buf, 48)
      }
      if (opts.uuid !== undefined) {
        const bytes = Buffer.from(opts.uuid, 'utf8')
        if (bytes.length >= DM_UUID_LEN) throw new SysError(syscall, constants.errno.EINVAL, opts.uuid)
        bytes.copy(buf, 176)
      }
      if (opts.data !== undefined) opts.data.copy(buf, DM_IOCTL_SIZE)
      check(ioctlC(control, cmd, buf), syscall, opts.what ?? name ?? DM_CONTROL)
      // The kernel says when the answer did not fit: ask again with more room.
      if ((buf.readUInt32LE(28) & DM_BUFFER_FULL_FLAG) !== 0 && size < 64 * 1024 * 1024) {
        size *= 4
        continue
      }
      return buf
    }
  } finally {
    closeSync(control)
  }
}

/** A NUL-terminated string field. */
function cString(buf: Buffer, offset: number, max: number): string {
  const field = buf.subarray(offset, offset + max)
  const nul = field.indexOf(0)
  return field.subarray(0, nul === -1 ? field.length : nul).toString('utf8')
}

/** The kernel's dev_t encoding (new_encode_dev) to major/minor. */
function decodeDev(dev: bigint): { major: number; minor: number } {
  return { major: devMajor(dev), minor: devMinor(dev) }
}

/** True when device-mapper answers here (dm-mod loaded: /proc/misc lists device-mapper). */
export function dmAvailable(): boolean {
  try {
    dmDriverVersion()
    return true
  } catch {
    return false
  }
}

/** DM_VERSION: the kernel's device-mapper interface version, e.g. [4, 47, 0]. */
export function dmDriverVersion(): [number, number, number] {
  const buf = call(DM_VERSION, null)
  return [buf.readUInt32LE(0), buf.readUInt32LE(4), buf.readUInt32LE(8)]
}

/** DM_LIST_VERSIONS: the target types the kernel has loaded, with their versions ("thin-pool" → [1, 22, 0]). */
export function dmTargetVersions(): Map<string, [number, number, number]> {
  const buf = call(DM_LIST_VERSIONS, null)
  const out = new Map<string, [number, number, number]>()
  let at = DM_IOCTL_SIZE
  for (;;) {
    // struct dm_target_versions: u32 next, u32 version[3], char name[]
    const next = buf.readUInt32LE(at)
    const name = cString(buf, at + 16, buf.length - at - 16)
    if (name !== '') out.set(name, [buf.readUInt32LE(at + 4), buf.readUInt32LE(at + 8), buf.readUInt32LE(at + 12)])
    if (next === 0) break
    at += next
  }
  return out
}

/** DM_LIST_DEVICES: the names of every device-mapper device, with their major/minor. */
export function dmListDevices(): Array<{ name: string; major: number; minor: number }> {
  const buf = call(DM_LIST_DEVICES, null)
  const out: Array<{ name: string; major: number; minor: number }> = []
  if (buf.readUInt32LE(12) <= DM_IOCTL_SIZE) return out
  let at = DM_IOCTL_SIZE
  for (;;) {
    // struct dm_name_list: u64 dev, u32 next, char name[]
    const dev = buf.readBigUInt64LE(at)
    const next = buf.readUInt32LE(at + 8)
    if (dev === 0n && next === 0) break // an empty list has one zeroed entry
    out.push({ name: cString(buf, at + 12, buf.length - at - 12), ...decodeDev(dev) })
    if (next === 0) break
    at += next
  }
  return out
}

function parseInfo(name: string, buf: Buffer): DmDeviceInfo {
  const flags = buf.readUInt32LE(28)
  return {
    name: cString(buf, 48, DM_NAME_LEN) || name,
    ...decodeDev(buf.readBigUInt64LE(40)),
    openCount: buf.readInt32LE(24),
    eventNr: buf.readUInt32LE(32),
    targetCount: buf.readUInt32LE(20),
    suspended: (flags & DM_SUSPEND_FLAG) !== 0,
    readOnly: (flags & DM_READONLY_FLAG) !== 0,
    activePresent: (flags & DM_ACTIVE_PRESENT_FLAG) !== 0,
    inactivePresent: (flags & DM_INACTIVE_PRESENT_FLAG) !== 0,
    deferredRemove: (flags & DM_DEFERRED_REMOVE) !== 0,
  }
}

/** DM_DEV_STATUS: the device's state, or undefined when there is no device of that name (ENXIO). */
export function dmDeviceInfo(name: string): DmDeviceInfo | undefined {
  try {
    return parseInfo(name, call(DM_DEV_STATUS, name))
  } catch (err) {
    if (err instanceof SysError && err.code === 'ENXIO') return undefined
    throw err
  }
}

/** DM_DEV_CREATE: a new device with no table (it does nothing until a table is loaded and resumed). */
export function dmCreateDevice(name: string, uuid?: string): DmDeviceInfo {
  return parseInfo(name, call(DM_DEV_CREATE, name, uuid === undefined ? {} : { uuid }))
}

/** The table payload: target specs, each followed by its parameter string, 8-byte aligned. */
function encodeTable(targets: DmTarget[]): Buffer {
  const parts: Buffer[] = []
  for (const t of targets) {
    if (Buffer.byteLength(t.type) >= DM_MAX_TYPE_NAME) throw new SysError('ioctl(DM_TABLE_LOAD)', constants.errno.EINVAL, t.type)
    const params = Buffer.from(`${t.params}\0`, 'utf8')
    const len = Math.ceil((DM_TARGET_SPEC_SIZE + params.length) / 8) * 8
    const spec = Buffer.alloc(len)
    spec.writeBigUInt64LE(t.start, 0)
    spec.writeBigUInt64LE(t.length, 8)
    spec.writeUInt32LE(len, 20) // next: from this spec to the following one
    spec.write(t.type, 24, 'utf8')
    params.copy(spec, DM_TARGET_SPEC_SIZE)
    parts.push(spec)
  }
  return Buffer.concat(parts)
}

/** DM_TABLE_LOAD: loads `targets` as the device's inactive table (DM_DEV_SUSPEND without the suspend flag makes it live). */
export function dmLoadTable(name: string, targets: DmTarget[], readOnly = false): void {
  call(DM_TABLE_LOAD, name, { data: encodeTable(targets), targetCount: targets.length, flags: readOnly ? DM_READONLY_FLAG : 0 })
}

/** DM_DEV_SUSPEND with the suspend flag: I/O to the device is held (and flushed first unless `noFlush`). */
export function dmSuspend(name: string, noFlush = false): void {
  call(DM_DEV_SUSPEND, name, { flags: DM_SUSPEND_FLAG | (noFlush ? DM_NOFLUSH_FLAG : 0) })
}

/** DM_DEV_SUSPEND without the suspend flag: resumes the device, making a loaded table live; then makes its /dev/mapper node. */
export function dmResume(name: string): DmDeviceInfo {
  const info = parseInfo(name, call(DM_DEV_SUSPEND, name))
  ensureDeviceNode(name, info.major, info.minor)
  return info
}

/**
 * DM_DEV_REMOVE: removes the device (EBUSY while it is open). With
 * `deferred`, an open device is marked to go when its last opener closes
 * it instead. Its /dev/mapper node goes too when strata made it.
 */
export function dmRemoveDevice(name: string, deferred = false): void {
  const info = dmDeviceInfo(name)
  call(DM_DEV_REMOVE, name, { flags: deferred ? DM_DEFERRED_REMOVE : 0 })
  if (info !== undefined && dmDeviceInfo(name) === undefined) removeDeviceNode(name, info.major, info.minor)
}

/** Cancels a pending deferred removal (the kernel's "@cancel_deferred_remove" message). ENXIO when the device is gone already. */
export function dmCancelDeferredRemove(name: string): void {
  dmMessage(name, '@cancel_deferred_remove')
}

/** DM_TARGET_MSG: sends `message` to the device's target at `sector` (a thin pool takes "create_thin 1", "delete 1", ...). */
export function dmMessage(name: string, message: string, sector = 0n): string {
  // struct dm_target_msg: u64 sector, char message[]
  const msg = Buffer.from(`${message}\0`, 'utf8')
  const data = Buffer.alloc(8 + msg.length)
  data.writeBigUInt64LE(sector, 0)
  msg.copy(data, 8)
  const buf = call(DM_TARGET_MSG, name, { data, what: `${name}: ${message}` })
  // Some messages answer (DM_DATA_OUT_FLAG, bit 16): the reply is a string at data_start.
  if ((buf.readUInt32LE(28) & (1 << 16)) === 0) return ''
  return cString(buf, buf.readUInt32LE(16), buf.length - buf.readUInt32LE(16))
}

function readTargets(buf: Buffer): DmTarget[] {
  const count = buf.readUInt32LE(20)
  const start = buf.readUInt32LE(16)
  const out: DmTarget[] = []
  let at = start
  for (let i = 0; i < count; i++) {
    const next = buf.readUInt32LE(at + 20)
    out.push({
      start: buf.readBigUInt64LE(at),
      length: buf.readBigUInt64LE(at + 8),
      type: cString(buf, at + 24, DM_MAX_TYPE_NAME),
      params: cString(buf, at + DM_TARGET_SPEC_SIZE, buf.length - at - DM_TARGET_SPEC_SIZE),
    })
    // On the way out, `next` counts from the start of the data, not from this spec.
    at = start + next
  }
  return out
}

/** DM_TABLE_STATUS: each target's status line ("0 2097152 thin-pool 1 12/4096 0/16384 - rw ..."). */
export function dmStatus(name: string): DmTarget[] {
  return readTargets(call(DM_TABLE_STATUS, name))
}

/** DM_TABLE_STATUS with DM_STATUS_TABLE_FLAG: the live table itself, as loaded (params with devices as major:minor). */
export function dmTable(name: string): DmTarget[] {
  return readTargets(call(DM_TABLE_STATUS, name, { flags: DM_STATUS_TABLE_FLAG }))
}

/** DM_TABLE_DEPS: the block devices the live table uses, as major/minor. */
export function dmDeps(name: string): Array<{ major: number; minor: number }> {
  const buf = call(DM_TABLE_DEPS, name)
  const at = buf.readUInt32LE(16)
  const count = buf.readUInt32LE(at)
  const out: Array<{ major: number; minor: number }> = []
  for (let i = 0; i < count; i++) out.push(decodeDev(buf.readBigUInt64LE(at + 8 + i * 8)))
  return out
}

/** `/dev/mapper/<name>` */
export function dmDevicePath(name: string): string {
  return `${DM_DIR}/${name}`
}

/**
 * Makes `/dev/mapper/<name>` a block node for major:minor when it is
 * missing or points elsewhere (a stale node of an earlier device of the
 * same name). A node or udev symlink that already resolves to the device
 * is left alone.
 */
export function ensureDeviceNode(name: string, major: number, minor: number): void {
  const path = dmDevicePath(name)
  try {
    const st = statSync(path)
    if (st.isBlockDevice() && devMajor(st.rdev) === major && devMinor(st.rdev) === minor) return
    unlinkSync(path)
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') {
      // A dangling udev symlink: replace it.
      try {
        lstatSync(path)
        unlinkSync(path)
      } catch {
        // nothing there
      }
    }
  }
  mkdirSync(DM_DIR, { recursive: true, mode: 0o755 })
  try {
    mknod(path, S_IFBLK | 0o600, major, minor)
  } catch (err) {
    if (!(err instanceof SysError && err.code === 'EEXIST')) throw err
  }
}

/** Removes `/dev/mapper/<name>` if it is a block node of major:minor (udev's symlinks are udev's to remove). */
export function removeDeviceNode(name: string, major: number, minor: number): void {
  const path = dmDevicePath(name)
  try {
    const st = lstatSync(path)
    if (st.isBlockDevice() && devMajor(st.rdev) === major && devMinor(st.rdev) === minor) unlinkSync(path)
  } catch {
    // already gone
  }
}
