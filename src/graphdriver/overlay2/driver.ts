/**
 * The overlay2 graph driver: dockerd 20.10's on-disk layout (see
 * layout.ts), its mount options, and its native diff (the layer's diff
 * dir is its changes, so diff/diffSize/applyLayer read it directly instead of
 * comparing two mounted trees; changes, as in dockerd, always compares the
 * mounted trees). As in dockerd, a diff against anything but
 * the layer's own parent, or on a kernel whose upper dirs do not record
 * changes faithfully (redirect_dir, metacopy), falls back to the naive diff
 * over full mounted trees.
 *
 * Sizes are dockerd's: applyLayer/applyDiff and diffSize return
 * directory.Size of the diff dir (size.ts: non-directory lstat sizes,
 * symlink target lengths included, each inode once), the figure dockerd
 * writes to layerdb's `size` file. (The naive fallback returns the tar's
 * entry sizes, as dockerd's NaiveDiffDriver does.)
 *
 * Mounts are shared between processes (types.ts): the reference counts
 * live in this object, but a layer's merged/ found mounted (by another
 * process, or by a persistent get) is adopted rather than replaced, and
 * the last put of an adopted mount forgets it without unmounting.
 * Opening the driver unmounts nothing; which mounts are stale is the
 * layer store's call (mountedLayers, then put with `persistent`).
 *
 * Where we differ from dockerd, on purpose:
 * - stacks deeper than 128 (up to the kernel's 500) are created and
 *   mounted through the new mount API; dockerd refuses "max depth exceeded";
 * - get/put are reference counted for base layers too (dockerd never
 *   mounts them and lets put be a no-op), so put without get is an error
 *   and remove of a base layer someone holds is refused;
 * - remove refuses a layer that is mounted, by this process or any other,
 *   or has children (IN_USE), and never deletes through a mount point.
 */
import { readFileSync } from 'node:fs'
import { mkdir, readdir, readlink, realpath, rm, rmdir, chmod, symlink, unlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join, normalize, resolve } from 'node:path'
import type { Readable } from 'node:stream'
import { isMainThread } from 'node:worker_threads'
import { applyLayer, applyLayerOffThread, changesNaive, exportOverlayUpper, type Change } from '../../archive/index.js'
import { StrataError, isErrno } from '../../errors/index.js'
import { fsyncPath, KeyedLock, pathExists, readTextIfExists } from '../../fs/index.js'
import { MNT_DETACH, mount, mountAsync, mountNewApi, statfsType, umount2Async } from '../../sys/index.js'
import { withNaiveDiff } from '../naive-diff.js'
import { MountRefCounter } from '../mount-refs.js'
import type { ApplyLayerOptions, DiffOptions, CreateOpts, DriverFactory, DriverOptions, GetOpts, GraphDriver, LayerApplyResult, PutOpts } from '../types.js'
import { cachedCheck } from './check-cache.js'
import { dockerFsName, isScratchDirName, kernelKnowsIndexOption, nativeDiffProblem, probeOverlay2, removeStaleScratchDirs } from './checks.js'
import {
  COMMITTED_FILE,
  COMMITTED_FILE_MODE,
  DIFF_DIR,
  DIFF_DIR_MODE,
  DRIVER_NAME,
  HOME_MODE,
  LAYER_DIR_MODE,
  LINK_DIR,
  LINK_DIR_MODE,
  LINK_FILE,
  LINK_FILE_MODE,
  LOWER_FILE,
  LOWER_FILE_MODE,
  MAX_LOWERS,
  MERGED_DIR,
  MERGED_DIR_MODE,
  WORK_DIR,
  WORK_DIR_MODE,
  generateShortId,
  isShortId,
  linkTarget,
  lowerString,
  mountPlan,
  parseLower,
  tooManyLayers,
  validateLayerId,
  type MountPlan,
} from './layout.js'
import { mountEntries, mountPointsUnder, mountsAt } from './mounts.js'
import { directorySize } from './size.js'

type MountApiChoice = 'auto' | 'legacy' | 'new'

/** Lower files read between two yields to the event loop when remove looks for children. */
const CHILD_SCAN_BATCH = 256

/** Settings fixed at open. */
interface DriverState {
  home: string
  realHome: string
  backingFs: string
  indexOff: boolean
  api: MountApiChoice
  nativeDiffProblem: string | undefined
  swept: string[]
}

/** Results of the native-diff check per filesystem home, like dockerd's once-per-process useNaiveDiff. */
const nativeDiffChecked = new Map<string, string | undefined>()

