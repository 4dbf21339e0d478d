/**
 * The explorer's library on real images: layers made by GNU tar (hidden
 * files, whiteouts of hidden files, an opaque directory, hardlinks, a
 * removed directory) and an image built by dockerd 20.10, read from the
 * layer store's tar-split metadata. Figures are checked against the ones
 * worked out by hand in test/helpers/explore-fixtures.ts, and against GNU
 * tar's own listing of the same layer tars.
 */
import assert from 'node:assert/strict'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { Explorer, indexFromTarSplit } from '../src/explore/index.js'
import { LAYER_FILES } from '../src/layer/index.js'
import { openTestStore, storeWithImage } from './helpers/archive-fixtures.js'
import { EXPECTED, FIXTURE_LAYERS, FIXTURE_TAG, ODD_NAMES, gnuTarLayers, makeFixtureImage, makeOddImage } from './helpers/explore-fixtures.js'
import { makeImage } from './helpers/image-fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'

test('per-layer counts and wasted bytes: hidden files, whiteouts of hidden files, an opaque dir, hardlinks, a removed dir', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const store = await openTestStore(t)
  await makeFixtureImage(t, store)
  const explorer = new Explorer(store)
  const analysis = await explorer.analysis(FIXTURE_TAG)
  assert.equal(analysis.incomplete, false)
  assert.deepEqual(
    analysis.layers.map(({ added, modified, removed, wastedBytes }) => ({ added, modified, removed, wastedBytes })),
    EXPECTED.layers,
  )
})

test('dive efficiency: score, wasted bytes and largest inefficiencies as dive computes them', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const store = await openTestStore(t)
  await makeFixtureImage(t, store)
  const { efficiency } = await new Explorer(store).analysis(FIXTURE_TAG)
  assert.ok(Math.abs(efficiency.score - EXPECTED.efficiency.score) < 1e-12, `score ${efficiency.score}`)
  assert.equal(efficiency.wastedBytes, EXPECTED.efficiency.wastedBytes)
  assert.equal(efficiency.userSizeBytes, EXPECTED.efficiency.userSizeBytes)
  assert.deepEqual(efficiency.inefficiencies, EXPECTED.efficiency.top)
  assert.equal(efficiency.inefficiencyCount, 4)
})

test('directory listings mark paths relative to the layers below; removed paths keep what they held', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const store = await openTestStore(t)
  await makeFixtureImage(t, store)
  const explorer = new Explorer(store)
  const marks = async (layer: number, path: string): Promise<Record<string, string>> =>
    Object.fromEntries((await explorer.listDir(FIXTURE_TAG, layer, path)).entries.map((e) => [e.name, e.mark]))

  assert.deepEqual(await marks(1, '/'), { data: 'unchanged', etc: 'unchanged', hard: 'added', home: 'unchanged', opt: 'unchanged', '.env': 'added', '.profile': 'removed' })
  assert.deepEqual(await marks(1, '/opt/app'), { 'a.txt': 'removed', 'b.txt': 'removed', 'c.txt': 'removed', 'new.txt': 'added' })
  assert.deepEqual(await marks(1, '/data'), { 'big.bin': 'modified', 'keep.txt': 'removed' })
  assert.deepEqual(await marks(2, '/etc'), { '.hidden-config': 'removed', passwd: 'removed' })
  // Above the layer that removed them, the paths are gone from the view.
  assert.deepEqual(Object.keys(await marks(2, '/')).sort(), ['.env', 'data', 'etc', 'hard', 'home', 'opt'])
  await assert.rejects(explorer.listDir(FIXTURE_TAG, 2, '/.profile'), { code: 'NOT_FOUND' })

  const root1 = await explorer.listDir(FIXTURE_TAG, 1, '/')
  const opt = root1.entries.find((e) => e.name === 'opt')!
  assert.equal(opt.changeCount, 5, '/opt holds 5 changes: /opt/app (opaque), 3 removed, 1 added')
  const etc2 = (await explorer.listDir(FIXTURE_TAG, 2, '/')).entries.find((e) => e.name === 'etc')!
  assert.equal(etc2.mark, 'removed')
  assert.equal(etc2.size, 130, 'a removed directory shows what it held')
  const app = (await explorer.listDir(FIXTURE_TAG, 1, '/opt')).entries.find((e) => e.name === 'app')!
  assert.equal(app.opaque, true)
  assert.equal(app.mark, 'modified')
  assert.equal(app.size, 100, 'a directory counts only what is still visible')

  const hard = await explorer.listDir(FIXTURE_TAG, 1, '/hard')
  assert.deepEqual(
    hard.entries.map((e) => [e.name, e.kind, e.size, e.link]),
    [
      ['a-original', 'file', 1000, ''],
      ['b-link', 'hardlink', 0, '/hard/a-original'],
    ],
  )
})

