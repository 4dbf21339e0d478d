/**
 * strata against dockerd 20.10, through the strata CLI:
 *
 * 1. `docker save` → `strata load` → `strata save` → `docker load` into a
 *    fresh dockerd keeps the image ID, the diffIDs and the layer bytes
 *    (so the layer digests), and `docker save` there gives the original
 *    layer tars back.
 * 2. The Dockerfile image (a deleted file and a directory deleted and made
 *    again: a whiteout and an opaque dir) as strata's merged view equals
 *    what a container of it on dockerd sees (`tar -c` inside `docker run`).
 *
 * One dockerd serves both; the archive is the cached threeLayerArchive.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { sha256Of } from '../src/digest/index.js'
import { IMAGE_TAG, readDockerArchive, threeLayerArchive } from './helpers/docker-image.js'
import { requireDockerd, startDockerd } from './helpers/dockerd.js'
import { snapshotImage } from './helpers/image-view.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { strata } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'
import { assertSameTree, snapshotTree, type TreeEntry } from './helpers/tree.js'

/**
 * What a running container has that the image does not: the kernel's
 * /proc and /sys, dockerd's /dev tmpfs, the bind-mounted /etc/hosts,
 * /etc/hostname and /etc/resolv.conf, and the init layer's /.dockerenv
 * and /etc/mtab symlink. None of them is the image's content.
 */
const RUNTIME_PATHS = ['proc', 'sys', 'dev', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', '.dockerenv', 'etc/mtab']
const isRuntimePath = (p: string): boolean => p === '.' || RUNTIME_PATHS.some((r) => p === r || p.startsWith(`${r}/`))

/**
 * Makes two snapshots comparable across "tar inside a container" and a
 * mounted store: busybox tar records whole seconds, so file times are cut
 * to seconds; directory times are left out, because the container's view
 * of a directory is its top-most copy (the init layer's /etc, a mount
 * point's parent) whose time is when dockerd made it, not the image's.
 */
function stable(tree: Map<string, TreeEntry>): Map<string, TreeEntry> {
  const out = new Map<string, TreeEntry>()
  for (const [path, e] of tree) {
    out.set(path, { ...e, mtimeNs: e.type === 'dir' ? 0n : (e.mtimeNs / 1_000_000_000n) * 1_000_000_000n })
  }
  return out
}

test('docker interop: save/load round trips through strata, and the merged view equals a container\'s', async (t) => {
  if (!requireRoot(t) || !requireDockerd(t) || !requireTool(t, 'tar', 'busybox')) return
  const archive = await threeLayerArchive(t)
  const original = await readDockerArchive(archive)
  const dir = tempDirFor(t, 'interop-docker-')
  const root = join(dir, 'root') // the default driver: overlay2 on this ext4
  const dockerd = await startDockerd(t, { storageDriver: 'overlay2' })

  await t.test('docker save → strata load → strata save → docker load keeps ID, diffIDs and layer bytes', async () => {
    const loaded = await strata(['load', '-i', archive], { root })
    assert.equal(loaded.code, 0, loaded.stderr)
    assert.equal(loaded.text, `Loaded image: ${IMAGE_TAG}\n`)
    const saved = join(dir, 'strata-saved.tar')
    const r = await strata(['save', '-o', saved, IMAGE_TAG], { root })
    assert.equal(r.code, 0, r.stderr)

    const { stdout } = await dockerd.docker(['load', '-i', saved])
    assert.equal(stdout.toString(), `Loaded image: ${IMAGE_TAG}\n`)
    const [inspected] = JSON.parse((await dockerd.docker(['image', 'inspect', IMAGE_TAG])).stdout.toString()) as Array<{ Id: string; RootFS: { Layers: string[] } }>
    assert.equal(inspected!.Id, original.imageId, 'dockerd has the same image ID')
    assert.deepEqual(inspected!.RootFS.Layers, original.diffIds, 'and the same diffIDs')

    const resaved = join(dir, 'docker-resaved.tar')
    await dockerd.docker(['save', '-o', resaved, IMAGE_TAG])
    const again = await readDockerArchive(resaved)
    assert.ok(again.configBytes.equals(original.configBytes), 'config bytes unchanged')
    assert.deepEqual(again.layers.map((l) => sha256Of(l)), original.layers.map((l) => sha256Of(l)), 'layer tars byte for byte (same layer digests)')
  })

  await t.test('the RUN-rm image: strata\'s merged view equals `tar -c /` in a container on dockerd', async () => {
    // Loaded by the subtest above on both sides; load again so this subtest stands alone.
    assert.equal((await strata(['load', '-q', '-i', archive], { root })).code, 0)
    await dockerd.docker(['load', '-q', '-i', archive])
    // Everything at the top level except the runtime mounts (busybox tar has no --exclude that skips a mount's content).
    const script = `cd / && exec tar -cf - $(ls -A / | grep -v -x -e proc -e sys -e dev)`
    const { stdout: tarBytes } = await dockerd.docker(['run', '--rm', '--network', 'none', IMAGE_TAG, 'sh', '-c', script])
    const fromDocker = join(dir, 'docker-view')
    mkdirSync(fromDocker)
    await run('tar', ['-xpf', '-', '--numeric-owner', '--same-owner', '-C', fromDocker], { input: tarBytes })
    const dockerView = stable(await snapshotTree(fromDocker, { ignore: isRuntimePath }))
    const strataView = stable(await snapshotImage(root, IMAGE_TAG, { ignore: isRuntimePath }))
    // The RUN steps took effect: a whiteout removed /etc/passwd, /home was made again 0750.
    assert.ok(strataView.size > 100 && strataView.get('data/two')?.type === 'file', 'the view holds the whole image (busybox and its applet links, the RUN files)')
    assert.equal(strataView.has('etc/passwd'), false, '/etc/passwd was deleted by a whiteout')
    assert.equal(strataView.has('etc/group'), true)
    assert.equal(strataView.get('home')?.mode, 0o750)
    assertSameTree(strataView, dockerView, 'strata view vs docker container')
  })
})
