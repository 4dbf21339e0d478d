/**
 * Image archives for the transport tests: a fresh full Store on a temp data
 * root, a snapshot of everything a failed load must leave as it was, and
 * tar files read into memory and written back out with changes (a missing
 * layer, a link where a blob should be, a name that climbs out), encoded
 * with strata's own header encoder so that the hostile names a real tool
 * would refuse to write can be written.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createReadStream } from 'node:fs'
import type { TestContext } from 'node:test'
import { encodeHeader, padding, END_OF_ARCHIVE, readTar, type EntryType } from '../../src/archive/tar/index.js'
import { Store } from '../../src/store/index.js'
import { MNT_DETACH, umount2 } from '../../src/sys/index.js'
import { mountsAtOrUnder } from './dockerd.js'
import { readDockerArchive, threeLayerArchive, type DockerArchiveImage } from './docker-image.js'
import { loadImages, openImageSource } from '../../src/transport/index.js'

/**
 * Ends what still runs for `root`: the container monitors started on it
 * (`monitor/main.js ROOT ID`) and runc's containers whose bundles are in
 * it. A test's own removal of its containers may not have run (it failed
 * first) or may run too late (its hook registered after the root's, so
 * the root is gone when it lists them): a container left running outlives
 * the test, spinning on a detached mount.
 */