test('filters: only changes, minimum size, and name search over the view at a layer', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const store = await openTestStore(t)
  await makeFixtureImage(t, store)
  const explorer = new Explorer(store)
  const names = async (layer: number, path: string, filter: { onlyChanges?: boolean; minSize?: number }): Promise<string[]> =>
    (await explorer.listDir(FIXTURE_TAG, layer, path, filter)).entries.map((e) => e.name)
  assert.deepEqual(await names(1, '/', { onlyChanges: true }), ['data', 'hard', 'home', 'opt', '.env', '.profile'])
  assert.deepEqual(await names(2, '/', { onlyChanges: true }), ['etc'])
  assert.deepEqual(await names(1, '/', { minSize: 1000 }), ['data', 'hard'])
  assert.deepEqual(await names(1, '/data', { minSize: 1000 }), ['big.bin'])

  const hidden = await explorer.search(FIXTURE_TAG, 1, '.', {})
  assert.deepEqual(
    hidden.entries.filter((e) => e.name.startsWith('.')).map((e) => `${e.path} ${e.mark}`).sort(),
    ['/.env added', '/.profile removed', '/etc/.hidden-config unchanged', '/home/user/.bashrc modified'],
  )
  const txt = await explorer.search(FIXTURE_TAG, 1, 'TXT', { onlyChanges: true }, 2)
  assert.equal(txt.total, 5, 'a.txt b.txt c.txt keep.txt new.txt changed at layer 1')
  assert.equal(txt.entries.length, 2, 'the limit applies')

  const history = await explorer.pathHistory(FIXTURE_TAG, '/opt/app')
  assert.deepEqual(history.versions.map((v) => `${v.layer}:${v.kind}`), ['0:dir', '1:dir', '1:opaque'])
})

test('the index from tar-split matches GNU tar\'s listing of each layer of an image built by dockerd 20.10', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'dockerd')) return
  const { store, original } = await storeWithImage(t)
  const explorer = new Explorer(store)
  const scratch = tempDirFor(t, 'explore-docker-')
  const image = await explorer.image(original.imageId)
  for (const layer of image.layers) {
    const index = await explorer.layerIndex(layer.chainId)
    const tarPath = join(scratch, `layer${layer.index}.tar`)
    await writeFile(tarPath, original.layers[layer.index]!)
    const listing = (await run('tar', ['--numeric-owner', '-tvf', tarPath])).stdout.toString().trimEnd().split('\n')
    assert.equal(index.entries.length + index.whiteouts.length + index.opaque.length, listing.length, `layer ${layer.index}: one index entry per tar member`)
    const tarSizes = listing.map((line) => Number(line.split(/\s+/)[2]))
    assert.equal(index.contentSize, tarSizes.reduce((a, b) => a + b, 0), `layer ${layer.index}: content sizes add up as tar lists them`)
  }
  // The Dockerfile's last step: rm /etc/passwd, a new /data/two, /home removed and made again (opaque).
  const analysis = await explorer.analysis(original.imageId)
  const top = analysis.layers[2]!
  assert.deepEqual({ added: top.added, removed: top.removed }, { added: 2, removed: 1 })
  const home = (await explorer.listDir(original.imageId, 2, '/')).entries.find((e) => e.name === 'home')!
  assert.equal(home.opaque, true)
  assert.equal(home.mark, 'modified')
  const etc = Object.fromEntries((await explorer.listDir(original.imageId, 2, '/etc', { onlyChanges: true })).entries.map((e) => [e.name, e.mark]))
  assert.deepEqual(etc, { passwd: 'removed' })
})

