/**
 * The image verbs of src/store on real stores (vfs, and overlay2 for the
 * driver's directories), with small real images sharing a base layer:
 * listing (tags, digests, dangling and intermediate images, filters, sizes),
 * inspect's shape and GraphDriver dirs, history rows, tag, rmi's rules
 * (untag vs delete, conflicts, child images, containers, parents pruned,
 * layers deleted from disk only when no image needs them), image prune,
 * system df (shared layers counted once) and info's counts.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { digestHex } from '../src/digest/index.js'
import { isStrataError } from '../src/errors/index.js'
import type { ChainID } from '../src/layer/index.js'
import { createContainer, removeContainer } from '../src/container/index.js'
import {
  NONE_DIGEST,
  NONE_TAG,
  Store,
  diskUsage,
  imageHistory,
  inspectImage,
  listImages,
  pruneImages,
  removeImage,
  storeCounts,
  tagImage,
  type ContainersUsing,
} from '../src/store/index.js'
import { bytes, layerTar, makeImage, type MadeImage } from './helpers/image-fixtures.js'
import { requireRoot } from './helpers/peers.js'
import { openTestStore } from './helpers/archive-fixtures.js'
import { RFC3339_NANO_RE } from '../src/fs/index.js'

/** A store on a fresh root (vfs unless told), closed and removed when the test ends. */
function openStore(t: TestContext, driver: 'vfs' | 'overlay2' = 'vfs'): Promise<Store> {
  return openTestStore(t, driver)
}

const DIGEST = `sha256:${'d'.repeat(64)}`
const L1 = layerTar({ base: bytes(1000) })
const SIZES = { L1: 1000, L2: 200, L3: 30, L4: 4, L5: 5, L6: 60, L7: 7 }

interface World {
  /** base:1 */
  A: MadeImage
  /** app:1 app:2, parent A, history with an empty CMD step */
  B: MadeImage
  /** other/app:latest + other/app@DIGEST */
  C: MadeImage
  /** dangling */
  D: MadeImage
  /** intermediate: untagged, parent of F */
  I: MadeImage
  /** built:1, parent I */
  F: MadeImage
  /** digest reference only: digested@DIGEST */
  G: MadeImage
}

/**
 * Seven images on one 1000-byte base layer, created a day apart (A oldest,
 * G newest); every other layer belongs to one image (and F's parent I).
 */
async function world(store: Store): Promise<World> {
  const day = (n: number): string => `2024-01-0${n}T10:00:00.123400Z`
  const A = await makeImage(store, { layers: [L1], created: day(1), tags: ['base:1'], comment: 'the base' })
  const B = await makeImage(store, {
    layers: [L1, layerTar({ b: bytes(SIZES.L2) })],
    created: day(2),
    parent: A.id,
    tags: ['app:1', 'app:2'],
    history: [
      { created: day(1), created_by: '/bin/sh -c #(nop) ADD file:base in /' },
      { created: day(2), created_by: '/bin/sh -c #(nop)  CMD ["sh"]', empty_layer: true },
      { created: day(2), created_by: '/bin/sh -c echo b > /b', comment: 'second' },
    ],
  })
  const C = await makeImage(store, { layers: [L1, layerTar({ c: bytes(SIZES.L3) })], created: day(3), tags: ['other/app:latest'] })
  await store.references.addDigest(`other/app@${DIGEST}`, C.id)
  const D = await makeImage(store, { layers: [L1, layerTar({ d: bytes(SIZES.L4) })], created: day(4) })
  const L5 = layerTar({ e: bytes(SIZES.L5) })
  const I = await makeImage(store, { layers: [L1, L5], created: day(5) })
  const F = await makeImage(store, { layers: [L1, L5, layerTar({ f: bytes(SIZES.L6) })], created: day(6), parent: I.id, tags: ['built:1'] })
  const G = await makeImage(store, { layers: [L1, layerTar({ g: bytes(SIZES.L7) })], created: day(7) })
  await store.references.addDigest(`digested@${DIGEST}`, G.id)
  return { A, B, C, D, I, F, G }
}

function top(img: MadeImage): ChainID {
  return img.chain.at(-1)!
}

