/**
 * ContainerStore: the one place container records are read and written
 * (types.ts is the contract), beside the image and layer stores in a
 * Store (`store.containers`). It knows records, not layers: the mounted
 * layer a record needs is the layer store's, asked through ContainerLayers
 * only to clean up after crashes.
 *
 * API:
 * - `list()`: every readable record, newest first (docker ps's order);
 *   `get(ref)`: by full ID, exact name, or unique ID prefix (NOT_FOUND,
 *   INVALID_ARGUMENT when ambiguous); `usingImage(id)`: the containers
 *   made from image `id`; `checkNameFree(name)`, `takenNames()`.
 * - `update(id, fn)`: re-reads the record under the data-root lock, lets
 *   `fn` change it, replaces config.v2.json atomically; returns it.
 *   `rename(id, name)`: the same for a new name, unique among the records.
 * - `draft(id)`: starts a record (`containers/.tmp-<id>`, locked); the
 *   caller makes the mounted layer, then `draft.publish(record, name?)`
 *   checks the name and renames the draft into place under the lock, or
 *   `draft.abandon()` drops it. `draft.writeFile(name, data, mode)` adds
 *   files (hostconfig.json) before publishing.
 * - `remove(id)`: the record only (remove its mounted layer first).
 * - `recover()`: removes what crashed creates and removes left.
 */
import { mkdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { StrataError, isErrno, isStrataError } from '../errors/index.js'
import { DirLock, fsyncInOneRound, writeFileWithMode, type StoreLock } from '../fs/index.js'
import type { ImageID } from '../image/index.js'
import {
  CONFIG_FILE,
  CONTAINER_ID_RE,
  NAME_RE,
  containerDir,
  containersDir,
  doomedDir,
  draftDir,
  encodeRecord,
  listRecords,
  randomContainerName,
  readRecord,
  shortContainerId,
  toContainer,
  validateContainerName,
  writeRecord,
} from './records.js'
import { recoverContainers } from './recover.js'
import type { Container, ContainerRecord, ContainerRecoveryReport, ImageUser } from './types.js'

/** What the container store needs of the layer store (LayerStore has it). */
export interface ContainerLayers {
  /** The data-root lock every store shares. */
  lock: StoreLock
  listMounts(): Promise<Array<{ name: string }>>
  /** The mount names alone (no record read). */
  listMountNames(): Promise<string[]>
  removeMount(name: string, opts?: { force?: boolean }): Promise<void>
}

export interface ContainerStoreOptions {
  /** The data root; records live in `<root>/containers`. */
  root: string
  layers: ContainerLayers
}

/** The containers in `all` made from image `id`, as the image verbs see them. */
export function imageUsers(all: readonly Container[], id: ImageID | string): ImageUser[] {
  const full = id.startsWith('sha256:') ? id : `sha256:${id}`
  return all.filter((c) => c.record.Image === full).map((c) => ({ id: c.id, running: c.running }))
}

function nameTaken(name: string): StrataError {
  return new StrataError('ALREADY_EXISTS', `Conflict. The container name "/${name}" is already in use`, {
    details: { name },
    hint: 'remove that container or choose another name',
  })
}

export class ContainerStore {
  readonly root: string
  /** `<root>/containers`. */
  readonly dir: string
  readonly #layers: ContainerLayers

  private constructor(opts: ContainerStoreOptions) {
    this.root = opts.root
    this.dir = containersDir(opts.root)
    this.#layers = opts.layers
  }

  /** Opens the container records of a data root (the directory is made by the first create). */
  static async open(opts: ContainerStoreOptions): Promise<ContainerStore> {
    return new ContainerStore(opts)
  }

  /** `containers/<id>`. */
  path(id: string): string {
    return containerDir(this.root, id)
  }

  /** Every readable record (a damaged one is skipped), newest first. */
  async list(): Promise<Container[]> {
    const records = await this.#records()
    records.sort((a, b) => (a.Created < b.Created ? 1 : a.Created > b.Created ? -1 : 0))
    return records.map((r) => toContainer(this.root, r))
  }

  /**
   * Finds a container as docker's GetContainer does: full ID, then exact
   * name, then unique ID prefix. NOT_FOUND, or INVALID_ARGUMENT for an
   * ambiguous prefix.
   */
  async get(ref: string): Promise<Container> {
    if (ref === '') throw new StrataError('INVALID_ARGUMENT', 'No container name or ID given')
    if (CONTAINER_ID_RE.test(ref)) {
      try {
        return toContainer(this.root, await readRecord(this.root, ref))
      } catch (err) {
        if (!isStrataError(err, 'NOT_FOUND')) throw err
      }
    }
    // Neither a name (docker's pattern, which every record's name follows) nor an ID prefix: no
    // container, known without reading every record (`inspect NAME:TAG` asks for a container first).
    if (!NAME_RE.test(ref) && !/^[a-f0-9]+$/.test(ref)) throw new StrataError('NOT_FOUND', `No such container: ${ref}`, { details: { ref } })
    const records = await this.#records()
    const byName = records.find((r) => r.Name === `/${ref.replace(/^\//, '')}`)
    if (byName !== undefined) return toContainer(this.root, byName)
    if (/^[a-f0-9]+$/.test(ref)) {
      const matches = records.filter((r) => r.ID.startsWith(ref))
      if (matches.length === 1) return toContainer(this.root, matches[0]!)
      if (matches.length > 1) {
        throw new StrataError('INVALID_ARGUMENT', `Multiple IDs found with provided prefix: ${ref}`, { details: { ref } })
      }
    }
    throw new StrataError('NOT_FOUND', `No such container: ${ref}`, { details: { ref } })
  }

  /** The containers made from image `id` (rmi refuses the image, prune keeps it, df counts them). */
  async usingImage(id: ImageID | string): Promise<ImageUser[]> {
    return imageUsers(await this.list(), id)
  }

  /** Re-reads the record under the data-root lock, applies `fn` and replaces config.v2.json atomically. */
  async update(id: string, fn: (record: ContainerRecord) => void): Promise<ContainerRecord> {
    return this.#layers.lock.withLock(async () => {
      const record = await readRecord(this.root, id)
      fn(record)
      await writeRecord(this.root, id, record)
      return record
    })
  }

  /**
   * Gives container `id` a new name (docker rename), checked against every
   * other record under the data-root lock: INVALID_ARGUMENT for a bad name
   * or the container's own, ALREADY_EXISTS for another's. Returns the record.
   */
  async rename(id: string, name: string): Promise<ContainerRecord> {
    const wanted = validateContainerName(name)
    return this.#layers.lock.withLock(async () => {
      const record = await readRecord(this.root, id)
      if (record.Name === `/${wanted}`) throw new StrataError('INVALID_ARGUMENT', 'Renaming a container with the same name as its current name')
      if ((await this.#records()).some((r) => r.ID !== id && r.Name === `/${wanted}`)) throw nameTaken(wanted)
      record.Name = `/${wanted}`
      await writeRecord(this.root, id, record)
      return record
    })
  }

  /** Starts the record of container `id` (a fresh ID, see newContainerId); see ContainerDraft. */
  async draft(id: string): Promise<ContainerDraft> {
    if (!CONTAINER_ID_RE.test(id)) throw new StrataError('INVALID_ARGUMENT', `Invalid container ID "${id}": expected 64 lowercase hex`)
    await mkdir(this.dir, { recursive: true, mode: 0o710 })
    const dir = draftDir(this.root, id)
    try {
      await mkdir(dir, { mode: 0o710 })
    } catch (err) {
      if (isErrno(err, 'EEXIST')) throw new StrataError('ALREADY_EXISTS', `Container ${id} is being created already`, { details: { id } })
      throw err
    }
    const lock = DirLock.tryAcquire(dir, 'shared')
    if (lock === undefined) {
      // Nobody else can know a directory made just now; a lock on it means damage, not a race.
      await rm(dir, { recursive: true, force: true })
      throw new StrataError('IN_USE', `Container draft "${dir}" is locked by someone else`, { details: { id } })
    }
    return new ContainerDraft(this, this.#layers.lock, id, dir, lock)
  }

  /**
   * Removes a record (renamed away under the lock first, so a crash never
   * leaves half a record under its ID). NOT_FOUND when there is none. The
   * mounted layer is not touched: remove it first.
   */
  async remove(id: string): Promise<void> {
    const doomed = doomedDir(this.root, id)
    try {
      await this.#layers.lock.withLock(() => rename(this.path(id), doomed))
    } catch (err) {
      if (isErrno(err, 'ENOENT')) throw new StrataError('NOT_FOUND', `No such container: ${id}`, { details: { id } })
      throw err
    }
    await rm(doomed, { recursive: true, force: true })
  }

  /** Removes what crashed creates and removes left; see recover.ts. */
  async recover(): Promise<ContainerRecoveryReport> {
    return recoverContainers(this.root, this.#layers)
  }

  /** ALREADY_EXISTS when a container has `name` already (for an early refusal; publish checks again under the lock). */
  async checkNameFree(name: string): Promise<void> {
    const wanted = validateContainerName(name)
    if ((await this.takenNames()).has(`/${wanted}`)) throw nameTaken(wanted)
  }

  /** The names of all records, "/name" form. */
  async takenNames(): Promise<Set<string>> {
    return new Set((await this.#records()).map((r) => r.Name))
  }

  async #records(): Promise<ContainerRecord[]> {
    return listRecords(this.root)
  }
}

/**
 * A record being created: `containers/.tmp-<id>`, flock'd until it is
 * published or abandoned, so recovery leaves it (and the mounted layer
 * named after it) alone while its creator lives.
 */
export class ContainerDraft {
  readonly id: string
  /** Where the draft's files are until publish. */
  readonly dir: string
  readonly #store: ContainerStore
  readonly #lock: StoreLock
  #dirLock: DirLock | undefined
  #published = false
  /** The files written in the draft, fsynced by publish(). */
  readonly #files = new Set<string>()

  /** Use ContainerStore.draft. */
  constructor(store: ContainerStore, rootLock: StoreLock, id: string, dir: string, dirLock: DirLock) {
    this.#store = store
    this.#lock = rootLock
    this.id = id
    this.dir = dir
    this.#dirLock = dirLock
  }

  /**
   * Adds a file to the record (with exactly `mode`). Written in place, not
   * by temp + rename: nobody reads a draft, and a crash leaves an unlocked
   * draft that recovery removes whole, so a half-written file in it is
   * never seen. Not fsynced here either: publish() fsyncs every file of
   * the draft and the directory in one round before the rename that makes
   * the record visible, and until then a power loss can only cost a draft
   * (which recovery removes). (Per file, temp + rename + a directory fsync
   * were three sequential waits on the disk of create's ~8; then a round
   * for these files, one for config.v2.json, one for the directory.)
   */
  async writeFile(name: string, data: string, mode: number): Promise<void> {
    await writeFileWithMode(join(this.dir, name), data, mode)
    this.#files.add(name)
  }

  /**
   * Publishes the record under the data-root lock: names it `wantedName`
   * (ALREADY_EXISTS when another container has it) or, without one, a
   * docker-like adjective_noun no container has; writes config.v2.json
   * and renames the draft to `containers/<id>`. Returns the name.
   */
  async publish(record: ContainerRecord, wantedName?: string): Promise<string> {
    if (this.#published) throw new StrataError('INVALID_ARGUMENT', `Container ${this.id} is published already`)
    const wanted = wantedName === undefined ? undefined : validateContainerName(wantedName)
    const name = await this.#lock.withLock(async () => {
      const taken = await this.#store.takenNames()
      let chosen = wanted
      if (chosen === undefined) {
        for (let attempt = 0; chosen === undefined || taken.has(`/${chosen}`); attempt++) {
          chosen = attempt < 10 ? randomContainerName(attempt) : `${randomContainerName(0)}_${shortContainerId(this.id)}`
        }
      } else if (taken.has(`/${chosen}`)) {
        throw nameTaken(chosen)
      }
      record.Name = `/${chosen}`
      await writeFileWithMode(join(this.dir, CONFIG_FILE), encodeRecord(record), 0o600)
      this.#files.add(CONFIG_FILE)
      // Every file of the draft and its entries are durable before it is published: one round, side by side.
      await fsyncInOneRound(this.dir, this.#files)
      await rename(this.dir, this.#store.path(this.id))
      this.#published = true
      return chosen
    })
    this.#close()
    return name
  }

  /** Drops an unpublished draft (its directory and its lock); a no-op after publish. */
  async abandon(): Promise<void> {
    try {
      if (!this.#published) await rm(this.dir, { recursive: true, force: true })
    } finally {
      this.#close()
    }
  }

  #close(): void {
    this.#dirLock?.close()
    this.#dirLock = undefined
  }
}
