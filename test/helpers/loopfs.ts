/**
 * Real filesystems on loop devices, for tests that need btrfs or xfs on a
 * host whose disks are ext4: a sparse image file in a scratch directory,
 * mkfs, `losetup -f --show`, mount. Whatever happens inside, the mount,
 * the loop device and the image are always taken away again: a leaked
 * loop device outlives the test run and eventually exhausts /dev/loop*.
 */
import { readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { MNT_DETACH, umount2 } from '../../src/sys/index.js'
import { findOnPath, requireRoot, requireTool, run } from './peers.js'

export type LoopFsType = 'btrfs' | 'xfs'

/** A mounted loop filesystem; dispose() unmounts it, detaches the device and removes the image. */
export interface LoopFs {
  /** The mount point: an empty filesystem of the requested type. */
  dir: string
  /** The loop device it is mounted from (/dev/loopN). */
  device: string
  dispose(): Promise<void>
}

/** mkfs command lines. xfs gets reflink=1 explicitly so FICLONE works whatever the mkfs default. */
function mkfsCommand(fsType: LoopFsType, image: string): [string, string[]] {
  switch (fsType) {
    case 'btrfs':
      return ['mkfs.btrfs', ['-q', image]]
    case 'xfs':
      return ['mkfs.xfs', ['-q', '-m', 'reflink=1', image]]
  }
}

/** The external programs creating a loop filesystem of `fsType` needs. */
function toolsFor(fsType: LoopFsType): string[] {
  return [`mkfs.${fsType}`, 'losetup', 'mount']
}

/**
 * Unmounts `dir`. A mount can be briefly busy (a stray fd of a child process
 * that has not been reaped yet, a pending btrfs cleaner), so retry a few
 * times before falling back to a lazy detach, which always succeeds and
 * lets the kernel finish once the last user goes.
 */
async function unmount(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      umount2(dir)
      return
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code === 'EINVAL' || code === 'ENOENT') return // not mounted (any more)
      if (code !== 'EBUSY') throw err
      await sleep(100 * (attempt + 1))
    }
  }
  umount2(dir, MNT_DETACH)
}

/**
 * Detaches a loop device. After a lazy unmount the device stays busy until
 * the kernel lets go of the filesystem, so retry for a while; `losetup -d`
 * of a busy device also sets autoclear, so even the last failure does not
 * leak it for long.
 */
async function detach(device: string, image: string): Promise<void> {
  let last: unknown
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await run('losetup', ['-d', device])
      last = undefined
      break
    } catch (err) {
      last = err
      await sleep(100 * (attempt + 1))
    }
  }
  if (last !== undefined) throw last
  // The kernel lets go of the backing file shortly after `losetup -d`
  // returns (btrfs closes its block device asynchronously after umount).
  // Wait for that, so a test run that ends here leaves `losetup -a` empty.
  // Compare the path: the device may already belong to someone else's image.
  const backing = `/sys/block/${basename(device)}/loop/backing_file`
  const ours = (): boolean => {
    try {
      return readFileSync(backing, 'utf8').startsWith(image)
    } catch {
      return false
    }
  }
  for (let waited = 0; waited < 5000 && ours(); waited += 50) await sleep(50)
}

/**
 * Creates, formats and mounts a loop filesystem of `sizeBytes` (a sparse
 * file, so a 2 GiB image costs only what mkfs and the test write). Usable
 * from before/after hooks; the caller owns dispose(). Throws when a tool is
 * missing or any step fails, having undone the steps already taken.
 */
export async function createLoopFs(fsType: LoopFsType, sizeBytes: number): Promise<LoopFs> {
  for (const tool of toolsFor(fsType)) {
    if (findOnPath(tool) === undefined) throw new Error(`createLoopFs: ${tool} is not installed; a ${fsType} loop filesystem needs it`)
  }
  const scratch = await mkdtemp(join(tmpdir(), `strata-test-loop${fsType}-`))
  const image = join(scratch, 'disk.img')
  const mnt = join(scratch, 'mnt')
  let device: string | undefined
  let mounted = false

  const dispose = async (): Promise<void> => {
    // Each step runs even when an earlier one failed; the first error wins.
    const errors: unknown[] = []
    if (mounted) await unmount(mnt).catch((e: unknown) => errors.push(e))
    mounted = false
    if (device !== undefined) await detach(device, image).catch((e: unknown) => errors.push(e))
    device = undefined
    await rm(scratch, { recursive: true, force: true }).catch((e: unknown) => errors.push(e))
    if (errors.length > 0) throw errors[0]
  }

  try {
    await writeFile(image, '')
    await truncate(image, sizeBytes)
    const [mkfs, args] = mkfsCommand(fsType, image)
    await run(mkfs, args)
    device = (await run('losetup', ['-f', '--show', image])).stdout.toString().trim()
    if (!device.startsWith('/dev/')) throw new Error(`losetup -f --show "${image}" printed "${device}", not a device path`)
    await mkdir(mnt)
    await run('mount', ['-t', fsType, device, mnt])
    mounted = true
    return { dir: mnt, get device() { return device ?? '' }, dispose }
  } catch (err) {
    await dispose().catch(() => {})
    throw err
  }
}

/**
 * Runs `fn` with the mount point of a fresh `fsType` loop filesystem of
 * `sizeBytes`, and always unmounts, detaches and removes it afterwards.
 * Without root or a needed tool the test is skipped (CI: failed, see
 * peers.ts) and the result is undefined, so callers `if (!result) return`
 * only when they need the value.
 */
export async function withLoopFs<T>(
  t: TestContext,
  fsType: LoopFsType,
  sizeBytes: number,
  fn: (mountDir: string) => Promise<T>,
): Promise<T | undefined> {
  if (!requireRoot(t) || !requireTool(t, ...toolsFor(fsType))) return undefined
  const fs = await createLoopFs(fsType, sizeBytes)
  try {
    return await fn(fs.dir)
  } finally {
    await fs.dispose()
  }
}
