/**
 * Archives that lie, each test named after the lie. Every one must fail
 * with a StrataError that names what is wrong, and leave the store exactly
 * as it was: same layers, images and tags, nothing in layerdb/tmp, no
 * driver directories. The store starts with an image on the archive's base
 * layer, so a load that fails after registering layers must delete the
 * ones it made and keep the one it found.
 *
 * The archives are docker's own `docker save` of the 3-layer image (and
 * strata's OCI layout of it), taken apart and put back together with one
 * thing changed.
 */
import assert from 'node:assert/strict'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { readFile, readdir, truncate, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test, type TestContext } from 'node:test'
import { sha256Of, type Digest } from '../src/digest/index.js'
import { isStrataError, type StrataErrorCode } from '../src/errors/index.js'
import type { Store } from '../src/store/index.js'
import { loadImages, openImageDestination, openImageSource, saveImages } from '../src/transport/index.js'
import { Store as StoreClass } from '../src/store/index.js'
import {
  assertStoreUnchanged,
  dockerManifest,
  member,
  openTestStore,
  readTarFile,
  replaceMember,
  snapshotStore,
  withManifest,
  writeTarFile,
  type FixtureEntry,
} from './helpers/archive-fixtures.js'
import { IMAGE_TAG, readDockerArchive, threeLayerArchive, type DockerArchiveImage } from './helpers/docker-image.js'
import { mountsAtOrUnder, requireDockerd } from './helpers/dockerd.js'
import { canRunLayerTests } from './helpers/layer-env.js'
import { tempDirFor } from './helpers/tmp.js'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'

interface Fixture {
  original: DockerArchiveImage
  entries: FixtureEntry[]
  layerNames: string[]
  configName: string
}

async function dockerFixture(t: TestContext): Promise<Fixture> {
  const archive = await threeLayerArchive(t)
  const entries = await readTarFile(archive)
  const [item] = dockerManifest(entries)
  return { original: await readDockerArchive(archive), entries, layerNames: item!.Layers, configName: item!.Config }
}

/**
 * A store holding a one-layer image on the archive's base layer, tagged
 * `strata-test-pre:1`: what a failed load must keep.
 */
async function prepopulatedStore(t: TestContext, fx: Fixture): Promise<Store> {
  const store = await openTestStore(t)
  const config = JSON.parse(fx.original.configBytes.toString()) as { rootfs: { diff_ids: string[] }; history: Array<{ empty_layer?: boolean }> }
  config.rootfs.diff_ids = [fx.original.diffIds[0]!]
  config.history = config.history.filter((h) => h.empty_layer !== true).slice(0, 1)
  const configBytes = Buffer.from(JSON.stringify(config))
  const configName = `${sha256Of(configBytes).slice(7)}.json`
  const dir = tempDirFor(t, 'transport-bad-pre-')
  const path = join(dir, 'pre.tar')
  await writeTarFile(path, [
    { name: configName, data: configBytes },
    { name: 'base/layer.tar', data: fx.original.layers[0]! },
    { name: 'manifest.json', data: Buffer.from(JSON.stringify([{ Config: configName, RepoTags: ['strata-test-pre:1'], Layers: ['base/layer.tar'] }])) },
  ])
  const source = await openImageSource(path)
  try {
    await loadImages(store, source)
  } finally {
    await source.close()
  }
  return store
}

/** Loads `input` into `store`, expecting `code` with a message matching `pattern`, and checks nothing changed. */
async function assertLoadFails(store: Store, input: string, code: StrataErrorCode, pattern: RegExp): Promise<void> {
  const before = await snapshotStore(store)
  assert.equal(before.layers.length, 1, 'the store holds the base layer before the load')
  await assert.rejects(
    (async () => {
      const source = await openImageSource(input)
      try {
        await loadImages(store, source)
      } finally {
        await source.close()
      }
    })(),
    (err: unknown) => {
      assert.ok(isStrataError(err), `a StrataError, not ${String(err)}`)
      assert.equal(err.code, code, `code ${code}: ${err.message}`)
      assert.match(err.message, pattern)
      return true
    },
  )
  await assertStoreUnchanged(store, before)
  assert.equal(await store.references.get('strata-test-pre:1'), (await store.images.list())[0], 'the image that was there keeps its tag')
}

