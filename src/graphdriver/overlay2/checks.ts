/**
 * What the host must offer before overlay2 can run on a data root, checked
 * the way dockerd 20.10 checks it (overlayutils.SupportsOverlay,
 * fsutils.SupportsDType, overlay2's doesSupportNativeDiff): by doing the
 * thing in a scratch directory on the same filesystem, not by reading
 * version numbers.
 */
import { existsSync } from 'node:fs'
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { makeOwnedDir, sweepOwnedEntries } from '../../fs/index.js'
import { dirname, join, resolve } from 'node:path'
import { isErrno } from '../../errors/index.js'
import { FS_MAGIC, MNT_DETACH, lgetxattr, lsetxattr, mount, mountNewApi, statfsType, umount2 } from '../../sys/index.js'
import { cachedCheck } from './check-cache.js'
import { mountPointsUnder } from './mounts.js'
import type { ProbeResult } from '../types.js'
import { supportsDType } from './dtype.js'
import { DRIVER_NAME } from './layout.js'

/**
 * dockerd's names for backing filesystems (graphdriver.FsNames in 20.10),
 * which `docker info` shows as "Backing Filesystem". ext2/3/4 share one
 * magic and one name, "extfs".
 */
const DOCKER_FS_NAMES: ReadonlyMap<number, string> = new Map([
  [0x61756673, 'aufs'],
  [0x9123683e, 'btrfs'],
  [0x28cd3d45, 'cramfs'],
  [0xf15f, 'ecryptfs'],
  [0xef53, 'extfs'],
  [0xf2f52010, 'f2fs'],
  [0x65735546, 'fuse'],
  [0x47504653, 'gpfs'],
  [0x72b6, 'jffs2'],
  [0x3153464a, 'jfs'],
  [0x6969, 'nfs'],
  [0x794c7630, 'overlayfs'],
  [0x858458f6, 'ramfs'],
  [0x52654973, 'reiserfs'],
  [0x517b, 'smb'],
  [0x73717368, 'squashfs'],
  [0x01021994, 'tmpfs'],
  [0xa501fcf5, 'vxfs'],
  [0x58465342, 'xfs'],
  [0x2fc12fc1, 'zfs'],
])

/** The "Backing Filesystem" dockerd reports for a filesystem magic; "<unknown>" as dockerd says for others. */
export function dockerFsName(magic: number): string {
  return DOCKER_FS_NAMES.get(magic >>> 0) ?? '<unknown>'
}

/** `path` if it exists, else its nearest existing ancestor (dockerd tests the parent of a missing home). */
export async function nearestExisting(path: string): Promise<string> {
  let p = resolve(path)
  for (;;) {
    try {
      await stat(p)
      return p
    } catch (err) {
      if (!isErrno(err, 'ENOENT', 'ENOTDIR')) throw err
    }
    const parent = dirname(p)
    if (parent === p) return p
    p = parent
  }
}

/** True when /proc/filesystems lists overlay (it may still be a module the first mount loads). */
export async function overlayListed(): Promise<boolean> {
  try {
    return /^nodev\s+overlay$/m.test(await readFile('/proc/filesystems', 'utf8'))
  } catch {
    return false
  }
}

/**
 * Whether the kernel takes overlay's `volatile` option (5.10+): undefined
 * until a scratch mount tried it.
 */
let volatileWorks: boolean | undefined

/**
 * Mounts an overlay of `lowers`, `upper` and `work` on `target`, through
 * mount(2) when the option string can carry the paths.
 *
 * `volatile` where the kernel has it: unmounting an overlay with an upper
 * dir syncs the whole upper filesystem (overlayfs' sync_fs calls
 * sync_filesystem on it), which on a data root with a few hundred MB not
 * yet written back costs seconds, for a check that wrote nothing worth
 * keeping. A volatile overlay skips that sync; the checks read the same.
 */
function mountScratch(target: string, lowers: string[], upper: string, work: string): void {
  const paths = [...lowers, upper, work, target]
  const once = (withVolatile: boolean): void => {
    if (paths.some((p) => /[,:]/.test(p))) {
      mountNewApi('overlay', target, [
        ['source', 'overlay'],
        ...lowers.map((l): [string, string] => ['lowerdir+', l]),
        ['upperdir', upper],
        ['workdir', work],
        ...(withVolatile ? [['volatile'] as [string]] : []),
      ])
    } else {
      mount('overlay', target, 'overlay', 0, `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work}${withVolatile ? ',volatile' : ''}`)
    }
  }
  if (volatileWorks !== false) {
    try {
      once(true)
      volatileWorks = true
      return
    } catch (err) {
      // An older kernel refuses the unknown option: mount without it (and stop trying).
      if (volatileWorks === true || !isErrno(err, 'EINVAL')) throw err
    }
    once(false)
    volatileWorks = false
    return
  }
  once(false)
}

