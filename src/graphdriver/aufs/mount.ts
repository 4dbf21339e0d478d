/**
 * Mounting aufs branches, the two ways (see layout.ts for the options):
 *
 * - kernel: where /proc/filesystems lists aufs, mount(2) as dockerd's
 *   aufsMount does (one mount, then MS_REMOUNT `append:` batches), and
 *   dockerd's Unmount: `auplink <target> flush` (turns pseudo-links into
 *   real links; retried on EINVAL, logged and ignored otherwise, skipped
 *   when auplink is not installed), then umount(2), retried on EBUSY.
 *   dirperm1 is probed once per process as dockerd's useDirperm does, by
 *   mounting a scratch branch with it.
 * - fuse: fuse-overlayfs (the Debian package) over the same branches. It
 *   forks a daemon that serves the mount and exits when it is unmounted;
 *   the command returns once the mount is up. Unmounting is umount(2) as
 *   root (lazy when the mount is busy: the daemon then exits when the last
 *   user lets go).
 *
 * dockerd first runs `modprobe aufs`; strata does not load kernel modules,
 * it only reads /proc/filesystems.
 */
import { spawn } from 'node:child_process'
import { accessSync, constants, existsSync, statSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { StrataError, isErrno } from '../../errors/index.js'
import { MNT_DETACH, MS_REMOUNT, mount, umount2 } from '../../sys/index.js'
import { aufsMountPlan, KERNEL_FS_TYPE } from './layout.js'

export type MountMode = 'kernel' | 'fuse'

/** The first executable `name` on PATH (which(1)), or undefined. */
export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter)) {
    const candidate = join(dir === '' ? '.' : dir, name)
    try {
      if (!statSync(candidate).isFile()) continue
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // keep looking
    }
  }
  return undefined
}

/** dockerd's supportsAufs without the modprobe: a line of /proc/filesystems names aufs. */
export async function kernelHasAufs(): Promise<boolean> {
  try {
    return /(^|\s)aufs$/m.test(await readFile('/proc/filesystems', 'utf8'))
  } catch {
    return false
  }
}

/** Whether fuse-overlayfs can mount here: the program is installed and /dev/fuse exists. Returns the program's path. */
export function fuseOverlayfsPath(): string | undefined {
  if (!existsSync('/dev/fuse')) return undefined
  return findExecutable('fuse-overlayfs')
}

let dirperm1: Promise<boolean> | undefined

/** dockerd's useDirperm: whether the aufs module takes `dirperm1` (a scratch mount tries it, once per process). */
export function kernelSupportsDirperm1(): Promise<boolean> {
  dirperm1 ??= (async () => {
    const base = await mkdtemp(join(tmpdir(), 'strata-aufs-base-'))
    const union = await mkdtemp(join(tmpdir(), 'strata-aufs-union-'))
    try {
      try {
        mount('none', union, KERNEL_FS_TYPE, 0, `br:${base},dirperm1,xino=/dev/shm/aufs.xino`)
      } catch {
        return false
      }
      umount2(union, 0)
      return true
    } finally {
      await rm(union, { recursive: true, force: true })
      await rm(base, { recursive: true, force: true })
    }
  })()
  return dirperm1
}

/** Mounts `rw` over `ro` (nearest first) at `target` through the kernel's aufs, as dockerd's aufsMount. */
export async function kernelMount(rw: string, ro: readonly string[], target: string): Promise<void> {
  const plan = aufsMountPlan(rw, ro, { dirperm1: await kernelSupportsDirperm1() })
  mount('none', target, KERNEL_FS_TYPE, 0, plan.data)
  try {
    for (const data of plan.appends) mount('none', target, KERNEL_FS_TYPE, MS_REMOUNT, data)
  } catch (err) {
    umount2(target, MNT_DETACH)
    throw err
  }
}

/** Runs a program, resolving with its exit code and stderr once it exits (not when its stdio closes: a daemon may keep it). */
function runToExit(program: string, args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (s: string) => {
      if (stderr.length < 8192) stderr += s
    })
    child.once('error', reject)
    child.once('exit', (code, signal) => {
      // Whatever the forked daemon still writes is not ours to wait for.
      child.stderr.destroy()
      resolve({ code, signal, stderr: stderr.trim() })
    })
  })
}

/** dockerd's Unmount: auplink flush (when installed), then umount(2), retrying EBUSY. */
export async function kernelUnmount(target: string): Promise<void> {
  const auplink = findExecutable('auplink')
  if (auplink !== undefined) {
    for (let i = 0; i <= 5; i++) {
      const r = await runToExit(auplink, [target, 'flush'])
      // 22: EINVAL, auplink did not find the target in a mount table that was changing; anything else is only logged by dockerd.
      if (r.code !== 22) break
    }
  }
  for (let i = 0; ; i++) {
    try {
      umount2(target, 0)
      return
    } catch (err) {
      if (isErrno(err, 'EINVAL', 'ENOENT')) return
      if (!isErrno(err, 'EBUSY') || i >= 4) throw err
      await sleep(100)
    }
  }
}

/** Mounts through fuse-overlayfs with the command line `args` (fuseOverlayfsArgs), adding `dev,suid` as a kernel mount would have them. */
export async function fuseMount(program: string, args: readonly string[]): Promise<void> {
  const full = [...args.slice(0, -1), '-o', 'dev,suid', args[args.length - 1]!]
  const r = await runToExit(program, full)
  if (r.code !== 0) {
    const why = r.stderr.split('\n').filter((l) => !/unknown argument ignored/.test(l)).join('; ')
    throw new StrataError('SYSCALL', `fuse-overlayfs failed (${r.signal ?? `exit code ${r.code}`})${why === '' ? '' : `: ${why}`}`, { details: { args: full } })
  }
}

/** Unmounts a fuse-overlayfs mount; lazily when it is busy. Not mounted is fine. */
export function fuseUnmount(target: string): void {
  try {
    umount2(target, 0)
  } catch (err) {
    if (isErrno(err, 'EINVAL', 'ENOENT')) return
    if (!isErrno(err, 'EBUSY')) throw err
    umount2(target, MNT_DETACH)
  }
}
