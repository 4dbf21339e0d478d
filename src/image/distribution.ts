/**
 * dockerd's distribution metadata (moby distribution/metadata: the
 * FSMetadataStore and V2MetadataService), which lets a push skip blobs the
 * registry already has and a pull skip layers already present:
 *
 *   <root>/image/<driver>/distribution/                         0700
 *     diffid-by-digest/sha256/<blob hex>       the diffID string, "sha256:<hex>", no newline
 *     v2metadata-by-diffid/sha256/<diffid hex> [{"Digest":...,"SourceRepository":...,"HMAC":...}, ...]
 *
 * Namespace directories are 0755 and files 0644 (FSMetadataStore.Set),
 * written atomically. Add moves an entry to the end of its diffID's list
 * (an equal old entry is dropped first) and keeps the newest 50 entries.
 * The read-modify-write of a list runs under the data-root lock, so
 * processes sharing the data root do not lose each other's entries.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { mkdir, unlink } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { digestHex, isDigest, parseDigest, type Digest } from '../digest/index.js'
import { StrataError, isErrno } from '../errors/index.js'
import type { DiffID } from '../layer/index.js'
import { atomicWriteFile, goJsonString, readIfExists, type StoreLock } from '../fs/index.js'

/** How many entries moby keeps per diffID (maxMetadata). */
export const MAX_V2_METADATA = 50

const DIFFID_BY_DIGEST = 'diffid-by-digest'
const V2METADATA_BY_DIFFID = 'v2metadata-by-diffid'

/** One v2metadata-by-diffid entry, field names as dockerd writes them. */
export interface V2Metadata {
  /** The blob digest in the registry (compressed layer). */
  Digest: Digest
  /** Full repository name the blob was pulled from or pushed to, e.g. `docker.io/library/busybox`. */
  SourceRepository: string
  /** Hex HMAC-SHA256 of Digest+SourceRepository keyed by the credentials' digest; "" for anonymous access. */
  HMAC: string
}

export interface DistributionMetadataOptions {
  /** The data root; the store is `<root>/image/<driverName>/distribution`. */
  root: string
  driverName: string
  lock: StoreLock
}

/** moby's ComputeV2MetadataHMAC: "" without a key. */
export function computeV2MetadataHmac(key: Buffer | undefined, meta: Pick<V2Metadata, 'Digest' | 'SourceRepository'>): string {
  if (key === undefined || key.length === 0) return ''
  return createHmac('sha256', key).update(meta.Digest).update(meta.SourceRepository).digest('hex')
}

/** moby's CheckV2MetadataHMAC: an entry with no HMAC matches no key, and the other way round. */
export function checkV2MetadataHmac(meta: V2Metadata, key: Buffer | undefined): boolean {
  const hasKey = key !== undefined && key.length > 0
  if (meta.HMAC === '' || !hasKey) return meta.HMAC === '' && !hasKey
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(meta.HMAC)) return false
  const stored = Buffer.from(meta.HMAC, 'hex')
  const expected = Buffer.from(computeV2MetadataHmac(key, meta), 'hex')
  return stored.length === expected.length && timingSafeEqual(stored, expected)
}

function sameMetadata(a: V2Metadata, b: V2Metadata): boolean {
  return a.Digest === b.Digest && a.SourceRepository === b.SourceRepository && a.HMAC === b.HMAC
}

/** The list as Go's json.Marshal([]V2Metadata) writes it. */
export function encodeV2Metadata(list: readonly V2Metadata[]): string {
  return `[${list
    .map((m) => `{"Digest":${goJsonString(m.Digest)},"SourceRepository":${goJsonString(m.SourceRepository)},"HMAC":${goJsonString(m.HMAC)}}`)
    .join(',')}]`
}

/** A field by name, case-insensitively as Go's json.Unmarshal matches struct fields (exact name first). */
function field(obj: Record<string, unknown>, name: string): unknown {
  if (name in obj) return obj[name]
  const k = Object.keys(obj).find((x) => x.toLowerCase() === name.toLowerCase())
  return k === undefined ? undefined : obj[k]
}

export class DistributionMetadataStore {
  /** `<root>/image/<driver>/distribution`. */
  readonly dir: string
  readonly #lock: StoreLock

  private constructor(dir: string, lock: StoreLock) {
    this.dir = dir
    this.#lock = lock
  }

  /** Opens the store, creating its directory (0700, as NewFSMetadataStore does). */
  static async open(opts: DistributionMetadataOptions): Promise<DistributionMetadataStore> {
    if (opts.driverName === '' || opts.driverName.includes('/')) {
      throw new StrataError('INVALID_ARGUMENT', `Invalid storage driver name "${opts.driverName}"`)
    }
    const dir = join(opts.root, 'image', opts.driverName, 'distribution')
    await mkdir(dir, { recursive: true, mode: 0o700 })
    return new DistributionMetadataStore(dir, opts.lock)
  }

  /** `diffid-by-digest/sha256/<hex>`. */
  diffIdPath(blobDigest: Digest): string {
    return join(this.dir, DIFFID_BY_DIGEST, 'sha256', digestHex(blobDigest))
  }

