/**
 * Mounted layers (containers' RW layers) on real drivers (vfs, overlay2),
 * as root: the record's files, Docker's init layer exactly as dockerd
 * writes it, changes and diff of what a container wrote (the diff
 * registered as a layer reproduces it), mount counts shared by two
 * processes, removal refused while mounted, and the parent chain
 * collected after the last mount on it goes.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { lstat, mkdir, readdir, readFile, readlink, rm, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, test, type TestContext } from 'node:test'
import { isStrataError } from '../src/errors/index.js'
import { INIT_ENTRIES, LayerStore, listDriverLayerIds, setupInitLayer, type ChainID, type LayerHandle } from '../src/layer/index.js'
import { makeBusyboxRootfs } from './helpers/fixtures.js'
import { requireRoot, run } from './helpers/peers.js'
import { canRunLayerTests, collect, layerEnv, type LayerEnv } from './helpers/layer-env.js'

const TAR_CREATE = ['--format=posix', '--xattrs', '--xattrs-include=*', '--numeric-owner']
const DRIVERS = ['vfs', 'overlay2'] as const

let fixtureDir: string | undefined
let baseTar: string | undefined

before(async () => {
  if (process.getuid?.() !== 0) return
  fixtureDir = mkdtempSync(join(tmpdir(), 'strata-test-layer-mounts-'))
  const base = join(fixtureDir, 'base')
  await makeBusyboxRootfs(base)
  baseTar = join(fixtureDir, 'base.tar')
  await run('tar', [...TAR_CREATE, '-cf', baseTar, '-C', base, '.'])
  rmSync(base, { recursive: true, force: true })
})

after(() => {
  if (fixtureDir !== undefined) rmSync(fixtureDir, { recursive: true, force: true })
})

interface Env extends LayerEnv {
  store: LayerStore
}

async function setup(t: TestContext, name: string): Promise<Env> {
  const env = await layerEnv(t, name)
  return { ...env, store: await env.open() }
}

async function registerBase(env: Env): Promise<LayerHandle> {
  const { createReadStream } = await import('node:fs')
  return (await env.store.register(createReadStream(baseTar!), null)).layer
}

async function modeOf(path: string): Promise<number> {
  return (await lstat(path)).mode & 0o7777
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isStrataError(err), `expected a StrataError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    return true
  })
}

/** Runs `body` in another node process with `store` open on `root`; resolves with its stdout lines once it exits 0. */
function inOtherProcess(root: string, driverName: string, body: string): Promise<string[]> {
  const layerUrl = new URL('../src/layer/index.js', import.meta.url).href
  const driverUrl = new URL('../src/graphdriver/index.js', import.meta.url).href
  const code = `
    import { LayerStore } from ${JSON.stringify(layerUrl)}
    import { openDriver } from ${JSON.stringify(driverUrl)}
    const driver = await openDriver(${JSON.stringify(root)}, ${JSON.stringify(driverName)})
    const store = await LayerStore.open({ root: ${JSON.stringify(root)}, driver })
    ${body}
  `
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()))
    child.on('exit', (status) => (status === 0 ? resolve(out.split('\n').filter((l) => l !== '')) : reject(new Error(`other process failed (${status}): ${err}`))))
  })
}