test('a layer whose tar-split is corrupt or whose files are missing is reported alone; the other layers still work', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const store = await openTestStore(t)
  const made = await makeImage(store, {
    layers: await gnuTarLayers(t, [{ 'base.txt': 10 }, { 'middle.txt': 20 }, { 'top.txt': 30 }, { 'last.txt': 40 }]),
    created: '2024-01-03T00:00:00Z',
    tags: ['broken:latest'],
  })
  // Layer 1: garbage where the gzip'd tar-split was. Layer 2: the driver's files are gone.
  await writeFile(join(store.layers.paths.layerDir(made.chain[1]!), LAYER_FILES.tarSplit), 'not gzip at all')
  const info2 = await store.layers.info(made.chain[2]!)
  await rm(join(store.root, store.driver.name, info2.cacheId), { recursive: true, force: true })

  const explorer = new Explorer(store)
  const analysis = await explorer.analysis('broken:latest')
  assert.equal(analysis.incomplete, true)
  assert.equal(analysis.layers[0]!.problem, undefined)
  assert.equal(analysis.layers[1]!.problem?.code, 'CORRUPT')
  assert.match(analysis.layers[1]!.problem!.message, /tar-split metadata of layer sha256:[0-9a-f]{64}/)
  assert.equal(analysis.layers[2]!.problem?.code, 'NOT_FOUND')
  assert.match(analysis.layers[2]!.problem!.message, /files of layer .* are missing/)
  assert.equal(analysis.layers[3]!.problem, undefined)
  assert.deepEqual([analysis.layers[0]!.added, analysis.layers[3]!.added], [1, 1])
  const top = await explorer.listDir('broken:latest', 3, '/')
  assert.equal(top.incomplete, true)
  assert.deepEqual(top.entries.map((e) => e.name), ['base.txt', 'last.txt'])
  // The store is as it was: nothing was repaired or removed by reading it.
  assert.equal((await store.layers.list()).length, 4)
})

test('odd names and a 4,000-character path come back exactly as the tar held them', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const store = await openTestStore(t)
  await makeOddImage(t, store)
  const explorer = new Explorer(store)
  const odd = await explorer.listDir('explore-odd:latest', 0, '/odd')
  const names = odd.entries.map((e) => e.name)
  for (const key of ['newline', 'escape', 'markup', 'bidi'] as const) assert.ok(names.includes(ODD_NAMES[key].slice(4)), `${key} name listed as is`)
  const found = await explorer.search('explore-odd:latest', 0, 'z'.repeat(100))
  assert.equal(found.total, 1)
  assert.equal(found.entries[0]!.path, `/${ODD_NAMES.long}`)
  assert.ok(found.entries[0]!.path.length > 3900)
})

test('indexing a tar-split file reads headers only: a tar-split naming absent content still indexes', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const store = await openTestStore(t)
  const made = await makeFixtureImage(t, store)
  const index = await indexFromTarSplit(join(store.layers.paths.layerDir(made.chain[1]!), LAYER_FILES.tarSplit))
  assert.deepEqual(index.whiteouts.sort(), ['/.profile', '/data/keep.txt'])
  assert.deepEqual(index.opaque, ['/opt/app'])
  assert.ok(index.entries.every((e) => e.kind !== 'file' || e.size === 0 || e.crc.length === 16), 'every non-empty file has its CRC-64')
})

test('compare: two images built on the same two GNU tar layers share them; their files differ only above', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const store = await openTestStore(t)
  const a = await makeFixtureImage(t, store)
  // The same first two layer directories tarred again: GNU tar gives the same bytes, so the same chainIDs.
  const layers = await gnuTarLayers(t, [FIXTURE_LAYERS[0]!, FIXTURE_LAYERS[1]!, { 'extra.txt': 5, 'data/big.bin': 10 }])
  const b = await makeImage(store, { layers, created: '2024-01-05T00:00:00Z', tags: ['explore-other:latest'] })
  assert.deepEqual(b.chain.slice(0, 2), a.chain.slice(0, 2), 'the first two layers are the same layers')
  const cmp = await new Explorer(store).compare(FIXTURE_TAG, 'explore-other:latest')
  assert.deepEqual(cmp.sharedLayers.map((l) => l.chainId), a.chain.slice(0, 2))
  assert.deepEqual([cmp.onlyA, cmp.onlyB], [1, 1])
  // A removed /etc (3 paths) that B still has; B added /extra.txt and rewrote /data/big.bin.
  assert.deepEqual(cmp.counts, { onlyA: 0, onlyB: 4, changed: 1 })
  assert.deepEqual(
    cmp.differences.map((d) => `${d.change} ${d.path} ${d.sizeA} ${d.sizeB}`),
    ['changed /data/big.bin 65536 10', 'only-b /etc/passwd 0 100', 'only-b /etc/.hidden-config 0 30', 'only-b /extra.txt 0 5', 'only-b /etc 0 0'],
  )
})
