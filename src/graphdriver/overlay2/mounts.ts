/**
 * Which paths are mount points, from /proc/self/mountinfo. The reference
 * counts of get/put live only in one process's memory, so mountinfo is the
 * one record every process shares: the driver reads it to adopt a layer's
 * mount made by another process (or by a persistent get), to list the
 * layers mounted now (mountedLayers), and to make sure nothing is mounted
 * under a layer before deleting it (a recursive delete crosses mount
 * points, and one through a merged/ would delete the lower layers' files).
 */
import { readFile } from 'node:fs/promises'

/** One line of mountinfo, the fields the driver needs. */
export interface MountEntry {
  /** Where it is mounted (unescaped). */
  mountPoint: string
  /** The filesystem type ("overlay", "tmpfs", ...). */
  fsType: string
  /** The path of the filesystem shown at the mount point (unescaped; "/" unless a bind or a cgroup's sub-tree). */
  root: string
  /** The filesystem's own options (for a cgroup v1 mount, its controllers among them). */
  superOptions: string[]
}

/** Undoes the kernel's escaping of mount points (`\040` space, `\011` tab, `\012` newline, `\134` backslash). */
export function unescapeMountInfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

/** Parses mountinfo text: one entry per mount, in the file's order (parents before children). */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    // Fields: id parent major:minor root mountpoint options [optional...] - fstype source superoptions
    const fields = line.split(' ')
    const mountPoint = fields[4]
    if (mountPoint === undefined) continue
    const dash = fields.indexOf('-', 6)
    out.push({
      mountPoint: unescapeMountInfo(mountPoint),
      fsType: dash < 0 ? '' : (fields[dash + 1] ?? ''),
      root: unescapeMountInfo(fields[3] ?? '/'),
      superOptions: dash < 0 ? [] : (fields[dash + 3] ?? '').split(','),
    })
  }
  return out
}

/** Every mount of this process's mount namespace, in mountinfo order (parents before children). */
export async function mountEntries(): Promise<MountEntry[]> {
  return parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'))
}

/** Every mount point of this process's mount namespace, in mountinfo order (parents before children). */
export async function mountPoints(): Promise<string[]> {
  return (await mountEntries()).map((e) => e.mountPoint)
}

/**
 * Mount points strictly below `dir` (an absolute, symlink-free path),
 * deepest first so they can be unmounted in order. A path mounted over
 * several times appears once per mount.
 */
export async function mountPointsUnder(dir: string): Promise<string[]> {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`
  return (await mountPoints()).filter((p) => p.startsWith(prefix)).reverse()
}

/** The mounts at `path` (absolute, symlink-free), bottom first; empty when it is not a mount point. */
export async function mountsAt(path: string): Promise<MountEntry[]> {
  return (await mountEntries()).filter((e) => e.mountPoint === path)
}

/** True when `path` (absolute, symlink-free) is a mount point. */
export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountPoints()).includes(path)
}
