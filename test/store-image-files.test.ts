/**
 * readImageFile / readLayerFile: one file of an image read from its layers'
 * tars, top layer first, without unpacking or mounting: a file added on
 * top, one deleted on top (a whiteout hides the base's copy), a symlink, a
 * file of the base; the data root gains nothing and nothing is mounted.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { chainIds } from '../src/digest/index.js'
import { isStrataError } from '../src/errors/index.js'
import { Store, readImageFile, readLayerFile } from '../src/store/index.js'
import { busyboxRootfsTar } from './helpers/api-server.js'
import { mountsAtOrUnder } from './helpers/dockerd.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { STRATA_CLI } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'

test('readImageFile reads through whiteouts from the top layer down; readLayerFile reads one layer; nothing is unpacked or mounted', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'runc')) return
  const root = join(tempDirFor(t, 'image-files-'), 'root')
  const strata = (args: string[], input?: Buffer): void => {
    const r = spawnSync(process.execPath, [STRATA_CLI, '--root', root, '-s', 'vfs', ...args], { ...(input === undefined ? {} : { input }), env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '' } })
    assert.equal(r.status, 0, r.stderr?.toString())
  }
  strata(['import', '-', 'bb:1'], await busyboxRootfsTar(t))
  strata(['run', '--name', 'c1', 'bb:1', 'sh', '-c', 'echo hello > /greeting; rm /bin/ls'])
  strata(['commit', 'c1', 'bb:2'])
  strata(['rm', 'c1'])
  const store = await Store.open({ root, driver: 'vfs' })
  t.after(() => store.close())
  const before = readdirSync(join(root, 'vfs', 'dir')).sort()

  const greeting = await readImageFile(store, 'bb:2', '/greeting')
  assert.deepEqual([greeting.kind, greeting.content.toString()], ['file', 'hello\n'])
  await assert.rejects(readImageFile(store, 'bb:2', 'bin/ls'), (e: unknown) => isStrataError(e, 'NOT_FOUND') && /"\/bin\/ls" is not in image bb:2/.test((e as Error).message), 'the whiteout hides the base layer\'s copy')
  const ls = await readImageFile(store, 'bb:1', 'bin/ls')
  assert.equal(ls.kind, 'symlink')
  assert.equal(ls.linkTarget, '/bin/busybox', 'the link as the layer holds it, not followed')
  const busybox = await readImageFile(store, 'bb:2', './bin/busybox')
  assert.equal(busybox.kind, 'file')
  assert.equal(busybox.content.subarray(1, 4).toString(), 'ELF')

  const [base, top] = chainIds((await store.images.get(await store.findImage('bb:2'))).config.rootfs.diff_ids) as unknown as [string, string]
  assert.equal((await readLayerFile(store, top as never, 'greeting'))?.content.toString(), 'hello\n')
  assert.equal(await readLayerFile(store, top as never, 'bin/busybox'), undefined, 'the top layer alone does not have it')
  assert.equal((await readLayerFile(store, base as never, 'bin/ls'))?.kind, 'symlink')
  assert.deepEqual(readdirSync(join(root, 'vfs', 'dir')).sort(), before, 'nothing unpacked')
  assert.deepEqual(mountsAtOrUnder([root]), [])
})
