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
import { chmod, mkdir, open, symlink, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { isErrno } from '../errors/index.js'
import { pathExists } from '../fs/index.js'

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

/** mkdir -p with exact modes on the directories it creates (MkdirAllAndChownNew). */
async function mkdirAll(root: string, rel: string): Promise<void> {
  const parts = rel.split('/').filter((p) => p !== '')
  let cur = root
  for (const p of parts) {
    cur = join(cur, p)
    try {
      await mkdir(cur, INIT_MODE)
      await chmod(cur, INIT_MODE)
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err
    }
  }
}

/** Writes the init files into `root` (the init layer's mounted rootfs). */
export async function setupInitLayer(root: string): Promise<void> {
  for (const [path, kind] of INIT_ENTRIES) {
    let prefix = ''
    for (const part of path.split('/').slice(1)) {
      prefix = `${prefix}/${part}`
      try {
        await unlink(join(root, prefix))
      } catch {
        // A directory, or nothing there: both are what dockerd ignores too.
      }
    }
    const target = join(root, path)
    if (await pathExists(target)) continue
    await mkdirAll(root, dirname(path))
    if (kind === 'dir') {
      await mkdirAll(root, path)
    } else if (kind === 'file') {
      const fh = await open(target, 'wx', INIT_MODE)
      try {
        await fh.chmod(INIT_MODE)
      } finally {
        await fh.close()
      }
    } else {
      await symlink(kind.symlink, target)
    }
  }
}
