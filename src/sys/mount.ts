/** mount(2), umount2(2) and the new mount API (fsopen, fsconfig, fsmount, move_mount). */
import { libc, check } from './libc.js'
import { faultPoint } from './faults.js'
import { closeSync } from 'node:fs'

const mountC = libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)')
const umount2C = libc.func('int umount2(const char *target, int flags)')
const syscallC = libc.func('long syscall(long number, ...)')

export const MS_RDONLY = 1
export const MS_NOSUID = 2
export const MS_NODEV = 4
export const MS_NOEXEC = 8
export const MS_REMOUNT = 32
export const MS_BIND = 4096
export const MS_REC = 16384
export const MS_PRIVATE = 1 << 18

export const MNT_FORCE = 1
export const MNT_DETACH = 2
export const UMOUNT_NOFOLLOW = 8

export function mount(source: string, target: string, fstype: string | null, flags: number, data: string | null): void {
  faultPoint('mount', target)
  check(mountC(source, target, fstype, flags, data), 'mount', target)
}

export function umount2(target: string, flags = 0): void {
  faultPoint('umount', target)
  check(umount2C(target, flags), 'umount2', target)
}

/**
 * Runs a libc call on libuv's thread pool (koffi's .async) and resolves
 * with its return value, or rejects with the SysError. koffi sets errno to
 * the call's own while its callback runs, so it is read there.
 *
 * Why: an unmount can wait for the kernel (an overlay's sync of its upper
 * filesystem, RCU grace periods) for milliseconds to seconds; called
 * synchronously it stops the whole event loop, which in `strata serve`
 * stalls every other request (bench/api.ts: docker create 2.12× dockerd,
 * most of it in the init layer's umount2).
 */
function callAsync(fn: { async: (...args: unknown[]) => void }, args: unknown[], syscall: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (err: unknown, ret: number | bigint) => {
      if (err !== null && err !== undefined) {
        reject(err as Error)
        return
      }
      try {
        resolve(check(ret, syscall, path))
      } catch (e) {
        reject(e as Error)
      }
    })
  })
}

/** mount(2) on the thread pool: the event loop runs meanwhile (see callAsync). */
export async function mountAsync(source: string, target: string, fstype: string | null, flags: number, data: string | null): Promise<void> {
  faultPoint('mount', target)
  await callAsync(mountC, [source, target, fstype, flags, data], 'mount', target)
}

/** umount2(2) on the thread pool: the event loop runs meanwhile (see callAsync). */
export async function umount2Async(target: string, flags = 0): Promise<void> {
  faultPoint('umount', target)
  await callAsync(umount2C, [target, flags], 'umount2', target)
}

// Syscall numbers of the new mount API are the same on every architecture
// (they were allocated after the tables were unified at 424).
const SYS_move_mount = 429
const SYS_fsopen = 430
const SYS_fsconfig = 431
const SYS_fsmount = 432

const FSOPEN_CLOEXEC = 1
const FSMOUNT_CLOEXEC = 1
const FSCONFIG_SET_FLAG = 0
const FSCONFIG_SET_STRING = 1
const FSCONFIG_CMD_CREATE = 6
const MOVE_MOUNT_F_EMPTY_PATH = 4
const AT_FDCWD = -100

/** One fsconfig step: a flag (`["ro"]`) or a key/value string (`["lowerdir+", "/a"]`). */
export type FsConfigOption = [key: string] | [key: string, value: string]

/**
 * Mounts a filesystem through the new mount API: fsopen → fsconfig (each
 * option in order) → FSCONFIG_CMD_CREATE → fsmount → move_mount onto
 * `target`. Unlike mount(2) there is no one-page limit on the options, which
 * is what lets overlayfs take 500 lower directories through `lowerdir+`.
 */
export function mountNewApi(fstype: string, target: string, options: FsConfigOption[], attrFlags = 0): void {
  const fsfd = check(syscallC(SYS_fsopen, 'str', fstype, 'uint', FSOPEN_CLOEXEC), 'fsopen', fstype)
  try {
    for (const [key, value] of options) {
      if (value === undefined) {
        check(syscallC(SYS_fsconfig, 'int', fsfd, 'uint', FSCONFIG_SET_FLAG, 'str', key, 'void *', null, 'int', 0), 'fsconfig', `${target}: ${key}`)
      } else {
        check(syscallC(SYS_fsconfig, 'int', fsfd, 'uint', FSCONFIG_SET_STRING, 'str', key, 'str', value, 'int', 0), 'fsconfig', `${target}: ${key}=${value}`)
      }
    }
    check(syscallC(SYS_fsconfig, 'int', fsfd, 'uint', FSCONFIG_CMD_CREATE, 'void *', null, 'void *', null, 'int', 0), 'fsconfig(create)', target)
    const mfd = check(syscallC(SYS_fsmount, 'int', fsfd, 'uint', FSMOUNT_CLOEXEC, 'uint', attrFlags), 'fsmount', target)
    try {
      check(syscallC(SYS_move_mount, 'int', mfd, 'str', '', 'int', AT_FDCWD, 'str', target, 'uint', MOVE_MOUNT_F_EMPTY_PATH), 'move_mount', target)
    } finally {
      closeSync(mfd)
    }
  } finally {
    closeSync(fsfd)
  }
}

