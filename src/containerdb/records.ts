/**
 * A container record's pieces, without the store around them: paths in
 * the data root, IDs and names as docker makes and checks them, a fresh
 * State, reading and encoding config.v2.json, and what a record says
 * about its container (running, status). ContainerStore (store.ts) is
 * the only writer.
 */
import { randomBytes } from 'node:crypto'
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { StrataError, isErrno, isStrataError } from '../errors/index.js'
import { GO_ZERO_TIME, TEMP_PREFIX, atomicWriteFile } from '../fs/index.js'
import { isMonitorAlive } from './monitor-file.js'
import type { Container, ContainerRecord, ContainerState } from './types.js'

export const CONTAINERS_DIR = 'containers'
export const CONFIG_FILE = 'config.v2.json'
export const HOSTCONFIG_FILE = 'hostconfig.json'
/** A container ID: 64 lowercase hex. */
export const CONTAINER_ID_RE = /^[a-f0-9]{64}$/
/** docker's validContainerNamePattern. */
export const NAME_RE = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/

export function containersDir(root: string): string {
  return join(root, CONTAINERS_DIR)
}

export function containerDir(root: string, id: string): string {
  return join(root, CONTAINERS_DIR, id)
}

/** A record being created (a draft): `containers/.tmp-<id>`. */
export function draftDir(root: string, id: string): string {
  return join(root, CONTAINERS_DIR, `${TEMP_PREFIX}${id}`)
}

/** A record being removed: `containers/.tmp-rm-<id>`. */
export function doomedDir(root: string, id: string): string {
  return join(root, CONTAINERS_DIR, `${TEMP_PREFIX}rm-${id}`)
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

/**
 * A record as the store returns it. Running means the record says so and
 * its monitor is alive (monitor-file.ts): a monitor that died (killed, a
 * reboot) never leaves a container that looks running forever.
 */
export function toContainer(root: string, record: ContainerRecord): Container {
  return {
    id: record.ID,
    name: record.Name.replace(/^\//, ''),
    record,
    running: record.State.Running && isMonitorAlive(root, record.ID),
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

/** Serialises a record as dockerd does (one line, no trailing newline). */
export function encodeRecord(record: ContainerRecord): string {
  return JSON.stringify(record)
}

/**
 * Every readable record under `root` (a damaged one is skipped), without
 * any lock: for ContainerStore, and for code that holds the data-root lock
 * already (a migration). Others use store.containers.list().
 */
export async function listRecords(root: string): Promise<ContainerRecord[]> {
  let names: string[]
  try {
    names = await readdir(containersDir(root))
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return []
    throw err
  }
  const out: ContainerRecord[] = []
  for (const name of names.filter((n) => CONTAINER_ID_RE.test(n))) {
    try {
      out.push(await readRecord(root, name))
    } catch (err) {
      if (!isStrataError(err, 'CORRUPT') && !isStrataError(err, 'NOT_FOUND')) throw err
    }
  }
  return out
}

/**
 * Replaces container `id`'s config.v2.json atomically (mode 0600, as
 * dockerd's ToDisk writes it, unless told). Call it under the data-root
 * lock: ContainerStore.update does; a migration holding the lock already
 * calls it directly.
 */
export async function writeRecord(root: string, id: string, record: ContainerRecord, mode = 0o600): Promise<void> {
  await atomicWriteFile(join(containerDir(root, id), CONFIG_FILE), encodeRecord(record), mode)
}
