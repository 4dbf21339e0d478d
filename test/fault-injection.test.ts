/**
 * Fault injection at the syscall layer (src/sys/faults.ts): a docker-archive
 * load, a tag and an rmi (untag, delete the image and its layers) are run once to count their durable steps (write,
 * fsync, rename, mount, umount), then again with the 1st, 2nd, ... step
 * failing with ENOSPC, EIO or EINTR in turn. After each run the same store
 * object must check clean (no orphan layer, no half-written image, no temp
 * file) and hold either the state from before the operation or the state
 * after it, never something between.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { listImages, removeImage, Store, tagImage } from '../src/store/index.js'
import { MNT_DETACH, setFaultPlan, umount2, type FaultPlan } from '../src/sys/index.js'
import { loadImages, openImageSource } from '../src/transport/index.js'
import { IMAGE_TAG, threeLayerArchive } from './helpers/docker-image.js'
import { mountsAtOrUnder } from './helpers/dockerd.js'
import { requireRoot } from './helpers/peers.js'

const ERRNOS: FaultPlan['errno'][] = ['ENOSPC', 'EIO', 'EINTR']

/** What a run may leave: the images with their tags, and the layers. */
async function state(store: Store): Promise<string> {
  const images = (await listImages(store)).map((i) => `${i.Id} ${[...(i.RepoTags ?? [])].sort().join(',')}`).sort()
  const layers = (await store.layers.list()).map((l) => l.chainId).sort()
  return JSON.stringify({ images, layers })
}

/** The problems check() finds that are not warnings or already-repaired debris. */
async function problems(store: Store): Promise<string[]> {
  return (await store.check()).filter((p) => p.kind !== 'debris').map((p) => `${p.kind}: ${p.message}`)
}

interface Operation {
  name: string
  /** Puts the store in the state the operation starts from (no faults planned). */
  before(store: Store): Promise<void>
  run(store: Store): Promise<unknown>
}

function operations(archive: string, root: string): Operation[] {
  const load = async (store: Store): Promise<void> => {
    const source = await openImageSource(archive, { tmpDir: join(root, 'tmp') })
    try {
      await loadImages(store, source, {})
    } finally {
      await source.close()
    }
  }
  const clear = async (store: Store): Promise<void> => {
    for (const image of await listImages(store)) await removeImage(store, image.Id, { force: true })
  }
  return [
    { name: 'load', before: clear, run: load },
    {
      name: 'tag',
      before: async (store) => {
        if ((await listImages(store)).length === 0) await load(store)
        await removeImage(store, 'faulty:new').catch(() => {})
      },
      run: (store) => tagImage(store, IMAGE_TAG, 'faulty:new'),
    },
    {
      name: 'rmi',
      // The image's only tag: rmi untags it, deletes it and its three layers.
      before: async (store) => {
        await clear(store)
        await load(store)
      },
      run: (store) => removeImage(store, IMAGE_TAG),
    },
  ]
}

for (const driver of ['vfs', 'overlay2'] as const) {
  test(`fault injection on ${driver}: load, tag and rmi with each durable step failing in turn leave the store as before or as after`, async (t: TestContext) => {
    if (!requireRoot(t)) return
    const archive = await threeLayerArchive(t)
    const dir = await mkdtemp(join(tmpdir(), 'strata-test-faults-'))
    t.after(async () => {
      setFaultPlan(undefined)
      for (const m of mountsAtOrUnder([dir])) umount2(m, MNT_DETACH)
      await rm(dir, { recursive: true, force: true })
    })
    const root = join(dir, 'root')
    const store = await Store.open({ root, driver })
    try {
      let runs = 0
      for (const op of operations(archive, root)) {
        await op.before(store)
        const initial = await state(store)
        const counting = setFaultPlan({ failAt: 0, errno: 'EIO' })!
        await op.run(store)
        setFaultPlan(undefined)
        const final = await state(store)
        const steps = counting.calls.length
        assert.ok(steps > 0, `${op.name} makes durable steps`)
        for (let k = 1; k <= steps; k++) {
          await op.before(store)
          assert.equal(await state(store), initial)
          const errno = ERRNOS[k % ERRNOS.length]!
          const record = setFaultPlan({ failAt: k, errno })!
          const outcome = await op.run(store).then(() => 'done', (err: unknown) => `failed: ${(err as Error).message}`)
          setFaultPlan(undefined)
          const what = `${op.name} on ${driver} with step ${k} of ${steps} (${record.failed ?? 'none'}) failing with ${errno}: ${outcome}`
          assert.ok(record.failed !== undefined, `${what}: the step was reached`)
          assert.deepEqual(await problems(store), [], `${what}: check finds nothing`)
          const now = await state(store)
          assert.ok(now === initial || now === final, `${what}: the store is as before or as after\n${now}`)
          if (outcome === 'done') assert.equal(now, final, `${what}: reported done, so the store is as after`)
          runs++
        }
      }
      t.diagnostic(`${runs} runs with a failed step`)
      assert.deepEqual(mountsAtOrUnder([root]), [], 'nothing left mounted')
    } finally {
      await store.close()
    }
  })
}
