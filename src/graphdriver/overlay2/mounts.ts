/**
 * Which paths are mount points, from /proc/self/mountinfo. The driver needs
 * this to find mounts a crashed process left behind (the reference count
 * lives only in memory) and to make sure nothing is mounted under a layer
 * before deleting it: a recursive delete crosses mount points, and one
 * through a stale merged/ would delete the lower layers' files.
 */
import { readFile } from 'node:fs/promises'

/** Undoes the kernel's escaping of mount points (`\040` space, `\011` tab, `\012` newline, `\134` backslash). */
export function unescapeMountInfo(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

/** Every mount point of this process's mount namespace, in mountinfo order (parents before children). */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8')
  const out: string[] = []
  for (const line of text.split('\n')) {
    if (line === '') continue
    // Fields: id parent major:minor root mountpoint options ...
    const field = line.split(' ')[4]
    if (field !== undefined) out.push(unescapeMountInfo(field))
  }
  return out
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

/** True when `path` (absolute, symlink-free) is a mount point. */
export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountPoints()).includes(path)
}
