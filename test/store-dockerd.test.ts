/**
 * The store against dockerd 20.10, both directions, on overlay2 and vfs,
 * with a real 3-layer image dockerd built (a whiteout and an opaque dir in
 * its top layer, see helpers/docker-image.ts):
 *
 * - dockerd → strata: dockerd `docker load`s the image into a data root;
 *   strata opens that root, lists the image and its tag, exports every
 *   layer byte-identical to the tar `docker save` gave, finds nothing wrong
 *   in check(), and mounts a container on the image whose tree is the
 *   image's (whiteout and opaque dir applied, Docker's init files present).
 * - strata → dockerd: strata registers the layers, stores the config and
 *   tags it; dockerd started on that root lists it with the same ID, runs
 *   it, and `docker save`s it with the same config, diffIDs and layer bytes.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { lstat, readFile, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { test, type TestContext } from 'node:test'
import { chainIds } from '../src/digest/index.js'
import { Store } from '../src/store/index.js'
import { IMAGE_TAG, readDockerArchive, threeLayerArchive, type DockerArchiveImage } from './helpers/docker-image.js'
import { mountsAtOrUnder, requireDockerd, startDockerd } from './helpers/dockerd.js'
import { requireRoot } from './helpers/peers.js'
import { collect } from './helpers/layer-env.js'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'

const DRIVERS = ['overlay2', 'vfs'] as const


/** A scratch dir removed after the test, with anything still mounted under it detached first. */
function scratchFor(t: TestContext, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `strata-store-dockerd-${name}-`))
  t.after(() => {
    for (const m of mountsAtOrUnder([dir])) {
      try {
        umount2(m, MNT_DETACH)
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true })
  })
  return dir
}

/** What a container of the 3-layer image must see (checked by path; the rest is busybox). */
async function assertImageTree(rootfs: string): Promise<void> {
  assert.equal(await readFile(join(rootfs, 'data/one'), 'utf8'), 'one\n', '/data/one from layer 2')
  assert.equal(await readFile(join(rootfs, 'data/two'), 'utf8'), 'two\n', '/data/two from layer 3')
  await assert.rejects(lstat(join(rootfs, 'etc/passwd')), { code: 'ENOENT' }, '/etc/passwd deleted by layer 3 (whiteout)')
  assert.deepEqual(await readdir(join(rootfs, 'home')), ['new'], '/home was replaced (opaque dir): only "new" is left')
  assert.equal(((await lstat(join(rootfs, 'home'))).mode & 0o7777).toString(8), '750', '/home has the mode layer 3 gave it')
  assert.ok((await lstat(join(rootfs, 'bin/busybox'))).isFile(), '/bin/busybox from the base layer')
  // Docker's init layer
  assert.ok((await lstat(join(rootfs, '.dockerenv'))).isFile(), '/.dockerenv from the init layer')
  assert.equal(await (await import('node:fs/promises')).readlink(join(rootfs, 'etc/mtab')), '/proc/mounts', '/etc/mtab -> /proc/mounts')
}

for (const driverName of DRIVERS) {
  test(`dockerd (${driverName}) → strata: a docker-loaded image is listed, exports byte-identical, checks clean and mounts`, { timeout: 300_000 }, async (t) => {
    if (!requireRoot(t) || !requireDockerd(t)) return
    const archive = await threeLayerArchive(t)
    const image: DockerArchiveImage = await readDockerArchive(archive)
    const scratch = scratchFor(t, `d2s-${driverName}`)
    const root = join(scratch, 'root')

    const dockerd = await startDockerd(t, { storageDriver: driverName, dataRoot: root })
    await dockerd.docker(['load', '-i', archive])
    await dockerd.stop()

    const store = await Store.open({ root, driver: driverName })
    t.after(() => store.close())
    assert.ok((await store.images.list()).includes(image.imageId), 'strata lists the image dockerd loaded')
    assert.equal(await store.references.get(IMAGE_TAG), image.imageId, `${IMAGE_TAG} points to it`)
    assert.equal(await store.findImage(IMAGE_TAG), image.imageId)
    const stored = await store.images.get(image.imageId)
    assert.ok(stored.raw.equals(image.configBytes), 'the config bytes are the ones docker saved')

    const chains = chainIds(image.diffIds)
    for (const [i, chain] of chains.entries()) {
      const info = await store.layers.info(chain)
      assert.equal(info.diffId, image.diffIds[i])
      assert.equal(info.parent, i === 0 ? null : chains[i - 1])
      assert.ok(info.hasTarSplit, 'dockerd recorded tar-split')
      const exported = await store.layers.export(chain)
      const bytes = await collect(exported.stream)
      assert.ok(bytes.equals(image.layers[i]!), `layer ${i} exports byte-identical to docker save's tar`)
      const verified = await exported.verified
      assert.ok(verified.matches && verified.fromTarSplit)
    }
    assert.deepEqual(await store.check(), [], 'check finds nothing wrong in a dockerd data root')

    const name = 'c'.repeat(64)
    await store.layers.createMount(name, chains.at(-1)!)
    const rootfs = await store.layers.mount(name)
    try {
      await assertImageTree(rootfs)
    } finally {
      await store.layers.unmount(name)
    }
    await store.layers.removeMount(name)
    assert.deepEqual(await store.check(), [], 'still clean after the container is gone')
    assert.equal((await store.layers.list()).length, 3, 'the image keeps its three layers')
  })

  test(`strata → dockerd (${driverName}): dockerd lists, runs and saves an image strata stored`, { timeout: 300_000 }, async (t) => {
    if (!requireRoot(t) || !requireDockerd(t)) return
    const archive = await threeLayerArchive(t)
    const image = await readDockerArchive(archive)
    const scratch = scratchFor(t, `s2d-${driverName}`)
    const root = join(scratch, 'root')

    const store = await Store.open({ root, driver: driverName })
    try {
      let parent = null
      for (const [i, tar] of image.layers.entries()) {
        const { layer } = await store.layers.register(Readable.from([tar]), parent, { expectedDiffId: image.diffIds[i]! })
        parent = layer.chainId
        // Not released: this process keeps the layers until the image holds them.
      }
      const { id } = await store.images.create(image.configBytes)
      assert.equal(id, image.imageId)
      await store.references.addTag(IMAGE_TAG, id)
    } finally {
      await store.close()
    }

    const dockerd = await startDockerd(t, { storageDriver: driverName, dataRoot: root })
    try {
      const { stdout: listed } = await dockerd.docker(['images', '--no-trunc', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'])
      assert.match(listed.toString(), new RegExp(`^${IMAGE_TAG} ${image.imageId}$`, 'm'), 'docker images lists the tag with the same ID')
      const { stdout: ran } = await dockerd.docker(['run', '--rm', '--network', 'none', IMAGE_TAG, 'cat', '/data/one', '/data/two', '/home/new'])
      assert.equal(ran.toString(), 'one\ntwo\nnew\n', 'docker run sees the image')
      const saved = join(scratch, 'saved.tar')
      await dockerd.docker(['save', '-o', saved, IMAGE_TAG])
      const again = await readDockerArchive(saved)
      assert.equal(again.imageId, image.imageId, 'same image ID')
      assert.deepEqual(again.diffIds, image.diffIds, 'same diffIDs')
      again.layers.forEach((l, i) => assert.ok(l.equals(image.layers[i]!), `layer ${i} saved byte-identical`))
    } finally {
      await dockerd.stop()
    }
  })
}
