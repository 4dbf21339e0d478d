/**
 * Recovery on real drivers (vfs, overlay2), as root: a registration killed
 * with SIGKILL halfway leaves a transaction and a driver layer that the
 * next open removes (and that an open meanwhile leaves alone while the
 * registering process lives); a leftover `-removing` layer is finished;
 * mount records without a mount-id and driver layers nothing refers to are
 * removed; a mount left by a killed process is unmounted, one counted by
 * `mount` is not.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { mkdir, readdir, rename, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test, type TestContext } from 'node:test'
import { digestHex } from '../src/digest/index.js'
import { listDriverLayerIds } from '../src/layer/index.js'
import { makeBusyboxRootfs } from './helpers/fixtures.js'
import { run } from './helpers/peers.js'
import { mountsAtOrUnder } from './helpers/dockerd.js'
import { canRunLayerTests, layerEnv, spawnStoreProcess, type LayerEnv } from './helpers/layer-env.js'

const TAR_CREATE = ['--format=posix', '--xattrs', '--xattrs-include=*', '--numeric-owner']
const DRIVERS = ['vfs', 'overlay2'] as const

let fixtureDir: string | undefined
let baseTar: string | undefined
let smallTar: string | undefined

before(async () => {
  if (process.getuid?.() !== 0) return
  fixtureDir = mkdtempSync(join(tmpdir(), 'strata-test-layer-recovery-'))
  const base = join(fixtureDir, 'base')
  await makeBusyboxRootfs(base)
  baseTar = join(fixtureDir, 'base.tar')
  await run('tar', [...TAR_CREATE, '-cf', baseTar, '-C', base, '.'])
  const small = join(fixtureDir, 'small')
  await mkdir(join(small, 'etc'), { recursive: true })
  await writeFile(join(small, 'etc/motd'), 'hello\n')
  smallTar = join(fixtureDir, 'small.tar')
  await run('tar', [...TAR_CREATE, '-cf', smallTar, '-C', small, '.'])
  rmSync(base, { recursive: true, force: true })
  rmSync(small, { recursive: true, force: true })
})

after(() => {
  if (fixtureDir !== undefined) rmSync(fixtureDir, { recursive: true, force: true })
})

type Env = LayerEnv

/** Cleanups here kill processes and remove mounts a test may already have removed: their errors are ignored. */
function setup(t: TestContext, name: string): Promise<Env> {
  return layerEnv(t, name, { cleanupErrors: 'ignore' })
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const gone = new Promise<void>((r) => child.once('exit', () => r()))
  child.kill('SIGKILL')
  await gone
}

