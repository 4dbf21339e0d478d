/**
 * The vfs driver: the conformance suite (on the ext4 scratch disk, and on
 * an xfs loop filesystem with reflink, where child layers share extents),
 * then what is particular to vfs (dockerd's layout, atomic creation, crash
 * leftovers, the options dockerd's vfs accepts), and the driver registry.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, test } from 'node:test'
import { changesNaive } from '../src/archive/changes.js'
import { exportChanges } from '../src/archive/export.js'
import { isStrataError, type StrataErrorCode } from '../src/errors/index.js'
import { defaultRegistry, DriverRegistry, openDriver, VfsDriver, vfsFactory, type DriverFactory, type GraphDriver } from '../src/graphdriver/index.js'
import { driverConformance, newLayerId } from './helpers/driver-suite.js'
import { makeRichTree } from './helpers/fixtures.js'
import { createLoopFs, withLoopFs } from './helpers/loopfs.js'
import { findOnPath, requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { assertSameTree, snapshotTree } from './helpers/tree.js'

driverConformance(
  'vfs',
  async () => {
    const root = await mkdtemp(join(tmpdir(), 'strata-test-vfs-'))
    return { driver: await openDriver(root, 'vfs'), root, teardown: () => rm(root, { recursive: true, force: true }) }
  },
  // vfs cannot know a layer's children (see src/graphdriver/vfs/driver.ts); the layer store refuses instead.
  { skip: ['remove-with-children'] },
)

if (findOnPath('mkfs.xfs') !== undefined && findOnPath('losetup') !== undefined) {
  driverConformance(
    'vfs on xfs with reflink',
    async () => {
      const fs = await createLoopFs('xfs', 1024 * 1024 * 1024)
      try {
        const root = join(fs.dir, 'data-root')
        return { driver: await openDriver(root, 'vfs'), root, teardown: () => fs.dispose() }
      } catch (err) {
        await fs.dispose()
        throw err
      }
    },
    { skip: ['remove-with-children'] },
  )
} else {
  test('vfs driver conformance on xfs with reflink', (t) => {
    requireTool(t, 'mkfs.xfs', 'losetup')
  })
}

async function expectCode(what: Promise<unknown>, code: StrataErrorCode, mention?: string): Promise<void> {
  await assert.rejects(what, (err: unknown) => {
    assert.ok(isStrataError(err), `expected StrataError ${code}, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (mention !== undefined) assert.ok(err.message.includes(mention), `message should mention "${mention}": ${err.message}`)
    return true
  })
}

async function tarOfTree(dir: string): Promise<Readable> {
  return exportChanges(dir, await changesNaive(dir, null))
}

/** Opens vfs on a fresh root removed when the test ends. */
async function vfsIn(t: Parameters<typeof tempDirFor>[0]): Promise<{ root: string; driver: GraphDriver }> {
  const root = tempDirFor(t, 'vfs-')
  return { root, driver: await vfsFactory.open({ root }) }
}

/** A base layer of 50 files of 10 kB: a child's create copies for a while. */
async function baseWithFiles(driver: GraphDriver): Promise<string> {
  const base = newLayerId()
  await driver.create(base, null)
  const dir = await driver.get(base)
  for (let i = 0; i < 50; i++) await writeFile(join(dir, `f${i}`), randomBytes(10000))
  await driver.put(base)
  return base
}

