/**
 * The layer store against dockerd 20.10 (overlay2), both ways.
 *
 * dockerd loads the 3-layer image of helpers/docker-image.ts (a busybox
 * rootfs and two RUN layers: a whiteout, an opaque dir) and creates a
 * container; then
 * it is stopped and strata opens ITS data root: recovery must find nothing
 * to undo, every layer must export byte-identical to what `docker save`
 * wrote, check() must find no problem, the container's mount record must
 * read, and an init layer strata makes must hold exactly what dockerd's
 * does. Then strata registers the saved layer tars in a fresh root: its
 * layerdb files (diff, size, parent, the tar-split lines) must equal
 * dockerd's byte for byte.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { mkdir, readFile, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { gunzipSync } from 'node:zlib'
import { test, type TestContext } from 'node:test'
import { chainIds, digestHex, sha256Of, type Digest } from '../src/digest/index.js'
import { openDriver, type GraphDriver } from '../src/graphdriver/index.js'
import { LayerStore, type LayerHandle } from '../src/layer/index.js'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { IMAGE_TAG, readDockerArchive, threeLayerArchive } from './helpers/docker-image.js'
import { mountsAtOrUnder, requireDockerd, startDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { snapshotTree } from './helpers/tree.js'
import { collect } from './helpers/layer-env.js'


test('strata reads dockerd’s layerdb, and writes the same one', { timeout: 300_000 }, async (t: TestContext) => {
  if (!requireRoot(t) || !requireDockerd(t) || !requireTool(t, 'tar', 'busybox')) return
  const scratch = mkdtempSync(join(tmpdir(), 'strata-test-layer-dockerd-'))
  const drivers: GraphDriver[] = []
  t.after(async () => {
    try {
      for (const d of drivers) await d.cleanup()
    } finally {
      const left = mountsAtOrUnder([scratch])
      for (const mp of left) umount2(mp, MNT_DETACH)
      if (mountsAtOrUnder([scratch]).length === 0) rmSync(scratch, { recursive: true, force: true })
      assert.deepEqual(left, [], `mounts left under ${scratch}`)
    }
  })

  // --- dockerd makes an image and a container ------------------------------
  const saved = await threeLayerArchive(t)
  const dockerRoot = join(scratch, 'docker')
  const dockerd = await startDockerd(t, { storageDriver: 'overlay2', dataRoot: dockerRoot })
  await dockerd.docker(['load', '-i', saved])
  const containerId = (await dockerd.docker(['create', '--network', 'none', IMAGE_TAG, 'true'])).stdout.toString().trim()
  await dockerd.stop()
  const image = await readDockerArchive(saved)
  assert.equal(image.layers.length, 3)
  const chains = chainIds(image.diffIds)
  const top = chains[2]!

  // --- strata opens dockerd's data root ------------------------------------
  const driver = await openDriver(dockerRoot, 'overlay2')
  drivers.push(driver)
  const store = await LayerStore.open({ root: dockerRoot, driver })
  const r = store.lastRecovery!
  assert.deepEqual(
    [r.transactions, r.removedLayers, r.removedMounts, r.unmounted, r.driverLayers, r.failures],
    [[], [], [], [], [], []],
    'recovery finds nothing to undo in a clean dockerd root',
  )
  const layers = await store.list()
  for (const c of chains) assert.ok(layers.some((l) => l.chainId === c), `dockerd's layer ${c} is listed`)
  for (let i = 0; i < 3; i++) {
    const exp = await store.export(chains[i]!)
    assert.ok((await collect(exp.stream)).equals(image.layers[i]!), `layer ${i} exports as docker save wrote it`)
    assert.deepEqual(await exp.verified, { digest: image.diffIds[i], matches: true, fromTarSplit: true })
  }
  assert.deepEqual(await store.check(), [])
  assert.deepEqual(await store.diffIdsOf(top), image.diffIds)

  const theirs = await store.getMount(containerId)
  assert.equal(theirs.initId, `${theirs.mountId}-init`)
  assert.equal(theirs.parent, top)
  assert.equal(theirs.mountCount, 0)

  // Our init layer on the same image is dockerd's, file for file.
  const ours = await store.createMount('strata-made', top)
  // overlayfs writes a random fs uuid and lower file handles while a layer is mounted: their presence counts, not their values.
  const snap = async (id: string) => {
    const tree = await snapshotTree(await driver.diffFilesDir(id), { mtimes: false })
    for (const e of tree.values()) {
      for (const x of ['trusted.overlay.uuid', 'trusted.overlay.origin']) if (x in e.xattrs) e.xattrs[x] = '<varies>'
    }
    return tree
  }
  assert.deepEqual(await snap(ours.initId!), await snap(theirs.initId!))
  assert.deepEqual(
    (await driver.changes(ours.initId!, (await store.info(top)).cacheId)).map((c) => `${c.kind} ${c.path}`),
    (await driver.changes(theirs.initId!, (await store.info(top)).cacheId)).map((c) => `${c.kind} ${c.path}`),
  )
  await store.removeMount('strata-made')
  assert.ok(await store.has(top), 'dockerd’s container still holds the image layers')

  // --- strata registers the saved layers in its own root -------------------
  const strataRoot = join(scratch, 'strata')
  await mkdir(strataRoot)
  const ownDriver = await openDriver(strataRoot, 'overlay2')
  drivers.push(ownDriver)
  const own = await LayerStore.open({ root: strataRoot, driver: ownDriver, imageReferences: async () => new Set([top]) })
  // As docker load does: a layer's handle is released once its child refers to it.
  let previous: LayerHandle | undefined
  for (let i = 0; i < 3; i++) {
    const res = await own.register(Readable.from([image.layers[i]!]), previous?.chainId ?? null, { expectedDiffId: image.diffIds[i]! })
    assert.equal(res.layer.chainId, chains[i])
    await previous?.release()
    previous = res.layer
  }
  await previous?.release()
  assert.deepEqual((await own.list()).map((l) => l.chainId).sort(), [...chains].sort())
  const tarSplits: Array<{ chain: Digest; ours: string[]; theirs: string[] }> = []
  for (const c of chains) {
    const theirDir = join(dockerRoot, 'image', 'overlay2', 'layerdb', 'sha256', digestHex(c))
    const ourDir = own.paths.layerDir(c)
    const files = (await readdir(ourDir)).sort()
    for (const f of ['diff', 'size', 'parent']) {
      if (!files.includes(f)) continue
      assert.equal(await readFile(join(ourDir, f), 'utf8'), await readFile(join(theirDir, f), 'utf8'), `${c} ${f}`)
    }
    assert.deepEqual(files.filter((f) => f !== 'cache-id'), (await readdir(theirDir)).filter((f) => f !== 'cache-id').sort(), `${c}: the same files`)
    const ourLines = tarSplitLines(join(ourDir, 'tar-split.json.gz'))
    const theirLines = tarSplitLines(join(theirDir, 'tar-split.json.gz'))
    // dockerd 20.10 vendors tar-split v0.11.x, which ends every file with one more segment: the bytes after
    // the archive, read whole and written even when empty. strata writes it too.
    const last = theirLines[theirLines.length - 1]
    assert.match(last ?? '', /^\{"type":2,"payload":"[^"]*","position":\d+\}$/)
    assert.deepEqual(firstDifference(ourLines, theirLines), undefined, `${c}: the same tar-split lines`)
    tarSplits.push({ chain: c, ours: ourLines, theirs: theirLines })
  }
  assert.equal(sha256Of(image.layers[0]!), image.diffIds[0])

  await t.test('tar-split.json.gz holds exactly dockerd’s lines, the final remainder segment included', () => {
    for (const { chain, ours, theirs } of tarSplits) assert.deepEqual(firstDifference(ours, theirs), undefined, `${chain}`)
  })
})

/** The lines of a gzip'd tar-split file. */
function tarSplitLines(path: string): string[] {
  return gunzipSync(readFileSync(path)).toString().split('\n').filter((l) => l !== '')
}

/** Where two line lists first differ (index and both lines, cut short), or undefined when they are equal. */
function firstDifference(a: string[], b: string[]): { line: number; a: string | undefined; b: string | undefined } | undefined {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i]) return { line: i + 1, a: a[i]?.slice(0, 200), b: b[i]?.slice(0, 200) }
  }
  return undefined
}