function stopContainersOf(root: string): void {
  for (const pid of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue
    let argv: string[]
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    } catch {
      continue // gone
    }
    if (argv.some((a) => a.endsWith('/monitor/main.js')) && argv.includes(root)) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {
        // gone
      }
    }
  }
  let listed: Array<{ id: string; bundle: string }> | null
  try {
    listed = JSON.parse(execFileSync('runc', ['list', '--format', 'json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }) || 'null') as Array<{ id: string; bundle: string }> | null
  } catch {
    return // no runc here, so no container either
  }
  for (const c of listed ?? []) {
    if (!c.bundle.startsWith(`${root}/`)) continue
    try {
      execFileSync('runc', ['delete', '--force', c.id], { stdio: 'ignore' })
    } catch {
      // ended meanwhile
    }
  }
}

/** Ends the containers still running on `root`, unmounts whatever is mounted under it and removes it. */
function removeDataRoot(root: string): void {
  stopContainersOf(root)
  for (const m of mountsAtOrUnder([root])) {
    try {
      umount2(m, MNT_DETACH)
    } catch (err) {
      // Gone between the listing and the unmount: a server still closing released it (EINVAL).
      if ((err as { code?: string }).code !== 'EINVAL') throw err
    }
  }
  rmSync(root, { recursive: true, force: true })
}

/** A fresh, empty data root under the temp dir (for a CLI or a child process to open), unmounted and removed when the test ends. */
export function testDataRoot(t: TestContext, prefix = 'strata-test-root-'): string {
  const root = mkdtempSync(join(tmpdir(), prefix))
  t.after(() => removeDataRoot(root))
  return root
}

/** A fresh store on overlay2 (or `driver`) under a temp root, closed, unmounted and removed when the test ends. */
export async function openTestStore(t: TestContext, driver = 'overlay2'): Promise<Store> {
  const root = mkdtempSync(join(tmpdir(), 'strata-test-transport-'))
  let store: Store | undefined
  t.after(async () => {
    try {
      await store?.close()
    } finally {
      removeDataRoot(root)
    }
  })
  store = await Store.open({ root, driver })
  return store
}

export interface StoreSnapshot {
  layers: string[]
  images: string[]
  references: string[]
  /** layerdb/tmp: transactions in progress. */
  layerTmp: string[]
  /** The driver's directory: layer dirs, overlay2's l/ links. */
  driverDirs: string[]
}

/** Everything a failed load must leave unchanged. */
export async function snapshotStore(store: Store): Promise<StoreSnapshot> {
  const driverDir = join(store.root, store.driver.name)
  // Layer directories and overlay2's l/ links; not the files inside a layer directory (overlay2 marks
  // a layer `committed` once a child is made on it, as dockerd's does, even when the child goes again).
  const driverDirs = readdirSync(driverDir, { withFileTypes: true }).flatMap((e) =>
    e.name === 'l' && e.isDirectory() ? ['l/', ...readdirSync(join(driverDir, 'l')).map((n) => `l/${n}`)] : [e.name],
  )
  return {
    layers: (await store.layers.list()).map((l) => `${l.chainId} ${l.diffId} ${l.cacheId}`).sort(),
    images: (await store.images.list()).map(String).sort(),
    references: (await store.references.all()).map((e) => `${e.ref.domain}/${e.ref.path}:${e.ref.tag ?? ''}@${e.ref.digest ?? ''} ${e.id}`).sort(),
    layerTmp: (await readdir(store.layers.paths.tmp)).sort(),
    driverDirs: driverDirs.sort(),
  }
}

/** Asserts the store is as `before` says. */
export async function assertStoreUnchanged(store: Store, before: StoreSnapshot): Promise<void> {
  assert.deepEqual(await snapshotStore(store), before, 'the store is unchanged after the failed load')
}

/** One member of a tar written by writeTarFile. */
export interface FixtureEntry {
  name: string
  type?: Exclude<EntryType, 'globalHeader'>
  data?: Buffer
  linkname?: string
}

/** A tar file's regular files, directories and links, in order, with their contents. */
export async function readTarFile(path: string): Promise<FixtureEntry[]> {
  const out: FixtureEntry[] = []
  for await (const entry of readTar(createReadStream(path))) {
    const chunks: Buffer[] = []
    for await (const c of entry.body()) chunks.push(c)
    const h = entry.header
    if (h.type === 'globalHeader') continue
    out.push({ name: h.name, type: h.type, data: Buffer.concat(chunks), linkname: h.linkname })
  }
  return out
}

/** Writes `entries` as a tar file, names as given (however hostile). */
export async function writeTarFile(path: string, entries: readonly FixtureEntry[]): Promise<void> {
  const parts: Buffer[] = []
  for (const e of entries) {
    const type = e.type ?? 'file'
    const data = type === 'file' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0)
    parts.push(encodeHeader({ name: e.name, type, size: data.length, linkname: e.linkname ?? '', mode: type === 'dir' ? 0o755 : 0o644 }))
    if (data.length > 0) parts.push(data, padding(data.length))
  }
  parts.push(END_OF_ARCHIVE)
  await writeFile(path, Buffer.concat(parts))
}

/** The member named `name` (./ ignored); fails the test when missing. */
export function member(entries: readonly FixtureEntry[], name: string): FixtureEntry {
  const e = entries.find((x) => x.name.replace(/^\.\//, '') === name)
  assert.ok(e !== undefined, `the archive has ${name}`)
  return e
}

/** manifest.json of a docker-archive held in `entries`. */
export function dockerManifest(entries: readonly FixtureEntry[]): Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }> {
  return JSON.parse(member(entries, 'manifest.json').data!.toString()) as Array<{ Config: string; RepoTags: string[] | null; Layers: string[] }>
}

/** `entries` with manifest.json replaced by `manifest`. */
export function withManifest(entries: readonly FixtureEntry[], manifest: unknown): FixtureEntry[] {
  return entries.map((e) => (e.name.replace(/^\.\//, '') === 'manifest.json' ? { ...e, data: Buffer.from(JSON.stringify(manifest)) } : e))
}

/** `entries` with member `name` replaced (or removed when `replacement` is undefined). */
export function replaceMember(entries: readonly FixtureEntry[], name: string, replacement: FixtureEntry | undefined): FixtureEntry[] {
  member(entries, name)
  return entries.flatMap((e) => (e.name.replace(/^\.\//, '') === name ? (replacement === undefined ? [] : [replacement]) : [e]))
}

/** A store holding the 3-layer image, and the image as docker saved it. */
export async function storeWithImage(t: TestContext): Promise<{ store: Store; original: DockerArchiveImage }> {
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const store = await openTestStore(t)
  const source = await openImageSource(archive)
  try {
    await loadImages(store, source)
  } finally {
    await source.close()
  }
  return { store, original }
}