describe('vfs driver specifics', () => {
  test("layers live in <root>/vfs/dir/<id>, as dockerd's vfs puts them", async (t) => {
    if (!requireRoot(t)) return
    const { root, driver } = await vfsIn(t)
    assert.equal(driver.name, 'vfs')
    assert.equal(driver.home, join(root, 'vfs'))
    assert.equal(((await stat(join(root, 'vfs'))).mode & 0o7777).toString(8), '700')
    assert.equal(((await stat(join(root, 'vfs/dir'))).mode & 0o7777).toString(8), '700')
    const base = newLayerId()
    const child = newLayerId()
    await driver.create(base, null)
    await driver.create(child, base)
    const init = `${child}-init`
    await driver.createReadWrite(init, child)
    assert.equal(await driver.get(base), join(root, 'vfs/dir', base))
    await driver.put(base)
    // The layer's files, a persistent get: the same directory; nothing is ever mounted.
    assert.equal(await driver.diffFilesDir(child), join(root, 'vfs/dir', child))
    assert.equal(await driver.get(child, { persistent: true }), join(root, 'vfs/dir', child))
    await expectCode(driver.put(child), 'INVALID_ARGUMENT', child)
    await driver.put(child, { persistent: true })
    await driver.put(child, { persistent: true })
    assert.deepEqual(await driver.mountedLayers(), [])
    assert.deepEqual(await readdir(join(root, 'vfs')), ['dir'])
    assert.deepEqual((await readdir(join(root, 'vfs/dir'))).sort(), [base, child, init].sort(), 'nothing but the layers (no temporary directories)')
    assert.deepEqual(await driver.status(), [])
    assert.deepEqual(await driver.getMetadata(base), {})
    await expectCode(driver.getMetadata(newLayerId()), 'NOT_FOUND')
    for (const id of [init, child, base]) await driver.remove(id)
    assert.deepEqual(await readdir(join(root, 'vfs/dir')), [])
  })

  test('a child is an exact and independent copy of its parent, hardlinks and root included', async (t) => {
    if (!requireRoot(t)) return
    const { driver } = await vfsIn(t)
    const src = tempDirFor(t, 'vfs-src-')
    await makeRichTree(src)
    const base = newLayerId()
    const child = newLayerId()
    await driver.create(base, null)
    await driver.applyDiff(base, null, await tarOfTree(src))
    await chmod(await driver.get(base), 0o750) // a root with its own metadata, which the child must copy
    await driver.put(base)
    await driver.create(child, base)
    const baseDir = await driver.get(base)
    const childDir = await driver.get(child)
    assertSameTree(await snapshotTree(childDir), await snapshotTree(baseDir), 'child differs from parent')
    const [b, c] = await Promise.all([lstat(join(baseDir, 'hard/a/first')), lstat(join(childDir, 'hard/a/first'))])
    assert.notEqual(c.ino, b.ino, 'the child shares an inode with its parent')
    assert.equal(c.nlink, 3)
    await writeFile(join(childDir, 'hard/third'), 'written in the child')
    assert.equal(await readFile(join(childDir, 'hard/a/first'), 'utf8'), 'written in the child', 'hardlinks inside the child are one inode')
    assert.notEqual(await readFile(join(baseDir, 'hard/a/first'), 'utf8'), 'written in the child', 'the write reached the parent')
    await driver.put(child)
    await driver.put(base)
  })

  test('on xfs with reflink, a child layer shares its parent\'s extents', async (t) => {
    if (!requireTool(t, 'filefrag')) return
    await withLoopFs(t, 'xfs', 1024 * 1024 * 1024, async (mnt) => {
      const driver = await vfsFactory.open({ root: join(mnt, 'root') })
      const base = newLayerId()
      const child = newLayerId()
      await driver.create(base, null)
      const baseDir = await driver.get(base)
      await writeFile(join(baseDir, 'big'), randomBytes(8 * 1024 * 1024))
      await driver.put(base)
      await driver.create(child, base)
      const childDir = await driver.get(child)
      const { stdout } = await run('filefrag', ['-v', join(childDir, 'big')])
      assert.match(stdout.toString(), /shared/, `the child's copy does not share extents:\n${stdout.toString()}`)
      await driver.put(child)
      await driver.remove(child)
      await driver.remove(base)
    })
  })

  test('temporary directories left by a crash are removed on open; layers are not', async (t) => {
    if (!requireRoot(t)) return
    const { root, driver } = await vfsIn(t)
    const id = newLayerId()
    await driver.create(id, null)
    const leftover = join(root, 'vfs/dir', `.tmp-${newLayerId()}-0123456789ab`)
    await mkdir(join(leftover, 'etc'), { recursive: true })
    await writeFile(join(leftover, 'etc/passwd'), 'half copied')
    await vfsFactory.open({ root })
    assert.equal(existsSync(leftover), false)
    assert.deepEqual(await readdir(join(root, 'vfs/dir')), [id])
  })

  test('a failed copy leaves neither the layer nor a temporary directory', async (t) => {
    if (!requireRoot(t)) return
    const { root, driver } = await vfsIn(t)
    const base = newLayerId()
    await driver.create(base, null)
    const dir = await driver.get(base)
    // A name that is not UTF-8: copyTree refuses it rather than copy something else.
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x66, 0xff, 0xfe])]), 'x')
    await driver.put(base)
    const child = newLayerId()
    await expectCode(driver.create(child, base), 'NOT_SUPPORTED', 'UTF-8')
    assert.equal(await driver.exists(child), false)
    assert.deepEqual(await readdir(join(root, 'vfs/dir')), [base])
    await driver.remove(base) // the parent is not left held by the failed create
  })

  test('ids that are not plain names are refused', async (t) => {
    if (!requireRoot(t)) return
    const { driver } = await vfsIn(t)
    for (const [id, code] of [
      ['', 'INVALID_ARGUMENT'],
      ['.', 'UNSAFE_PATH'],
      ['..', 'UNSAFE_PATH'],
      ['../escape', 'UNSAFE_PATH'],
      ['a/b', 'UNSAFE_PATH'],
      ['nul\0byte', 'INVALID_ARGUMENT'],
      ['.tmp-abc', 'INVALID_ARGUMENT'],
      ['x'.repeat(201), 'INVALID_ARGUMENT'],
    ] as const) {
      await expectCode(driver.create(id, null), code)
      await expectCode(driver.get(id), code)
      await expectCode(driver.remove(id), code)
      await expectCode(driver.exists(id), code)
    }
    await expectCode(driver.create(newLayerId(), '../etc'), 'UNSAFE_PATH')
  })

  test('remove: a missing layer is not an error; a layer with children is removed (vfs cannot know them)', async (t) => {
    if (!requireRoot(t)) return
    const { driver } = await vfsIn(t)
    await driver.remove(newLayerId())
    const base = newLayerId()
    const child = newLayerId()
    await driver.create(base, null)
    await writeFile(join(await driver.get(base), 'f'), 'f')
    await driver.put(base)
    await driver.create(child, base)
    await driver.remove(base)
    assert.equal(await readFile(join(await driver.get(child), 'f'), 'utf8'), 'f', 'the child is a full copy and survives its parent')
    await driver.put(child)
    await driver.remove(child)
  })

  test("dockerd vfs options: size needs quotas (not implemented), anything else is unknown", async (t) => {
    if (!requireRoot(t)) return
    const root = tempDirFor(t, 'vfs-opts-')
    await expectCode(openDriver(root, 'vfs', { size: '10G' }), 'NOT_SUPPORTED', 'size=10G')
    await expectCode(openDriver(root, 'vfs', { 'overlay2.size': '1G' }), 'INVALID_ARGUMENT', 'overlay2.size')
    const driver = await openDriver(root, 'vfs', { size: '0' })
    await expectCode(driver.create(newLayerId(), null, { storageOpt: { size: '1G' } }), 'NOT_SUPPORTED')
    await expectCode(driver.createReadWrite(newLayerId(), null, { storageOpt: { size: '1G' } }), 'NOT_SUPPORTED', 'size=1G')
    await expectCode(driver.createReadWrite(newLayerId(), null, { storageOpt: { inodes: '10' } }), 'INVALID_ARGUMENT', 'inodes')
  })

  test('two concurrent creates of one id: one wins, the other is ALREADY_EXISTS', async (t) => {
    if (!requireRoot(t)) return
    const { root, driver } = await vfsIn(t)
    const base = await baseWithFiles(driver)
    const id = newLayerId()
    const results = await Promise.allSettled([driver.create(id, base), driver.create(id, base)])
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
    assert.ok(isStrataError(failed.reason, 'ALREADY_EXISTS'), String(failed.reason))
    assert.deepEqual((await readdir(join(root, 'vfs/dir'))).sort(), [base, id].sort())
  })

  test('a remove asked for during a create of the same id waits for it and removes the new layer', async (t) => {
    if (!requireRoot(t)) return
    const { root, driver } = await vfsIn(t)
    const base = await baseWithFiles(driver)
    const id = newLayerId()
    // Both asked for before either runs: without the driver's per-id lock,
    // the remove finds nothing (the copy is still under its temp name) and
    // returns, and the create then publishes a layer nobody wanted.
    await Promise.all([driver.create(id, base), driver.remove(id)])
    assert.equal(await driver.exists(id), false)
    assert.deepEqual(await readdir(join(root, 'vfs/dir')), [base])
  })

  test('VfsDriver is the bare driver; vfsFactory gives it the naive diff methods', async (t) => {
    if (!requireRoot(t)) return
    const root = tempDirFor(t, 'vfs-bare-')
    const bare = await VfsDriver.open({ root })
    assert.equal('diff' in bare, false)
    assert.equal('applyLayer' in bare, false)
    const full = await vfsFactory.open({ root })
    const id = newLayerId()
    await full.create(id, null)
    assert.equal(await bare.exists(id), true, 'both see the same home')
    assert.deepEqual(await full.changes(id, null), [])
    assert.equal(await full.diffSize(id, null), 0)
    await full.remove(id)
  })
})

