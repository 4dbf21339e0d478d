/**
 * OCI image layout and OCI archive, written by strata and read back by
 * strata: the image keeps its ID (the config bytes are stored unchanged),
 * its diffIDs and its name; layers compressed with gzip or zstd are blobs
 * of their own digest (not the diffID) and load the same. Writing into an
 * existing layout keeps its blobs and entries, and a name written again
 * moves to the new image. A multi-platform index is resolved to this
 * machine's image.
 */
import assert from 'node:assert/strict'
import { readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { sha256Of } from '../src/digest/index.js'
import type { Store } from '../src/store/index.js'
import { MediaTypes, loadImages, openImageDestination, openImageSource, saveImages, type TransportFormat } from '../src/transport/index.js'
import { openTestStore, readTarFile, storeWithImage } from './helpers/archive-fixtures.js'
import { IMAGE_TAG } from './helpers/docker-image.js'
import { requireDockerd } from './helpers/dockerd.js'
import { canRunLayerTests } from './helpers/layer-env.js'
import { tempDirFor } from './helpers/tmp.js'

const FULL_TAG = 'docker.io/library/strata-test-3layers:latest'

async function loadFrom(store: Store, path: string): Promise<Awaited<ReturnType<typeof loadImages>>> {
  const source = await openImageSource(path)
  try {
    return await loadImages(store, source)
  } finally {
    await source.close()
  }
}

interface IndexJson {
  schemaVersion: number
  manifests: Array<{ mediaType: string; digest: string; size: number; annotations?: Record<string, string>; platform?: { os: string; architecture: string } }>
}

for (const format of ['oci-layout', 'oci-archive'] as const satisfies readonly TransportFormat[]) {
  test(`${format} written by strata reads back with the same image ID, diffIDs and name`, { timeout: 300_000 }, async (t) => {
    if (!canRunLayerTests(t) || !requireDockerd(t)) return
    const { store, original } = await storeWithImage(t)
    const dir = tempDirFor(t, `transport-${format}-`)
    const out = join(dir, format === 'oci-layout' ? 'layout' : 'image.tar')
    await saveImages(store, [IMAGE_TAG], openImageDestination(out, format))
    assert.deepEqual((await readdir(dir)).sort(), [format === 'oci-layout' ? 'layout' : 'image.tar'], 'no temp files are left beside it')

    // The layout as the spec has it.
    const files = new Map<string, Buffer>()
    if (format === 'oci-layout') {
      files.set('oci-layout', await readFile(join(out, 'oci-layout')))
      files.set('index.json', await readFile(join(out, 'index.json')))
      for (const hex of await readdir(join(out, 'blobs', 'sha256'))) files.set(`blobs/sha256/${hex}`, await readFile(join(out, 'blobs', 'sha256', hex)))
    } else {
      const entries = await readTarFile(out)
      assert.equal(entries[0]!.name, 'oci-layout', 'oci-layout comes first')
      assert.equal(entries.at(-1)!.name, 'index.json', 'index.json comes last')
      for (const e of entries) if (e.type === 'file') files.set(e.name, e.data!)
    }
    assert.deepEqual(JSON.parse(files.get('oci-layout')!.toString()), { imageLayoutVersion: '1.0.0' })
    const index = JSON.parse(files.get('index.json')!.toString()) as IndexJson
    assert.equal(index.schemaVersion, 2)
    assert.equal(index.manifests.length, 1)
    const entry = index.manifests[0]!
    assert.equal(entry.mediaType, MediaTypes.ociManifest)
    assert.equal(entry.annotations?.['org.opencontainers.image.ref.name'], FULL_TAG)
    assert.deepEqual(entry.platform, { architecture: 'amd64', os: 'linux' })
    for (const [name, bytes] of files) {
      if (name.startsWith('blobs/')) assert.equal(sha256Of(bytes).slice(7), name.slice('blobs/sha256/'.length), `${name} is named by its digest`)
    }
    const manifest = JSON.parse(files.get(`blobs/sha256/${entry.digest.slice(7)}`)!.toString()) as { mediaType: string; config: { mediaType: string; digest: string }; layers: Array<{ mediaType: string; digest: string }> }
    assert.equal(manifest.mediaType, MediaTypes.ociManifest)
    assert.equal(manifest.config.mediaType, MediaTypes.ociConfig)
    assert.equal(manifest.config.digest, original.imageId, 'the config blob is the config, unchanged')
    assert.deepEqual(manifest.layers.map((l) => l.mediaType), [MediaTypes.ociLayer, MediaTypes.ociLayer, MediaTypes.ociLayer])
    assert.deepEqual(manifest.layers.map((l) => l.digest), original.diffIds, 'uncompressed layers are blobs named by their diffID')
    original.layers.forEach((l, i) => assert.ok(files.get(`blobs/sha256/${original.diffIds[i]!.slice(7)}`)!.equals(l), `layer ${i + 1} bytes equal docker's`))

    const store2 = await openTestStore(t)
    const r = await loadFrom(store2, out)
    assert.equal(r.images.length, 1)
    assert.equal(r.images[0]!.id, original.imageId)
    assert.deepEqual(r.images[0]!.tagged, [FULL_TAG])
    assert.equal(await store2.references.get(IMAGE_TAG), original.imageId)
    assert.deepEqual(await store2.layers.diffIdsOf(store2.layers.chainOf(original.diffIds)), original.diffIds)
  })
}

for (const compression of ['gzip', 'zstd'] as const) {
  test(`oci-archive with ${compression} layers: blobs differ from the diffIDs and load to the same image`, { timeout: 300_000 }, async (t) => {
    if (!canRunLayerTests(t) || !requireDockerd(t)) return
    const { store, original } = await storeWithImage(t)
    const dir = tempDirFor(t, `transport-oci-${compression}-`)
    const out = join(dir, 'image.tar')
    await saveImages(store, [IMAGE_TAG], openImageDestination(out, 'oci-archive', { compression }))
    const entries = await readTarFile(out)
    const blob = (d: string): Buffer => entries.find((e) => e.name === `blobs/sha256/${d.slice(7)}`)!.data!
    const index = JSON.parse(entries.find((e) => e.name === 'index.json')!.data!.toString()) as IndexJson
    const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString()) as { layers: Array<{ mediaType: string; digest: string; size: number }> }
    const expectedType = compression === 'gzip' ? MediaTypes.ociLayerGzip : MediaTypes.ociLayerZstd
    for (const [i, l] of manifest.layers.entries()) {
      assert.equal(l.mediaType, expectedType)
      assert.notEqual(l.digest, original.diffIds[i], 'a compressed blob is not named by the diffID')
      assert.equal(sha256Of(blob(l.digest)), l.digest)
      assert.equal(blob(l.digest).length, l.size)
    }
    const magic = compression === 'gzip' ? '1f8b' : '28b52ffd'
    assert.equal(blob(manifest.layers[0]!.digest).subarray(0, magic.length / 2).toString('hex'), magic)

    const store2 = await openTestStore(t)
    const r = await loadFrom(store2, out)
    assert.equal(r.images[0]!.id, original.imageId)
    assert.equal(r.images[0]!.layersCreated, 3)
    // The layers are byte-exact with docker's: their export hashes to the diffID.
    const exp = await store2.layers.export(store2.layers.chainOf(original.diffIds))
    for await (const _ of exp.stream) void _
    assert.equal((await exp.verified).matches, true)
  })
}