/** mkdir with an exact mode (mkdir's mode goes through the umask; chmod does not). */
async function mkdirMode(path: string, mode: number): Promise<void> {
  await mkdir(path, { mode })
  await chmod(path, mode)
}

/** writeFile with an exact mode. */
async function writeFileMode(path: string, content: string, mode: number): Promise<void> {
  await writeFile(path, content, { mode })
  await chmod(path, mode)
}

/** Whether the kernel took overlay's `volatile` option: undefined until a volatile mount tried it. */
let kernelTakesVolatile: boolean | undefined

/**
 * umount2(MNT_DETACH), treating "not mounted" (EINVAL) and "gone" (ENOENT)
 * as done; on the thread pool, so a slow unmount does not stop the event
 * loop (src/sys mount.ts, umount2Async).
 */
async function detachAsync(path: string): Promise<void> {
  try {
    await umount2Async(path, MNT_DETACH)
  } catch (err) {
    if (!isErrno(err, 'EINVAL', 'ENOENT')) throw err
  }
}

/** rmdir that ignores failure: dockerd removes merged/ only so other namespaces drop their copy of the mount. */
async function rmdirQuietly(path: string): Promise<void> {
  try {
    await rmdir(path)
  } catch {
    // busy, already gone or not empty: nothing depends on it
  }
}

/**
 * Whether a relative mount can chdir into the home and come back: only the
 * main thread can chdir, and only a working directory that still exists
 * can be returned to. Otherwise plans use absolute paths (the new mount
 * API when they do not fit a page).
 */
function canChdirAndBack(): boolean {
  if (!isMainThread) return false
  try {
    process.cwd()
    return true
  } catch {
    return false
  }
}

/** Parses the driver's own `--storage-opt` pairs (dockerd: overlay2.size, overlay2.override_kernel_check). */
function parseDriverOptions(options: Record<string, string> | undefined): MountApiChoice {
  let api: MountApiChoice = 'auto'
  for (const [rawKey, value] of Object.entries(options ?? {})) {
    const key = rawKey.toLowerCase()
    switch (key) {
      case 'overlay2.mountapi':
        if (value !== 'auto' && value !== 'legacy' && value !== 'new') {
          throw new StrataError('INVALID_ARGUMENT', `overlay2: option "${rawKey}" is "${value}"; expected "auto", "legacy" or "new"`)
        }
        api = value
        break
      case 'overlay2.override_kernel_check':
        // Accepted and ignored, as dockerd 20.10 does (deprecated there).
        break
      case 'overlay2.size':
        throw new StrataError('NOT_SUPPORTED', `overlay2: option "${rawKey}" needs xfs project quotas, which strata does not implement`)
      default:
        throw new StrataError('INVALID_ARGUMENT', `overlay2: unknown option "${rawKey}"`)
    }
  }
  return api
}

/** Checks per-layer `--storage-opt`s: dockerd knows only `size`, which needs project quotas. */
function checkCreateOpts(id: string, opts: CreateOpts | undefined, readWrite: boolean): void {
  for (const rawKey of Object.keys(opts?.storageOpt ?? {})) {
    const key = rawKey.toLowerCase()
    if (key !== 'size') throw new StrataError('INVALID_ARGUMENT', `overlay2: unknown storage option "${rawKey}" for layer "${id}"`)
    if (!readWrite) throw new StrataError('INVALID_ARGUMENT', `--storage-opt size is only supported for read-write layers, not layer "${id}"`)
    throw new StrataError('NOT_SUPPORTED', `--storage-opt size for layer "${id}" needs xfs project quotas, which strata does not implement`)
  }
}

export class Overlay2Driver implements GraphDriver {
  readonly name = DRIVER_NAME
  readonly home: string
  readonly #realHome: string
  readonly #backingFs: string
  readonly #indexOff: boolean
  readonly #api: MountApiChoice
  readonly #nativeDiffProblem: string | undefined
  /** get counts of layers this instance holds. */
  readonly #refs = new MountRefCounter(DRIVER_NAME)
  /** Layers this instance mounted with `volatile` (GetOpts.volatile): their unmount makes the diff dir durable. */
  readonly #volatileMounts = new Set<string>()
  /** One operation per layer at a time. */
  readonly #locks = new KeyedLock()
  /** Check scratch dirs of dead processes that open() removed. */
  readonly sweptOnOpen: readonly string[]
  /** dockerd's naiveDiff: for diffs against another layer than the parent, over this driver's own get/put. */
  readonly #naive: GraphDriver