  /** `v2metadata-by-diffid/sha256/<hex>`. */
  v2MetadataPath(diffId: DiffID): string {
    return join(this.dir, V2METADATA_BY_DIFFID, 'sha256', digestHex(diffId))
  }

  /**
   * Records that registry blob `blobDigest` (from/to `sourceRepository`)
   * is the layer with `diffId`: what a pull or push does (moby's TagAndAdd,
   * the HMAC computed from `hmacKey` when given, else "").
   */
  async addMapping(blobDigest: string, diffId: string, sourceRepository = '', hmacKey?: Buffer): Promise<void> {
    const meta: V2Metadata = { Digest: parseDigest(blobDigest), SourceRepository: sourceRepository, HMAC: '' }
    meta.HMAC = computeV2MetadataHmac(hmacKey, meta)
    await this.add(parseDigest(diffId), meta)
  }

  /**
   * moby's V2MetadataService.Add: appends `meta` to the diffID's list (an
   * equal entry moves to the end), keeps the last 50, then writes the
   * blob → diffID mapping.
   */
  async add(diffId: DiffID, meta: V2Metadata): Promise<void> {
    const d = parseDigest(diffId)
    const entry: V2Metadata = { Digest: parseDigest(meta.Digest), SourceRepository: meta.SourceRepository, HMAC: meta.HMAC }
    await this.#lock.withLock(async () => {
      let old: V2Metadata[]
      try {
        old = await this.v2MetadataFor(d)
      } catch {
        // moby ignores an unreadable list and starts a new one.
        old = []
      }
      let list = [...old.filter((m) => !sameMetadata(m, entry)), entry]
      if (list.length > MAX_V2_METADATA) list = list.slice(list.length - MAX_V2_METADATA)
      await this.#set(this.v2MetadataPath(d), encodeV2Metadata(list))
      await this.#set(this.diffIdPath(entry.Digest), d)
    })
  }

  /** The diffID registry blob `blobDigest` unpacks to, or undefined when unknown. */
  async diffIdFor(blobDigest: string): Promise<DiffID | undefined> {
    const path = this.diffIdPath(parseDigest(blobDigest))
    const buf = await readIfExists(path)
    if (buf === undefined) return undefined
    const text = buf.toString('utf8')
    if (!isDigest(text)) {
      throw new StrataError('CORRUPT', `Distribution metadata "${path}" holds ${JSON.stringify(text.slice(0, 80))}, not a diffID`, { details: { path } })
    }
    return text
  }

  /** The registry blobs known for layer `diffId`, oldest first ([] when none). */
  async v2MetadataFor(diffId: string): Promise<V2Metadata[]> {
    const path = this.v2MetadataPath(parseDigest(diffId))
    const buf = await readIfExists(path)
    if (buf === undefined) return []
    const corrupt = (why: string, cause?: unknown): never => {
      throw new StrataError('CORRUPT', `Distribution metadata "${path}" is invalid: ${why}`, { cause, details: { path } })
    }
    let doc: unknown
    try {
      doc = JSON.parse(buf.toString('utf8'))
    } catch (err) {
      return corrupt(`not JSON (${(err as Error).message})`, err)
    }
    if (doc === null) return []
    if (!Array.isArray(doc)) return corrupt('not a JSON array')
    return doc.map((e: unknown, i) => {
      if (typeof e !== 'object' || e === null || Array.isArray(e)) return corrupt(`entry ${i} is not an object`)
      const o = e as Record<string, unknown>
      const [dg, repo, hmac] = [field(o, 'Digest') ?? '', field(o, 'SourceRepository') ?? '', field(o, 'HMAC') ?? '']
      if (typeof dg !== 'string' || !isDigest(dg)) return corrupt(`entry ${i} has no valid "Digest"`)
      if (typeof repo !== 'string' || typeof hmac !== 'string') return corrupt(`entry ${i} has a non-string field`)
      return { Digest: dg, SourceRepository: repo, HMAC: hmac }
    })
  }

  /**
   * moby's V2MetadataService.Remove: drops `meta` from the list of the
   * diffID its digest maps to, deleting the list file when it becomes
   * empty. The diffid-by-digest mapping stays, as in moby. NOT_FOUND when
   * the digest has no mapping.
   */
  async removeMetadata(meta: V2Metadata): Promise<void> {
    const target: V2Metadata = { Digest: parseDigest(meta.Digest), SourceRepository: meta.SourceRepository, HMAC: meta.HMAC }
    await this.#lock.withLock(async () => {
      const diffId = await this.diffIdFor(target.Digest)
      if (diffId === undefined) {
        throw new StrataError('NOT_FOUND', `No distribution metadata for blob ${target.Digest}`, { details: { digest: target.Digest } })
      }
      let old: V2Metadata[]
      try {
        old = await this.v2MetadataFor(diffId)
      } catch {
        old = []
      }
      const list = old.filter((m) => !sameMetadata(m, target))
      const path = this.v2MetadataPath(diffId)
      if (list.length > 0) {
        await this.#set(path, encodeV2Metadata(list))
        return
      }
      try {
        await unlink(path)
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err
      }
    })
  }

  /** FSMetadataStore.Set: MkdirAll(dir, 0755), AtomicWriteFile(0644). */
  async #set(path: string, value: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true, mode: 0o755 })
    await atomicWriteFile(path, value, 0o644)
  }
}
