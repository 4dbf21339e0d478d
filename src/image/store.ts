/**
 * The image store: dockerd's imagedb, in the same files dockerd 20.10 writes
 * under `<root>/image/<driver>/imagedb/`:
 *
 *   content/sha256/<hex>            the config bytes exactly as given (0600); the image ID is their sha256
 *   metadata/sha256/<hex>/parent    "sha256:<parent id>" (0600), no newline
 *   metadata/sha256/<hex>/lastUpdated  Go's time.Now().Format(time.RFC3339Nano) (0600)
 *
 * Directories are 0700; every file is written atomically (temp, fsync,
 * rename) as moby's ioutils.AtomicWriteFile does.
 *
 * dockerd keeps the image list and the child map in memory; strata has no
 * daemon, so they are read from disk on every call, and every change runs
 * under the data-root lock so that several processes can share the store.
 * An image keeps its top layer alive through the `topChainIds()` hook the
 * layer store is opened with: create() holds a layer handle until the image
 * is on disk, delete() holds one until the image is gone, and the layer
 * store's release() collects the layer when nothing refers to it any more.
 */
import { mkdir, readdir, rm, stat, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { chainId, digestHex, isDigest, parseDigest, sha256Of } from '../digest/index.js'
import { StrataError, isErrno, isStrataError } from '../errors/index.js'
import type { ChainID, CheckProblem, LayerHandle } from '../layer/index.js'
import { atomicWriteFile, formatRfc3339Nano, fsyncPath, isTempName, nowNs, pathExists, readIfExists, sweepTempFiles, type StoreLock } from '../fs/index.js'
import {
  imageOperatingSystem,
  parseImageConfig,
  topChainId,
  validateForCreate,
  type ImageConfig,
  type ImageID,
} from './config.js'

/**
 * What the image store needs from the layer store. `lock` is the data-root
 * lock the layer store uses too (so an image and the layers it needs change
 * under one lock); `get` takes a live reference on a layer (NOT_FOUND when it
 * does not exist). `has`, when given, answers whether a layer exists
 * without taking a reference; check() uses it, and falls back to
 * get()+release() without it.
 */
export interface ImageLayers {
  lock: StoreLock
  get(chainId: ChainID): Promise<LayerHandle>
  has?(chainId: ChainID): Promise<boolean>
}

export interface ImageStoreOptions {
  /** The data root; the store lives in `<root>/image/<driverName>/imagedb`. */
  root: string
  driverName: string
  layers: ImageLayers
}

/** An image as read from the store. */
export interface Image {
  id: ImageID
  config: ImageConfig
  /** The content file's bytes; sha256(raw) === id. */
  raw: Buffer
  /** metadata/parent: the image this one was built from (legacy builder, commit). */
  parent?: ImageID
  /** metadata/lastUpdated as written (RFC3339Nano), when the image was last tagged. */
  lastUpdated?: string
}

export interface CreateImageOptions {
  /** Records this image's parent (it must exist). */
  parent?: ImageID
}

export interface CreateImageResult {
  id: ImageID
  /** false when the image was already in the store (creating it again changes nothing, as in dockerd). */
  created: boolean
}

export interface DeleteImageResult {
  id: ImageID
  /** The top layer the image referred to (released; the layer store deletes it if nothing else refers to it). */
  topLayer: ChainID | null
}

export interface ImageCheckOptions {
  /** Remove images that cannot be trusted (content not matching the ID or not a config, top layer missing), dangling parent links, orphan metadata and temp files. */
  repair?: boolean
}

const HEX_RE = /^[a-f0-9]{64}$/

/** Accepts `sha256:<hex>` or a bare 64-hex ID. */
export function parseImageId(id: string): ImageID {
  try {
    return parseDigest(id)
  } catch (err) {
    throw new StrataError('INVALID_ARGUMENT', `Invalid image ID "${id}": expected sha256:<64 lowercase hex> or 64 hex`, { cause: err })
  }
}

function noSuchImage(id: string): StrataError {
  return new StrataError('NOT_FOUND', `No such image: ${id}`, { details: { id } })
}

/** An image check does not trust, with its problem and (when it lacks its top layer) that layer. */
interface UntrustedImage {
  id: ImageID
  problem: CheckProblem
  top?: ChainID
}

export class ImageStore {
  /** `<root>/image/<driver>`. */
  readonly imageRoot: string
  /** `<root>/image/<driver>/imagedb`. */
  readonly dir: string
  readonly #layers: ImageLayers
  readonly #contentDir: string
  readonly #metadataDir: string

  private constructor(opts: ImageStoreOptions) {
    this.imageRoot = join(opts.root, 'image', opts.driverName)
    this.dir = join(this.imageRoot, 'imagedb')
    this.#layers = opts.layers
    this.#contentDir = join(this.dir, 'content', 'sha256')
    this.#metadataDir = join(this.dir, 'metadata', 'sha256')
  }

  /** Opens (creating its directories, 0700, as dockerd does) the image store of a data root. */
  static async open(opts: ImageStoreOptions): Promise<ImageStore> {
    if (opts.driverName === '' || opts.driverName.includes('/')) {
      throw new StrataError('INVALID_ARGUMENT', `Invalid storage driver name "${opts.driverName}"`)
    }
    const store = new ImageStore(opts)
    await mkdir(store.#contentDir, { recursive: true, mode: 0o700 })
    await mkdir(store.#metadataDir, { recursive: true, mode: 0o700 })
    return store
  }

  /** `imagedb/content/sha256/<hex>`. */
  contentPath(id: ImageID): string {
    return join(this.#contentDir, digestHex(id))
  }

  /** `imagedb/metadata/sha256/<hex>`. */
  metadataPath(id: ImageID): string {
    return join(this.#metadataDir, digestHex(id))
  }

  /**
   * Stores an image config. Validates it (INVALID_ARGUMENT), takes a handle
   * on its top layer (NOT_FOUND when the layer store lacks it), writes the
   * content file under the data-root lock, then releases the handle: from
   * then on the image on disk is what keeps the layer.
   */
  async create(configBytes: Buffer | string, opts: CreateImageOptions = {}): Promise<CreateImageResult> {
    const raw = Buffer.isBuffer(configBytes) ? configBytes : Buffer.from(configBytes, 'utf8')
    if (raw.length === 0) throw new StrataError('INVALID_ARGUMENT', 'Invalid image config: empty')
    const { config } = parseImageConfig(raw)
    validateForCreate(config)
    const id = sha256Of(raw)
    const parent = opts.parent === undefined ? undefined : parseImageId(opts.parent)
    if (parent === id) throw new StrataError('INVALID_ARGUMENT', `Image ${id} cannot be its own parent`)
    const top = topChainId(config)
    let handle: LayerHandle | undefined
    if (top !== null) {
      const os = imageOperatingSystem(config)
      if (os.toLowerCase() !== process.platform) {
        throw new StrataError('NOT_SUPPORTED', `Image config is for operating system "${os}", which this host (${process.platform}) does not support`)
      }
      // Taken before the lock: the layer store takes the same lock in get().
      try {
        handle = await this.#layers.get(top)
      } catch (err) {
        if (isStrataError(err, 'NOT_FOUND')) {
          throw new StrataError('NOT_FOUND', `image config references layer ${top} which is not in the layer store`, {
            cause: err,
            details: { chainId: top, imageId: id },
          })
        }
        throw err
      }
    }
    try {
      const created = await this.#layers.lock.withLock(async () => {
        if (parent !== undefined && !(await this.#contentExists(parent))) {
          throw new StrataError('NOT_FOUND', `Parent image ${parent} of ${id} does not exist`, { details: { parent } })
        }
        const path = this.contentPath(id)
        const existing = await readIfExists(path)
        // An existing file with other bytes is corrupt (same name, different hash): replace it.
        const isNew = existing === undefined || !existing.equals(raw)
        try {
          if (isNew) await atomicWriteFile(path, raw, 0o600)
          if (parent !== undefined) await this.#writeMetadata(id, 'parent', parent)
        } catch (err) {
          // A step after the rename failed (the directory's fsync, the parent
          // link): the caller sees a failure, so the image must not be left
          // behind as if created. Only a new image is taken back.
          if (existing === undefined) {
            await rm(path, { force: true })
            await rm(this.metadataPath(id), { recursive: true, force: true })
          }
          throw err
        }
        return isNew
      })
      return { id, created }
    } finally {
      await handle?.release()
    }
  }

  /**
   * Reads an image, re-verifying that its content hashes to its ID (CORRUPT
   * naming the file otherwise) and parsing it. `id` is `sha256:<hex>` or
   * the bare hex; use resolvePrefix() for short IDs.
   */
  async get(id: string): Promise<Image> {
    const full = parseImageId(id)
    const path = this.contentPath(full)
    const raw = await readIfExists(path)
    if (raw === undefined) throw noSuchImage(full)
    const actual = sha256Of(raw)
    if (actual !== full) {
      throw new StrataError('CORRUPT', `Image content file "${path}" hashes to ${actual}, not to its ID ${full}`, {
        details: { path, expected: full, actual },
        hint: 'strata check --repair removes images whose content is damaged',
      })
    }
    const { config } = parseImageConfig(raw, { origin: path })
    const image: Image = { id: full, config, raw }
    const parent = await this.#readMetadata(full, 'parent')
    // dockerd ignores a parent it cannot use; check() reports a malformed one.
    if (parent !== undefined && isDigest(parent)) image.parent = parent
    const lastUpdated = await this.#readMetadata(full, 'lastUpdated')
    if (lastUpdated !== undefined && lastUpdated !== '') image.lastUpdated = lastUpdated
    return image
  }

  /** Whether the image's content file exists (not verified; get() verifies). */
  async exists(id: string): Promise<boolean> {
    return this.#contentExists(parseImageId(id))
  }

  /** Every image ID in the store, sorted (file names that are not 64 hex, e.g. temp files, are skipped as dockerd's Walk does). */
  async list(): Promise<ImageID[]> {
    let names: string[]
    try {
      names = await readdir(this.#contentDir)
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return []
      throw err
    }
    return names.filter((n) => HEX_RE.test(n)).sort().map((n) => `sha256:${n}` as ImageID)
  }

  /**
   * docker's short-ID lookup (its digestset): `prefix` is hex, with or
   * without `sha256:`. A unique match (or an exact full ID) is returned;
   * several matches are INVALID_ARGUMENT (ambiguous), none NOT_FOUND.
   */
  async resolvePrefix(prefix: string): Promise<ImageID> {
    const hex = prefix.startsWith('sha256:') ? prefix.slice(7) : prefix
    if (hex === '') throw new StrataError('INVALID_ARGUMENT', 'Empty image ID prefix')
    if (!/^[a-f0-9]+$/.test(hex)) throw noSuchImage(prefix)
    const matches = (await this.list()).filter((id) => digestHex(id).startsWith(hex))
    if (matches.length === 0) throw noSuchImage(prefix)
    const exact = matches.find((id) => digestHex(id) === hex)
    if (exact !== undefined) return exact
    if (matches.length > 1) {
      throw new StrataError('INVALID_ARGUMENT', `Image ID prefix "${prefix}" is ambiguous: it matches ${matches.length} images`, {
        details: { matches },
      })
    }
    return matches[0]!
  }

  /** The images whose parent is `id`, sorted. */
  async children(id: string): Promise<ImageID[]> {
    const full = parseImageId(id)
    const out: ImageID[] = []
    for (const candidate of await this.list()) {
      if ((await this.#readMetadata(candidate, 'parent')) === full) out.push(candidate)
    }
    return out
  }

  /** The recorded parent of `id`, or undefined. NOT_FOUND when `id` is not in the store. */
  async getParent(id: string): Promise<ImageID | undefined> {
    const full = parseImageId(id)
    if (!(await this.#contentExists(full))) throw noSuchImage(full)
    const parent = await this.#readMetadata(full, 'parent')
    return parent !== undefined && isDigest(parent) ? parent : undefined
  }

  /**
   * Records `parent` as the parent of `id` (dockerd's SetParent). Both must
   * exist; a link that would make a cycle is INVALID_ARGUMENT.
   */
  async setParent(id: string, parent: string): Promise<void> {
    const full = parseImageId(id)
    const parentId = parseImageId(parent)
    await this.#layers.lock.withLock(async () => {
      if (!(await this.#contentExists(full))) throw noSuchImage(full)
      if (!(await this.#contentExists(parentId))) {
        throw new StrataError('NOT_FOUND', `unknown parent image ID ${parentId}`, { details: { parent: parentId } })
      }
      // Walk up from the new parent: meeting `id` means a cycle.
      const seen = new Set<string>()
      for (let p: string | undefined = parentId; p !== undefined && isDigest(p) && !seen.has(p); p = await this.#readMetadata(p, 'parent')) {
        if (p === full) throw new StrataError('INVALID_ARGUMENT', `Setting ${parentId} as parent of ${full} would make a cycle`)
        seen.add(p)
      }
      await this.#writeMetadata(full, 'parent', parentId)
    })
  }

  /** metadata/lastUpdated, as written, or undefined. NOT_FOUND when `id` is not in the store. */
  async getLastUpdated(id: string): Promise<string | undefined> {
    const full = parseImageId(id)
    if (!(await this.#contentExists(full))) throw noSuchImage(full)
    const v = await this.#readMetadata(full, 'lastUpdated')
    return v === '' ? undefined : v
  }

  /**
   * Writes metadata/lastUpdated (dockerd does on `docker tag`): `at`
   * nanoseconds since the epoch, default now, in local time as Go formats
   * RFC3339Nano. Returns the text written.
   */
  async setLastUpdated(id: string, at?: bigint): Promise<string> {
    const full = parseImageId(id)
    const text = formatRfc3339Nano(at ?? nowNs())
    await this.#layers.lock.withLock(async () => {
      if (!(await this.#contentExists(full))) throw noSuchImage(full)
      await this.#writeMetadata(full, 'lastUpdated', text)
    })
    return text
  }

  /**
   * Deletes an image: its metadata dir, then its content file, under the
   * data-root lock; IN_USE when other images name it as their parent. A
   * handle on its top layer is taken first and released after the lock, so
   * the layer store decides then whether the layer goes too. Tags are the
   * reference store's business (remove them first, as `docker rmi` does).
   */
  async delete(id: string): Promise<DeleteImageResult> {
    const full = parseImageId(id)
    const raw = await readIfExists(this.contentPath(full))
    if (raw === undefined) throw noSuchImage(full)
    // A damaged config still names its layers most of the time; without them no handle is needed.
    const top = lenientTopChainId(raw)
    let handle: LayerHandle | undefined
    if (top !== null) {
      try {
        handle = await this.#layers.get(top)
      } catch (err) {
        // The layer is gone already: nothing to hand back to the layer store.
        if (!isStrataError(err, 'NOT_FOUND')) throw err
      }
    }
    try {
      await this.#layers.lock.withLock(async () => {
        if (!(await this.#contentExists(full))) throw noSuchImage(full)
        const kids = await this.children(full)
        if (kids.length > 0) {
          throw new StrataError('IN_USE', `conflict: unable to delete ${digestHex(full).slice(0, 12)} (cannot be forced) - image has dependent child images`, {
            details: { id: full, children: kids },
          })
        }
        await this.#removeImageFiles(full)
      })
    } finally {
      await handle?.release()
    }
    return { id: full, topLayer: top }
  }

  /**
   * The top chainID of every image: the ImageReferences hook the layer
   * store is opened with. Deliberately lenient (no hash check, unreadable
   * entries skipped) and lock-free, since the layer store calls it while
   * holding the data-root lock: a damaged image that still names its
   * layers keeps them, so nothing is collected that check() might save.
   */
  async topChainIds(): Promise<Set<ChainID>> {
    const out = new Set<ChainID>()
    for (const id of await this.list()) {
      let raw: Buffer | undefined
      try {
        raw = await readIfExists(this.contentPath(id))
      } catch {
        continue
      }
      if (raw === undefined) continue
      const top = lenientTopChainId(raw)
      if (top !== null) out.add(top)
    }
    return out
  }

  /**
   * Checks every image: content hashes to its ID and is a valid config, its
   * top layer exists, its parent link names an existing image; also
   * metadata dirs without content and leftover temp files. With `repair`,
   * untrusted images are removed (and their children's parent links with
   * them, as dockerd's Delete does), bad parent links, orphan metadata and
   * temp files too.
   */
  async check(opts: ImageCheckOptions = {}): Promise<CheckProblem[]> {
    const problems: CheckProblem[] = []
    const repair = opts.repair === true
    const ids = await this.list()
    const untrusted = await this.#checkImages(ids, problems)
    await this.#confirmMissingLayers(untrusted, problems)
    const metaNames = await this.#checkMetadata(new Set<string>(ids), repair, problems)
    if (repair) {
      await this.#sweepTempFiles(metaNames, problems)
      await this.#removeUntrusted(untrusted)
    }
    return problems
  }

  /** Check, images: content hashes to the ID and is a valid config, the top layer exists. Returns the images not to trust. */
  async #checkImages(ids: ImageID[], problems: CheckProblem[]): Promise<UntrustedImage[]> {
    const untrusted: UntrustedImage[] = []
    for (const id of ids) {
      let image: Image
      try {
        image = await this.get(id)
      } catch (err) {
        if (isStrataError(err, 'NOT_FOUND')) continue // deleted meanwhile
        if (!isStrataError(err, 'CORRUPT')) throw err
        const problem: CheckProblem = { kind: 'image-config', subject: id, message: err.message }
        problems.push(problem)
        untrusted.push({ id, problem })
        continue
      }
      const top = topChainId(image.config)
      if (top !== null && !(await this.#hasLayer(top))) {
        const problem: CheckProblem = { kind: 'image-missing-layer', subject: id, message: `Image ${id} needs layer ${top}, which is not in the layer store` }
        problems.push(problem)
        untrusted.push({ id, problem, top })
      }
    }
    return untrusted
  }

  /**
   * Check, images missing their layer, re-checked under the lock: an rmi
   * beside check removes the image and then its layers, so an image found
   * without its layer is a problem only if it is still there, still
   * without it.
   */
  async #confirmMissingLayers(untrusted: UntrustedImage[], problems: CheckProblem[]): Promise<void> {
    const has = this.#layers.has?.bind(this.#layers)
    if (has === undefined || !untrusted.some((u) => u.top !== undefined)) return
    await this.#layers.lock.withLock(async () => {
      for (let i = untrusted.length - 1; i >= 0; i--) {
        const u = untrusted[i]!
        if (u.top === undefined) continue
        if ((await this.#contentExists(u.id)) && !(await has(u.top))) continue
        untrusted.splice(i, 1)
        problems.splice(problems.indexOf(u.problem), 1)
      }
    })
  }

  /** Check, metadata: parent links name existing images, metadata dirs have content (repaired: removed). Returns the metadata dir names. */
  async #checkMetadata(present: Set<string>, repair: boolean, problems: CheckProblem[]): Promise<string[]> {
    let metaNames: string[] = []
    try {
      metaNames = await readdir(this.#metadataDir)
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err
    }
    for (const name of metaNames) {
      if (!HEX_RE.test(name) || !present.has(`sha256:${name}`)) {
        if (isTempName(name)) continue
        // An image created since the listing, or removed meanwhile (metadata goes first), is no problem.
        if (HEX_RE.test(name) && ((await this.#contentExists(`sha256:${name}` as ImageID)) || !(await pathExists(join(this.#metadataDir, name))))) continue
        problems.push(await this.#orphanMetadata(name, repair))
        continue
      }
      const problem = await this.#checkParentLink(`sha256:${name}` as ImageID, present, repair)
      if (problem !== undefined) problems.push(problem)
    }
    return metaNames
  }

  /** A metadata dir without image content; repaired: removed, unless the content appeared meanwhile. */
  async #orphanMetadata(name: string, repair: boolean): Promise<CheckProblem> {
    const dir = join(this.#metadataDir, name)
    const problem: CheckProblem = { kind: 'image-config', subject: dir, message: `Image metadata "${dir}" has no image content` }
    if (repair) {
      await this.#layers.lock.withLock(async () => {
        if (HEX_RE.test(name) && (await this.#contentExists(`sha256:${name}` as ImageID))) return
        await rm(dir, { recursive: true, force: true })
        problem.repaired = 'removed the metadata directory'
      })
    }
    return problem
  }

  /** An image's parent link, when it names no image or is malformed; repaired: removed, unless it changed or its parent appeared meanwhile. */
  async #checkParentLink(id: ImageID, present: Set<string>, repair: boolean): Promise<CheckProblem | undefined> {
    const parent = await this.#readMetadata(id, 'parent')
    if (parent === undefined) return undefined
    const valid = isDigest(parent)
    if (valid && present.has(parent)) return undefined
    // A parent created since the listing is no problem.
    if (valid && (await this.#contentExists(parent))) return undefined
    const problem: CheckProblem = {
      kind: 'image-config',
      subject: id,
      message: valid ? `Image ${id} names parent ${parent}, which does not exist` : `Image ${id} has a malformed parent file (${JSON.stringify(parent.slice(0, 80))})`,
    }
    if (repair) {
      await this.#layers.lock.withLock(async () => {
        if ((await this.#readMetadata(id, 'parent')) !== parent) return
        if (valid && (await this.#contentExists(parent))) return
        await rm(join(this.metadataPath(id), 'parent'), { force: true })
        problem.repaired = 'removed the parent link'
      })
    }
    return problem
  }

  /** Repair: leftovers of interrupted atomic writes. All writes run under the lock, so under it none is in progress. */
  async #sweepTempFiles(metaNames: string[], problems: CheckProblem[]): Promise<void> {
    await this.#layers.lock.withLock(async () => {
      for (const dir of [this.#contentDir, ...metaNames.map((n) => join(this.#metadataDir, n))]) {
        for (const path of await sweepTempFiles(dir)) {
          problems.push({ kind: 'image-config', subject: path, message: `Leftover temp file "${path}"`, repaired: 'removed' })
        }
      }
    })
  }

  /** Repair: the untrusted images removed (their children's parent links with them, as dockerd's Delete does), unless they became whole meanwhile. */
  async #removeUntrusted(untrusted: UntrustedImage[]): Promise<void> {
    for (const { id, problem, top } of untrusted) {
      // A layer registered meanwhile makes the image whole again (asked outside the lock: the layer store takes it).
      if (top !== undefined && (await this.#hasLayer(top))) continue
      await this.#layers.lock.withLock(async () => {
        // Re-verify under the lock: content is content-addressed, so a file that hashes right now was rewritten correctly.
        const raw = await readIfExists(this.contentPath(id))
        if (raw === undefined) return
        if (problem.kind === 'image-config' && sha256Of(raw) === id && parsesAsConfig(raw)) return
        for (const child of await this.children(id)) await rm(join(this.metadataPath(child), 'parent'), { force: true })
        await this.#removeImageFiles(id)
        problem.repaired = 'removed the image'
      })
    }
  }

  async #hasLayer(chainId: ChainID): Promise<boolean> {
    if (this.#layers.has !== undefined) return this.#layers.has(chainId)
    try {
      const h = await this.#layers.get(chainId)
      await h.release()
      return true
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND')) return false
      throw err
    }
  }

  async #contentExists(id: ImageID): Promise<boolean> {
    try {
      return (await stat(this.contentPath(id))).isFile()
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false
      throw err
    }
  }

  async #readMetadata(id: ImageID, key: string): Promise<string | undefined> {
    const buf = await readIfExists(join(this.metadataPath(id), key))
    return buf?.toString('utf8')
  }

  /** Callers hold the lock and have checked the image exists. */
  async #writeMetadata(id: ImageID, key: string, value: string): Promise<void> {
    const dir = this.metadataPath(id)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await atomicWriteFile(join(dir, key), value, 0o600)
  }

  /** Metadata first, then content, as dockerd's fs.Delete: a crash in between leaves a plain image. Callers hold the lock. */
  async #removeImageFiles(id: ImageID): Promise<void> {
    await rm(this.metadataPath(id), { recursive: true, force: true })
    try {
      await unlink(this.contentPath(id))
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err
    }
    await fsyncPath(this.#contentDir)
  }
}

/**
 * The top chainID named by config bytes, without verifying them or anything
 * but rootfs.diff_ids (dockerd itself checks no more than that a rootfs is
 * there); null when they name no layers or cannot be read.
 */
function lenientTopChainId(raw: Buffer): ChainID | null {
  try {
    const doc = JSON.parse(raw.toString('utf8')) as { rootfs?: { diff_ids?: unknown } } | null
    const diffIds = doc?.rootfs?.diff_ids
    if (!Array.isArray(diffIds) || diffIds.length === 0 || !diffIds.every((d) => isDigest(d))) return null
    return chainId(diffIds)
  } catch {
    return null
  }
}

function parsesAsConfig(raw: Buffer): boolean {
  try {
    parseImageConfig(raw)
    return true
  } catch {
    return false
  }
}