/** Whether a layer is on disk: its layerdb directory and its vfs directory. */
async function layerOnDisk(store: Store, chain: ChainID, cacheId: string): Promise<boolean> {
  const meta = existsSync(join(store.layers.paths.sha256, digestHex(chain)))
  const data = existsSync(join(store.root, 'vfs', 'dir', cacheId))
  assert.equal(meta, data, `layerdb entry and driver data of ${chain} go together`)
  return meta
}

test('images: tags, digests, dangling and intermediate images, filters, sizes, newest first', async (t) => {
  if (!requireRoot(t)) return
  const store = await openStore(t)
  const w = await world(store)

  const list = await listImages(store)
  assert.deepEqual(list.map((s) => s.Id), [w.G.id, w.F.id, w.D.id, w.C.id, w.B.id, w.A.id], 'newest first; the intermediate image I is hidden')
  const by = new Map(list.map((s) => [s.Id, s]))
  assert.deepEqual(by.get(w.B.id)!.RepoTags, ['app:1', 'app:2'])
  assert.deepEqual(by.get(w.B.id)!.RepoDigests, [])
  assert.equal(by.get(w.B.id)!.ParentId, w.A.id)
  assert.deepEqual(by.get(w.C.id)!.RepoTags, ['other/app:latest'])
  assert.deepEqual(by.get(w.C.id)!.RepoDigests, [`other/app@${DIGEST}`])
  assert.deepEqual(by.get(w.G.id)!.RepoTags, [], 'a digest alone is not a tag')
  assert.deepEqual(by.get(w.G.id)!.RepoDigests, [`digested@${DIGEST}`])
  assert.deepEqual(by.get(w.D.id)!.RepoTags, [NONE_TAG], 'dangling: <none>:<none>')
  assert.deepEqual(by.get(w.D.id)!.RepoDigests, [NONE_DIGEST])
  // Size: every layer of the chain added up.
  assert.equal(by.get(w.A.id)!.Size, SIZES.L1)
  assert.equal(by.get(w.B.id)!.Size, SIZES.L1 + SIZES.L2)
  assert.equal(by.get(w.F.id)!.Size, SIZES.L1 + SIZES.L5 + SIZES.L6)
  assert.equal(by.get(w.F.id)!.VirtualSize, by.get(w.F.id)!.Size)
  assert.equal(by.get(w.A.id)!.Created, Date.UTC(2024, 0, 1, 10) / 1000)
  assert.equal(by.get(w.A.id)!.SharedSize, -1, 'only df computes SharedSize')
  assert.equal(by.get(w.A.id)!.Containers, -1)

  const all = await listImages(store, { all: true })
  assert.deepEqual(all.map((s) => s.Id), [w.G.id, w.F.id, w.I.id, w.D.id, w.C.id, w.B.id, w.A.id], '-a shows the intermediate image')
  assert.deepEqual(all.find((s) => s.Id === w.I.id)!.RepoTags, [NONE_TAG])

  const app = await listImages(store, { reference: ['app'] })
  assert.deepEqual(app.map((s) => [s.Id, s.RepoTags]), [[w.B.id, ['app:1', 'app:2']]], 'a name matches all its tags')
  assert.deepEqual((await listImages(store, { reference: ['app:2'] })).map((s) => s.RepoTags), [['app:2']], 'name:tag keeps that tag only')
  assert.deepEqual((await listImages(store, { reference: ['*/app'] })).map((s) => [s.RepoTags, s.RepoDigests]), [[['other/app:latest'], [`other/app@${DIGEST}`]]])
  assert.deepEqual((await listImages(store, { reference: ['b*'] })).map((s) => s.Id), [w.F.id, w.A.id], '* does not cross a /')
  assert.deepEqual(await listImages(store, { reference: ['nothing'] }), [])
  await assert.rejects(listImages(store, { reference: ['app[' ] }), (e) => isStrataError(e, 'INVALID_ARGUMENT'))
})

