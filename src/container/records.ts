/**
 * Container records on disk: `<root>/containers/<id>/config.v2.json` and
 * `hostconfig.json`, read, listed, found by ID/prefix/name, and updated by
 * atomic replace under the data-root lock. Nothing here touches layers.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { StrataError, isErrno } from '../errors/index.js'
import { GO_ZERO_TIME, atomicWriteFile } from '../fs/index.js'
import type { Store } from '../store/index.js'
import type { Container, ContainerRecord, ContainerState } from './types.js'

export const CONTAINERS_DIR = 'containers'
export const CONFIG_FILE = 'config.v2.json'
export const HOSTCONFIG_FILE = 'hostconfig.json'
/** Records being built start with this; listing skips them. */
export const TEMP_RECORD_PREFIX = '.tmp-'

const ID_RE = /^[a-f0-9]{64}$/
/** docker's validContainerNamePattern. */
const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/

export function containersDir(root: string): string {
  return join(root, CONTAINERS_DIR)
}

export function containerDir(root: string, id: string): string {
  return join(root, CONTAINERS_DIR, id)
}

/** docker's stringid.GenerateRandomID: 64 hex whose 12-char short form is not all digits (it would read as a number). */
export function newContainerId(): string {
  for (;;) {
    const id = randomBytes(32).toString('hex')
    if (!/^[0-9]{12}$/.test(id.slice(0, 12))) return id
  }
}

export function shortContainerId(id: string): string {
  return id.slice(0, 12)
}

export function validateContainerName(name: string): string {
  if (!NAME_RE.test(name)) {
    throw new StrataError('INVALID_ARGUMENT', `Invalid container name "${name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`)
  }
  return name.replace(/^\//, '')
}

const ADJECTIVES = ['admiring', 'bold', 'brave', 'clever', 'eager', 'focused', 'gentle', 'happy', 'keen', 'lucid', 'nifty', 'quirky', 'serene', 'sharp', 'vibrant', 'zen']
const NOUNS = ['babbage', 'curie', 'darwin', 'euler', 'fermi', 'galois', 'hopper', 'knuth', 'lovelace', 'meitner', 'noether', 'pascal', 'ritchie', 'shannon', 'turing', 'wozniak']

/** A docker-like adjective_noun name; `attempt` > 0 appends a number, as docker's retry does. */
export function randomContainerName(attempt: number): string {
  const pick = (list: string[]): string => list[randomBytes(1)[0]! % list.length]!
  const base = `${pick(ADJECTIVES)}_${pick(NOUNS)}`
  return attempt === 0 ? base : `${base}${randomBytes(1)[0]! % 10}`
}

export function newState(): ContainerState {
  return {
    Running: false,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    RemovalInProgress: false,
    Dead: false,
    Pid: 0,
    ExitCode: 0,
    Error: '',
    StartedAt: GO_ZERO_TIME,
    FinishedAt: GO_ZERO_TIME,
    Health: null,
  }
}

/** Whether `pid` is a live runc process for container `id` (guards against a stale record and PID reuse). */
export function isRuncAlive(pid: number, id: string): boolean {
  if (pid <= 0) return false
  let cmdline: string
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return false
  }
  return cmdline.split('\0').includes(id)
}

function toContainer(record: ContainerRecord): Container {
  return {
    id: record.ID,
    name: record.Name.replace(/^\//, ''),
    record,
    running: record.State.Running && isRuncAlive(record.State.Pid, record.ID),
  }
}

export async function readRecord(root: string, id: string): Promise<ContainerRecord> {
  const path = join(containerDir(root, id), CONFIG_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new StrataError('NOT_FOUND', `No such container: ${id}`, { details: { id } })
    throw err
  }
  try {
    const record = JSON.parse(text) as ContainerRecord
    if (record.ID !== id || typeof record.Name !== 'string' || typeof record.State !== 'object') throw new Error('unexpected shape')
    return record
  } catch (err) {
    throw new StrataError('CORRUPT', `Container record "${path}" is not a valid config.v2.json`, { cause: err, details: { path } })
  }
}

/** Every readable container record (a damaged one is skipped). */
export async function listRecords(root: string): Promise<ContainerRecord[]> {
  let names: string[]
  try {
    names = await readdir(containersDir(root))
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
  const out: ContainerRecord[] = []
  for (const name of names.filter((n) => ID_RE.test(n))) {
    try {
      out.push(await readRecord(root, name))
    } catch (err) {
      if (!(err instanceof StrataError) || (err.code !== 'CORRUPT' && err.code !== 'NOT_FOUND')) throw err
    }
  }
  return out
}

export async function listContainers(store: Store): Promise<Container[]> {
  const records = await listRecords(store.root)
  // docker ps lists newest first.
  records.sort((a, b) => (a.Created < b.Created ? 1 : a.Created > b.Created ? -1 : 0))
  return records.map(toContainer)
}

/**
 * Finds a container as docker's GetContainer does: full ID, then exact
 * name, then unique ID prefix. NOT_FOUND, or INVALID_ARGUMENT for an
 * ambiguous prefix.
 */
export async function getContainer(store: Store, ref: string): Promise<Container> {
  if (ref === '') throw new StrataError('INVALID_ARGUMENT', 'No container name or ID given')
  if (ID_RE.test(ref)) {
    try {
      return toContainer(await readRecord(store.root, ref))
    } catch (err) {
      if (!(err instanceof StrataError) || err.code !== 'NOT_FOUND') throw err
    }
  }
  const records = await listRecords(store.root)
  const byName = records.find((r) => r.Name === `/${ref.replace(/^\//, '')}`)
  if (byName !== undefined) return toContainer(byName)
  if (/^[a-f0-9]+$/.test(ref)) {
    const matches = records.filter((r) => r.ID.startsWith(ref))
    if (matches.length === 1) return toContainer(matches[0]!)
    if (matches.length > 1) {
      throw new StrataError('INVALID_ARGUMENT', `Multiple IDs found with provided prefix: ${ref}`, { details: { ref } })
    }
  }
  throw new StrataError('NOT_FOUND', `No such container: ${ref}`, { details: { ref } })
}

/** Serialises a record as dockerd does (one line, no trailing newline). */
export function encodeRecord(record: ContainerRecord): string {
  return JSON.stringify(record)
}

/**
 * Re-reads the record under the data-root lock, applies `update` and
 * replaces config.v2.json atomically. Returns the new record.
 */
export async function updateRecord(store: Store, id: string, update: (r: ContainerRecord) => void): Promise<ContainerRecord> {
  return store.layers.lock.withLock(async () => {
    const record = await readRecord(store.root, id)
    update(record)
    await atomicWriteFile(join(containerDir(store.root, id), CONFIG_FILE), encodeRecord(record), 0o600)
    return record
  })
}