async function writeArchive(t: TestContext, entries: FixtureEntry[]): Promise<string> {
  const path = join(tempDirFor(t, 'transport-bad-'), 'bad.tar')
  await writeTarFile(path, entries)
  return path
}

function guard(t: TestContext): boolean {
  return canRunLayerTests(t) && requireDockerd(t)
}

// ---------------------------------------------------------------------------
// docker-archive

test('bad docker-archive: a layer file named in manifest.json is missing', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const path = await writeArchive(t, replaceMember(fx.entries, fx.layerNames[1]!, undefined))
  await assertLoadFails(store, path, 'CORRUPT', /Layer file ".*\/layer\.tar" is not in the archive/)
})

test('bad docker-archive: the config does not hash to its file name', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const config = member(fx.entries, fx.configName)
  const path = await writeArchive(t, replaceMember(fx.entries, fx.configName, { ...config, data: Buffer.from(`${config.data!.toString()} `) }))
  await assertLoadFails(store, path, 'DIGEST_MISMATCH', new RegExp(`Image config "${fx.configName}" .* hashes to sha256:[0-9a-f]{64}, not to sha256:${fx.configName.slice(0, 64)}`))
})

test('bad docker-archive: a layer whose content does not match its diffID (after two good layers)', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const top = Buffer.from(fx.original.layers[2]!)
  const at = top.indexOf('two\n')
  assert.ok(at > 0 && at % 512 === 0, 'the content of /data/two is in the top layer')
  top.write('TWO\n', at) // still a valid tar: the header checksum does not cover content
  const path = await writeArchive(t, replaceMember(fx.entries, fx.layerNames[2]!, { name: fx.layerNames[2]!, data: top }))
  await assertLoadFails(store, path, 'DIGEST_MISMATCH', new RegExp(`^Cannot load image 1 .*hashes to sha256:[0-9a-f]{64}, not the expected ${fx.original.diffIds[2]}`))
})

test('bad docker-archive: a truncated layer tar inside a whole archive', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const top = fx.original.layers[2]!
  const path = await writeArchive(t, replaceMember(fx.entries, fx.layerNames[2]!, { name: fx.layerNames[2]!, data: top.subarray(0, 1536 + 100) }))
  await assertLoadFails(store, path, 'CORRUPT', /[Tt]runcated/)
})

test('bad docker-archive: the archive file itself is cut off in the middle of a layer', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const path = await writeArchive(t, fx.entries)
  const { size } = await (await import('node:fs/promises')).stat(path)
  await truncate(path, Math.floor(size / 2))
  await assertLoadFails(store, path, 'CORRUPT', /is truncated: it ends inside/)
})

test('bad docker-archive: a layer path that climbs out of the archive (../x)', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const [item] = dockerManifest(fx.entries)
  const path = await writeArchive(t, withManifest(fx.entries, [{ ...item, Layers: [`../${fx.layerNames[0]}`, ...fx.layerNames.slice(1)] }]))
  await assertLoadFails(store, path, 'UNSAFE_PATH', /Layer file "\.\.\/.*" has a "\.\." component/)
})

test('bad docker-archive: a config path that is absolute (/etc/passwd)', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const [item] = dockerManifest(fx.entries)
  const path = await writeArchive(t, withManifest(fx.entries, [{ ...item, Config: '/etc/passwd' }]))
  await assertLoadFails(store, path, 'UNSAFE_PATH', /Config file "\/etc\/passwd" is an absolute path/)
})

test('bad docker-archive: a symlink member to /etc/passwd where a layer file should be', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const path = await writeArchive(t, replaceMember(fx.entries, fx.layerNames[1]!, { name: fx.layerNames[1]!, type: 'symlink', linkname: '/etc/passwd' }))
  await assertLoadFails(store, path, 'UNSAFE_PATH', /is a symlink to the absolute path "\/etc\/passwd"/)
})