test('inspect: docker\'s fields in docker\'s order, overlay2 dirs that exist, LastTagTime after a tag', async (t) => {
  if (!requireRoot(t)) return
  const store = await openStore(t, 'overlay2')
  const w = await world(store)
  const info = await inspectImage(store, 'app:1')
  assert.deepEqual(Object.keys(info), [
    'Id', 'RepoTags', 'RepoDigests', 'Parent', 'Comment', 'Created', 'Container', 'ContainerConfig', 'DockerVersion', 'Author',
    'Config', 'Architecture', 'Os', 'Size', 'VirtualSize', 'GraphDriver', 'RootFS', 'Metadata',
  ])
  assert.equal(info.Id, w.B.id)
  assert.deepEqual(info.RepoTags, ['app:1', 'app:2'])
  assert.deepEqual(info.RepoDigests, [])
  assert.equal(info.Parent, w.A.id)
  assert.equal(info.Comment, 'second', 'no comment in the config: the last history step\'s')
  assert.equal(info.Created, '2024-01-02T10:00:00.1234Z', 'RFC3339Nano as Go re-marshals it: trailing zeros dropped')
  assert.equal(info.Size, SIZES.L1 + SIZES.L2)
  assert.equal(info.VirtualSize, info.Size)
  assert.deepEqual(info.RootFS, { Type: 'layers', Layers: w.B.diffIds })
  assert.equal(info.Os, 'linux')
  assert.equal(info.Architecture, 'amd64')
  // Config through Go's container.Config: missing fields filled with zero values, in its order.
  assert.deepEqual(info.Config, {
    Hostname: '', Domainname: '', User: '', AttachStdin: false, AttachStdout: false, AttachStderr: false, Tty: false, OpenStdin: false,
    StdinOnce: false, Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'], Image: '', Volumes: null,
    WorkingDir: '', Entrypoint: null, OnBuild: null, Labels: null,
  })
  assert.deepEqual(Object.keys(info.ContainerConfig), Object.keys(info.Config!), 'an absent container_config is a zero container.Config')
  assert.equal(info.ContainerConfig.Env, null)

  // GraphDriver: the top layer's overlay2 directories, the lower one being the base layer's diff dir.
  assert.equal(info.GraphDriver.Name, 'overlay2')
  const data = info.GraphDriver.Data!
  assert.deepEqual(Object.keys(data), ['LowerDir', 'MergedDir', 'UpperDir', 'WorkDir'])
  const topCache = (await store.layers.info(top(w.B))).cacheId
  const baseCache = (await store.layers.info(w.A.chain[0]!)).cacheId
  assert.equal(data.UpperDir, join(store.root, 'overlay2', topCache, 'diff'))
  assert.equal(data.LowerDir, join(store.root, 'overlay2', baseCache, 'diff'))
  for (const dir of [data.UpperDir!, data.WorkDir!, ...data.LowerDir!.split(':')]) assert.ok(existsSync(dir), `${dir} exists`)
  assert.ok(existsSync(join(data.UpperDir!, 'b')), 'the top layer\'s file is in UpperDir')
  const base = await inspectImage(store, w.A.id.slice(7, 19))
  assert.equal(base.GraphDriver.Data!.LowerDir, undefined, 'a base layer has no LowerDir')
  assert.equal(base.Comment, 'the base')

  assert.equal(info.Metadata.LastTagTime, '0001-01-01T00:00:00Z', 'never tagged through tag: Go\'s zero time')
  await tagImage(store, 'app:1', 'app:3')
  assert.match((await inspectImage(store, w.B.id)).Metadata.LastTagTime, RFC3339_NANO_RE)
  await assert.rejects(inspectImage(store, 'nosuch'), (e) => isStrataError(e, 'NOT_FOUND') && /No such image: nosuch/.test(e.message))
})

test('inspect on vfs: GraphDriver.Data is null, as docker shows it', async (t) => {
  if (!requireRoot(t)) return
  const store = await openStore(t)
  await world(store)
  assert.deepEqual((await inspectImage(store, 'app:1')).GraphDriver, { Data: null, Name: 'vfs' })
})

