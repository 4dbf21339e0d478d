/**
 * docker-archive both ways against dockerd 20.10's own `docker save`
 * output (the cached 3-layer image, see helpers/docker-image.ts):
 *
 * - load: the image gets dockerd's ID, diffIDs and tag; layers already in
 *   the store are not read again; a gzip'd archive and a stream (stdin)
 *   load the same.
 * - save: the archive holds the same config bytes, diffIDs and layer tar
 *   bytes as docker's, under the same `<v1id>/layer.tar` names (the v1 IDs
 *   are computed as dockerd computes them), with docker's manifest.json.
 * - several images in one archive share their base layers: written once.
 * - in-archive `layer.tar` symlinks (docker's way of not writing a layer
 *   twice) are followed.
 */
import assert from 'node:assert/strict'
import { createReadStream, readdirSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { gzipSync } from 'node:zlib'
import { chainIds, sha256Of, type Digest } from '../src/digest/index.js'
import { isStrataError } from '../src/errors/index.js'
import { loadImages, openImageDestination, openImageSource, saveImages, type LayerProgress } from '../src/transport/index.js'
import { dockerManifest, member, openTestStore, readTarFile, storeWithImage, writeTarFile, type FixtureEntry } from './helpers/archive-fixtures.js'
import { IMAGE_TAG, readDockerArchive, threeLayerArchive } from './helpers/docker-image.js'
import { requireDockerd } from './helpers/dockerd.js'
import { canRunLayerTests } from './helpers/layer-env.js'
import { tempDirFor } from './helpers/tmp.js'

const FULL_TAG = 'docker.io/library/strata-test-3layers:latest'

test('docker-archive round trip: load a docker save archive, save it back byte-identical', { timeout: 300_000 }, async (t) => {
  if (!canRunLayerTests(t) || !requireDockerd(t)) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const store = await openTestStore(t)
  const dir = tempDirFor(t, 'transport-da-')

  const events: LayerProgress[] = []
  const source = await openImageSource(archive, { tmpDir: dir })
  assert.equal(source.format, 'docker-archive')
  let result
  try {
    result = await loadImages(store, source, { onProgress: (e) => events.push(e) })
  } finally {
    await source.close()
  }
  assert.equal(result.images.length, 1)
  const [loaded] = result.images
  assert.equal(loaded!.id, original.imageId, 'the image ID is the one dockerd gave it')
  assert.deepEqual(loaded!.tagged, [FULL_TAG])
  assert.equal(loaded!.layersCreated, 3)
  assert.equal(await store.references.get(IMAGE_TAG), original.imageId, 'the tag points at it')
  const stored = await store.images.get(original.imageId)
  assert.ok(stored.raw.equals(original.configBytes), 'the config bytes are stored unchanged')
  assert.deepEqual(await store.layers.diffIdsOf(chainIds(original.diffIds).at(-1)!), original.diffIds, 'the layer chain has the diffIDs')
  for (const phase of ['waiting', 'copying', 'done'] as const) {
    assert.ok(events.some((e) => e.phase === phase && e.layer === 2), `progress reports "${phase}" for the top layer`)
  }
  const layersAfterLoad = await store.layers.list()

  // Loading again reads no layer (they exist) and changes nothing.
  const again = await openImageSource(archive)
  const events2: LayerProgress[] = []
  try {
    const r2 = await loadImages(store, again, { onProgress: (e) => events2.push(e) })
    assert.equal(r2.images[0]!.layersExisting, 3)
    assert.equal(r2.images[0]!.layersCreated, 0)
  } finally {
    await again.close()
  }
  assert.ok(!events2.some((e) => e.phase === 'copying'), 'no layer is read a second time')
  assert.equal(events2.filter((e) => e.phase === 'exists').length, 3)
  assert.deepEqual(await store.layers.list(), layersAfterLoad)

  // Save: same bytes as docker's, same layer names.
  const out = join(dir, 'saved.tar')
  await saveImages(store, [IMAGE_TAG], openImageDestination(out, 'docker-archive'))
  const saved = await readDockerArchive(out)
  assert.ok(saved.configBytes.equals(original.configBytes), 'config bytes equal')
  assert.equal(saved.imageId, original.imageId)
  assert.deepEqual(saved.diffIds, original.diffIds)
  assert.deepEqual(saved.repoTags, ['strata-test-3layers:latest'])
  assert.equal(saved.layers.length, 3)
  saved.layers.forEach((l, i) => assert.ok(l.equals(original.layers[i]!), `layer ${i + 1} tar bytes equal docker's`))
  const [docker] = dockerManifest(await readTarFile(archive))
  const [ours] = dockerManifest(await readTarFile(out))
  assert.deepEqual(ours!.Layers, docker!.Layers, 'layer paths (v1 IDs) are the ones docker save writes')
  assert.equal(ours!.Config, docker!.Config)
  const entries = await readTarFile(out)
  const v1 = ours!.Layers[2]!.split('/')[0]!
  assert.equal(member(entries, `${v1}/VERSION`).data!.toString(), '1.0')
  assert.ok(member(entries, `${v1}/json`).data!.equals(member(await readTarFile(archive), `${v1}/json`).data!), 'the top layer json is docker\'s')
  assert.deepEqual(JSON.parse(member(entries, 'repositories').data!.toString()), { 'strata-test-3layers': { latest: v1 } })
  assert.ok(member(entries, 'manifest.json').data!.toString().endsWith(']\n'), 'manifest.json ends with a newline, as Go\'s encoder writes it')
})

test('docker-archive: a gzip-compressed archive and a stream (stdin) load like the plain file', { timeout: 300_000 }, async (t) => {
  if (!canRunLayerTests(t) || !requireDockerd(t)) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const dir = tempDirFor(t, 'transport-da-gz-')
  const gz = join(dir, 'image.tar.gz')
  await writeFile(gz, gzipSync(await readFile(archive)))

  const store = await openTestStore(t)
  const fromGzip = await openImageSource(gz, { tmpDir: dir })
  try {
    const r = await loadImages(store, fromGzip)
    assert.equal(r.images[0]!.id, original.imageId)
  } finally {
    await fromGzip.close()
  }
  assert.deepEqual(readdirSync(dir), ['image.tar.gz'], 'the spooled copy is removed on close')

  const store2 = await openTestStore(t)
  const fromStream = await openImageSource(createReadStream(gz), { tmpDir: dir })
  try {
    const r = await loadImages(store2, fromStream)
    assert.equal(r.images[0]!.id, original.imageId)
    assert.deepEqual(r.images[0]!.tagged, [FULL_TAG])
  } finally {
    await fromStream.close()
  }
  assert.deepEqual(readdirSync(dir), ['image.tar.gz'])
})

/** A second image on the first two layers of the 3-layer one: a config of our own, same base. */
function childConfig(base: Record<string, unknown>, diffIds: Digest[]): Buffer {
  const config = structuredClone(base) as { rootfs: { diff_ids: string[] }; history?: unknown[]; created?: string }
  config.rootfs.diff_ids = diffIds
  config.history = (config.history ?? []).filter((h) => (h as { empty_layer?: boolean }).empty_layer !== true).slice(0, diffIds.length)
  config.created = '2024-01-02T03:04:05Z'
  return Buffer.from(JSON.stringify(config))
}

test('docker-archive: several images in one archive, the shared base layers written once', { timeout: 300_000 }, async (t) => {
  if (!canRunLayerTests(t) || !requireDockerd(t)) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const store = await openTestStore(t)
  const dir = tempDirFor(t, 'transport-da-multi-')
  const source = await openImageSource(archive)
  try {
    await loadImages(store, source)
  } finally {
    await source.close()
  }
  const config = JSON.parse(original.configBytes.toString()) as Record<string, unknown>
  const two = childConfig(config, original.diffIds.slice(0, 2))
  const { id: twoId } = await store.images.create(two)
  await store.references.addTag('strata-test-two:1', twoId)

  const out = join(dir, 'two.tar')
  await saveImages(store, [IMAGE_TAG, 'strata-test-two:1'], openImageDestination(out, 'docker-archive'))
  const entries = await readTarFile(out)
  const manifest = dockerManifest(entries)
  assert.equal(manifest.length, 2)
  assert.deepEqual(manifest.map((m) => m.RepoTags), [['strata-test-3layers:latest'], ['strata-test-two:1']])
  assert.equal(manifest[1]!.Layers[0], manifest[0]!.Layers[0], 'the base layer is one directory for both images')
  const layerFiles = entries.filter((e) => e.name.endsWith('/layer.tar'))
  const regular = layerFiles.filter((e) => e.type === 'file')
  // 3 layers of image 1; image 2's top has its own v1 dir, but its bytes are layer 2's: a symlink.
  assert.equal(regular.length, 3, 'each distinct layer is written once')
  const link = layerFiles.find((e) => e.type === 'symlink')
  assert.ok(link !== undefined, 'the second image\'s top layer is a link to the bytes already written')
  assert.equal(link.linkname, `../${manifest[0]!.Layers[1]}`)
  assert.equal(regular.reduce((n, e) => n + e.data!.length, 0), original.layers.reduce((n, l) => n + l.length, 0))

  // Both come back from it, into a fresh store.
  const store2 = await openTestStore(t)
  const back = await openImageSource(out)
  try {
    const r = await loadImages(store2, back)
    assert.deepEqual(r.images.map((i) => i.id), [original.imageId, twoId])
    assert.equal(r.images[1]!.layersExisting, 2, 'the second image finds its layers registered by the first')
  } finally {
    await back.close()
  }
  assert.equal(await store2.references.get('strata-test-two:1'), twoId)
})

test('docker-archive: an image saved by ID has no RepoTags and loads untagged', { timeout: 300_000 }, async (t) => {
  if (!canRunLayerTests(t) || !requireDockerd(t)) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const store = await openTestStore(t)
  const dir = tempDirFor(t, 'transport-da-id-')
  const source = await openImageSource(archive)
  try {
    await loadImages(store, source)
  } finally {
    await source.close()
  }
  const out = join(dir, 'byid.tar')
  await saveImages(store, [original.imageId.slice(7, 19)], openImageDestination(out, 'docker-archive'))
  const entries = await readTarFile(out)
  assert.equal(dockerManifest(entries)[0]!.RepoTags, null)
  assert.ok(!entries.some((e) => e.name === 'repositories'), 'no repositories file without tags')
  const store2 = await openTestStore(t)
  const back = await openImageSource(out)
  try {
    const r = await loadImages(store2, back)
    assert.deepEqual(r.images[0]!.tagged, [])
    assert.equal(r.images[0]!.id, original.imageId)
  } finally {
    await back.close()
  }
  assert.deepEqual(await store2.references.all(), [])
})

test('docker-archive: layer.tar symlinks inside the archive (docker save\'s dedup) are followed', { timeout: 300_000 }, async (t) => {
  if (!canRunLayerTests(t) || !requireDockerd(t)) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const entries = await readTarFile(archive)
  const [item] = dockerManifest(entries)
  // An image whose third layer is its first again: the archive links it to the first layer's file.
  const config = JSON.parse(original.configBytes.toString()) as { rootfs: { diff_ids: string[] }; history: Array<{ empty_layer?: boolean }> }
  config.rootfs.diff_ids = [original.diffIds[0]!, original.diffIds[1]!, original.diffIds[0]!]
  const configBytes = Buffer.from(JSON.stringify(config))
  const configName = `${sha256Of(configBytes).slice(7)}.json`
  const fixture: FixtureEntry[] = [
    { name: configName, data: configBytes },
    { name: 'a/layer.tar', data: original.layers[0]! },
    { name: 'b/layer.tar', data: original.layers[1]! },
    { name: 'c/layer.tar', type: 'symlink', linkname: '../a/layer.tar' },
    { name: 'manifest.json', data: Buffer.from(JSON.stringify([{ Config: configName, RepoTags: ['strata-test-linked:1'], Layers: ['a/layer.tar', 'b/layer.tar', 'c/layer.tar'] }])) },
  ]
  assert.ok(item !== undefined)
  const dir = tempDirFor(t, 'transport-da-link-')
  const path = join(dir, 'linked.tar')
  await writeTarFile(path, fixture)
  const store = await openTestStore(t)
  const source = await openImageSource(path)
  try {
    const r = await loadImages(store, source)
    assert.equal(r.images[0]!.id, sha256Of(configBytes))
    assert.equal(r.images[0]!.layersCreated, 3)
  } finally {
    await source.close()
  }
  // And strata writes the repeated layer as docker does: a link to the bytes it wrote.
  const out = join(dir, 'resaved.tar')
  await saveImages(store, ['strata-test-linked:1'], openImageDestination(out, 'docker-archive'))
  const saved = await readTarFile(out)
  assert.equal(saved.filter((e) => e.name.endsWith('/layer.tar') && e.type === 'file').length, 2)
  assert.equal(saved.filter((e) => e.name.endsWith('/layer.tar') && e.type === 'symlink').length, 1)
  const store2 = await openTestStore(t)
  const back = await openImageSource(out)
  try {
    assert.equal((await loadImages(store2, back)).images[0]!.id, sha256Of(configBytes))
  } finally {
    await back.close()
  }
})

for (const format of ['docker-archive', 'oci-archive', 'oci-layout'] as const) {
  test(`save (${format}): a layer damaged on disk fails the save, and nothing is left at the destination`, { timeout: 300_000 }, async (t) => {
    if (!canRunLayerTests(t) || !requireDockerd(t)) return
    const { store, original } = await storeWithImage(t)
    // Same size, other bytes: only the tar-split's CRC (and the diffID) can tell.
    const top = await store.layers.info(chainIds(original.diffIds).at(-1)!)
    const file = join(await store.driver.diffFilesDir(top.cacheId), 'data', 'two')
    assert.equal(await readFile(file, 'utf8'), 'two\n')
    await writeFile(file, 'TWO\n')

    const dir = tempDirFor(t, `transport-save-bad-${format}-`)
    const out = join(dir, format === 'oci-layout' ? 'layout' : 'out.tar')
    await assert.rejects(saveImages(store, [IMAGE_TAG], openImageDestination(out, format)), (err: unknown) => {
      assert.ok(isStrataError(err, 'DIGEST_MISMATCH'), String(err))
      assert.match(err.message, new RegExp(`Layer ${chainIds(original.diffIds).at(-1)} no longer matches its diffID`))
      // Named, whether the CRC-64 caught it as it read or the files were read again after the sha256 failed.
      assert.match(err.message, /data\/two" changed since the layer was stored \(CRC-64 mismatch\)/)
      return true
    })
    assert.deepEqual(readdirSync(dir), [], 'neither the destination nor a temp file is left')
    await assert.rejects(saveImages(store, ['no-such-image:1'], openImageDestination(out, format)), (err: unknown) => isStrataError(err, 'NOT_FOUND'))
    assert.deepEqual(readdirSync(dir), [])

    // The files as they were, the base layer's tar-split damaged instead: CORRUPT, and again nothing left.
    await writeFile(file, 'two\n')
    await writeFile(join(store.layers.paths.layerDir(chainIds(original.diffIds)[0]!), 'tar-split.json.gz'), 'not gzip')
    await assert.rejects(saveImages(store, [IMAGE_TAG], openImageDestination(out, format)), (err: unknown) => {
      assert.ok(isStrataError(err, 'CORRUPT'), String(err))
      assert.match(err.message, /tar-split/)
      return true
    })
    assert.deepEqual(readdirSync(dir), [], 'nothing is left after a damaged tar-split either')
  })
}

test('docker-archive: gzip\'d layer files named <hex>.tar, as skopeo and podman write them, load to the same image', { timeout: 300_000 }, async (t) => {
  if (!canRunLayerTests(t) || !requireDockerd(t)) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const configName = `${original.imageId.slice(7)}.json`
  const layers = original.layers.map((l) => ({ name: `${sha256Of(gzipSync(l)).slice(7)}.tar`, data: gzipSync(l) }))
  const dir = tempDirFor(t, 'transport-da-gzlayers-')
  const path = join(dir, 'podman.tar')
  await writeTarFile(path, [
    ...layers,
    { name: configName, data: original.configBytes },
    { name: 'manifest.json', data: Buffer.from(JSON.stringify([{ Config: configName, RepoTags: ['localhost/strata-test-podman:1'], Layers: layers.map((l) => l.name) }])) },
  ])
  const store = await openTestStore(t)
  const source = await openImageSource(path)
  try {
    const r = await loadImages(store, source)
    assert.equal(r.images[0]!.id, original.imageId)
    assert.deepEqual(r.images[0]!.tagged, ['localhost/strata-test-podman:1'])
  } finally {
    await source.close()
  }
  // The layers were stored uncompressed: they export byte-identical to docker's.
  const exp = await store.layers.export(store.layers.chainOf(original.diffIds))
  const chunks: Buffer[] = []
  for await (const c of exp.stream) chunks.push(c as Buffer)
  assert.ok(Buffer.concat(chunks).equals(original.layers[2]!))
})