test('setupInitLayer writes dockerd’s init files into a plain directory', async (t) => {
  if (!requireRoot(t)) return
  const dir = mkdtempSync(join(tmpdir(), 'strata-test-initlayer-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  // An image's own versions: a file replaced, a symlink that must not be followed out of the layer.
  await mkdir(join(dir, 'etc'))
  await writeFile(join(dir, 'etc/hosts'), '127.0.0.1 image\n')
  const outside = mkdtempSync(join(tmpdir(), 'strata-test-initlayer-outside-'))
  t.after(() => rmSync(outside, { recursive: true, force: true }))
  const { symlink } = await import('node:fs/promises')
  await symlink(outside, join(dir, 'dev'))
  await setupInitLayer(dir)
  assert.deepEqual(await readdir(outside), [], 'nothing was written through the image’s /dev symlink')
  for (const [path, kind] of INIT_ENTRIES) {
    const st = await lstat(join(dir, path))
    if (kind === 'dir') assert.ok(st.isDirectory(), path)
    else if (kind === 'file') assert.ok(st.isFile() && st.size === 0, path)
    else assert.equal(await readlink(join(dir, path)), '/proc/mounts')
    if (typeof kind === 'string') assert.equal(st.mode & 0o7777, 0o755, path)
    assert.equal(st.uid, 0)
  }
  assert.equal(await modeOf(join(dir, 'dev')), 0o755)
  assert.deepEqual((await readdir(dir)).sort(), ['.dockerenv', 'dev', 'etc', 'proc', 'sys'])
  assert.deepEqual((await readdir(join(dir, 'etc'))).sort(), ['hostname', 'hosts', 'mtab', 'resolv.conf'])
  assert.deepEqual((await readdir(join(dir, 'dev'))).sort(), ['console', 'pts', 'shm'])
})

for (const driverName of DRIVERS) {
  describe(`mounted layers on ${driverName}`, () => {
    test('createMount: the record’s files and Docker’s init layer', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await registerBase(env)
      env.defer(() => base.release())
      const m = await env.store.createMount('c1', base.chainId)
      assert.match(m.mountId, /^[a-f0-9]{64}$/)
      assert.equal(m.initId, `${m.mountId}-init`)
      assert.equal(m.parent, base.chainId)
      assert.equal(m.mountCount, 0)
      assert.deepEqual(await env.store.getMount('c1'), m)
      assert.deepEqual(await env.store.listMounts(), [m])

      const dir = join(env.store.paths.mounts, 'c1')
      assert.equal(await modeOf(dir), 0o755)
      assert.deepEqual((await readdir(dir)).sort(), ['init-id', 'mount-id', 'parent'])
      assert.equal(await readFile(join(dir, 'mount-id'), 'utf8'), m.mountId)
      assert.equal(await readFile(join(dir, 'init-id'), 'utf8'), m.initId)
      assert.equal(await readFile(join(dir, 'parent'), 'utf8'), base.chainId)
      for (const f of ['init-id', 'mount-id', 'parent']) assert.equal(await modeOf(join(dir, f)), 0o644)
      assert.deepEqual(await readdir(env.store.paths.tmp), [])
      await expectCode(env.store.createMount('c1', base.chainId), 'ALREADY_EXISTS')
      await expectCode(env.store.createMount('c2', base.parent ?? ('sha256:' + '0'.repeat(64)) as ChainID), 'NOT_FOUND')
      await expectCode(env.store.createMount('../evil', null), 'INVALID_ARGUMENT')

      const rootfs = await env.store.mount('c1')
      env.defer(() => env.store.removeMount('c1', { force: true }))
      // Created by the init layer: empty, 0755, root's.
      for (const f of ['.dockerenv', 'etc/resolv.conf', 'etc/hosts', 'etc/hostname', 'dev/console']) {
        const st = await lstat(join(rootfs, f))
        assert.ok(st.isFile(), f)
        assert.equal(st.size, 0, `${f} is empty (the image's etc/hostname was replaced)`)
        assert.equal(st.mode & 0o7777, 0o755, f)
        assert.equal(st.uid, 0)
      }
      for (const d of ['dev/pts', 'dev/shm']) {
        assert.ok((await lstat(join(rootfs, d))).isDirectory(), d)
        assert.equal(await modeOf(join(rootfs, d)), 0o755, d)
      }
      assert.equal(await readlink(join(rootfs, 'etc/mtab')), '/proc/mounts')
      // Existing directories are left as the image has them.
      assert.equal(await modeOf(join(rootfs, 'proc')), 0o555)
      assert.equal(await modeOf(join(rootfs, 'sys')), 0o555)
      assert.ok((await lstat(join(rootfs, 'bin/busybox'))).isFile())

      // The init layer's own changes against the image.
      const initChanges = await env.driver.changes(m.initId!, base.cacheId)
      const byPath = new Map(initChanges.map((c) => [c.path, c.kind]))
      for (const p of ['/.dockerenv', '/dev/console', '/dev/pts', '/dev/shm', '/etc/hosts', '/etc/mtab', '/etc/resolv.conf']) assert.equal(byPath.get(p), 'A', p)
      assert.equal(byPath.get('/etc/hostname'), 'C')

      // Without an init layer.
      const bare = await env.store.createMount('bare', base.chainId, { init: false })
      env.defer(() => env.store.removeMount('bare', { force: true }))
      assert.equal(bare.initId, null)
      assert.deepEqual((await readdir(join(env.store.paths.mounts, 'bare'))).sort(), ['mount-id', 'parent'])
      const bareRoot = await env.store.mount('bare')
      await assert.rejects(lstat(join(bareRoot, '.dockerenv')), { code: 'ENOENT' })
      assert.equal((await readFile(join(bareRoot, 'etc/hostname'), 'utf8')).trim(), 'strata-test')
    })

    test('a container’s writes: changes, and a diff that reproduces them as a layer', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await registerBase(env)
      env.defer(() => base.release())
      await env.store.createMount('c1', base.chainId)
      env.defer(() => env.store.removeMount('c1', { force: true }))
      const rootfs = await env.store.mount('c1')
      await mkdir(join(rootfs, 'app'))
      await writeFile(join(rootfs, 'app/data.txt'), 'written in the container\n')
      await unlink(join(rootfs, 'etc/passwd'))
      await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\n')
      await rm(join(rootfs, 'home'), { recursive: true })

      const changes = (await env.store.mountChanges('c1')).map((c) => `${c.kind} ${c.path}`)
      assert.deepEqual(changes, ['A /app', 'A /app/data.txt', 'C /etc', 'C /etc/group', 'D /etc/passwd', 'D /home'])
      assert.ok((await env.store.mountSize('c1')) >= 'written in the container\n'.length)

      // "commit": the diff registered on the image's layer.
      const diff = await collect(await env.store.mountDiff('c1'))
      const committed = (await env.store.register(Readable.from([diff]), base.chainId)).layer
      env.defer(() => committed.release())
      await env.store.createMount('c2', committed.chainId, { init: false })
      env.defer(() => env.store.removeMount('c2', { force: true }))
      const copy = await env.store.mount('c2')
      assert.equal(await readFile(join(copy, 'app/data.txt'), 'utf8'), 'written in the container\n')
      assert.equal(await readFile(join(copy, 'etc/group'), 'utf8'), 'root:x:0:\n')
      await assert.rejects(lstat(join(copy, 'etc/passwd')), { code: 'ENOENT' })
      await assert.rejects(lstat(join(copy, 'home')), { code: 'ENOENT' })
      await assert.rejects(lstat(join(copy, '.dockerenv')), { code: 'ENOENT' }, 'init files are not part of the diff')
    })

    test('mount counts are shared between processes; removal waits for the last unmount', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await registerBase(env)
      const m = await env.store.createMount('c1', base.chainId)
      await base.release()
      assert.ok(await env.store.has(base.chainId), 'the mount keeps its image layer')

      const path1 = await env.store.mount('c1')
      const [path2] = await inOtherProcess(env.root, driverName, `console.log(await store.mount('c1'))`)
      assert.equal(path2, path1)
      assert.equal((await env.store.getMount('c1')).mountCount, 2)
      assert.equal(await readFile(join(env.store.paths.mounts, 'c1', 'mount-count'), 'utf8'), '2')
      const mounted = async (): Promise<boolean> => (await env.driver.mountedLayers()).includes(m.mountId)
      if (driverName === 'overlay2') assert.ok(await mounted())

      await expectCode(env.store.removeMount('c1'), 'IN_USE')
      await env.store.unmount('c1')
      assert.equal((await env.store.getMount('c1')).mountCount, 1)
      if (driverName === 'overlay2') assert.ok(await mounted(), 'still mounted for the other process')
      await inOtherProcess(env.root, driverName, `await store.unmount('c1')`)
      assert.equal((await env.store.getMount('c1')).mountCount, 0)
      assert.equal(await mounted(), false)
      await expectCode(env.store.unmount('c1'), 'INVALID_ARGUMENT')

      // Forced removal of a mounted one, then the parent chain is collected.
      await env.store.mount('c1')
      await env.store.removeMount('c1', { force: true })
      await expectCode(env.store.getMount('c1'), 'NOT_FOUND')
      assert.equal(await env.store.has(base.chainId), false, 'the last mount on the image layer was its last reference')
      assert.deepEqual(await listDriverLayerIds(env.driver), [])
      assert.deepEqual(await readdir(env.store.paths.mounts), [])
      assert.deepEqual(await readdir(env.store.paths.tmp), [])
    })
  })
}
