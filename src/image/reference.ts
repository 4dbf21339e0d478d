/**
 * Image references (`busybox`, `localhost:5000/a/b:t`, `name@sha256:...`)
 * parsed and normalised as docker does (github.com/docker/distribution/
 * reference: ParseNormalizedNamed, FamiliarName/FamiliarString,
 * TagNameOnly), and the reference store: dockerd's
 * `<root>/image/<driver>/repositories.json`, written byte for byte as
 * dockerd writes it:
 *
 *   {"Repositories":{"busybox":{"busybox:latest":"sha256:<id>","busybox@sha256:<d>":"sha256:<id>"}}}
 *
 * (familiar names as keys, Go's json.Marshal: keys sorted, no whitespace, no
 * newline; mode 0600; atomic rename.) dockerd holds the file in memory;
 * strata processes share it, so every change re-reads the file under the
 * data-root lock, changes it and writes it back, and no process loses
 * another's tag.
 */
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { isDigest, parseDigest } from '../digest/index.js'
import { StrataError } from '../errors/index.js'
import type { CheckProblem } from '../layer/index.js'
import { atomicWriteFile, goJsonMap, goJsonString, goStringCompare, readIfExists, type StoreLock } from '../fs/index.js'
import type { ImageID } from './config.js'

// ---------------------------------------------------------------------------
// Parsing (distribution/reference regexp.go, reference.go, normalize.go)

const DEFAULT_DOMAIN = 'docker.io'
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io'
const OFFICIAL_REPO_NAME = 'library'
const DEFAULT_TAG = 'latest'
const NAME_TOTAL_LENGTH_MAX = 255

const alphaNumeric = '[a-z0-9]+'
const separator = '(?:[._]|__|[-]*)'
const nameComponent = `${alphaNumeric}(?:${separator}${alphaNumeric})*`
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const domain = `${domainComponent}(?:\\.${domainComponent})*(?::[0-9]+)?`
const tagPat = '[\\w][\\w.-]{0,127}'
const digestPat = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}'
const namePat = `(?:${domain}/)?${nameComponent}(?:/${nameComponent})*`
const REFERENCE_RE = new RegExp(`^(${namePat})(?::(${tagPat}))?(?:@(${digestPat}))?$`)
const ANCHORED_NAME_RE = new RegExp(`^(?:(${domain})/)?(${nameComponent}(?:/${nameComponent})*)$`)
const ANCHORED_IDENTIFIER_RE = /^[a-f0-9]{64}$/
/** go-digest's algorithms dockerd has registered, with their hex lengths. */
const DIGEST_ALGORITHMS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 }
const GO_DIGEST_ANCHORED_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/

/** A normalised reference: `domain/path[:tag][@digest]`. */
export interface Reference {
  /** Registry host[:port]; `docker.io` for Docker Hub. */
  domain: string
  /** Repository path in the registry, e.g. `library/busybox`. */
  path: string
  tag?: string
  /** `algorithm:hex`, validated like go-digest (sha256, sha384, sha512). */
  digest?: string
}

function invalid(input: string, why: string): StrataError {
  return new StrataError('INVALID_ARGUMENT', `Invalid reference "${input}": ${why}`, { details: { reference: input } })
}

/** go-digest's Digest.Validate with dockerd's algorithms; returns docker's error text or undefined. */
function digestError(d: string): string | undefined {
  const i = d.indexOf(':')
  if (i <= 0 || i + 1 === d.length) return 'invalid checksum digest format'
  const alg = d.slice(0, i)
  const hex = d.slice(i + 1)
  const size = DIGEST_ALGORITHMS[alg]
  if (size === undefined) return GO_DIGEST_ANCHORED_RE.test(d) ? 'unsupported digest algorithm' : 'invalid checksum digest format'
  if (hex.length !== size) return 'invalid checksum digest length'
  if (!/^[a-f0-9]+$/.test(hex)) return 'invalid checksum digest format'
  return undefined
}