test('history: newest step first, layer sizes on steps that made a layer, IDs up the parent chain', async (t) => {
  if (!requireRoot(t)) return
  const store = await openStore(t)
  const w = await world(store)
  const rows = await imageHistory(store, 'app:2')
  assert.deepEqual(rows, [
    { Comment: 'second', Created: Date.UTC(2024, 0, 2, 10) / 1000, CreatedBy: '/bin/sh -c echo b > /b', Id: w.B.id, Size: SIZES.L2, Tags: ['app:1', 'app:2'] },
    { Comment: '', Created: Date.UTC(2024, 0, 2, 10) / 1000, CreatedBy: '/bin/sh -c #(nop)  CMD ["sh"]', Id: w.A.id, Size: 0, Tags: ['base:1'] },
    { Comment: '', Created: Date.UTC(2024, 0, 1, 10) / 1000, CreatedBy: '/bin/sh -c #(nop) ADD file:base in /', Id: '<missing>', Size: SIZES.L1, Tags: null },
  ])
  const d = await imageHistory(store, w.D.id)
  assert.deepEqual(d.map((r) => [r.Id, r.Size, r.Tags]), [[w.D.id, SIZES.L4, null], ['<missing>', SIZES.L1, null]], 'no parent: <missing> below the top')
})

test('tag: moves a tag, adds :latest, refuses digests and unknown sources', async (t) => {
  if (!requireRoot(t)) return
  const store = await openStore(t)
  const w = await world(store)
  assert.deepEqual(await tagImage(store, 'base:1', 'renamed'), { id: w.A.id, tag: 'renamed:latest' })
  assert.equal(await store.references.get('renamed:latest'), w.A.id)
  assert.deepEqual(await tagImage(store, w.D.id.slice(7, 15), 'renamed'), { id: w.D.id, tag: 'renamed:latest', previous: w.A.id })
  await assert.rejects(tagImage(store, 'base:1', `x@${DIGEST}`), (e) => isStrataError(e, 'INVALID_ARGUMENT'))
  await assert.rejects(tagImage(store, 'nosuch', 'y'), (e) => isStrataError(e, 'NOT_FOUND'))
  await assert.rejects(tagImage(store, 'base:1', 'UPPER'), (e) => isStrataError(e, 'INVALID_ARGUMENT'))
  assert.equal(await store.references.get('y'), undefined)
})

test('rmi: untag vs delete, digests going with the last tag, layers deleted only when no image needs them', async (t) => {
  if (!requireRoot(t)) return
  const store = await openStore(t)
  const w = await world(store)
  const l2 = await store.layers.info(top(w.B))
  const l1 = await store.layers.info(w.A.chain[0]!)

  assert.deepEqual(await removeImage(store, 'app:2'), [{ Untagged: 'app:2' }], 'another tag remains: untag only')
  assert.ok(await store.images.exists(w.B.id))
  // By short ID, one tag left: untag and delete; the parent A is tagged, so it stays.
  assert.deepEqual(await removeImage(store, w.B.id.slice(7, 19)), [{ Untagged: 'app:1' }, { Deleted: w.B.id }, { Deleted: top(w.B) }])
  assert.equal(await store.images.exists(w.B.id), false)
  assert.equal(await layerOnDisk(store, l2.chainId, l2.cacheId), false, 'B\'s own layer is gone from disk')
  assert.equal(await layerOnDisk(store, l1.chainId, l1.cacheId), true, 'the shared base layer stays')
  assert.ok(await store.images.exists(w.A.id))

  // The last tag of other/app goes: its digest reference with it, then the image.
  assert.deepEqual(await removeImage(store, 'other/app'), [
    { Untagged: 'other/app:latest' },
    { Untagged: `other/app@${DIGEST}` },
    { Deleted: w.C.id },
    { Deleted: top(w.C) },
  ])
  // A digest reference alone, given by ID.
  assert.deepEqual(await removeImage(store, w.G.id), [{ Untagged: `digested@${DIGEST}` }, { Deleted: w.G.id }, { Deleted: top(w.G) }])
  await assert.rejects(removeImage(store, 'app:1'), (e) => isStrataError(e, 'NOT_FOUND'))
})