  /** Use Overlay2Driver.open (or overlay2Factory.open): opening checks the host first. */
  private constructor(state: DriverState) {
    this.home = state.home
    this.#realHome = state.realHome
    this.#backingFs = state.backingFs
    this.#indexOff = state.indexOff
    this.#api = state.api
    this.#nativeDiffProblem = state.nativeDiffProblem
    this.sweptOnOpen = state.swept
    this.#naive = withNaiveDiff(this)
  }

  /**
   * Opens the driver on `<root>/overlay2`: checks the host (as the probe
   * does) and creates the home (0710) and `l/` (0700). Mounts found under
   * the home are left alone: they may be another process's, or persistent
   * (see the shared-mount rules in types.ts).
   */
  static async open(opts: DriverOptions): Promise<Overlay2Driver> {
    const api = parseDriverOptions(opts.options)
    const probe = await probeOverlay2(opts.root)
    if (!probe.ok) throw new StrataError('NOT_SUPPORTED', probe.reason ?? `overlay2 cannot run on "${opts.root}"`)
    const home = join(resolve(opts.root), DRIVER_NAME)
    if (!(await pathExists(home))) {
      await mkdir(home, { recursive: true, mode: HOME_MODE })
      await chmod(home, HOME_MODE)
    }
    const links = join(home, LINK_DIR)
    if (!(await pathExists(links))) {
      try {
        await mkdirMode(links, LINK_DIR_MODE)
      } catch (err) {
        // Another process opening the same fresh root made it first.
        if (!isErrno(err, 'EEXIST')) throw err
      }
    }
    const realHome = await realpath(home)
    // Scratch dirs of checks a killed process left behind, in the home and
    // in the root (where a fresh root's probe ran); live ones are owned (checks.ts).
    const swept = [...(await removeStaleScratchDirs(resolve(opts.root))), ...(await removeStaleScratchDirs(realHome))]
    let problem: string | undefined
    if (nativeDiffChecked.has(realHome)) problem = nativeDiffChecked.get(realHome)
    else {
      // Kept for the boot (check-cache.ts): dockerd checks once per daemon start, strata per command otherwise.
      problem = await cachedCheck('native-diff', realHome, () => nativeDiffProblem(realHome), () => true)
      nativeDiffChecked.set(realHome, problem)
    }
    return new Overlay2Driver({
      home,
      realHome,
      backingFs: dockerFsName(statfsType(home)),
      indexOff: kernelKnowsIndexOption(),
      api,
      nativeDiffProblem: problem,
      swept,
    })
  }

  /** Native diff applies into an empty diff dir, reading nothing of the parent; the naive fallback mounts the parent. */
  get parallelApply(): boolean {
    return this.#nativeDiffProblem === undefined
  }

  // -------------------------------------------------------------------------
  // Layers

  async create(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    checkCreateOpts(id, opts, false)
    await this.#create(id, parent)
  }

  async createReadWrite(id: string, parent: string | null, opts?: CreateOpts): Promise<void> {
    checkCreateOpts(id, opts, true)
    await this.#create(id, parent)
  }

  /**
   * dockerd's create(): the layer dir, diff/, a fresh short ID in link and
   * as l/<short id> -> ../<id>/diff, and for a child: work/, the parent's
   * `committed` marker and the lower file (the parent's link, then the
   * parent's lowers). The depth is checked before anything is written.
   */
  async #create(id: string, parent: string | null): Promise<void> {
    validateLayerId(id)
    if (parent !== null) {
      validateLayerId(parent, 'Parent layer id')
      if (parent === id) throw new StrataError('INVALID_ARGUMENT', `Layer "${id}" cannot be its own parent`)
    }
    await this.#locks.withLock(parent === null ? [id] : [id, parent], async () => {
      const dir = this.#dir(id)
      if (await pathExists(dir)) throw new StrataError('ALREADY_EXISTS', `Layer "${id}" already exists in "${this.home}"`)
      let lower: string | undefined
      if (parent !== null) {
        const parentDir = this.#dir(parent)
        if (!(await pathExists(parentDir))) throw new StrataError('NOT_FOUND', `Parent layer "${parent}" of new layer "${id}" does not exist`)
        const parentLink = await this.#readLink(parent)
        lower = lowerString(parentLink, await readTextIfExists(join(parentDir, LOWER_FILE)))
        const depth = lower.split(':').length
        if (depth > MAX_LOWERS) throw tooManyLayers(depth)
      }