describe('driver registry', () => {
  /** A factory that records whether it was opened, with a fixed probe answer. */
  function fake(name: string, ok: boolean, reason = `${name} cannot run here (test)`): DriverFactory & { opened: number } {
    const f = {
      name,
      opened: 0,
      async probe() {
        return ok ? { ok } : { ok, reason }
      },
      async open({ root }: { root: string }) {
        f.opened++
        return { name, home: join(root, name) } as unknown as GraphDriver
      },
    }
    return f
  }

  function registry(...factories: DriverFactory[]): DriverRegistry {
    const r = new DriverRegistry()
    for (const f of factories) r.register(f)
    return r
  }

  async function withContent(root: string, name: string): Promise<void> {
    await mkdir(join(root, name, 'dir'), { recursive: true })
  }

  test('the default registry has vfs, and opens it by name', async (t) => {
    if (!requireRoot(t)) return
    assert.ok(defaultRegistry.names().includes('vfs'))
    const root = tempDirFor(t, 'registry-')
    const d = await openDriver(root, 'vfs')
    assert.equal(d.name, 'vfs')
    assert.equal(typeof d.diff, 'function')
  })

  test('without a name: the first driver in DRIVER_ORDER whose probe succeeds', async (t) => {
    const root = tempDirFor(t, 'registry-')
    const r = registry(fake('vfs', true), fake('btrfs', true), fake('overlay2', false))
    assert.deepEqual(r.names(), ['overlay2', 'btrfs', 'vfs'])
    assert.equal((await r.open(root)).name, 'btrfs')
  })

  test("without a name: a prior run's driver is preferred, vfs's prior state is ignored (as dockerd)", async (t) => {
    const root = tempDirFor(t, 'registry-')
    const r = registry(fake('overlay2', true), fake('btrfs', true), fake('vfs', true))
    await withContent(root, 'vfs')
    assert.equal((await r.open(root)).name, 'overlay2', 'vfs state does not pin the root to vfs')
    await withContent(root, 'btrfs')
    assert.equal((await r.open(root)).name, 'btrfs', 'the prior btrfs state wins over the higher-priority overlay2')
    await mkdir(join(root, 'overlay2'))
    assert.equal((await r.open(root)).name, 'btrfs', 'an empty home is not prior state')
    await withContent(root, 'overlay2')
    await expectCode(r.open(root), 'INVALID_ARGUMENT', 'several storage drivers')
  })

  test('a prior driver that can no longer run is an error, not a silent switch', async (t) => {
    const root = tempDirFor(t, 'registry-')
    const btrfs = fake('btrfs', false, `${root} is on ext4, btrfs needs a btrfs filesystem`)
    const r = registry(fake('overlay2', true), btrfs)
    await withContent(root, 'btrfs')
    await expectCode(r.open(root), 'NOT_SUPPORTED', `storage driver "btrfs" cannot run on ${root}: ${root} is on ext4`)
    assert.equal(btrfs.opened, 0)
  })

  test("by name: NOT_SUPPORTED with the probe's reason; unknown names list the known drivers", async (t) => {
    const root = tempDirFor(t, 'registry-')
    const r = registry(fake('overlay2', true), fake('btrfs', false, 'not a btrfs filesystem'))
    await expectCode(r.open(root, 'btrfs'), 'NOT_SUPPORTED', `storage driver "btrfs" cannot run on ${root}: not a btrfs filesystem`)
    await expectCode(r.open(root, 'zfs'), 'INVALID_ARGUMENT', 'known: overlay2, btrfs')
    assert.equal((await r.open(root, 'overlay2')).name, 'overlay2')
  })

  test('no usable driver: NOT_SUPPORTED naming each reason; registration is by name, once', async (t) => {
    const root = tempDirFor(t, 'registry-')
    const overlay = fake('overlay2', false, 'no overlay here')
    const r = registry(overlay, fake('btrfs', false, 'no btrfs here'))
    await expectCode(r.open(root), 'NOT_SUPPORTED', 'overlay2: no overlay here; btrfs: no btrfs here')
    r.register(overlay) // the same factory again: fine
    assert.throws(() => r.register(fake('overlay2', true)), (err: unknown) => isStrataError(err, 'ALREADY_EXISTS'))
  })
})