for (const driverName of DRIVERS) {
  describe(`layer store recovery on ${driverName}`, () => {
    test('a registration killed halfway is left alone while alive, undone after', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const store = await env.open()
      const driverBefore = await listDriverLayerIds(env.driver)
      // The source gives half the tar, then stalls: the process is mid-apply when killed.
      const other = spawnStoreProcess(
        env.root,
        driverName,
        `const { Readable } = await import('node:stream')
         const { readFileSync } = await import('node:fs')
         const tar = readFileSync(${JSON.stringify(baseTar)})
         const half = Math.floor(tar.length / 2)
         const src = new Readable({ read() {} })
         src.push(tar.subarray(0, half))
         let said = false
         store.register(src, null, { onProgress: (n) => { if (n >= half && !said) { said = true; console.log('halfway') } } })
         await new Promise(() => {})`,
      )
      env.defer(() => kill(other.child))
      assert.equal(await other.line(), 'halfway')
      const txs = await readdir(store.paths.tmp)
      assert.equal(txs.length, 1)
      assert.match(txs[0]!, /^write-set-/)
      const cacheId = readFileSync(join(store.paths.tmp, txs[0]!, 'cache-id'), 'utf8')
      assert.ok(await env.driver.exists(cacheId))

      // Alive: an open elsewhere does not touch it.
      const meanwhile = await env.open()
      assert.deepEqual(meanwhile.lastRecovery?.transactions, [])
      assert.deepEqual(meanwhile.lastRecovery?.driverLayers, [])
      assert.deepEqual(await readdir(store.paths.tmp), txs)
      assert.ok(await env.driver.exists(cacheId))

      await kill(other.child)
      const after = await env.open()
      assert.deepEqual(after.lastRecovery?.transactions, txs)
      assert.deepEqual(after.lastRecovery?.driverLayers, [cacheId])
      assert.deepEqual(after.lastRecovery?.failures, [])
      assert.deepEqual(await readdir(store.paths.tmp), [])
      assert.deepEqual(await listDriverLayerIds(env.driver), driverBefore)
      assert.deepEqual(await after.list(), [])

      // And the store works: the same tar registers.
      const again = await after.register(createReadStream(baseTar!), null)
      await again.layer.release()
    })

    test('a leftover -removing layer is finished', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const store = await env.open()
      const base = (await store.register(createReadStream(baseTar!), null)).layer
      env.images.add(base.chainId)
      await base.release()
      // A deleter that died after its rename.
      const removing = join(store.paths.sha256, `${digestHex(base.chainId)}-${randomBytes(32).toString('hex')}-removing`)
      await rename(store.paths.layerDir(base.chainId), removing)
      const reopened = await env.open()
      assert.deepEqual(reopened.lastRecovery?.removedLayers, [base.chainId])
      assert.deepEqual(reopened.lastRecovery?.failures, [])
      assert.deepEqual(await readdir(store.paths.sha256), [])
      assert.equal(await env.driver.exists(base.cacheId), false)
    })

    test('orphan driver layers and mount records without a mount-id are removed', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const store = await env.open()
      const base = (await store.register(createReadStream(baseTar!), null)).layer
      env.images.add(base.chainId)
      await store.createMount('kept', base.chainId)
      await base.release()
      const orphan = randomBytes(32).toString('hex')
      await env.driver.create(orphan, null)
      const orphanChild = randomBytes(32).toString('hex')
      await env.driver.create(orphanChild, orphan)
      await mkdir(join(store.paths.mounts, 'broken'))
      await writeFile(join(store.paths.mounts, 'broken', 'parent'), base.chainId)
      const reopened = await env.open()
      assert.deepEqual(reopened.lastRecovery?.removedMounts, ['broken'])
      assert.deepEqual([...(reopened.lastRecovery?.driverLayers ?? [])].sort(), [orphan, orphanChild].sort())
      assert.deepEqual(reopened.lastRecovery?.failures, [])
      const kept = await reopened.getMount('kept')
      assert.deepEqual(
        await listDriverLayerIds(env.driver),
        [base.cacheId, kept.mountId, kept.initId!].sort(),
        'the layer’s and the mount’s driver layers stay',
      )
      assert.deepEqual(await reopened.check(), [])
      await reopened.removeMount('kept')
    })

    test('a mount left by a killed process is unmounted; a counted one is not', { skip: driverName === 'vfs' ? 'vfs mounts nothing' : false }, async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const store = await env.open()
      const base = (await store.register(createReadStream(baseTar!), null)).layer
      const small = (await store.register(createReadStream(smallTar!), base.chainId)).layer
      env.images.add(small.chainId)
      await base.release()
      await store.createMount('c1', small.chainId)
      env.defer(() => store.removeMount('c1', { force: true }))
      await small.release()
      await store.mount('c1')
      const c1 = await store.getMount('c1')

      const other = spawnStoreProcess(env.root, driverName, `console.log(await driver.get(${JSON.stringify(small.cacheId)})); await new Promise(() => {})`)
      env.defer(() => kill(other.child))
      const merged = await other.line()
      assert.ok(mountsAtOrUnder([env.root]).includes(merged))
      assert.deepEqual(await env.driver.mountedLayers(), [small.cacheId, c1.mountId].sort())

      // The process dies; its mount does not.
      await kill(other.child)
      const reopened = await env.open()
      assert.deepEqual(reopened.lastRecovery?.unmounted, [small.cacheId])
      assert.deepEqual(reopened.lastRecovery?.failures, [])
      assert.deepEqual(await env.driver.mountedLayers(), [c1.mountId], 'the counted mount stays')
      assert.equal(mountsAtOrUnder([env.root]).includes(merged), false)
    })
  })
}
