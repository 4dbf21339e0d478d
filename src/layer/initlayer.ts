/**
 * A container's init layer content, as dockerd 20.10's
 * daemon/initlayer.Setup writes it into `<mount-id>-init` (mounted, so the
 * image's files are visible): mount points the runtime bind-mounts over
 * (/proc, /sys, /dev/pts, /dev/shm dirs; /etc/resolv.conf, /etc/hosts,
 * /etc/hostname, /dev/console, /.dockerenv empty files) and /etc/mtab ->
 * /proc/mounts.
 *
 * For each path, first every prefix of it is unlinked (a file or symlink
 * there goes; a directory stays, unlink cannot remove one): an image's
 * /etc/hosts is replaced by an empty file, and no symlink in the image can
 * redirect what follows outside the layer. Then, only if the path does not
 * exist (stat, following links), its missing parent directories are made
 * 0755 and the entry is created: dirs 0755, files 0755 (dockerd opens them
 * with 0755 under its umask 022), the symlink. Modes here are set
 * explicitly so our umask does not matter. Everything is root-owned (no
 * user-namespace remapping).
 */
import { chmodSync, closeSync, fchmodSync, lstatSync, mkdirSync, openSync, symlinkSync, unlinkSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { isErrno } from '../errors/index.js'

export type InitEntryKind = 'dir' | 'file' | { symlink: string }

/** Setup's table, in dockerd's source order (Go iterates its map at random; the result is the same). */
export const INIT_ENTRIES: ReadonlyArray<readonly [string, InitEntryKind]> = [
  ['/dev/pts', 'dir'],
  ['/dev/shm', 'dir'],
  ['/proc', 'dir'],
  ['/sys', 'dir'],
  ['/.dockerenv', 'file'],
  ['/etc/resolv.conf', 'file'],
  ['/etc/hosts', 'file'],
  ['/etc/hostname', 'file'],
  ['/dev/console', 'file'],
  ['/etc/mtab', { symlink: '/proc/mounts' }],
]

export const INIT_MODE = 0o755

/** pathExists, synchronously: lstat; ENOENT and ENOTDIR are "no", other errors are thrown. */
function exists(path: string): boolean {
  try {
    lstatSync(path)
    return true
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false
    throw err
  }
}

/** mkdir -p with exact modes on the directories it creates (MkdirAllAndChownNew). */
function mkdirAll(root: string, rel: string): void {
  const parts = rel.split('/').filter((p) => p !== '')
  let cur = root
  for (const p of parts) {
    cur = join(cur, p)
    try {
      mkdirSync(cur, INIT_MODE)
      chmodSync(cur, INIT_MODE)
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err
    }
  }
}

/**
 * Writes the init files into `root` (the init layer's mounted rootfs).
 * Synchronous calls: ~70 small metadata operations (most of them unlinks
 * that fail), well under a millisecond in all, where each one as a promise
 * was a round trip through libuv's thread pool (4-5 ms a container
 * create on an idle machine, many times that on a loaded one).
 */
export async function setupInitLayer(root: string): Promise<void> {
  for (const [path, kind] of INIT_ENTRIES) {
    let prefix = ''
    for (const part of path.split('/').slice(1)) {
      prefix = `${prefix}/${part}`
      try {
        unlinkSync(join(root, prefix))
      } catch {
        // A directory, or nothing there: both are what dockerd ignores too.
      }
    }
    const target = join(root, path)
    if (exists(target)) continue
    mkdirAll(root, dirname(path))
    if (kind === 'dir') {
      mkdirAll(root, path)
    } else if (kind === 'file') {
      const fd = openSync(target, 'wx', INIT_MODE)
      try {
        fchmodSync(fd, INIT_MODE)
      } finally {
        closeSync(fd)
      }
    } else {
      symlinkSync(kind.symlink, target)
    }
  }
}
