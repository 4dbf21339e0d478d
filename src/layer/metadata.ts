/**
 * The metadata files of layerdb, byte for byte as dockerd 20.10's
 * filestore writes them, and their parsers:
 *
 *   sha256/<chain>/diff              "sha256:<hex>"   (no newline)
 *   sha256/<chain>/size              "<decimal>"
 *   sha256/<chain>/cache-id          "<64 hex>"
 *   sha256/<chain>/parent            "sha256:<hex>"   absent for a base layer
 *   sha256/<chain>/tar-split.json.gz gzip'd tar-split lines (optional)
 *   mounts/<name>/mount-id           "<64 hex>"
 *   mounts/<name>/init-id            "<64 hex>-init"  absent without an init layer
 *   mounts/<name>/parent             "sha256:<hex>"   absent for a container on no image
 *   mounts/<name>/mount-count        "<decimal>"      strata's own; absent means 0
 *
 * Reading is as lenient as dockerd (surrounding whitespace is ignored);
 * anything else wrong is CORRUPT naming the file, so check() and the CLI
 * can say exactly what is broken.
 */
import { join } from 'node:path'
import { parseDigest, type Digest } from '../digest/index.js'
import { StrataError } from '../errors/index.js'
import { pathExists, readTextIfExists } from '../fs/index.js'
import { DRIVER_ID_RE } from './paths.js'
import type { ChainID, LayerInfo, MountInfo } from './types.js'

export const LAYER_FILES = {
  diff: 'diff',
  size: 'size',
  cacheId: 'cache-id',
  parent: 'parent',
  tarSplit: 'tar-split.json.gz',
} as const

export const MOUNT_FILES = {
  mountId: 'mount-id',
  initId: 'init-id',
  parent: 'parent',
  count: 'mount-count',
} as const

function corrupt(what: string, path: string, why: string, cause?: unknown): StrataError {
  return new StrataError('CORRUPT', `${what}: "${path}" ${why}`, { ...(cause === undefined ? {} : { cause }), details: { path } })
}

function parseDigestFile(what: string, path: string, text: string): Digest {
  try {
    return parseDigest(text.trim())
  } catch (err) {
    throw corrupt(what, path, `does not hold a sha256 digest (${JSON.stringify(text.slice(0, 80))})`, err)
  }
}

function parseDriverId(what: string, path: string, text: string): string {
  const id = text.trim()
  if (!DRIVER_ID_RE.test(id)) throw corrupt(what, path, `does not hold a driver layer id (${JSON.stringify(text.slice(0, 80))})`)
  return id
}

function parseCount(what: string, path: string, text: string): number {
  const t = text.trim()
  if (!/^\d{1,15}$/.test(t)) throw corrupt(what, path, `does not hold a non-negative decimal number (${JSON.stringify(text.slice(0, 40))})`)
  return Number(t)
}

async function required(what: string, path: string): Promise<string> {
  const text = await readTextIfExists(path)
  if (text === undefined) throw corrupt(what, path, 'is missing')
  return text
}

/**
 * What `dir` (a layerdb layer directory, live or `-removing`) records.
 * NOT_FOUND when the directory does not exist, CORRUPT when a file is
 * missing or malformed.
 *
 * A layer removed while this reads it (a deletion renames its directory
 * away in one step) leaves the later reads finding nothing. A missing
 * file is therefore only believed while the directory is still there;
 * otherwise the layer is NOT_FOUND. Without that check, a torn read could
 * pass for a damaged layer, or for a base layer without tar-split (no
 * parent file, no tar-split file). The export of such a "base" layer went
 * through the driver's diff against no parent. On overlay2 that is the
 * naive diff, which mounts the layer, and the rmi deleting it then failed
 * with IN_USE (store-check-concurrent, about 1 run in 8).
 */
