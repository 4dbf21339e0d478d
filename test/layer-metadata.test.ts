/**
 * The layer store's files without a driver: dockerd's metadata files read
 * leniently and rejected precisely (CORRUPT naming the file), mount
 * records, path and name safety, and transactions (made locked, committed
 * with their lock, cancelled without a trace).
 */
import assert from 'node:assert/strict'
import { lstat, mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { sha256Of } from '../src/digest/index.js'
import { isStrataError } from '../src/errors/index.js'
import { driverLayersDir, LayerDbPaths } from '../src/layer/index.js'
import { readLayerInfo, readMountRecord } from '../src/layer/metadata.js'
import { validateMountName } from '../src/layer/paths.js'
import { Transaction } from '../src/layer/transaction.js'
import type { ChainID } from '../src/layer/types.js'
import { tempDirFor } from './helpers/tmp.js'
import { DataRootLock, DirLock } from '../src/fs/index.js'

const CHAIN = sha256Of('a layer') as ChainID
const PARENT = sha256Of('its parent') as ChainID
const CACHE = 'c'.repeat(64)

function rejectsWith(p: Promise<unknown>, code: string, mention: RegExp): Promise<void> {
  return assert.rejects(p, (err: unknown) => {
    assert.ok(isStrataError(err), String(err))
    assert.equal(err.code, code, err.message)
    assert.match(err.message, mention)
    return true
  })
}

test('readLayerInfo reads dockerd’s files, tolerating whitespace as dockerd does', async (t) => {
  const dir = tempDirFor(t, 'layer-meta-')
  await writeFile(join(dir, 'diff'), `${CHAIN}\n`)
  await writeFile(join(dir, 'size'), '1234')
  await writeFile(join(dir, 'cache-id'), `${CACHE}\n`)
  await writeFile(join(dir, 'parent'), PARENT)
  assert.deepEqual(await readLayerInfo(dir, CHAIN), { chainId: CHAIN, diffId: CHAIN, parent: PARENT, cacheId: CACHE, size: 1234, hasTarSplit: false })
  await writeFile(join(dir, 'tar-split.json.gz'), '')
  assert.equal((await readLayerInfo(dir, CHAIN)).hasTarSplit, true)
})

test('readLayerInfo says which file is broken', async (t) => {
  const dir = tempDirFor(t, 'layer-meta-')
  await rejectsWith(readLayerInfo(join(dir, 'nope'), CHAIN), 'NOT_FOUND', /does not exist/)
  await writeFile(join(dir, 'diff'), CHAIN)
  await writeFile(join(dir, 'size'), '10')
  await rejectsWith(readLayerInfo(dir, CHAIN), 'CORRUPT', /cache-id" is missing/)
  await writeFile(join(dir, 'cache-id'), 'not-an-id')
  await rejectsWith(readLayerInfo(dir, CHAIN), 'CORRUPT', /cache-id" does not hold a driver layer id/)
  await writeFile(join(dir, 'cache-id'), CACHE)
  await writeFile(join(dir, 'size'), '-1')
  await rejectsWith(readLayerInfo(dir, CHAIN), 'CORRUPT', /size" does not hold/)
  await writeFile(join(dir, 'size'), '10')
  await writeFile(join(dir, 'parent'), 'md5:abc')
  await rejectsWith(readLayerInfo(dir, CHAIN), 'CORRUPT', /parent" does not hold a sha256 digest/)
})

test('readMountRecord: absent init-id, parent and mount-count mean none', async (t) => {
  const dir = tempDirFor(t, 'layer-mount-')
  await rejectsWith(readMountRecord(join(dir, 'x'), 'x'), 'NOT_FOUND', /Mount "x" does not exist/)
  await writeFile(join(dir, 'mount-id'), CACHE)
  assert.deepEqual(await readMountRecord(dir, 'm'), { name: 'm', mountId: CACHE, initId: null, parent: null, mountCount: 0 })
  await writeFile(join(dir, 'init-id'), `${CACHE}-init`)
  await writeFile(join(dir, 'parent'), PARENT)
  await writeFile(join(dir, 'mount-count'), '3')
  assert.deepEqual(await readMountRecord(dir, 'm'), { name: 'm', mountId: CACHE, initId: `${CACHE}-init`, parent: PARENT, mountCount: 3 })
  await writeFile(join(dir, 'mount-count'), 'many')
  await rejectsWith(readMountRecord(dir, 'm'), 'CORRUPT', /mount-count/)
})

test('paths: dockerd’s layout, and nothing but digests and plain names become paths', () => {
  const p = new LayerDbPaths('/var/lib/strata', 'overlay2')
  assert.equal(p.root, '/var/lib/strata/image/overlay2/layerdb')
  assert.equal(p.layerDir(CHAIN), `/var/lib/strata/image/overlay2/layerdb/sha256/${CHAIN.slice(7)}`)
  assert.match(p.removingDir(CHAIN), new RegExp(`/sha256/${CHAIN.slice(7)}-[a-f0-9]{64}-removing$`))
  assert.equal(p.mountDir('abc'), '/var/lib/strata/image/overlay2/layerdb/mounts/abc')
  assert.throws(() => p.layerDir('sha256:../../etc' as ChainID), /Invalid chainID/)
  for (const bad of ['', '.', '..', '../x', 'a/b', '.hidden', '-x']) assert.throws(() => validateMountName(bad), /Invalid mount name/, bad)
  validateMountName('f'.repeat(64))
  validateMountName('my_container.1')
  assert.equal(driverLayersDir('overlay2', '/r/overlay2'), '/r/overlay2')
  assert.equal(driverLayersDir('vfs', '/r/vfs'), '/r/vfs/dir')
  assert.equal(driverLayersDir('btrfs', '/r/btrfs'), '/r/btrfs/subvolumes')
  assert.equal(driverLayersDir('zfs', '/r/zfs'), undefined)
})

test('a transaction is locked from birth, keeps its lock through commit, and cancels without a trace', async (t) => {
  const root = tempDirFor(t, 'layer-tx-')
  const tmp = join(root, 'tmp')
  await mkdir(tmp)
  const lock = new DataRootLock(root)
  const tx = await Transaction.start(tmp, lock)
  assert.match(tx.dir, /\/tmp\/write-set-[^/]+$/)
  assert.equal((await lstat(tx.dir)).mode & 0o777, 0o700)
  assert.equal(DirLock.isHeld(tx.dir), true)
  await tx.writeFile('cache-id', CACHE)
  assert.equal((await lstat(join(tx.dir, 'cache-id'))).mode & 0o777, 0o644)
  const final = join(root, 'final')
  await lock.withLock(() => tx.commit(final))
  assert.equal(tx.dir, final)
  assert.deepEqual(await readdir(tmp), [])
  assert.equal(DirLock.isHeld(final), true, 'the lock followed the rename')
  const handed = tx.takeLock()
  tx.close()
  assert.equal(DirLock.isHeld(final), true)
  handed.close()
  assert.equal(DirLock.isHeld(final), false)

  const tx2 = await Transaction.start(tmp, lock)
  await tx2.writeFile('parent', PARENT)
  await tx2.cancel()
  assert.deepEqual(await readdir(tmp), [])
})