test('bad docker-archive: a symlink member that climbs out of the archive (../../x)', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const path = await writeArchive(t, replaceMember(fx.entries, fx.layerNames[1]!, { name: fx.layerNames[1]!, type: 'symlink', linkname: '../../etc/passwd' }))
  await assertLoadFails(store, path, 'UNSAFE_PATH', /points outside the image archive/)
})

test('bad docker-archive: a directory where a layer file should be', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const path = await writeArchive(t, replaceMember(fx.entries, fx.layerNames[1]!, { name: `${fx.layerNames[1]!}/`, type: 'dir' }))
  await assertLoadFails(store, path, 'CORRUPT', /is a directory, not a regular file/)
})

test('bad docker-archive: a tar member whose own name climbs out (../evil)', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const path = await writeArchive(t, [...fx.entries, { name: '../evil', data: Buffer.from('x') }])
  await assertLoadFails(store, path, 'UNSAFE_PATH', /Tar member "\.\.\/evil"/)
})

test('bad docker-archive: manifest.json lists fewer layers than the config has diff_ids', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const [item] = dockerManifest(fx.entries)
  const path = await writeArchive(t, withManifest(fx.entries, [{ ...item, Layers: fx.layerNames.slice(0, 2) }]))
  await assertLoadFails(store, path, 'CORRUPT', /lists 3 layer diff_ids but the image has 2 layers/)
})

test('bad docker-archive: the second of two images is broken, the first is not kept either', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const store = await prepopulatedStore(t, fx)
  const [item] = dockerManifest(fx.entries)
  // Image 2 is image 1 with a top layer that fails its diffID: image 1 registers all its layers first.
  const top = Buffer.from(fx.original.layers[2]!)
  top.write('TWO\n', top.indexOf('two\n'))
  const config = JSON.parse(fx.original.configBytes.toString()) as { created: string; rootfs: { diff_ids: string[] } }
  config.created = '2024-01-01T00:00:00Z'
  config.rootfs.diff_ids[2] = sha256Of('a layer the archive does not have')
  const config2 = Buffer.from(JSON.stringify(config))
  const name2 = `${sha256Of(config2).slice(7)}.json`
  const entries = [
    ...withManifest(fx.entries, [item, { Config: name2, RepoTags: ['strata-test-second:1'], Layers: [fx.layerNames[0], fx.layerNames[1], 'bad/layer.tar'] }]),
    { name: name2, data: config2 },
    { name: 'bad/layer.tar', data: top },
  ]
  await assertLoadFails(store, await writeArchive(t, entries), 'DIGEST_MISMATCH', /Cannot load image 2/)
  assert.equal(await store.references.get(IMAGE_TAG), undefined, 'image 1 was not tagged')
})

// ---------------------------------------------------------------------------
// OCI layout

let ociRoot: string | undefined
after(() => {
  if (ociRoot !== undefined) rmSync(ociRoot, { recursive: true, force: true })
})

/** strata's OCI layouts of the 3-layer image (plain and gzip), built once per file in a throwaway store. */
let ociLayouts: Promise<{ plain: string; gzip: string }> | undefined
function ociFixture(t: TestContext, fx: Fixture): Promise<{ plain: string; gzip: string }> {
  ociLayouts ??= (async () => {
    ociRoot = mkdtempSync(join(tmpdir(), 'strata-test-transport-oci-fixture-'))
    const root = join(ociRoot, 'store')
    const store = await StoreClass.open({ root, driver: 'overlay2' })
    try {
      const source = await openImageSource(await threeLayerArchive(t))
      try {
        await loadImages(store, source)
      } finally {
        await source.close()
      }
      const plain = join(ociRoot, 'plain')
      const gzip = join(ociRoot, 'gzip')
      await saveImages(store, [IMAGE_TAG], openImageDestination(plain, 'oci-layout'))
      await saveImages(store, [IMAGE_TAG], openImageDestination(gzip, 'oci-layout', { compression: 'gzip' }))
      assert.ok(fx.original.imageId !== undefined)
      return { plain, gzip }
    } finally {
      await store.close()
      for (const m of mountsAtOrUnder([root])) umount2(m, MNT_DETACH)
      rmSync(root, { recursive: true, force: true })
    }
  })()
  return ociLayouts
}