export async function readLayerInfo(dir: string, chain: ChainID): Promise<LayerInfo> {
  const notFound = (): StrataError => new StrataError('NOT_FOUND', `Layer ${chain} does not exist`, { details: { chainId: chain } })
  if (!(await pathExists(dir))) throw notFound()
  const what = `Layer ${chain} is damaged`
  const requiredHere = async (path: string): Promise<string> => {
    const text = await readTextIfExists(path)
    if (text !== undefined) return text
    if (!(await pathExists(dir))) throw notFound()
    throw corrupt(what, path, 'is missing')
  }
  const diffPath = join(dir, LAYER_FILES.diff)
  const diffId = parseDigestFile(what, diffPath, await requiredHere(diffPath))
  const sizePath = join(dir, LAYER_FILES.size)
  const size = parseCount(what, sizePath, await requiredHere(sizePath))
  const cachePath = join(dir, LAYER_FILES.cacheId)
  const cacheId = parseDriverId(what, cachePath, await requiredHere(cachePath))
  const parentPath = join(dir, LAYER_FILES.parent)
  const parentText = await readTextIfExists(parentPath)
  const parent = parentText === undefined ? null : parseDigestFile(what, parentPath, parentText)
  const hasTarSplit = await pathExists(join(dir, LAYER_FILES.tarSplit))
  // Missing parent or tar-split files are only believed if the directory outlived the reads.
  if ((parentText === undefined || !hasTarSplit) && !(await pathExists(dir))) throw notFound()
  return { chainId: chain, diffId, parent, cacheId, size, hasTarSplit }
}

/** Just the cache-id of a layer directory, or undefined when it has none readable (recovery uses it). */
export async function readCacheIdIfAny(dir: string): Promise<string | undefined> {
  const text = await readTextIfExists(join(dir, LAYER_FILES.cacheId))
  if (text === undefined) return undefined
  const id = text.trim()
  return DRIVER_ID_RE.test(id) ? id : undefined
}

/** Just the parent chainID of a layer directory: null for a base layer, undefined when unreadable. */
export async function readParentIfAny(dir: string): Promise<ChainID | null | undefined> {
  const text = await readTextIfExists(join(dir, LAYER_FILES.parent))
  if (text === undefined) return null
  try {
    return parseDigest(text.trim())
  } catch {
    return undefined
  }
}

/** The mount record in `dir`. NOT_FOUND when it does not exist, CORRUPT when malformed. */
export async function readMountRecord(dir: string, name: string): Promise<MountInfo> {
  if (!(await pathExists(dir))) {
    throw new StrataError('NOT_FOUND', `Mount "${name}" does not exist`, { details: { name } })
  }
  const what = `Mount "${name}" is damaged`
  const idPath = join(dir, MOUNT_FILES.mountId)
  const mountId = parseDriverId(what, idPath, await required(what, idPath))
  const initPath = join(dir, MOUNT_FILES.initId)
  const initText = await readTextIfExists(initPath)
  const initId = initText === undefined ? null : parseDriverId(what, initPath, initText)
  const parentPath = join(dir, MOUNT_FILES.parent)
  const parentText = await readTextIfExists(parentPath)
  const parent = parentText === undefined ? null : parseDigestFile(what, parentPath, parentText)
  const countPath = join(dir, MOUNT_FILES.count)
  const countText = await readTextIfExists(countPath)
  const mountCount = countText === undefined ? 0 : parseCount(what, countPath, countText)
  return { name, mountId, initId, parent, mountCount }
}

/** The driver ids a directory's cache-id, mount-id and init-id files name (transactions hold either kind). */
export async function driverIdsIn(dir: string): Promise<string[]> {
  const ids: string[] = []
  // Children before parents: the RW layer sits on the init layer.
  for (const f of [MOUNT_FILES.mountId, MOUNT_FILES.initId, LAYER_FILES.cacheId]) {
    const text = await readTextIfExists(join(dir, f))
    if (text === undefined) continue
    const id = text.trim()
    if (DRIVER_ID_RE.test(id)) ids.push(id)
  }
  return ids
}