test('rmi: several repositories need force; child images are never deleted; untagged parents are pruned', async (t) => {
  if (!requireRoot(t)) return
  const store = await openStore(t)
  const w = await world(store)
  const conflict = (re: RegExp) => (e: unknown) => isStrataError(e, 'IN_USE') && re.test((e as Error).message)

  await store.references.addTag('second:1', w.C.id)
  await assert.rejects(
    removeImage(store, w.C.id),
    conflict(new RegExp(`^conflict: unable to delete ${w.C.id.slice(7, 19)} \\(must be forced\\) - image is referenced in multiple repositories$`)),
  )
  assert.equal((await store.references.referencesTo(w.C.id)).length, 3, 'nothing was removed')
  // In docker's order of references: by full name (docker.io/library/second before docker.io/other/app).
  assert.deepEqual(await removeImage(store, w.C.id, { force: true }), [
    { Untagged: 'second:1' },
    { Untagged: 'other/app:latest' },
    { Untagged: `other/app@${DIGEST}` },
    { Deleted: w.C.id },
    { Deleted: top(w.C) },
  ])

  const hasChild = conflict(/\(cannot be forced\) - image has dependent child images$/)
  await assert.rejects(removeImage(store, w.A.id), hasChild)
  await assert.rejects(removeImage(store, w.A.id, { force: true }), hasChild)
  await assert.rejects(removeImage(store, w.I.id.slice(7, 20)), hasChild)
  // By tag: the tag goes, the image stays quietly (it has a child).
  assert.deepEqual(await removeImage(store, 'base:1'), [{ Untagged: 'base:1' }])
  assert.ok(await store.images.exists(w.A.id))

  // F goes, and its untagged parent I after it (with the layer only I had); the base layer stays for A, D, ...
  const l5 = await store.layers.info(w.I.chain[1]!)
  assert.deepEqual(await removeImage(store, 'built:1'), [{ Untagged: 'built:1' }, { Deleted: w.F.id }, { Deleted: top(w.F) }, { Deleted: w.I.id }, { Deleted: top(w.I) }])
  assert.equal(await layerOnDisk(store, l5.chainId, l5.cacheId), false)
  // --no-prune keeps the untagged parent: B goes, A (untagged above, childless now) stays.
  assert.deepEqual(await removeImage(store, 'app:1', {}), [{ Untagged: 'app:1' }])
  assert.deepEqual(await removeImage(store, 'app:2', { noPrune: true }), [{ Untagged: 'app:2' }, { Deleted: w.B.id }, { Deleted: top(w.B) }])
  assert.ok(await store.images.exists(w.A.id), '--no-prune kept the parent')
  assert.ok(await store.layers.has(w.A.chain[0]!))
})

