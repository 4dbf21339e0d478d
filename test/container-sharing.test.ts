/**
 * Containers share their image's layers: 20 containers of one image on
 * overlay2 cost little next to the image (each adds an init layer with a
 * few small files and an empty RW layer), so the data root's disk usage
 * (du) stays under 1.1× what it was with the image alone. The image is the
 * 3-layer test image plus a 32 MiB layer, so that the ~120 KiB per
 * container (some 20 directories and small files of 4 KiB blocks: init
 * layer, RW layer, layerdb/mounts and containers records; about what
 * dockerd's take) are measured against a realistic size; the overhead per
 * container is checked on its own too. Every container is mounted once as
 * well (a mount must not copy anything either).
 */
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { createContainer, mountContainer, unmountContainer } from '../src/container/index.js'
import { sha256Of } from '../src/digest/index.js'
import { containerEnv } from './helpers/container-env.js'
import { requireDockerd } from './helpers/dockerd.js'
import { randomBytesSeeded } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'

async function du(dir: string): Promise<number> {
  return Number((await run('du', ['-s', '-x', '-B1', dir])).stdout.toString().split('\t')[0])
}

test('20 containers of one image on overlay2 use < 1.1x the image on disk', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'busybox', 'tar', 'du') || !requireDockerd(t)) return
  const env = await containerEnv(t, 'overlay2')
  const { store } = env

  // The image: the test image plus a 32 MiB layer.
  const scratch = tempDirFor(t, 'container-sharing-')
  await mkdir(join(scratch, 'tree/blob'), { recursive: true })
  await writeFile(join(scratch, 'tree/blob/big'), randomBytesSeeded(32 * 1024 * 1024, 7))
  const tar = (await run('tar', ['--numeric-owner', '-C', join(scratch, 'tree'), '-cf', '-', 'blob'])).stdout
  const base = await store.images.get(env.imageId)
  const { layer } = await store.layers.register(Readable.from([tar]), store.layers.chainOf(base.config.rootfs.diff_ids))
  try {
    const config = { ...base.config, rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids, sha256Of(tar)] }, history: [...(base.config.history ?? []), { created: base.config.created, created_by: 'big blob' }] }
    const { id } = await store.images.create(JSON.stringify(config))
    await store.references.addTag('strata-test-big:latest', id)
  } finally {
    await layer.release()
  }

  const before = await du(env.root)
  const ids: string[] = []
  for (let i = 0; i < 20; i++) ids.push((await createContainer(store, 'strata-test-big', { cmd: ['true'] })).id)
  for (const id of ids) await mountContainer(store, id)
  const after = await du(env.root)
  for (const id of ids) await unmountContainer(store, id)
  t.diagnostic(`image ${(before / 2 ** 20).toFixed(1)} MiB on disk; with 20 mounted containers ${(after / 2 ** 20).toFixed(1)} MiB (ratio ${(after / before).toFixed(3)}; ${Math.round((after - before) / 20 / 1024)} KiB per container)`)
  assert.ok(before > 32 * 1024 * 1024, `the image takes its size on disk (${before} bytes)`)
  assert.ok((after - before) / 20 < 256 * 1024, `each container costs ${Math.round((after - before) / 20 / 1024)} KiB on disk`)
  assert.ok(after < 1.1 * before, `20 containers: ${after} bytes on disk vs ${before} for the image alone (ratio ${(after / before).toFixed(3)})`)
})