/**
 * dockerd's supportsOverlay: mounts an overlay of two lowers, an upper
 * and a work dir inside a scratch dir of `dir`, then unmounts it. Throws
 * what mount(2) said.
 */
export async function tryOverlayMount(dir: string): Promise<void> {
  await withScratchDir(dir, SUPPORT_CHECK_PREFIX, async (td) => {
    for (const d of ['lower1', 'lower2', 'upper', 'work', 'merged']) await mkdir(join(td, d), { mode: 0o755 })
    const merged = join(td, 'merged')
    mountScratch(merged, [join(td, 'lower2'), join(td, 'lower1')], join(td, 'upper'), join(td, 'work'))
    umount2(merged)
  })
}

/** Names of the scratch dirs the checks make (dockerd's prefixes), inside the dir they test. */
const SUPPORT_CHECK_PREFIX = 'check-overlayfs-support'
const OPAQUE_CHECK_PREFIX = 'opaque-bug-check'
/**
 * dockerd's names end in Go's TempDir random digits; strata's in its
 * owner tag (`<pid>.<start>-<8 hex>`, src/fs/owned.ts).
 */
const SCRATCH_RE = /^(check-overlayfs-support|opaque-bug-check|supports-dtype-check-)([A-Za-z0-9]{6,10}|\d+\.\d+-[0-9a-f]{8})$/
/** Whether `name` in the home is one of the checks' scratch dirs (never a layer). */
export function isScratchDirName(name: string): boolean {
  return SCRATCH_RE.test(name)
}

/**
 * dockerd does not lock its scratch dirs, so one without strata's owner
 * tag counts as dead only when unlocked and older than this. strata's own
 * are told by flock and owner tag alone, never by age.
 */
const DOCKERD_SCRATCH_GRACE_MS = 60_000

/**
 * Runs `fn` on a fresh scratch dir in `dir`, owned by this process (flock
 * and owner tag, src/fs/owned.ts) so that removeStaleScratchDirs in another
 * process leaves it alone, and removes it afterwards (unmounting anything
 * `fn` left mounted under it).
 */
async function withScratchDir<T>(dir: string, prefix: string, fn: (td: string) => Promise<T>): Promise<T> {
  const owned = makeOwnedDir(dir, prefix)
  try {
    return await fn(owned.path)
  } finally {
    await unmountUnder(owned.path)
    await owned.remove()
  }
}

async function unmountUnder(td: string): Promise<void> {
  for (const mp of await mountPointsUnder(td)) {
    try {
      umount2(mp, MNT_DETACH)
    } catch {
      // gone already
    }
  }
}

/**
 * Removes the checks' scratch dirs a killed process left in `dir` (with
 * whatever it left mounted in them): strata's whose owner is dead, and
 * dockerd's that nobody locks and that are older than a minute. Returns
 * the paths removed.
 */
export async function removeStaleScratchDirs(dir: string): Promise<string[]> {
  return sweepOwnedEntries(dir, {
    match: (name) => SCRATCH_RE.test(name),
    untagged: async (path) => {
      try {
        return Date.now() - (await stat(path)).mtimeMs >= DOCKERD_SCRATCH_GRACE_MS
      } catch {
        return false
      }
    },
    beforeRemove: unmountUnder,
  })
}

/**
 * Whether the upper dir of an overlay mount records changes the way
 * native diff reads them (dockerd's doesSupportNativeDiff), or undefined
 * when it does, or the reason it does not:
 * - an old kernel copies the opaque flag up with an opaque dir;
 * - with redirect_dir, renaming a lower dir leaves only a
 *   trusted.overlay.redirect xattr in the upper dir, not the content;
 * - with metacopy (not checked by dockerd 20.10, but just as fatal), a
 *   chmod copies up an empty file that only points at the lower data.
 */
export async function nativeDiffProblem(dir: string): Promise<string | undefined> {
  try {
    if ((await readFile('/sys/module/overlay/parameters/metacopy', 'utf8')).trim() === 'Y') {
      return 'the overlay module has metacopy enabled (metacopy=Y)'
    }
  } catch {
    // no such parameter: a kernel without metacopy
  }
  return withScratchDir(dir, OPAQUE_CHECK_PREFIX, (td) => opaqueAndRedirectProblem(td))
}

