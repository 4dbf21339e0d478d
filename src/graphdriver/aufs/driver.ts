/**
 * The aufs graph driver: dockerd 20.10's on-disk layout (layout.ts), its
 * mount (the kernel's aufs where there is one, else fuse-overlayfs over
 * the same branches: mount.ts), and its diff straight from a layer's own
 * branch (src/archive/aufs-branch.ts), which needs no mount.
 *
 * As dockerd's aufs: a base layer is never mounted (get returns its diff
 * dir); any other layer is mounted read-write at mnt/<id> with its own
 * diff dir as the rw branch (aufs has no read-only layers: an image
 * layer's branch is simply never written once it has children); diff,
 * changes, applyDiff and diffSize work on the diff dir when asked against
 * the layer's own parent, and fall back to the naive diff over mounted
 * full trees otherwise. Sizes are dockerd's: directory.Size of the diff
 * dir (ApplyDiff returns DiffSize).
 *
 * Mounts are shared between processes exactly as overlay2's are (see
 * types.ts): reference counts here, adoption of a mount found at mnt/<id>,
 * persistent gets released by a persistent put from any process.
 *
 * Where we differ from dockerd, on purpose:
 * - create writes layers/<id> last, through a temp file and a rename, so a
 *   layer either exists whole or not at all; exists() also sees a diff dir
 *   without its layers file (a crashed create) so that it can be removed;
 * - remove refuses a layer held by get, mounted by anyone, or listed as an
 *   ancestor in another layer's layers file (IN_USE); dockerd removes it;
 * - a layers file naming something that is not a plain id, or an ancestor
 *   whose diff dir is missing, is CORRUPT, naming both (dockerd would mount
 *   whatever path results, or fail in the kernel);
 * - put without get is an error; base layers are reference counted too
 *   (RefCounter, shared by every driver), and work on one layer is
 *   serialised by src/fs's KeyedLock.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { chmod, lstat, mkdir, readFile, readdir, realpath, rename, rm, writeFile } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { applyLayer, applyLayerOffThread, changesAufs, exportAufsBranch, type Change } from '../../archive/index.js'
import { StrataError, isErrno } from '../../errors/index.js'
import { KeyedLock, pathExists } from '../../fs/index.js'
import { statfs } from '../../sys/index.js'
import { withNaiveDiff } from '../naive-diff.js'
import { MountRefCounter } from '../mount-refs.js'
import { directorySize, dockerFsName, mountEntries } from '../overlay2/index.js'
import type { ApplyLayerOptions, DiffOptions, CreateOpts, DriverFactory, DriverOptions, GetOpts, GraphDriver, LayerApplyResult, ProbeResult, PutOpts } from '../types.js'
import {
  DIFF_DIR,
  DRIVER_NAME,
  FUSE_FS_TYPE,
  FUSE_WORK_DIR,
  FUSE_WORK_MODE,
  HOME_MODE,
  KERNEL_FS_TYPE,
  LAYER_DIR_MODE,
  LAYERS_DIR,
  LAYERS_FILE_MODE,
  MNT_DIR,
  REMOVING_SUFFIX,
  SUBDIR_MODE,
  diffPath,
  fuseOverlayfsArgs,
  fuseWorkPath,
  layersFileContent,
  layersPath,
  mntPath,
  parseLayersFile,
  validateLayerId,
} from './layout.js'
import { fuseMount, fuseOverlayfsPath, fuseUnmount, kernelHasAufs, kernelMount, kernelSupportsDirperm1, kernelUnmount, type MountMode } from './mount.js'

/** Backing filesystems the kernel's aufs refuses to stack on (dockerd: ErrIncompatibleFS). */
const KERNEL_INCOMPATIBLE_FS = new Set(['aufs', 'btrfs', 'ecryptfs'])

/** layers/ files read between two yields to the event loop when remove looks for descendants. */
const CHILD_SCAN_BATCH = 256

type ModeChoice = 'auto' | MountMode