      try {
        await mkdirMode(dir, LAYER_DIR_MODE)
      } catch (err) {
        if (isErrno(err, 'EEXIST')) throw new StrataError('ALREADY_EXISTS', `Layer "${id}" already exists in "${this.home}"`)
        throw err
      }
      let linkPath: string | undefined
      try {
        await mkdirMode(join(dir, DIFF_DIR), DIFF_DIR_MODE)
        const shortId = await this.#makeLink(id)
        linkPath = join(this.home, LINK_DIR, shortId)
        if (parent !== null && lower !== undefined) {
          await mkdirMode(join(dir, WORK_DIR), WORK_DIR_MODE)
          await writeFileMode(join(this.#dir(parent), COMMITTED_FILE), '', COMMITTED_FILE_MODE)
          await writeFileMode(join(dir, LOWER_FILE), lower, LOWER_FILE_MODE)
        }
      } catch (err) {
        if (linkPath !== undefined) await rm(linkPath, { force: true })
        await rm(dir, { recursive: true, force: true })
        throw err
      }
    })
  }

  /**
   * Creates l/<new short id> -> ../<id>/diff, drawing again on the
   * (astronomically unlikely) collision. The layer's `link` file is written
   * before the symlink, so a process killed between the two leaves a layer
   * that remove() cleans, never an l/ link that no layer names.
   */
  async #makeLink(id: string): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const shortId = generateShortId()
      await writeFileMode(join(this.#dir(id), LINK_FILE), shortId, LINK_FILE_MODE)
      try {
        await symlink(linkTarget(id), join(this.home, LINK_DIR, shortId))
        return shortId
      } catch (err) {
        if (!isErrno(err, 'EEXIST') || attempt >= 10) throw err
      }
    }
  }

  async remove(id: string): Promise<void> {
    validateLayerId(id)
    await this.#locks.withLock([id], async () => {
      const dir = this.#dir(id)
      if (!(await pathExists(dir))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`)
      this.#refs.refuseRemoveIfHeld(id)
      const shortId = (await readTextIfExists(join(dir, LINK_FILE)))?.trim()
      if (shortId !== undefined && isShortId(shortId) && (await pathExists(join(dir, COMMITTED_FILE)))) {
        const child = await this.#findChild(id, shortId)
        if (child !== undefined) {
          throw new StrataError('IN_USE', `Layer "${id}" has a child layer "${child}"; remove its children first`, { details: { child } })
        }
      }

      // A mount under the layer (another process's merged/, a persistent
      // get's, or a crashed process's) is not ours to take down here: the
      // layer store decides, and releases it with put(id, {persistent}).
      // The recursive delete below would cross it into the lowers.
      const mounts = await mountPointsUnder(join(this.#realHome, id))
      if (mounts.length > 0) {
        throw new StrataError('IN_USE', `Layer "${id}" is mounted ("${[...new Set(mounts)].join('", "')}") by another process or a persistent get; release it with a persistent put before removing it`, {
          details: { mounts },
        })
      }

      if (shortId !== undefined && isShortId(shortId)) {
        const link = join(this.home, LINK_DIR, shortId)
        // Only our own link: a link file copied from another layer must not take that layer's link with it.
        const target = await readlink(link).catch(() => undefined)
        if (target === linkTarget(id)) await unlink(link)
      }
      await rm(dir, { recursive: true, force: true })
    })
  }

  /**
   * A layer whose lower file names `l/<shortId>` (a descendant of `id`),
   * preferring a direct child (whose lower file starts with it). remove
   * runs this for every layer that ever had a child, over every layer's
   * lower file, so it reads them synchronously (a few microseconds each,
   * where a promise round trip through the thread pool costs ten times
   * that) in batches, yielding to the event loop between batches.
   */
  async #findChild(id: string, shortId: string): Promise<string | undefined> {
    const entry = `${LINK_DIR}/${shortId}`
    const names = (await readdir(this.home)).filter((n) => n !== LINK_DIR && n !== id)
    let descendant: string | undefined
    for (let i = 0; i < names.length; i += CHILD_SCAN_BATCH) {
      if (i > 0) await new Promise<void>((r) => setImmediate(r))
      for (const name of names.slice(i, i + CHILD_SCAN_BATCH)) {
        let lower: string
        try {
          lower = readFileSync(join(this.home, name, LOWER_FILE), 'utf8')
        } catch {
          continue // no lower file (a base layer), or not a layer dir at all
        }
        if (lower === entry || lower.startsWith(`${entry}:`)) return name
        if (descendant === undefined && lower.split(':').includes(entry)) descendant = name
      }
    }
    return descendant
  }

  async exists(id: string): Promise<boolean> {
    try {
      validateLayerId(id)
    } catch {
      return false
    }
    return pathExists(this.#dir(id))
  }

  // -------------------------------------------------------------------------
  // Mounts

  /**
   * A base layer: its diff dir, nothing mounted. Any other layer: an
   * overlay at merged/, mounted by the first get; later gets return the
   * same path. Read-write (upper = diff) while the layer has no child,
   * read-only (diff on top of the lowers) once it has (`committed`).
   *
   * A merged/ already mounted (by another process, or a persistent get) is
   * adopted, not replaced. A persistent get records no reference: it
   * mounts if needed and returns the path; if this instance holds the
   * mount, its last put then leaves it mounted.
   */
  async get(id: string, opts?: GetOpts): Promise<string> {
    validateLayerId(id)
    const persistent = opts?.persistent === true
    return this.#locks.withLock([id], async () => {
      const dir = this.#dir(id)
      if (!(await pathExists(dir))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`)
      const ref = this.#refs.peek(id)
      const lower = ref?.mounted === false ? undefined : await readTextIfExists(join(dir, LOWER_FILE))
      if (lower === undefined) {
        this.#refs.holdUnmounted(id, persistent)
        return join(dir, DIFF_DIR)
      }

      const volatile = opts?.volatile === true && !persistent
      await this.#refs.holdMounted(id, persistent, { isMounted: () => this.#isMounted(id), mount: () => this.#mountLayer(id, lower, volatile) })
      return join(dir, MERGED_DIR)
    })
  }

  /**
   * Drops one reference; the last one unmounts merged/ (lazily, as dockerd)
   * and removes it, unless the mount is adopted (then it is only
   * forgotten). With `persistent`, releases a persistent get instead; see
   * #putPersistent.
   */
  async put(id: string, opts?: PutOpts): Promise<void> {
    validateLayerId(id)
    if (opts?.persistent === true) return this.#putPersistent(id)
    await this.#locks.withLock([id], async () => {
      const ref = this.#refs.peek(id)
      if (ref === undefined && !(await pathExists(this.#dir(id)))) {
        throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`)
      }
      await this.#refs.release(id, () => this.#unmountLayer(id))
    })
  }

  /**
   * Releases a persistent get, made by this process or any other: unmounts
   * merged/ unless this instance still holds references on the layer
   * (then the last of those unmounts it). A layer that is not mounted, or
   * a base layer, is a no-op; an unknown layer is NOT_FOUND.
   */
  async #putPersistent(id: string): Promise<void> {
    await this.#locks.withLock([id], async () => {
      if (!(await pathExists(this.#dir(id)))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`)
      await this.#refs.releasePersistent(
        id,
        async () => (await mountsAt(join(this.#realHome, id, MERGED_DIR))).length > 0,
        () => this.#unmountLayer(id),
      )
    })
  }

  /** Ids of layers whose merged/ is a mount point now, whoever mounted it, sorted. */
  async mountedLayers(): Promise<string[]> {
    const ids = new Set<string>()
    for (const { mountPoint } of await mountEntries()) {
      if (basename(mountPoint) !== MERGED_DIR) continue
      const layerDir = dirname(mountPoint)
      // Only layers: the kernel checks mount overlays in scratch dirs of the home too.
      if (dirname(layerDir) === this.#realHome && !isScratchDirName(basename(layerDir))) ids.add(basename(layerDir))
    }
    return [...ids].sort()
  }

  /**
   * Unmounts the layers this instance mounted and still holds. Adopted
   * mounts (another process's) and persistent ones stay.
   */
  async cleanup(): Promise<void> {
    // Let operations in flight finish first, so none mounts behind our back.
    await this.#locks.settled()
    await this.#refs.unmountAll((id) => this.#unmountLayer(id))
  }

  /**
   * Whether `id`'s merged/ has the layer's overlay mounted now. Something
   * else mounted there (a tmpfs, a bind mount) would hide the layer if
   * adopted and be hidden if mounted over, so it is refused.
   */
  async #isMounted(id: string): Promise<boolean> {
    const realMerged = join(this.#realHome, id, MERGED_DIR)
    const mounts = await mountsAt(realMerged)
    const top = mounts[mounts.length - 1]
    if (top === undefined) return false
    if (top.fsType !== 'overlay') {
      throw new StrataError('IN_USE', `Layer "${id}" cannot be mounted: "${realMerged}" has a ${top.fsType || 'non-overlay'} filesystem mounted on it, not the layer's overlay; unmount it first`, {
        details: { fsType: top.fsType },
      })
    }
    return true
  }

  /** Mounts `id`'s overlay at merged/ (creating the dir), from its lower file's content; `volatile`: see GetOpts.volatile. */
  async #mountLayer(id: string, lower: string, volatile = false): Promise<void> {
    const dir = this.#dir(id)
    const lowers = parseLower(lower, `lower file of layer "${id}"`)
    const readOnly = await pathExists(join(dir, COMMITTED_FILE))
    const withVolatile = volatile && !readOnly && kernelTakesVolatile !== false
    const planFor = (v: boolean): MountPlan =>
      readOnly
        ? mountPlan([`${id}/${DIFF_DIR}`, ...lowers], null, null, this.#planOptions())
        : mountPlan(lowers, `${id}/${DIFF_DIR}`, `${id}/${WORK_DIR}`, { ...this.#planOptions(), volatile: v })
    let plan = planFor(withVolatile)

    const merged = join(dir, MERGED_DIR)
    try {
      await mkdirMode(merged, MERGED_DIR_MODE)
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err
    }
    try {
      try {
        await this.#mount(plan, merged)
        if (withVolatile) {
          kernelTakesVolatile = true
          this.#volatileMounts.add(id)
        }
      } catch (err) {
        // A kernel before 5.10 refuses the option it does not know: a plain mount then (and no more tries).
        if (!withVolatile || kernelTakesVolatile === true || !isErrno(err, 'EINVAL')) throw err
        kernelTakesVolatile = false
        plan = planFor(false)
        await this.#mount(plan, merged)
      }
    } catch (err) {
      await rmdirQuietly(merged)
      const how = plan.api === 'new' ? 'the new mount API' : 'mount(2)'
      throw new StrataError(
        'SYSCALL',
        `Mounting layer "${id}" (${lowers.length} lower${lowers.length === 1 ? '' : 's'}, ${readOnly ? 'read-only' : 'read-write'}) at "${merged}" through ${how} failed: ${(err as Error).message}`,
        { cause: err },
      )
    }
  }

  /** Detaches `id`'s merged/ (already gone is fine) and removes the dir, as dockerd does. */
  async #unmountLayer(id: string): Promise<void> {
    const merged = join(this.#dir(id), MERGED_DIR)
    try {
      await detachAsync(merged)
    } catch (err) {
      throw new StrataError('SYSCALL', `Unmounting layer "${id}" at "${merged}" failed: ${(err as Error).message}`, { cause: err })
    }
    await rmdirQuietly(merged)
    if (this.#volatileMounts.delete(id)) await this.#afterVolatile(id)
  }

  /**
   * After a volatile mount's unmount: what was written through it is made
   * durable by an fsync of every file and directory in the diff dir (the
   * init layer: a dozen entries, one journal commit), which the plain
   * unmount's sync of the whole filesystem did as a side effect; and the
   * `work/work/incompat/volatile` marker the kernel leaves is removed, or
   * the next read-write mount of the layer would be refused (the kernel's
   * "this upper may be damaged" sign; it is not: the unmount was clean).
   */
  async #afterVolatile(id: string): Promise<void> {
    const dir = this.#dir(id)
    const paths: string[] = []
    const walk = async (p: string): Promise<void> => {
      paths.push(p)
      for (const entry of await readdir(p, { withFileTypes: true })) {
        if (entry.isDirectory()) await walk(join(p, entry.name))
        else if (entry.isFile()) paths.push(join(p, entry.name))
      }
    }
    await walk(join(dir, DIFF_DIR))
    // Side by side: ext4 commits them in one journal transaction.
    await Promise.all(paths.map((p) => fsyncPath(p)))
    await rm(join(dir, WORK_DIR, 'work', 'incompat'), { recursive: true, force: true })
  }

  #planOptions(): Parameters<typeof mountPlan>[3] {
    return { home: this.home, indexOff: this.#indexOff, api: this.#api, allowRelative: canChdirAndBack() }
  }

  /**
   * Performs a mount plan on `target`. A relative legacy plan is what
   * dockerd's mountFrom does in a re-exec'd child: chdir into the home,
   * mount, come back. That sequence is synchronous, so no other
   * JavaScript runs while the working directory is the home; an absolute
   * legacy plan mounts on the thread pool instead.
   */
  async #mount(plan: MountPlan, target: string): Promise<void> {
    if (plan.api === 'new') {
      mountNewApi('overlay', target, plan.options)
      return
    }
    if (!plan.relative) {
      // On the thread pool: the event loop runs while the kernel mounts.
      await mountAsync('overlay', target, 'overlay', 0, plan.data)
      return
    }
    const previous = process.cwd()
    process.chdir(plan.cwd)
    try {
      mount('overlay', target, 'overlay', 0, plan.data)
    } finally {
      process.chdir(previous)
    }
  }

  // -------------------------------------------------------------------------
  // Information

  /** The "Storage Driver" lines of dockerd 20.10's `docker info` for overlay2. */
  async status(): Promise<Array<[string, string]>> {
    return [
      ['Backing Filesystem', this.#backingFs],
      // open refuses a filesystem without d_type, so this is always true.
      ['Supports d_type', 'true'],
      ['Native Overlay Diff', String(this.#nativeDiffProblem === undefined)],
      // Never: we run as root, where overlayfs uses trusted.* attributes.
      ['userxattr', 'false'],
    ]
  }

  /**
   * What `docker inspect` shows as GraphDriver.Data: LowerDir (the lowers'
   * diff dirs, resolved from l/, nearest first, ':'-joined; absent for a
   * base layer), MergedDir, UpperDir, WorkDir. Keys in the order Go's JSON
   * encoder writes a map (sorted).
   */
  async getMetadata(id: string): Promise<Record<string, string>> {
    validateLayerId(id)
    const dir = this.#dir(id)
    if (!(await pathExists(dir))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`)
    const meta: Record<string, string> = {}
    const lowers = await this.#lowerDiffDirs(id)
    if (lowers.length > 0) meta.LowerDir = lowers.join(':')
    meta.MergedDir = join(dir, MERGED_DIR)
    meta.UpperDir = join(dir, DIFF_DIR)
    meta.WorkDir = join(dir, WORK_DIR)
    return meta
  }

  // -------------------------------------------------------------------------
  // Diffs (native: the diff dir holds exactly the layer's changes)

  /** A layer tar of `id`'s diff dir, overlay whiteouts turned into aufs ones (dockerd's native Diff). */
  async diff(id: string, parent: string | null, opts: DiffOptions = {}): Promise<Readable> {
    if (!(await this.#canDiffNatively(id, parent))) return this.#naive.diff(id, parent, opts)
    return exportOverlayUpper(join(this.#dir(id), DIFF_DIR), opts)
  }

  /**
   * Changes by comparing the mounted trees of `id` and `parent`, always,
   * as dockerd's overlay2 has done since moby PR #37313 (18.06), whatever
   * the kernel: the upper dir's own view (an opaque dir is one deletion, a
   * dir copied up for a child is unchanged) is not what `docker diff`
   * lists (the deleted children one by one, every dir above a change).
   * Where the diff dir alone would do for a diff, it guides the walk:
   * what it does not hold is the same in both trees and is not visited
   * (NaiveChangesOptions.upperDir), so the cost follows the layer's
   * changes, not the image's size. Sorted by path.
   */
  async changes(id: string, parent: string | null): Promise<Change[]> {
    if (!(await this.#canDiffNatively(id, parent))) return this.#naive.changes(id, parent)
    const layerFs = await this.get(id)
    try {
      const parentFs = parent === null ? null : await this.get(parent)
      try {
        return await changesNaive(layerFs, parentFs, { upperDir: join(this.#dir(id), DIFF_DIR) })
      } finally {
        if (parent !== null) await this.put(parent)
      }
    } finally {
      await this.put(id)
    }
  }

  /** applyLayer's size (see there). */
  async applyDiff(id: string, parent: string | null, tar: Readable): Promise<number> {
    return (await this.applyLayer(id, parent, tar)).size
  }

  /**
   * Extracts a layer tar (compressed or not) into the diff dir, whiteouts
   * as overlayfs wants them (0/0 char devices, trusted.overlay.opaque=y),
   * in one pass that also hashes it and records tar-split. `size` is
   * dockerd's: directory.Size of the diff dir (counted by the apply, or
   * walked after it when the apply cannot tell). A
   * failure leaves the layer in place, partly written, for the caller to
   * remove.
   */
  async applyLayer(id: string, parent: string | null, source: Readable, opts: ApplyLayerOptions = {}): Promise<LayerApplyResult> {
    if (!(await this.#canDiffNatively(id, parent))) return this.#naive.applyLayer(id, parent, source, opts)
    return this.#locks.withLock([id], async () => {
      const ref = this.#refs.peek(id)
      if (ref?.mounted === true || (await mountsAt(join(this.#realHome, id, MERGED_DIR))).length > 0) {
        throw new StrataError('IN_USE', `Layer "${id}" is mounted; overlayfs does not allow writing to its diff dir underneath the mount`)
      }
      const diffDir = join(this.#dir(id), DIFF_DIR)
      // In a worker thread, so that the layers of an image apply side by side (see parallelApply);
      // a small tar the caller knows of (a commit) on this thread, which a worker's start would outweigh.
      const applyOpts = { whiteouts: 'overlay' as const, tarSplit: opts.tarSplit, expectedDiffId: opts.expectedDiffId, sourceDigest: opts.sourceDigest }
      const result = opts.inThread === true ? await applyLayer(diffDir, source, applyOpts) : await applyLayerOffThread(diffDir, source, applyOpts)
      // The apply counts directory.Size as it writes when it can tell (a fresh diff dir, nothing replaced); else walk.
      return { ...result, size: result.diskSize ?? (await directorySize(diffDir)) }
    })
  }

  /** dockerd's DiffSize: directory.Size of the diff dir (symlinks included, hardlinks once). */
  async diffSize(id: string, parent: string | null): Promise<number> {
    if (!(await this.#canDiffNatively(id, parent))) return this.#naive.diffSize(id, parent)
    return directorySize(join(this.#dir(id), DIFF_DIR))
  }

  /** The layer's diff dir: the files it added or changed, readable without a mount. */
  async diffFilesDir(id: string): Promise<string> {
    validateLayerId(id)
    const dir = this.#dir(id)
    if (!(await pathExists(dir))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`)
    return join(dir, DIFF_DIR)
  }

  // -------------------------------------------------------------------------
  // Helpers

  #dir(id: string): string {
    return join(this.home, id)
  }

  /** The short ID in `id`'s link file. */
  async #readLink(id: string): Promise<string> {
    const content = await readTextIfExists(join(this.#dir(id), LINK_FILE))
    if (content === undefined || !isShortId(content.trim())) {
      throw new StrataError('CORRUPT', `Layer "${id}" has ${content === undefined ? 'no link file' : `a link file holding "${content}", not a short id`}`)
    }
    return content.trim()
  }

  /** Absolute diff dirs of `id`'s lowers, nearest first (dockerd's getLowerDirs): each l/ link resolved. */
  async #lowerDiffDirs(id: string): Promise<string[]> {
    const content = await readTextIfExists(join(this.#dir(id), LOWER_FILE))
    if (content === undefined) return []
    const out: string[] = []
    for (const entry of parseLower(content, `lower file of layer "${id}"`)) {
      let target: string
      try {
        target = await readlink(join(this.home, entry))
      } catch (err) {
        throw new StrataError('CORRUPT', `Layer "${id}" lists lower "${entry}", which is not a link in "${join(this.home, LINK_DIR)}"`, { cause: err })
      }
      const resolved = normalize(join(this.home, LINK_DIR, target))
      if (dirname(dirname(resolved)) !== this.home) {
        throw new StrataError('CORRUPT', `Link "${entry}" of layer "${id}" points to "${target}", outside "${this.home}"`)
      }
      out.push(resolved)
    }
    return out
  }

  /** The id of `id`'s parent, from the first entry of its lower file (null for a base layer). */
  async #parentOf(id: string): Promise<string | null> {
    const lowers = await this.#lowerDiffDirs(id)
    return lowers.length === 0 ? null : basename(dirname(lowers[0] as string))
  }

  /**
   * Whether the diff dir alone answers a diff of `id` against `parent`
   * (dockerd: `!useNaiveDiff && isParent`): `parent` is the layer's own
   * parent and the kernel's upper dirs record changes faithfully.
   */
  async #canDiffNatively(id: string, parent: string | null): Promise<boolean> {
    validateLayerId(id)
    if (parent !== null) validateLayerId(parent, 'Parent layer id')
    if (!(await pathExists(this.#dir(id)))) throw new StrataError('NOT_FOUND', `Layer "${id}" does not exist in "${this.home}"`)
    if (this.#nativeDiffProblem !== undefined) return false
    return (await this.#parentOf(id)) === parent
  }
}

/** overlay2 as a driver kind: probe a data root, open the driver on it. */
export const overlay2Factory: DriverFactory = {
  name: DRIVER_NAME,
  probe: probeOverlay2,
  open: (opts: DriverOptions) => Overlay2Driver.open(opts),
}
