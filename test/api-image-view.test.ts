/**
 * The image list `strata serve` keeps in memory (src/store/image-view.ts)
 * against what other processes do to the same data root: the strata CLI's
 * tag, rmi, save/load and a parent link written by another Store, each
 * after the server's list was kept (the root left still for longer than
 * the view's slack, so the next list comes from memory unless the change
 * is seen). The docker CLI 20.10 lists through the server.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { ImageView, Store } from '../src/index.js'
import type { ImageID } from '../src/image/index.js'
import { DOCKER_20, importBusybox, shortTempDir, startStrataServe } from './helpers/api-server.js'
import { openTestStore } from './helpers/archive-fixtures.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { strata } from './helpers/strata-cli.js'

/** Longer than the view's slack (1 s): a snapshot taken after this is kept. */
const SETTLE_MS = 1_200

/** A second image on busybox's layer: its config with another `created` (so another ID). */
async function secondImage(store: Store, first: ImageID): Promise<ImageID> {
  const config = JSON.parse((await store.images.get(first)).raw.toString()) as Record<string, unknown>
  config.created = '2020-01-02T03:04:05Z'
  return (await store.images.create(JSON.stringify(config))).id
}

test('ImageView keeps its snapshot while the root is still and reads again after an image, a reference or a parent link changes', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'busybox', 'tar')) return
  const store = await openTestStore(t)
  const first = (await importBusybox(t, store.root)) as ImageID
  const view = new ImageView(store)
  await sleep(SETTLE_MS)
  const a = await view.snapshot()
  assert.equal(await view.snapshot(), a, 'an unchanged root is answered from memory')
  assert.deepEqual([...a.images.keys()], [first])

  // An image added by this process's store: a rename into imagedb/content/sha256/.
  const second = await secondImage(store, first)
  const b = await view.snapshot()
  assert.notEqual(b, a)
  assert.deepEqual([...b.images.keys()].sort(), [first, second].sort())

  // A parent link rewritten inside an existing metadata directory (the directory made first by lastUpdated).
  await store.images.setLastUpdated(second)
  await sleep(SETTLE_MS)
  const c = await view.snapshot()
  assert.equal(await view.snapshot(), c)
  assert.equal(c.images.get(second)!.parent, undefined)
  await store.images.setParent(second, first)
  assert.equal((await view.snapshot()).images.get(second)!.parent, first)

  // A tag written by a CLI process: repositories.json replaced.
  await sleep(SETTLE_MS)
  const d = await view.snapshot()
  assert.equal(await view.snapshot(), d)
  const tagged = await strata(['tag', first, 'other:1'], { root: store.root })
  assert.equal(tagged.code, 0, tagged.stderr)
  assert.deepEqual((await view.snapshot()).refs.get(first)!.map((r) => `${r.path}:${r.tag}`).sort(), ['library/busybox:latest', 'library/other:1'])
})

test('docker images through strata serve shows what strata CLI processes did meanwhile (tag, rmi, save + rmi, load)', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'busybox', 'tar')) return
  if (!existsSync(DOCKER_20)) {
    if (process.env.CI !== undefined) assert.fail(`${DOCKER_20} is missing`)
    return t.skip(`${DOCKER_20} is not installed`)
  }
  const s = await startStrataServe(t)
  await importBusybox(t, s.root)
  const cli = async (args: string[]): Promise<void> => {
    const r = await strata(args, { root: s.root })
    assert.equal(r.code, 0, `strata ${args.join(' ')}: ${r.stderr}`)
  }
  const listed = async (): Promise<string[]> =>
    (await s.docker(DOCKER_20, ['images', '--format', '{{.Repository}}:{{.Tag}}'])).stdout.toString().split('\n').filter(Boolean).sort()
  /** Lets the root settle and lists twice, so that the server's list is kept in memory before the next change. */
  const settled = async (expected: string[]): Promise<void> => {
    await sleep(SETTLE_MS)
    assert.deepEqual(await listed(), expected)
    assert.deepEqual(await listed(), expected)
  }

  await settled(['busybox:latest'])
  await cli(['tag', 'busybox', 'other:1'])
  assert.deepEqual(await listed(), ['busybox:latest', 'other:1'])

  await settled(['busybox:latest', 'other:1'])
  await cli(['rmi', 'other:1'])
  assert.deepEqual(await listed(), ['busybox:latest'])

  const archive = join(shortTempDir(t, 'strata-api-view-'), 'busybox.tar')
  await cli(['save', '-o', archive, 'busybox'])
  await settled(['busybox:latest'])
  await cli(['rmi', 'busybox'])
  assert.deepEqual(await listed(), [])

  await settled([])
  await cli(['load', '-i', archive])
  assert.deepEqual(await listed(), ['busybox:latest'])
})