test('rmi and containers: the containersUsing extension point, and the store’s container records by default', async (t) => {
  if (!requireRoot(t)) return
  const store = await openStore(t)
  const w = await world(store)
  const stopped: ContainersUsing = async (id) => (id === w.D.id || id === w.C.id ? [{ id: 'f'.repeat(64), running: false }] : [])
  const running: ContainersUsing = async (id) => (id === w.D.id ? [{ id: 'e'.repeat(64), running: true }] : [])
  await assert.rejects(
    removeImage(store, w.D.id, { containersUsing: stopped }),
    (e) => isStrataError(e, 'IN_USE') && /\(must be forced\) - image is being used by stopped container ffffffffffff$/.test((e as Error).message),
  )
  await assert.rejects(
    removeImage(store, 'other/app:latest', { containersUsing: stopped }),
    (e) => isStrataError(e, 'IN_USE') && /unable to remove repository reference "other\/app:latest" \(must force\) - container ffffffffffff is using/.test((e as Error).message),
  )
  await assert.rejects(
    removeImage(store, w.D.id, { containersUsing: running, force: true }),
    (e) => isStrataError(e, 'IN_USE') && /\(cannot be forced\) - image is being used by running container eeeeeeeeeeee$/.test((e as Error).message),
  )
  assert.deepEqual(await removeImage(store, w.D.id, { containersUsing: stopped, force: true }), [{ Deleted: w.D.id }, { Deleted: top(w.D) }], 'forced past a stopped container')

  // No hook: the store's container records count; a bare layerdb mount (no record) is no container.
  await store.layers.createMount('bare', top(w.F))
  assert.deepEqual(await storeCounts(store), { images: 6, containers: 0, containersRunning: 0 })
  assert.deepEqual((await diskUsage(store)).Containers, [])
  const c = await createContainer(store, 'built:1', { cmd: ['true'] })
  await assert.rejects(removeImage(store, w.F.id), (e) => isStrataError(e, 'IN_USE') && new RegExp(`stopped container ${c.id.slice(0, 12)}$`).test((e as Error).message))
  const df = await diskUsage(store)
  assert.equal(df.Images.find((s) => s.Id === w.F.id)!.Containers, 1)
  assert.deepEqual(df.Containers.map((x) => [x.Id, x.ImageID, x.Image, x.State]), [[c.id, w.F.id, 'built:1', 'created']])
  assert.deepEqual(await storeCounts(store), { images: 6, containers: 1, containersRunning: 0 })
  const pruned = await pruneImages(store, { all: true })
  assert.ok(await store.images.exists(w.F.id), 'prune -a keeps an image a container uses')
  assert.ok(!pruned.ImagesDeleted.some((d) => d.Deleted === w.F.id))
  await removeContainer(store, c.id)
  await store.layers.removeMount('bare')
  assert.deepEqual(await removeImage(store, 'built:1'), [{ Untagged: 'built:1' }, { Deleted: w.F.id }, { Deleted: top(w.F) }, { Deleted: w.I.id }, { Deleted: top(w.I) }, { Deleted: w.I.chain[0]! }], 'without the container F goes, and with the last image the base layer')
})

test('image prune: dangling images (digest-only ones too), then -a: every unused image; space reclaimed', async (t) => {
  if (!requireRoot(t)) return
  const store = await openStore(t)
  const w = await world(store)
  const l4 = await store.layers.info(top(w.D))
  const report = await pruneImages(store)
  assert.deepEqual(report.ImagesDeleted, [
    { Untagged: `digested@${DIGEST}` },
    { Deleted: w.G.id },
    { Deleted: top(w.G) },
    { Deleted: w.D.id },
    { Deleted: top(w.D) },
  ])
  assert.equal(report.SpaceReclaimed, SIZES.L7 + SIZES.L4)
  assert.equal(await layerOnDisk(store, l4.chainId, l4.cacheId), false)
  assert.deepEqual((await listImages(store, { all: true })).map((s) => s.Id), [w.F.id, w.I.id, w.C.id, w.B.id, w.A.id], 'tagged and intermediate images stay')
  assert.deepEqual(await pruneImages(store), { ImagesDeleted: [], SpaceReclaimed: 0 }, 'nothing dangling left')

  const all = await pruneImages(store, { all: true })
  assert.deepEqual(await store.images.list(), [], '-a: every image went')
  assert.deepEqual(await store.layers.list(), [], 'and every layer with them')
  assert.equal(all.SpaceReclaimed, SIZES.L1 + SIZES.L2 + SIZES.L3 + SIZES.L5 + SIZES.L6)
  assert.ok(all.ImagesDeleted.some((d) => d.Untagged === 'base:1'))
})

test('system df: shared layers counted once, SharedSize per image, and info counts', async (t) => {
  if (!requireRoot(t)) return
  const store = await openStore(t)
  const w = await world(store)
  const df = await diskUsage(store)
  assert.equal(df.LayersSize, Object.values(SIZES).reduce((a, b) => a + b, 0), 'every layer once, the 1000-byte base too')
  assert.deepEqual(df.Images.map((s) => s.Id), (await listImages(store)).map((s) => s.Id), 'the image list without intermediate images')
  for (const s of df.Images) {
    assert.equal(s.SharedSize, SIZES.L1, `${s.Id}: only the base layer is shared`)
    assert.equal(s.Containers, 0)
  }
  assert.deepEqual(df.Containers, [])
  assert.deepEqual(await storeCounts(store), { images: 7, containers: 0, containersRunning: 0 })
  // Layer sizes as the layer store records them.
  assert.equal((await store.layers.info(top(w.F))).size, SIZES.L6)
})

