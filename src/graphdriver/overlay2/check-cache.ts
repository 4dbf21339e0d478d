/**
 * The host checks' results (checks.ts), kept across processes for the boot
 * they were made in.
 *
 * Why: dockerd runs its overlay checks once per daemon start; strata has no
 * daemon, so every command ran them again: two test overlay mounts with
 * their umount2 calls, a d_type test and the scratch dirs (~10 ms, more
 * when an unmount waits). What they find depends only on the kernel (the
 * boot), the overlay module's parameters (writable at runtime under
 * /sys/module/overlay/parameters, so they are part of the key) and the
 * filesystem holding the directory (its device and inode: a new mount or
 * a recreated dir is a new key). Those facts are cheap to read; the
 * results live in /run/strata/checks (a tmpfs emptied at boot), one file
 * per key, named by a hash of the key (keyName).
 *
 * Best effort both ways: a cache that cannot be read or written (no /run,
 * not root) means the checks run, as before. A directory not owned by this
 * user is not trusted. Only what the caller says to keep is kept (the
 * probe keeps successes only: a failure is tested again, as in-process).
 */
import { readFileSync, readdirSync } from 'node:fs'
import { mkdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { atomicWriteFile } from '../../fs/index.js'
import { statfsType } from '../../sys/index.js'

/** Where the results are kept; STRATA_CHECK_CACHE overrides it (an empty value turns the cache off). */
function cacheDir(): string | undefined {
  const env = process.env.STRATA_CHECK_CACHE
  if (env !== undefined) return env === '' ? undefined : env
  return '/run/strata/checks'
}

const OVERLAY_PARAMS = '/sys/module/overlay/parameters'

/**
 * The host facts every check depends on: the boot and the overlay module's
 * parameters. Read synchronously: /proc and /sys files are made by the
 * kernel on read and never wait for a disk, and the ten of them one after
 * the other through the thread pool took 4-5 ms of a cold command's wall
 * time (each async read is a round trip to a pool thread); read here they
 * take a few microseconds each.
 */
let hostFacts: string | undefined
function readHostFacts(): string {
  if (hostFacts !== undefined) return hostFacts
  const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  const params: string[] = []
  let names: string[] | undefined
  try {
    names = readdirSync(OVERLAY_PARAMS).sort()
  } catch {
    // no overlay module loaded yet: the first mount loads it, with its defaults
    params.push('(not loaded)')
  }
  for (const name of names ?? []) {
    let value = '?'
    try {
      value = readFileSync(join(OVERLAY_PARAMS, name), 'utf8').trim()
    } catch {
      // unreadable parameter: part of the key as "?"
    }
    params.push(`${name}=${value}`)
  }
  hostFacts = `boot ${bootId}\noverlay ${params.join(' ')}`
  return hostFacts
}

/** The full key of check `kind` on `dir`, or undefined when the facts cannot be read. */
async function keyFor(kind: string, dir: string): Promise<string | undefined> {
  try {
    const st = await stat(dir)
    return `${kind}\n${dir}\ndev ${st.dev} ino ${st.ino} fs ${statfsType(dir)}\n${readHostFacts()}`
  } catch {
    return undefined
  }
}

/**
 * A file name for `key`: two 32-bit FNV-style hashes of it (different
 * offsets, the second also shifted), 16 hex digits. Not a digest: the file holds the whole key,
 * compared on read, so two keys sharing a name only miss the cache (and
 * take turns in the file). A sha256 here made every overlay2 command load
 * node:crypto (~2.5 ms of a cold start) for a file name.
 */
function keyName(key: string): string {
  let a = 0x811c9dc5
  let b = 0x050c5d1f
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 13)
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0')
}

interface CacheFile {
  key: string
  value: unknown
}

/**
 * Check `kind` on `dir`: the kept result when this boot already ran it on
 * the same filesystem and module parameters, else `run()`, kept when
 * `keep` says so.
 */
export async function cachedCheck<T>(kind: string, dir: string, run: () => Promise<T>, keep: (value: T) => boolean): Promise<T> {
  const base = cacheDir()
  const key = base === undefined ? undefined : await keyFor(kind, dir)
  if (base === undefined || key === undefined) return run()
  const file = join(base, `${keyName(key)}.json`)
  try {
    const st = await stat(base)
    if (st.uid === process.geteuid?.()) {
      const kept = JSON.parse(await readFile(file, 'utf8')) as CacheFile
      if (kept.key === key) return kept.value as T
    }
  } catch {
    // not kept yet (or unreadable): check
  }
  const value = await run()
  if (keep(value)) {
    try {
      await mkdir(base, { recursive: true, mode: 0o700 })
      const doc: CacheFile = { key, value }
      await atomicWriteFile(file, JSON.stringify(doc), 0o600)
    } catch {
      // a read-only /run: the next process checks again
    }
  }
  return value
}