async function opaqueAndRedirectProblem(td: string): Promise<string | undefined> {
  const merged = join(td, 'merged')
  let mounted = false
  try {
    for (const d of ['l1/d', 'l1/d1', 'l2/d', 'l3', 'work', 'merged']) await mkdir(join(td, d), { recursive: true, mode: 0o755 })
    lsetxattr(join(td, 'l2', 'd'), 'trusted.overlay.opaque', 'y')
    mountScratch(merged, [join(td, 'l2'), join(td, 'l1')], join(td, 'l3'), join(td, 'work'))
    mounted = true
    // Touching a file in d copies the opaque dir d up from l2 into l3.
    await writeFile(join(merged, 'd', 'f'), '')
    if (lgetxattr(join(td, 'l3', 'd'), 'trusted.overlay.opaque')?.toString() === 'y') {
      return 'the kernel copies the opaque flag up with a directory (fixed in 4.8)'
    }
    try {
      await rename(join(merged, 'd1'), join(merged, 'd2'))
    } catch (err) {
      // EXDEV: no redirect_dir, the kernel refuses and tools copy instead.
      if (isErrno(err, 'EXDEV')) return undefined
      throw err
    }
    if (lgetxattr(join(td, 'l3', 'd2'), 'trusted.overlay.redirect')?.toString() === 'd1') {
      return 'the overlay module has redirect_dir enabled'
    }
    return undefined
  } finally {
    if (mounted) umount2(merged)
  }
}

/**
 * Directories (with their filesystem type) this process found overlay2
 * works on: the checks are about the kernel and the filesystem, which do
 * not change under a running process, so a success is not tested again
 * (opening a store probes, then opens, which probes; dockerd checks once
 * per daemon start). Failures are always tested again.
 */
const probedOk = new Set<string>()

/**
 * Whether overlay2 can keep its layers under `<root>/overlay2`, and if not
 * a sentence saying why. Tests the home if it exists, else its nearest
 * existing ancestor (the filesystem the home will be created on).
 */
export async function probeOverlay2(root: string): Promise<ProbeResult> {
  const home = join(resolve(root), DRIVER_NAME)
  const dir = await nearestExisting(home)
  const st = { type: statfsType(dir) }
  const key = `${dir}\0${st.type}`
  if (probedOk.has(key)) return { ok: true }
  const result = await cachedCheck('probe', dir, () => probeUncached(dir, st), (r) => r.ok)
  if (result.ok) probedOk.add(key)
  return result
}

async function probeUncached(dir: string, st: { type: number }): Promise<ProbeResult> {
  if (st.type === FS_MAGIC.overlay) {
    return {
      ok: false,
      reason: `"${dir}" is on overlayfs (are we inside a container?); overlay2 cannot stack on an overlay filesystem: put the data root on ext4, xfs or btrfs, e.g. a volume or bind mount`,
    }
  }
  let dtype: boolean
  try {
    dtype = supportsDType(dir)
  } catch (err) {
    return { ok: false, reason: `Could not test d_type support in "${dir}": ${(err as Error).message}` }
  }
  if (!dtype) {
    const fs = dockerFsName(st.type)
    let reason = `overlay2: the backing ${fs} filesystem of "${dir}" is formatted without d_type support, which leads to incorrect behavior.`
    if (fs === 'xfs') reason += ' Reformat the filesystem with ftype=1 to enable d_type support.'
    if (fs === 'extfs') reason += ' Reformat the filesystem (or use tune2fs) with -O filetype flag to enable d_type support.'
    return { ok: false, reason: `${reason} Backing filesystems without d_type support are not supported.` }
  }
  const listed = await overlayListed()
  try {
    await tryOverlayMount(dir)
  } catch (err) {
    const what = (err as Error).message
    if (isErrno(err, 'ENODEV') || !listed) {
      return { ok: false, reason: `The kernel has no overlay filesystem (not in /proc/filesystems; mounting one failed: ${what}); load it with "modprobe overlay"` }
    }
    if (isErrno(err, 'EPERM')) return { ok: false, reason: `Mounting an overlay in "${dir}" was refused (${what}); overlay2 needs root (CAP_SYS_ADMIN)` }
    return { ok: false, reason: `A test overlay mount in "${dir}" failed: ${what}` }
  }
  return { ok: true }
}

/** True when /sys/module/overlay/parameters/index exists: the kernel knows `index=off`, and dockerd passes it. */
export function kernelKnowsIndexOption(): boolean {
  return existsSync('/sys/module/overlay/parameters/index')
}