/** A copy of a fixture layout for one test to break, and its manifest. */
async function layoutCopy(t: TestContext, from: string): Promise<{ dir: string; manifest: { config: { digest: Digest }; layers: Array<{ digest: Digest; size: number }> } }> {
  const dir = join(tempDirFor(t, 'transport-bad-oci-'), 'layout')
  cpSync(from, dir, { recursive: true })
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> }
  const manifest = JSON.parse(await readFile(join(dir, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8'))
  return { dir, manifest }
}

const blobFile = (dir: string, d: string): string => join(dir, 'blobs', 'sha256', d.slice(7))

test('bad OCI layout: a layer blob whose bytes do not match its digest (same size, same tar inside)', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const { dir, manifest } = await layoutCopy(t, (await ociFixture(t, fx)).gzip)
  const store = await prepopulatedStore(t, fx)
  // The gzip header's OS byte: a different blob that still decompresses to the same, valid layer.
  const path = blobFile(dir, manifest.layers[2]!.digest)
  const blob = await readFile(path)
  assert.equal(blob[0], 0x1f)
  blob[9] = blob[9] === 0xff ? 0x03 : 0xff
  await writeFile(path, blob)
  await assertLoadFails(store, dir, 'DIGEST_MISMATCH', new RegExp(`Layer blob ${manifest.layers[2]!.digest} .* hashes to sha256:[0-9a-f]{64}, not to its digest`))
})

test('bad OCI layout: the manifest names a layer blob that is not in the layout', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const { dir, manifest } = await layoutCopy(t, (await ociFixture(t, fx)).plain)
  const store = await prepopulatedStore(t, fx)
  await unlink(blobFile(dir, manifest.layers[1]!.digest))
  await assertLoadFails(store, dir, 'CORRUPT', new RegExp(`Layer blob ${manifest.layers[1]!.digest} \\(layer 2 of .*\\) is not in the directory`))
})

test('bad OCI layout: the config blob does not match its digest', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const { dir, manifest } = await layoutCopy(t, (await ociFixture(t, fx)).plain)
  const store = await prepopulatedStore(t, fx)
  const path = blobFile(dir, manifest.config.digest)
  const config = await readFile(path)
  await writeFile(path, Buffer.from(config.toString().replace('"amd64"', '"AMD64"')))
  await assertLoadFails(store, dir, 'DIGEST_MISMATCH', new RegExp(`Image config ${manifest.config.digest} .* hashes to`))
})

test('bad OCI layout: a layer blob shorter than its descriptor says', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const { dir, manifest } = await layoutCopy(t, (await ociFixture(t, fx)).plain)
  const store = await prepopulatedStore(t, fx)
  await truncate(blobFile(dir, manifest.layers[2]!.digest), 1024)
  await assertLoadFails(store, dir, 'CORRUPT', /is 1024 bytes, not the \d+ its descriptor says/)
})

test('bad OCI archive: a blob member that is a symlink out of the archive', { timeout: 300_000 }, async (t) => {
  if (!guard(t)) return
  const fx = await dockerFixture(t)
  const { dir, manifest } = await layoutCopy(t, (await ociFixture(t, fx)).plain)
  const store = await prepopulatedStore(t, fx)
  const entries: FixtureEntry[] = [{ name: 'oci-layout', data: await readFile(join(dir, 'oci-layout')) }]
  for (const hex of await readdir(join(dir, 'blobs', 'sha256'))) {
    const name = `blobs/sha256/${hex}`
    entries.push(hex === manifest.layers[0]!.digest.slice(7) ? { name, type: 'symlink', linkname: '/etc/shadow' } : { name, data: await readFile(join(dir, name)) })
  }
  entries.push({ name: 'index.json', data: await readFile(join(dir, 'index.json')) })
  await assertLoadFails(store, await writeArchive(t, entries), 'UNSAFE_PATH', /symlink to the absolute path "\/etc\/shadow"/)
})