/** distribution/reference splitDockerDomain. */
function splitDockerDomain(name: string): [string, string] {
  const i = name.indexOf('/')
  let dom: string
  let remainder: string
  const first = i === -1 ? '' : name.slice(0, i)
  if (i === -1 || (!/[.:]/.test(first) && first !== 'localhost')) {
    dom = DEFAULT_DOMAIN
    remainder = name
  } else {
    dom = first
    remainder = name.slice(i + 1)
  }
  if (dom === LEGACY_DEFAULT_DOMAIN) dom = DEFAULT_DOMAIN
  if (dom === DEFAULT_DOMAIN && !remainder.includes('/')) remainder = `${OFFICIAL_REPO_NAME}/${remainder}`
  return [dom, remainder]
}

/**
 * Parses a reference as docker does for user input (ParseNormalizedNamed):
 * `busybox` is `docker.io/library/busybox`, `user/repo` is
 * `docker.io/user/repo`, a first component with a `.` or `:` or equal to
 * `localhost` is a registry. No default tag is added (see withDefaultTag).
 * INVALID_ARGUMENT with docker's wording on bad input.
 * @example parseReference('localhost:5000/a/b:t') // { domain: 'localhost:5000', path: 'a/b', tag: 't' }
 */
export function parseReference(input: string): Reference {
  if (ANCHORED_IDENTIFIER_RE.test(input)) {
    throw invalid(input, `invalid repository name (${input}), cannot specify 64-byte hexadecimal strings`)
  }
  const [dom, remainder] = splitDockerDomain(input)
  const tagSep = remainder.indexOf(':')
  const remoteName = tagSep > -1 ? remainder.slice(0, tagSep) : remainder
  if (remoteName.toLowerCase() !== remoteName) throw invalid(input, 'invalid reference format: repository name must be lowercase')
  // reference.Parse on the domain-qualified string.
  const s = `${dom}/${remainder}`
  const m = REFERENCE_RE.exec(s)
  if (m === null) {
    if (REFERENCE_RE.test(s.toLowerCase())) throw invalid(input, 'invalid reference format: repository name must be lowercase')
    throw invalid(input, 'invalid reference format')
  }
  const name = m[1]!
  if (name.length > NAME_TOTAL_LENGTH_MAX) throw invalid(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`)
  const nm = ANCHORED_NAME_RE.exec(name)
  const ref: Reference = nm !== null && nm[1] !== undefined ? { domain: nm[1], path: nm[2]! } : { domain: '', path: name }
  if (m[2] !== undefined) ref.tag = m[2]
  if (m[3] !== undefined) {
    const err = digestError(m[3])
    if (err !== undefined) throw invalid(input, err)
    ref.digest = m[3]
  }
  return ref
}

/** The full name, `domain/path` (reference.Named.Name()). */
export function referenceName(ref: Reference): string {
  return ref.domain === '' ? ref.path : `${ref.domain}/${ref.path}`
}

/** The full string, `domain/path[:tag][@digest]` (String()). */
export function referenceString(ref: Reference): string {
  return `${referenceName(ref)}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`
}

/** The short name docker shows: docker.io/ dropped, and library/ for official images (FamiliarName). */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return referenceName(ref)
  const parts = ref.path.split('/')
  return parts.length === 2 && parts[0] === OFFICIAL_REPO_NAME ? parts[1]! : ref.path
}

/** The short string docker shows and stores in repositories.json (FamiliarString). */
export function familiarString(ref: Reference): string {
  return `${familiarName(ref)}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`
}

/** `ref` with tag `latest` when it has neither tag nor digest (TagNameOnly). */
export function withDefaultTag(ref: Reference): Reference {
  return ref.tag === undefined && ref.digest === undefined ? { ...ref, tag: DEFAULT_TAG } : ref
}

/** A reference with both tag and digest reduced to name@digest, which is what dockerd stores (favorDigest). */
function favorDigest(ref: Reference): Reference {
  if (ref.digest === undefined || ref.tag === undefined) return ref
  return { domain: ref.domain, path: ref.path, digest: ref.digest }
}

function toReference(ref: string | Reference): Reference {
  return typeof ref === 'string' ? parseReference(ref) : ref
}

function toImageId(id: string): ImageID {
  try {
    return parseDigest(id)
  } catch (err) {
    throw new StrataError('INVALID_ARGUMENT', `Invalid image ID "${id}": expected sha256:<64 lowercase hex>`, { cause: err })
  }
}

// ---------------------------------------------------------------------------
// The store

/** repositories.json in memory: familiar name → familiar reference string → image ID (as stored). A null repository is kept as Go would write it back. */
type Repositories = Map<string, Map<string, string> | null>

export interface ReferenceStoreOptions {
  /** The data root; the file is `<root>/image/<driverName>/repositories.json`. */
  root: string
  driverName: string
  /** The data-root lock every read-modify-write of the file runs under. */
  lock: StoreLock
}

export interface ReferenceEntry {
  ref: Reference
  id: ImageID
}

export interface AddReferenceOptions {
  /** Move a tag that points to another image (ignored for digests: they are never moved, as in dockerd). */
  force?: boolean
}

export interface AddReferenceResult {
  /** false when the reference already pointed to this image (nothing written). */
  added: boolean
  /** The image a forced tag pointed to before. */
  previous?: ImageID
}

export interface ReferenceCheckOptions {
  /** Whether an image exists in the image store (ImageStore.exists). */
  imageExists: (id: ImageID) => Promise<boolean>
  /** Remove dangling references. */
  repair?: boolean
}

export class ReferenceStore {
  /** `<root>/image/<driver>/repositories.json`. */
  readonly path: string
  readonly #lock: StoreLock

  private constructor(path: string, lock: StoreLock) {
    this.path = path
    this.#lock = lock
  }

  /** Opens the store; like dockerd, creates `{"Repositories":{}}` when the file does not exist yet. */
  static async open(opts: ReferenceStoreOptions): Promise<ReferenceStore> {
    if (opts.driverName === '' || opts.driverName.includes('/')) {
      throw new StrataError('INVALID_ARGUMENT', `Invalid storage driver name "${opts.driverName}"`)
    }
    const dir = join(opts.root, 'image', opts.driverName)
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const store = new ReferenceStore(join(dir, 'repositories.json'), opts.lock)
    if ((await readIfExists(store.path)) === undefined) {
      await store.#lock.withLock(async () => {
        if ((await readIfExists(store.path)) === undefined) await store.#save(new Map())
      })
    }
    return store
  }

  /**
   * Points tag `ref` (default tag `latest`) at image `id`. Refuses a
   * reference with a digest ("refusing to create a tag with a digest
   * reference"), the name `sha256`, and (ALREADY_EXISTS) a tag that points
   * to another image unless `force`.
   */
  async addTag(ref: string | Reference, id: string, opts: AddReferenceOptions = {}): Promise<AddReferenceResult> {
    const r = toReference(ref)
    if (r.digest !== undefined) {
      throw new StrataError('INVALID_ARGUMENT', `refusing to create a tag with a digest reference (${familiarString(r)})`)
    }
    return this.#addReference(withDefaultTag(r), toImageId(id), opts.force === true)
  }

  /**
   * Records digest reference `ref` (`name@sha256:...`; a tag in it is
   * dropped, as dockerd does) for image `id`. A digest already pointing to
   * another image is never overwritten (ALREADY_EXISTS "Cannot overwrite
   * digest"), whatever `force` says.
   */
  async addDigest(ref: string | Reference, id: string, opts: AddReferenceOptions = {}): Promise<AddReferenceResult> {
    const r = toReference(ref)
    if (r.digest === undefined) throw new StrataError('INVALID_ARGUMENT', `Reference "${familiarString(r)}" has no digest`)
    return this.#addReference(r, toImageId(id), opts.force === true)
  }

  async #addReference(ref0: Reference, id: ImageID, force: boolean): Promise<AddReferenceResult> {
    const ref = favorDigest(ref0)
    const name = familiarName(ref)
    const key = familiarString(ref)
    if (name === 'sha256') throw new StrataError('INVALID_ARGUMENT', 'refusing to create an ambiguous tag using digest algorithm as name')
    return this.#lock.withLock(async () => {
      const repos = await this.#load()
      const repo = repos.get(name) ?? new Map<string, string>()
      const old = repo.get(key)
      if (old === id) return { added: false }
      if (old !== undefined) {
        if (ref.digest !== undefined) {
          throw new StrataError('ALREADY_EXISTS', `Cannot overwrite digest ${ref.digest}: ${key} points to image ${old}`, {
            details: { reference: key, current: old, requested: id },
          })
        }
        if (!force) {
          throw new StrataError('ALREADY_EXISTS', `Conflict: Tag ${key} is already set to image ${old}, if you want to replace it, please use -f option`, {
            details: { reference: key, current: old, requested: id },
          })
        }
      }
      repo.set(key, id)
      repos.set(name, repo)
      await this.#save(repos)
      const result: AddReferenceResult = { added: true }
      if (old !== undefined && isDigest(old)) result.previous = old
      return result
    })
  }

  /**
   * Removes a reference (a name alone means `:latest`; name:tag@digest
   * means the digest) and returns the image it pointed to. NOT_FOUND
   * ("reference does not exist") when it is not in the store.
   */
  async delete(ref: string | Reference): Promise<ImageID> {
    const r = withDefaultTag(favorDigest(toReference(ref)))
    const name = familiarName(r)
    const key = familiarString(r)
    return this.#lock.withLock(async () => {
      const repos = await this.#load()
      const repo = repos.get(name)
      const old = repo?.get(key)
      if (repo === undefined || repo === null || old === undefined) {
        throw new StrataError('NOT_FOUND', `reference does not exist: ${key}`, { details: { reference: key } })
      }
      repo.delete(key)
      if (repo.size === 0) repos.delete(name)
      await this.#save(repos)
      return this.#storedId(old, key)
    })
  }

  /** The image `ref` points to (name alone: `:latest`; with a digest: by the digest), or undefined. */
  async get(ref: string | Reference): Promise<ImageID | undefined> {
    const r = withDefaultTag(favorDigest(toReference(ref)))
    const repos = await this.#load()
    const key = familiarString(r)
    const v = repos.get(familiarName(r))?.get(key)
    return v === undefined ? undefined : this.#storedId(v, key)
  }

  /** Every reference to image `id`, sorted by full string as dockerd's References() sorts (so a name's tags come before its digests). */
  async referencesTo(id: string): Promise<Reference[]> {
    const full = toImageId(id)
    return (await this.all()).filter((e) => e.id === full).map((e) => e.ref)
  }

  /** Every reference in the store with its image, sorted by full reference string. Entries dockerd would skip too (unparsable keys, malformed IDs) are left out. */
  async all(): Promise<ReferenceEntry[]> {
    const out: Array<ReferenceEntry & { s: string }> = []
    for (const [, repo] of await this.#load()) {
      for (const [key, value] of repo ?? []) {
        let ref: Reference
        try {
          ref = parseReference(key)
        } catch {
          continue
        }
        if (!isDigest(value)) continue
        out.push({ ref, id: value, s: referenceString(ref) })
      }
    }
    return out.sort((a, b) => goStringCompare(a.s, b.s)).map(({ ref, id }) => ({ ref, id }))
  }

  /** Removes every reference to image `id` (what `docker rmi -f` does before deleting); returns them, sorted. */
  async deleteAllFor(id: string): Promise<Reference[]> {
    const full = toImageId(id)
    return this.#lock.withLock(async () => {
      const repos = await this.#load()
      const removed: string[] = []
      for (const [name, repo] of repos) {
        if (repo === null) continue
        for (const [key, value] of repo) {
          if (value !== full) continue
          repo.delete(key)
          removed.push(key)
        }
        if (repo.size === 0) repos.delete(name)
      }
      if (removed.length > 0) await this.#save(repos)
      return removed
        .flatMap((k) => {
          try {
            return [parseReference(k)]
          } catch {
            return []
          }
        })
        .sort((a, b) => goStringCompare(referenceString(a), referenceString(b)))
    })
  }

  /**
   * Reports references whose image is not in the image store, or whose key
   * or ID is malformed (kind reference-dangling); `repair` removes them
   * (re-checked under the lock, so a tag made meanwhile survives).
   */
  async check(opts: ReferenceCheckOptions): Promise<CheckProblem[]> {
    const problems: CheckProblem[] = []
    const bad: Array<{ name: string; key: string; value: string; problem: CheckProblem }> = []
    for (const [name, repo] of await this.#load()) {
      for (const [key, value] of repo ?? []) {
        let why: string | undefined
        try {
          const ref = parseReference(key)
          if (familiarName(favorDigest(ref)) !== name) why = `is stored under repository "${name}", not "${familiarName(ref)}"`
        } catch (err) {
          why = `is not a valid reference (${(err as Error).message})`
        }
        if (why === undefined && !isDigest(value)) why = `points to "${value}", which is not an image ID`
        if (why === undefined && !(await opts.imageExists(value as ImageID))) why = `points to image ${value}, which does not exist`
        if (why === undefined) continue
        const problem: CheckProblem = { kind: 'reference-dangling', subject: key, message: `Reference ${key} ${why}` }
        problems.push(problem)
        bad.push({ name, key, value, problem })
      }
    }
    // An rmi beside check removes the tags and then the image: a tag read
    // before and an image missing after is no problem. Re-checked under the lock.
    if (bad.some((b) => b.problem.message.endsWith('does not exist'))) {
      await this.#lock.withLock(async () => {
        const repos = await this.#load()
        for (let i = bad.length - 1; i >= 0; i--) {
          const b = bad[i]!
          if (!b.problem.message.endsWith('does not exist')) continue
          const repo = repos.get(b.name)
          if (repo !== undefined && repo !== null && repo.get(b.key) === b.value && !(await opts.imageExists(b.value as ImageID))) continue
          bad.splice(i, 1)
          problems.splice(problems.indexOf(b.problem), 1)
        }
      })
    }
    if (opts.repair === true && bad.length > 0) {
      await this.#lock.withLock(async () => {
        const repos = await this.#load()
        let changed = false
        for (const { name, key, value, problem } of bad) {
          const repo = repos.get(name)
          if (repo === undefined || repo === null || repo.get(key) !== value) continue
          // Still pointing to a missing image? An image created since makes the tag valid again.
          if (isDigest(value) && problem.message.endsWith('does not exist') && (await opts.imageExists(value))) continue
          repo.delete(key)
          if (repo.size === 0) repos.delete(name)
          problem.repaired = 'removed the reference'
          changed = true
        }
        if (changed) await this.#save(repos)
      })
    }
    return problems
  }

  #storedId(value: string, key: string): ImageID {
    if (isDigest(value)) return value
    throw new StrataError('CORRUPT', `"${this.path}": reference ${key} points to "${value}", which is not an image ID`, {
      details: { path: this.path, reference: key },
    })
  }

  /** Reads the file fresh (missing: empty). CORRUPT when it is not what dockerd writes. */
  async #load(): Promise<Repositories> {
    const buf = await readIfExists(this.path)
    const repos: Repositories = new Map()
    if (buf === undefined) return repos
    const corrupt = (why: string, cause?: unknown): never => {
      throw new StrataError('CORRUPT', `Reference store "${this.path}" is invalid: ${why}`, { cause, details: { path: this.path } })
    }
    let doc: unknown
    try {
      doc = JSON.parse(buf.toString('utf8'))
    } catch (err) {
      return corrupt(`not JSON (${(err as Error).message})`, err)
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return corrupt('not a JSON object')
    const top = (doc as Record<string, unknown>).Repositories
    if (top === undefined || top === null) return repos
    if (typeof top !== 'object' || Array.isArray(top)) return corrupt('"Repositories" is not an object')
    for (const [name, repo] of Object.entries(top as Record<string, unknown>)) {
      if (repo === null) {
        repos.set(name, null)
        continue
      }
      if (typeof repo !== 'object' || Array.isArray(repo)) return corrupt(`repository "${name}" is not an object`)
      const m = new Map<string, string>()
      for (const [key, value] of Object.entries(repo as Record<string, unknown>)) {
        if (typeof value !== 'string') return corrupt(`"${key}" is not a string`)
        m.set(key, value)
      }
      repos.set(name, m)
    }
    return repos
  }

  /** Writes the file as dockerd's json.Marshal(store) + AtomicWriteFile(0600) do. Callers hold the lock. */
  async #save(repos: Repositories): Promise<void> {
    const obj: Record<string, Map<string, string> | null> = Object.fromEntries(repos)
    const body = goJsonMap(obj, (repo) =>
      repo === null ? 'null' : goJsonMap(Object.fromEntries(repo), (v) => goJsonString(v)),
    )
    await atomicWriteFile(this.path, `{"Repositories":${body}}`, 0o600)
  }
}