test('oci-layout: writing into an existing layout keeps its blobs and entries, a name written again moves', { timeout: 300_000 }, async (t) => {
  if (!canRunLayerTests(t) || !requireDockerd(t)) return
  const { store, original } = await storeWithImage(t)
  const dir = tempDirFor(t, 'transport-oci-existing-')
  const out = join(dir, 'layout')
  await saveImages(store, [IMAGE_TAG], openImageDestination(out, 'oci-layout'))
  const baseBlob = join(out, 'blobs', 'sha256', original.diffIds[0]!.slice(7))
  const before = await stat(baseBlob)

  // A second image on the first two layers, saved under a new name and under the old name.
  const config = JSON.parse(original.configBytes.toString()) as { rootfs: { diff_ids: string[] }; history: Array<{ empty_layer?: boolean }>; created: string }
  config.rootfs.diff_ids = original.diffIds.slice(0, 2)
  config.history = config.history.filter((h) => h.empty_layer !== true).slice(0, 2)
  config.created = '2024-01-02T03:04:05Z'
  const { id: twoId } = await store.images.create(Buffer.from(JSON.stringify(config)))
  await store.references.addTag('strata-test-two:1', twoId)
  await saveImages(store, ['strata-test-two:1'], openImageDestination(out, 'oci-layout'))
  assert.equal((await stat(baseBlob)).mtimeMs, before.mtimeMs, 'a blob the layout had is not written again')
  let index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as IndexJson
  assert.deepEqual(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']), [FULL_TAG, 'docker.io/library/strata-test-two:1'])

  await store.references.addTag(IMAGE_TAG, twoId, { force: true })
  await saveImages(store, [IMAGE_TAG], openImageDestination(out, 'oci-layout'))
  index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as IndexJson
  assert.equal(index.manifests.length, 2, 'the old entry for the name is replaced, not kept beside the new one')
  const store2 = await openTestStore(t)
  const r = await loadFrom(store2, out)
  assert.deepEqual(r.images.map((i) => i.id), [twoId])
  assert.deepEqual(r.images[0]!.tagged.sort(), ['docker.io/library/strata-test-two:1', FULL_TAG].sort())
  assert.deepEqual((await readdir(out)).sort(), ['blobs', 'index.json', 'oci-layout'], 'no temp files are left in the layout')
})

test('oci-layout: a multi-platform index resolves to this machine\'s image; a bare ref.name tag is not a name', { timeout: 300_000 }, async (t) => {
  if (!canRunLayerTests(t) || !requireDockerd(t)) return
  const { store, original } = await storeWithImage(t)
  const dir = tempDirFor(t, 'transport-oci-multi-')
  const out = join(dir, 'layout')
  await saveImages(store, [IMAGE_TAG], openImageDestination(out, 'oci-layout'))
  const single = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as IndexJson
  const amd64 = { ...single.manifests[0]!, platform: { architecture: 'amd64', os: 'linux' } }
  delete amd64.annotations
  // An arm64 manifest that names blobs the layout lacks: picking it would fail.
  const armManifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: { mediaType: MediaTypes.ociConfig, digest: `sha256:${'0'.repeat(64)}`, size: 2 }, layers: [] }))
  await writeFile(join(out, 'blobs', 'sha256', sha256Of(armManifest).slice(7)), armManifest)
  const arm = { mediaType: MediaTypes.ociManifest, digest: sha256Of(armManifest), size: armManifest.length, platform: { architecture: 'arm64', os: 'linux' } }
  const nested = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [arm, amd64] }))
  await writeFile(join(out, 'blobs', 'sha256', sha256Of(nested).slice(7)), nested)
  await writeFile(
    join(out, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: MediaTypes.ociIndex,
          digest: sha256Of(nested),
          size: nested.length,
          annotations: { 'org.opencontainers.image.ref.name': 'latest', 'io.containerd.image.name': 'example.com/multi/image:2' },
        },
      ],
    }),
  )
  const store2 = await openTestStore(t)
  const source = await openImageSource(out)
  try {
    assert.equal(source.format, 'oci-layout')
    const r = await loadImages(store2, source)
    assert.equal(r.images[0]!.id, original.imageId)
    assert.deepEqual(r.images[0]!.tagged, ['example.com/multi/image:2'])
    assert.deepEqual(r.images[0]!.skippedNames, ['latest'], 'a ref.name that is only a tag names no repository')
  } finally {
    await source.close()
  }
})