/** The driver's own `--storage-opt`s. dockerd's aufs takes none; `aufs.mount` is strata's. */
function parseDriverOptions(options: Record<string, string> | undefined): ModeChoice {
  let mode: ModeChoice = 'auto'
  for (const [rawKey, value] of Object.entries(options ?? {})) {
    if (rawKey.toLowerCase() !== 'aufs.mount') throw new StrataError('INVALID_ARGUMENT', `aufs: unknown option "${rawKey}" (known: aufs.mount)`)
    if (value !== 'auto' && value !== 'kernel' && value !== 'fuse') throw new StrataError('INVALID_ARGUMENT', `aufs: option "${rawKey}" is "${value}"; expected "auto", "kernel" or "fuse"`)
    mode = value
  }
  return mode
}

/** How this host mounts aufs branches for `choice`, or why it cannot. */
async function mountModeFor(choice: ModeChoice, root: string): Promise<{ mode: MountMode; fuse?: string } | { reason: string }> {
  const kernel = await kernelHasAufs()
  if (choice !== 'fuse' && kernel) {
    const fs = dockerFsName(statfs(await nearestDir(root)).type)
    if (!KERNEL_INCOMPATIBLE_FS.has(fs)) return { mode: 'kernel' }
    if (choice === 'kernel') return { reason: `the kernel's aufs cannot stack branches on ${fs} ("${root}")` }
  }
  if (choice === 'kernel') return { reason: 'the kernel has no aufs (/proc/filesystems does not list it)' }
  const fuse = fuseOverlayfsPath()
  if (fuse !== undefined) return { mode: 'fuse', fuse }
  return { reason: `the kernel has no aufs${kernel ? ' usable here' : ''}, and fuse-overlayfs is not installed (or /dev/fuse is missing)` }
}

/** `path` or its nearest existing ancestor. */
async function nearestDir(path: string): Promise<string> {
  let p = resolve(path)
  for (;;) {
    try {
      await lstat(p)
      return p
    } catch (err) {
      if (!isErrno(err, 'ENOENT', 'ENOTDIR')) throw err
    }
    const parent = dirname(p)
    if (parent === p) return p
    p = parent
  }
}

/** mkdir with an exact mode; an existing directory is left as it is. Returns whether it made it. */
async function ensureDir(path: string, mode: number): Promise<boolean> {
  try {
    await mkdir(path, { mode })
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false
    throw err
  }
  await chmod(path, mode)
  return true
}

/** Renames `path` to `<path>-removing` and deletes it (dockerd's atomicRemove); a missing path is fine. */
async function atomicRemove(path: string): Promise<void> {
  const doomed = `${path}${REMOVING_SUFFIX}`
  try {
    await rename(path, doomed)
  } catch (err) {
    if (!isErrno(err, 'ENOENT')) {
      if (!isErrno(err, 'EEXIST', 'ENOTEMPTY')) throw err
      // A previous removal died after its rename: finish that one first.
      await rm(doomed, { recursive: true, force: true })
      await rename(path, doomed)
    }
  }
  await rm(doomed, { recursive: true, force: true })
}

export class AufsDriver implements GraphDriver {
  readonly name = DRIVER_NAME
  readonly home: string
  readonly #realHome: string
  readonly #mode: MountMode
  readonly #fuse: string | undefined
  readonly #backingFs: string
  readonly #refs = new MountRefCounter(DRIVER_NAME)
  /** One operation per layer at a time. */
  readonly #locks = new KeyedLock()
  /** dockerd's naiveDiff, over this driver's own get/put. */
  readonly #naive: GraphDriver

  private constructor(home: string, realHome: string, mode: MountMode, fuse: string | undefined, backingFs: string) {
    this.home = home
    this.#realHome = realHome
    this.#mode = mode
    this.#fuse = fuse
    this.#backingFs = backingFs
    this.#naive = withNaiveDiff(this)
  }

  /**
   * Opens the driver on `<root>/aufs`: picks the mount mode (kernel aufs,
   * else fuse-overlayfs), creates the home and diff/, layers/, mnt/ (0701,
   * as dockerd 20.10), and finishes removals a crash interrupted (the
   * `-removing` dirs dockerd's Init deletes too). Mounts are left alone.
   */
  static async open(opts: DriverOptions): Promise<AufsDriver> {
    const choice = parseDriverOptions(opts.options)
    const how = await mountModeFor(choice, opts.root)
    if ('reason' in how) throw new StrataError('NOT_SUPPORTED', `aufs cannot run on "${opts.root}": ${how.reason}`)
    const home = join(resolve(opts.root), DRIVER_NAME)
    await mkdir(opts.root, { recursive: true })
    await ensureDir(home, HOME_MODE)
    for (const sub of [DIFF_DIR, LAYERS_DIR, MNT_DIR]) await ensureDir(join(home, sub), SUBDIR_MODE)
    for (const sub of [DIFF_DIR, MNT_DIR]) {
      for (const name of await readdir(join(home, sub))) {
        if (name.endsWith(REMOVING_SUFFIX)) await rm(join(home, sub, name), { recursive: true, force: true }).catch(() => {})
      }
    }
    const realHome = await realpath(home)
    return new AufsDriver(home, realHome, how.mode, how.fuse, dockerFsName(statfs(home).type))
  }

