/**
 * Verifying a migrated container: its filesystem as the source driver
 * mounts it and as the target driver mounts it must be the same tree.
 * Compared for every entry: type, permission bits, owner, size of regular
 * files, mtime (to the nanosecond) of everything but the root, symlink
 * target, device numbers, and extended attributes (drivers' private ones
 * aside). Compared byte for byte: the regular files the container or its
 * init layer changed; every other file comes from image layers already
 * verified against their diffIDs, so its metadata suffices. Not compared:
 * link counts and inode numbers (copy-up breaks hardlinks, and
 * fuse-overlayfs counts links lazily), directory sizes, atimes, ctimes.
 */
import { createHash } from 'node:crypto'
import { createReadStream, type BigIntStats } from 'node:fs'
import { lstat, readdir, readlink } from 'node:fs/promises'
import { layerXattrs } from '../archive/index.js'
import { StrataError } from '../errors/index.js'

/** At most this many differences are named in the error. */
const SHOWN = 8

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const c of createReadStream(path)) h.update(c as Buffer)
  return h.digest('hex')
}

function kind(st: BigIntStats): string {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isCharacterDevice()) return 'char'
  if (st.isBlockDevice()) return 'block'
  if (st.isFIFO()) return 'fifo'
  return 'socket'
}

function xattrsOf(path: string): string {
  const out: string[] = []
  for (const [k, v] of layerXattrs(path)) out.push(`${k}=${v.toString('hex')}`)
  return out.join(',')
}

/** What is compared of one entry (content separately). */
async function describe(path: string, st: BigIntStats, isRoot: boolean): Promise<string> {
  const type = kind(st)
  const parts = [type, (st.mode & 0o7777n).toString(8), `${st.uid}:${st.gid}`]
  if (type === 'file') parts.push(`size=${st.size}`)
  if (!isRoot) parts.push(`mtime=${st.mtimeNs}`)
  if (type === 'symlink') parts.push(`-> ${await readlink(path)}`)
  if (type === 'char' || type === 'block') parts.push(`rdev=${st.rdev}`)
  parts.push(xattrsOf(path))
  return parts.join(' ')
}

/**
 * DIGEST_MISMATCH (naming the first differences) unless the trees at
 * `source` and `target` are the same, with the bytes of the files in
 * `contentPaths` ("/etc/passwd" form) compared too. `what` names the
 * container in the error.
 */
export async function compareViews(source: string, target: string, contentPaths: ReadonlySet<string>, what: string): Promise<number> {
  const differences: string[] = []
  let entries = 0
  const walk = async (rel: string): Promise<void> => {
    const [a, b] = await Promise.all([readdir(source + rel), readdir(target + rel)])
    const names = [...new Set([...a, ...b])].sort()
    const inA = new Set(a)
    const inB = new Set(b)
    for (const name of names) {
      if (differences.length >= SHOWN) return
      const path = rel === '' ? `/${name}` : `${rel}/${name}`
      if (!inA.has(name)) {
        differences.push(`${path} is only in the migrated copy`)
        continue
      }
      if (!inB.has(name)) {
        differences.push(`${path} is missing from the migrated copy`)
        continue
      }
      entries++
      const [sa, sb] = await Promise.all([lstat(source + path, { bigint: true }), lstat(target + path, { bigint: true })])
      const [da, db] = await Promise.all([describe(source + path, sa, false), describe(target + path, sb, false)])
      if (da !== db) {
        differences.push(`${path}: source "${da}", migrated "${db}"`)
        continue
      }
      if (sa.isFile() && contentPaths.has(path) && (await sha256File(source + path)) !== (await sha256File(target + path))) {
        differences.push(`${path}: content differs`)
        continue
      }
      if (sa.isDirectory()) await walk(path)
    }
  }
  const [ra, rb] = await Promise.all([lstat(source, { bigint: true }), lstat(target, { bigint: true })])
  const [da, db] = await Promise.all([describe(source, ra, true), describe(target, rb, true)])
  if (da !== db) differences.push(`/: source "${da}", migrated "${db}"`)
  await walk('')
  if (differences.length > 0) {
    throw new StrataError('DIGEST_MISMATCH', `The migrated filesystem of ${what} differs from its source: ${differences.join('; ')}`, { details: { differences } })
  }
  return entries
}