  /** A layer's diff dir starts empty and its parent only matters at mount time, so layers of a chain apply side by side. */
  get parallelApply(): boolean {
    return true
  }

  /** "kernel" or "fuse": how this instance mounts. */
  get mountMode(): MountMode {
    return this.#mode
  }

  // -------------------------------------------------------------------------
  // Layers

  async create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    this.#checkCreateOpts(id, opts)
    await this.#create(id, parent)
  }

  async createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    this.#checkCreateOpts(id, opts)
    await this.#create(id, parent)
  }

  #checkCreateOpts(id: string, opts: CreateOpts | undefined): void {
    const keys = Object.keys(opts?.storageOpt ?? {})
    if (keys.length > 0) throw new StrataError('INVALID_ARGUMENT', `--storage-opt is not supported for aufs (layer "${id}": ${keys.join(', ')})`, { details: { id, keys } })
  }

  /**
   * dockerd's Create: diff/<id> and mnt/<id> (0755), then layers/<id>
   * holding the parent and the parent's ancestors, written last through a
   * temp file so that the layer appears whole.
   */
  async #create(id: string, parent: string | null): Promise<void> {
    validateLayerId(id)
    if (parent !== null) {
      validateLayerId(parent, 'Parent layer id')
      if (parent === id) throw new StrataError('INVALID_ARGUMENT', `Layer "${id}" cannot be its own parent`)
    }
    await this.#locks.withLock(parent === null ? [id] : [id, parent], async () => {
      if (await this.exists(id)) throw new StrataError('ALREADY_EXISTS', `Layer "${id}" already exists in "${this.home}"`, { details: { id } })
      let content = ''
      if (parent !== null) {
        if (!(await pathExists(layersPath(this.home, parent)))) {
          throw new StrataError('NOT_FOUND', `Parent layer "${parent}" of new layer "${id}" does not exist in "${this.home}"`, { details: { id, parent } })
        }
        content = layersFileContent(parent, await this.#ancestors(parent))
      }
      const made: string[] = []
      try {
        for (const dir of [diffPath(this.home, id), mntPath(this.home, id)]) {
          if (!(await ensureDir(dir, LAYER_DIR_MODE))) throw new StrataError('ALREADY_EXISTS', `Layer "${id}" already exists in "${this.home}" ("${dir}")`, { details: { id } })
          made.push(dir)
        }
        const tmp = join(this.home, LAYERS_DIR, `.tmp-${id}-${randomBytes(4).toString('hex')}`)
        await writeFile(tmp, content, { mode: LAYERS_FILE_MODE, flag: 'wx' })
        await chmod(tmp, LAYERS_FILE_MODE)
        await rename(tmp, layersPath(this.home, id))
      } catch (err) {
        for (const dir of made) await rm(dir, { recursive: true, force: true })
        throw err
      }
    })
  }

  /**
   * Removes the layer as dockerd does (layers file, then diff/ and mnt/
   * renamed `-removing` and deleted), after refusing (IN_USE) a layer this
   * instance holds, one mounted by anyone, or one another layer lists as
   * an ancestor.
   */
  async remove(id: string): Promise<void> {
    validateLayerId(id)
    await this.#locks.withLock([id], async () => {
      if (!(await this.exists(id))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`, { details: { id } })
      this.#refs.refuseRemoveIfHeld(id)
      const mounts = (await mountEntries()).filter((e) => e.mountPoint === join(this.#realHome, MNT_DIR, id) || e.mountPoint.startsWith(`${join(this.#realHome, MNT_DIR, id)}/`))
      if (mounts.length > 0) {
        throw new StrataError('IN_USE', `Layer "${id}" is mounted at "${mounts[0]!.mountPoint}" by another process or a persistent get; release it with a persistent put before removing it`, {
          details: { id },
        })
      }
      const child = await this.#findDescendant(id)
      if (child !== undefined) throw new StrataError('IN_USE', `Layer "${id}" has a child layer "${child}"; remove its children first`, { details: { id, child } })
      await rm(layersPath(this.home, id), { force: true })
      await atomicRemove(diffPath(this.home, id))
      await atomicRemove(mntPath(this.home, id))
    })
  }

  /** A layer whose layers file names `id`, preferring a direct child (first line). */
  async #findDescendant(id: string): Promise<string | undefined> {
    const names = (await readdir(join(this.home, LAYERS_DIR))).filter((n) => n !== id && !n.startsWith('.tmp-'))
    let descendant: string | undefined
    for (let i = 0; i < names.length; i += CHILD_SCAN_BATCH) {
      if (i > 0) await new Promise<void>((r) => setImmediate(r))
      for (const name of names.slice(i, i + CHILD_SCAN_BATCH)) {
        let text: string
        try {
          text = readFileSync(join(this.home, LAYERS_DIR, name), 'utf8')
        } catch {
          continue
        }
        const lines = text.split('\n').map((l) => l.trim())
        if (lines[0] === id) return name
        if (descendant === undefined && lines.includes(id)) descendant = name
      }
    }
    return descendant
  }

  /** True when the layers file or the diff dir exists (the latter alone: a create that crashed, which remove cleans). */
  async exists(id: string): Promise<boolean> {
    try {
      validateLayerId(id)
    } catch {
      return false
    }
    return (await pathExists(layersPath(this.home, id))) || (await pathExists(diffPath(this.home, id)))
  }

  /** The ancestors in `id`'s layers file, nearest first; NOT_FOUND when there is none, CORRUPT when it names something else. */
  async #ancestors(id: string): Promise<string[]> {
    let text: string
    try {
      text = await readFile(layersPath(this.home, id), 'utf8')
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`, { cause: err, details: { id } })
      throw err
    }
    return parseLayersFile(text, id)
  }

  /** The diff dirs of `id`'s ancestors, nearest first; CORRUPT when an ancestor's diff dir is missing. */
  async #ancestorBranches(id: string): Promise<string[]> {
    const out: string[] = []
    for (const a of await this.#ancestors(id)) {
      const dir = diffPath(this.home, a)
      let st
      try {
        st = await lstat(dir)
      } catch (err) {
        if (!isErrno(err, 'ENOENT', 'ENOTDIR')) throw err
      }
      if (st === undefined || !st.isDirectory()) {
        throw new StrataError('CORRUPT', `The aufs layers file of layer "${id}" names parent layer "${a}", whose diff dir "${dir}" is missing`, {
          details: { id, parent: a, path: layersPath(this.home, id) },
        })
      }
      out.push(dir)
    }
    return out
  }

  // -------------------------------------------------------------------------
  // Mounts

  /**
   * A base layer: its diff dir, nothing mounted. Any other layer: its
   * branches mounted at mnt/<id> by the first get (kernel aufs or
   * fuse-overlayfs); later gets return the same path. A mount found there
   * (another process's, or a persistent get's) is adopted. A persistent get
   * records no reference (see types.ts).
   */
  async get(id: string, opts?: GetOpts): Promise<string> {
    validateLayerId(id)
    const persistent = opts?.persistent === true
    return this.#locks.withLock([id], async () => {
      if (!(await pathExists(layersPath(this.home, id)))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`, { details: { id } })
      const branches = await this.#ancestorBranches(id)
      if (branches.length === 0) {
        this.#refs.holdUnmounted(id, persistent)
        return diffPath(this.home, id)
      }
      await this.#refs.holdMounted(id, persistent, { isMounted: () => this.#isMounted(id), mount: () => this.#mount(id, branches) })
      return mntPath(this.home, id)
    })
  }

  /** Drops one reference; the last one unmounts, unless the mount is adopted (then it is only forgotten). */
  async put(id: string, opts?: PutOpts): Promise<void> {
    validateLayerId(id)
    if (opts?.persistent === true) return this.#putPersistent(id)
    await this.#locks.withLock([id], async () => {
      if (this.#refs.peek(id) === undefined && !(await this.exists(id))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`, { details: { id } })
      await this.#refs.release(id, () => this.#unmount(id))
    })
  }

  /** Releases a persistent get from any process: unmounts unless this instance still holds the layer. */
  async #putPersistent(id: string): Promise<void> {
    await this.#locks.withLock([id], async () => {
      if (!(await this.exists(id))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`, { details: { id } })
      await this.#refs.releasePersistent(id, () => this.#isMounted(id), () => this.#unmount(id))
    })
  }

  /** Ids of layers mounted at mnt/<id> now, by any process in this mount namespace, sorted. */
  async mountedLayers(): Promise<string[]> {
    const mnt = join(this.#realHome, MNT_DIR)
    const ids = new Set<string>()
    for (const e of await mountEntries()) {
      if (dirname(e.mountPoint) === mnt && (e.fsType === KERNEL_FS_TYPE || e.fsType === FUSE_FS_TYPE)) ids.add(basename(e.mountPoint))
    }
    return [...ids].sort()
  }

  /** Unmounts the layers this instance mounted and still holds; adopted and persistent mounts stay. */
  async cleanup(): Promise<void> {
    await this.#locks.settled()
    await this.#refs.unmountAll((id) => this.#unmount(id))
  }

  /** Whether mnt/<id> has this driver's mount now; something else mounted there is refused (IN_USE). */
  async #isMounted(id: string): Promise<boolean> {
    const at = join(this.#realHome, MNT_DIR, id)
    const mounts = (await mountEntries()).filter((e) => e.mountPoint === at)
    const top = mounts[mounts.length - 1]
    if (top === undefined) return false
    if (top.fsType !== KERNEL_FS_TYPE && top.fsType !== FUSE_FS_TYPE) {
      throw new StrataError('IN_USE', `Layer "${id}" cannot be mounted: "${at}" has a ${top.fsType || 'foreign'} filesystem mounted on it, not the layer's branches; unmount it first`, {
        details: { id, fsType: top.fsType },
      })
    }
    return true
  }

  async #mount(id: string, ro: string[]): Promise<void> {
    const rw = diffPath(this.home, id)
    const target = mntPath(this.home, id)
    await ensureDir(target, LAYER_DIR_MODE)
    try {
      if (this.#mode === 'kernel') {
        await kernelMount(rw, ro, target)
        return
      }
      await ensureDir(join(this.home, FUSE_WORK_DIR), FUSE_WORK_MODE)
      const work = fuseWorkPath(this.home, id)
      // A work dir left by a daemon that died with its mount is stale scratch.
      await rm(work, { recursive: true, force: true })
      await ensureDir(work, FUSE_WORK_MODE)
      try {
        await fuseMount(this.#fuse!, fuseOverlayfsArgs(rw, ro, work, target))
      } catch (err) {
        await rm(work, { recursive: true, force: true })
        throw err
      }
    } catch (err) {
      const how = this.#mode === 'kernel' ? "the kernel's aufs" : 'fuse-overlayfs'
      throw new StrataError('SYSCALL', `Mounting aufs layer "${id}" (${ro.length + 1} branches) at "${target}" through ${how} failed: ${(err as Error).message}`, {
        cause: err,
        details: { id },
      })
    }
  }

  async #unmount(id: string): Promise<void> {
    const target = mntPath(this.home, id)
    try {
      if (this.#mode === 'kernel') await kernelUnmount(target)
      else fuseUnmount(target)
    } catch (err) {
      throw new StrataError('SYSCALL', `Unmounting aufs layer "${id}" at "${target}" failed: ${(err as Error).message}`, { cause: err, details: { id } })
    }
    if (this.#mode === 'fuse') await rm(fuseWorkPath(this.home, id), { recursive: true, force: true })
  }

  // -------------------------------------------------------------------------
  // Information

  /** dockerd's aufs status lines, and how strata mounts the branches here. */
  async status(): Promise<Array<[string, string]>> {
    const dirs = (await readdir(join(this.home, LAYERS_DIR))).filter((n) => !n.startsWith('.tmp-')).length
    return [
      ['Root Dir', this.home],
      ['Backing Filesystem', this.#backingFs],
      ['Dirs', String(dirs)],
      ['Dirperm1 Supported', String(this.#mode === 'kernel' ? await kernelSupportsDirperm1() : false)],
      ['Mounted through', this.#mode === 'kernel' ? 'aufs (kernel)' : 'fuse-overlayfs'],
    ]
  }

  /** dockerd's aufs GetMetadata returns nothing. */
  async getMetadata(id: string): Promise<Record<string, string>> {
    validateLayerId(id)
    if (!(await this.exists(id))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`, { details: { id } })
    return {}
  }

  // -------------------------------------------------------------------------
  // Diffs (from the layer's own branch)

  /** The branch as a layer tar, in aufs/OCI form whichever form its whiteouts are in. */
  async diff(id: string, parent: string | null, opts: DiffOptions = {}): Promise<Readable> {
    if (!(await this.#isOwnParent(id, parent))) return this.#naive.diff(id, parent, opts)
    return exportAufsBranch(diffPath(this.home, id), await this.#ancestorBranches(id), opts)
  }

  /** What the branch changes over its ancestors' branches, sorted by path. */
  async changes(id: string, parent: string | null): Promise<Change[]> {
    if (!(await this.#isOwnParent(id, parent))) return this.#naive.changes(id, parent)
    return changesAufs(diffPath(this.home, id), await this.#ancestorBranches(id))
  }

  async applyDiff(id: string, parent: string | null, tar: Readable): Promise<number> {
    return (await this.applyLayer(id, parent, tar)).size
  }

  /**
   * Extracts a layer tar (compressed or not) into the layer's diff dir as
   * it is (aufs reads `.wh.` whiteouts natively), in one pass that hashes it
   * and records tar-split, in a worker thread. The size is directory.Size
   * of the diff dir, as dockerd's aufs ApplyDiff returns. A failure leaves
   * the layer partly written, for the caller to remove.
   */
  async applyLayer(id: string, parent: string | null, source: Readable, opts: ApplyLayerOptions = {}): Promise<LayerApplyResult> {
    if (!(await this.#isOwnParent(id, parent))) return this.#naive.applyLayer(id, parent, source, opts)
    return this.#locks.withLock([id], async () => {
      if (this.#refs.peek(id)?.mounted === true || (await this.#isMounted(id))) {
        throw new StrataError('IN_USE', `Layer "${id}" is mounted; its branch cannot be written underneath the mount`, { details: { id } })
      }
      const dir = diffPath(this.home, id)
      const applyOpts = { whiteouts: 'aufs' as const, tarSplit: opts.tarSplit, expectedDiffId: opts.expectedDiffId, sourceDigest: opts.sourceDigest }
      // A small tar the caller knows of (a commit) on this thread (ApplyLayerOptions.inThread).
      const result = opts.inThread === true ? await applyLayer(dir, source, applyOpts) : await applyLayerOffThread(dir, source, applyOpts)
      return { ...result, size: result.diskSize ?? (await directorySize(dir)) }
    })
  }

  /** dockerd's aufs DiffSize: directory.Size of the diff dir. */
  async diffSize(id: string, parent: string | null): Promise<number> {
    if (!(await this.#isOwnParent(id, parent))) return this.#naive.diffSize(id, parent)
    return directorySize(diffPath(this.home, id))
  }

  /** The layer's branch: the files it added or changed, readable without a mount. */
  async diffFilesDir(id: string): Promise<string> {
    validateLayerId(id)
    if (!(await pathExists(layersPath(this.home, id)))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`, { details: { id } })
    return diffPath(this.home, id)
  }

  /** dockerd's isParent: whether `parent` is `id`'s own parent (the first line of its layers file; null for a base layer). */
  async #isOwnParent(id: string, parent: string | null): Promise<boolean> {
    validateLayerId(id)
    if (parent !== null) validateLayerId(parent, 'Parent layer id')
    const ancestors = await this.#ancestors(id)
    return (ancestors[0] ?? null) === parent
  }
}

/** Whether aufs can run on `root` here: the kernel's aufs, or fuse-overlayfs over the same branches. */
export async function probeAufs(root: string): Promise<ProbeResult> {
  const how = await mountModeFor('auto', root)
  return 'reason' in how ? { ok: false, reason: how.reason } : { ok: true }
}

/** aufs as a driver kind. Not in the automatic order: used when a root already has aufs/ or when asked for by name. */
export const aufsFactory: DriverFactory = {
  name: DRIVER_NAME,
  probe: probeAufs,
  open: (opts: DriverOptions) => AufsDriver.open(opts),
}

