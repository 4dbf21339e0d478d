/**
 * The btrfs graph driver on a real btrfs: a 2 GiB sparse image on a loop
 * device, shared by the tests in this file (mkfs and mount take a second;
 * every test works under its own data root on it). The fs is always
 * unmounted and the loop device detached in `after`.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { lstat, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { sha256Of } from '../src/digest/index.js'
import { isStrataError } from '../src/errors/index.js'
import { BtrfsDriver, btrfsFactory } from '../src/graphdriver/btrfs/index.js'
import { openBtrfsDriver, probeBtrfs } from '../src/graphdriver/btrfs/driver.js'
import { fsName, lutimens, statfs } from '../src/sys/index.js'
import { createLoopFs, withLoopFs, type LoopFs } from './helpers/loopfs.js'
import { findOnPath, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { asDockerLayerCarries, assertSameTree, snapshotTree } from './helpers/tree.js'
import { driverConformance } from './helpers/driver-suite.js'

const GiB = 1024 ** 3

/** Why the btrfs tests cannot run here, or undefined. Under CI a missing prerequisite fails instead (see peers.ts). */
function missingPrerequisite(): string | undefined {
  let why: string | undefined
  if (process.getuid?.() !== 0) why = 'needs root (mount, losetup)'
  for (const tool of ['mkfs.btrfs', 'losetup', 'mount', 'btrfs']) {
    if (why === undefined && findOnPath(tool) === undefined) why = `needs ${tool} (not installed)`
  }
  if (why !== undefined && process.env.CI) throw new Error(`btrfs driver tests: ${why}; required in CI`)
  return why
}

const skip = missingPrerequisite()

function assertCode(code: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(isStrataError(err), `expected a StrataError, got ${String(err)}`)
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`)
    return true
  }
}

/** `btrfs subvolume list` of the fs, as the paths it prints. */
async function subvolumeList(mnt: string): Promise<string[]> {
  const out = (await run('btrfs', ['subvolume', 'list', mnt])).stdout.toString()
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.replace(/^.* path /, ''))
}

test('probe: a data root on a non-btrfs filesystem is refused, with the reason', async (t) => {
  const dir = tempDirFor(t, 'btrfs-probe-')
  const fs = fsName(statfs(dir).type)
  if (fs === 'btrfs') return t.skip('the temp dir is on btrfs here')
  const root = join(dir, 'root')
  const expected = `"${root}" is on ${fs}, not btrfs; the btrfs driver needs its data root on a btrfs filesystem`
  assert.deepEqual(await probeBtrfs(root), { ok: false, reason: expected })
  await assert.rejects(openBtrfsDriver({ root }), (err: unknown) => {
    assertCode('NOT_SUPPORTED')(err)
    assert.equal((err as Error).message, expected)
    return true
  })
  // open() refused before touching anything.
  await assert.rejects(stat(root), { code: 'ENOENT' })
})

test('probe: a data root whose ancestors do not exist is judged by the nearest one that does', async () => {
  const root = join(tmpdir(), 'strata-test-no-such-dir', 'a', 'b')
  const res = await probeBtrfs(root)
  assert.equal(res.ok, fsName(statfs(tmpdir()).type) === 'btrfs')
})

describe('btrfs driver on a loop btrfs', { skip }, () => {
  let fs: LoopFs
  let n = 0
  /** A fresh data root on the btrfs for one test. */
  const newRoot = (): string => join(fs.dir, `root${++n}`)

  before(async () => {
    fs = await createLoopFs('btrfs', 2 * GiB)
  })
  after(async () => {
    await fs?.dispose()
  })

  test('probe and open succeed; home is created 0710', async () => {
    const root = newRoot()
    assert.deepEqual(await probeBtrfs(root), { ok: true })
    const d = await openBtrfsDriver({ root })
    assert.ok(d instanceof BtrfsDriver)
    assert.equal(d.name, 'btrfs')
    assert.equal(d.home, join(root, 'btrfs'))
    assert.equal((await stat(d.home)).mode & 0o7777, 0o710)
    assert.equal((await stat(root)).mode & 0o7777, 0o711)
    assert.deepEqual(await d.status(), [['Btrfs', '']])
  })

  test('open refuses quota and unknown options', async () => {
    await assert.rejects(openBtrfsDriver({ root: newRoot(), options: { 'btrfs.min_space': '10G' } }), assertCode('NOT_SUPPORTED'))
    await assert.rejects(openBtrfsDriver({ root: newRoot(), options: { 'overlay2.size': '10G' } }), assertCode('INVALID_ARGUMENT'))
  })

  test('create: a base layer is an empty subvolume with a 0755 root, whatever the umask', async () => {
    const d = await openBtrfsDriver({ root: newRoot() })
    const old = process.umask(0o077)
    try {
      await d.create('base', null)
    } finally {
      process.umask(old)
    }
    const path = join(d.home, 'subvolumes', 'base')
    const st = await lstat(path)
    assert.equal(st.ino, 256, 'a subvolume root has inode 256')
    assert.equal(st.mode & 0o7777, 0o755)
    assert.equal(st.uid, 0)
    assert.equal(st.gid, 0)
    assert.deepEqual(await readdir(path), [])
    assert.equal((await stat(join(d.home, 'subvolumes'))).mode & 0o7777, 0o710)
    assert.equal(await d.exists('base'), true)
    assert.equal(await d.exists('other'), false)
    assert.deepEqual(await d.getMetadata('base'), {})
  })

  test('create: a child is a snapshot that sees the parent and changes alone', async () => {
    const root = newRoot()
    const d = await openBtrfsDriver({ root })
    await d.create('p', null)
    const p = await d.get('p')
    await mkdir(join(p, 'etc'))
    await writeFile(join(p, 'etc/hostname'), 'parent\n')
    await writeFile(join(p, 'keep'), 'keep\n')
    await d.put('p')

    await d.createReadWrite('c', 'p')
    const c = await d.get('c')
    assert.equal(c, join(d.home, 'subvolumes', 'c'))
    assert.equal(await readFile(join(c, 'etc/hostname'), 'utf8'), 'parent\n')
    await writeFile(join(c, 'etc/hostname'), 'child\n')
    await writeFile(join(c, 'new'), 'new\n')
    await d.put('c')

    assert.equal(await readFile(join(p, 'etc/hostname'), 'utf8'), 'parent\n')
    await assert.rejects(stat(join(p, 'new')), { code: 'ENOENT' })

    const rel = root.slice(fs.dir.length + 1)
    const list = await subvolumeList(fs.dir)
    assert.ok(list.includes(`${rel}/btrfs/subvolumes/p`), list.join('\n'))
    assert.ok(list.includes(`${rel}/btrfs/subvolumes/c`), list.join('\n'))
    // The child is a snapshot of the parent: `btrfs subvolume show` names it.
    const show = (await run('btrfs', ['subvolume', 'show', c])).stdout.toString()
    const parentUuid = /Parent UUID:\s+(\S+)/.exec(show)?.[1]
    const uuid = /^\s*UUID:\s+(\S+)/m.exec((await run('btrfs', ['subvolume', 'show', p])).stdout.toString())?.[1]
    assert.ok(uuid !== undefined && uuid !== '-')
    assert.equal(parentUuid, uuid)
  })

  test('create: errors name the layer', async () => {
    const d = await openBtrfsDriver({ root: newRoot() })
    await d.create('a', null)
    await assert.rejects(d.create('a', null), assertCode('ALREADY_EXISTS'))
    await assert.rejects(d.create('b', 'missing'), (err: unknown) => {
      assertCode('NOT_FOUND')(err)
      assert.match((err as Error).message, /"b".*"missing"/)
      return true
    })
    assert.equal(await d.exists('b'), false)
    for (const bad of ['', '.', '..', 'x/y', 'a\0b', 'x'.repeat(256)]) {
      await assert.rejects(d.create(bad, null), assertCode('INVALID_ARGUMENT'), JSON.stringify(bad))
    }
    await assert.rejects(d.create('c', '../a'), assertCode('INVALID_ARGUMENT'))
    await assert.rejects(d.create('q', null, { storageOpt: { size: '10G' } }), assertCode('NOT_SUPPORTED'))
    await assert.rejects(d.createReadWrite('q', 'a', { storageOpt: { size: '10G' } }), assertCode('NOT_SUPPORTED'))
    await assert.rejects(d.create('q', null, { storageOpt: { foo: 'bar' } }), assertCode('INVALID_ARGUMENT'))
    assert.equal(await d.exists('q'), false)
    await assert.rejects(d.get('nope'), assertCode('NOT_FOUND'))
    await assert.rejects(d.remove('nope'), assertCode('NOT_FOUND'))
    await assert.rejects(d.getMetadata('nope'), assertCode('NOT_FOUND'))
  })

  test('concurrent creates of one id: exactly one wins', async () => {
    const d = await openBtrfsDriver({ root: newRoot() })
    const results = await Promise.allSettled([d.create('x', null), d.create('x', null), d.create('x', null)])
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
    for (const r of results) if (r.status === 'rejected') assertCode('ALREADY_EXISTS')(r.reason)
  })

  test('get/put are counted; remove refuses a layer in use', async () => {
    const d = await openBtrfsDriver({ root: newRoot() })
    await d.create('l', null)
    const a = await d.get('l')
    const b = await d.get('l')
    assert.equal(a, b)
    await d.put('l')
    await assert.rejects(d.remove('l'), assertCode('IN_USE'))
    await d.put('l')
    await assert.rejects(d.put('l'), (err: unknown) => {
      assertCode('INVALID_ARGUMENT')(err)
      assert.match((err as Error).message, /"l"/)
      return true
    })
    await assert.rejects(d.put('never'), assertCode('INVALID_ARGUMENT'))
    await d.get('l')
    await d.cleanup()
    // cleanup dropped the reference, as an unmount would have.
    await d.remove('l')
    assert.equal(await d.exists('l'), false)
  })

  test('remove: refuses a layer with children, then deletes the subvolume', async () => {
    const root = newRoot()
    const rel = root.slice(fs.dir.length + 1)
    const d = await openBtrfsDriver({ root })
    await d.create('base', null)
    await d.create('mid', 'base')
    await d.create('top', 'mid')
    await d.create('other', null)
    await assert.rejects(d.remove('base'), (err: unknown) => {
      assertCode('IN_USE')(err)
      assert.match((err as Error).message, /"mid"/)
      return true
    })
    await assert.rejects(d.remove('mid'), assertCode('IN_USE'))
    await d.remove('other')
    await d.remove('top')
    await d.remove('mid')
    await d.remove('base')
    const list = await subvolumeList(fs.dir)
    assert.deepEqual(list.filter((p) => p.startsWith(`${rel}/`)), [])
    assert.deepEqual(await readdir(join(d.home, 'subvolumes')), [])
  })

  test('remove: deletes subvolumes nested inside the layer first', async () => {
    const root = newRoot()
    const rel = root.slice(fs.dir.length + 1)
    const d = await openBtrfsDriver({ root })
    await d.create('outer', null)
    const p = await d.get('outer')
    await mkdir(join(p, 'var/lib'), { recursive: true })
    await run('btrfs', ['subvolume', 'create', join(p, 'var/lib/nested')])
    await writeFile(join(p, 'var/lib/nested/file'), 'x')
    await run('btrfs', ['subvolume', 'create', join(p, 'var/lib/nested/deeper')])
    await run('btrfs', ['subvolume', 'create', join(p, 'sibling')])
    await d.put('outer')
    assert.equal((await subvolumeList(fs.dir)).filter((x) => x.startsWith(`${rel}/`)).length, 4)
    await d.remove('outer')
    assert.equal(await d.exists('outer'), false)
    assert.deepEqual((await subvolumeList(fs.dir)).filter((x) => x.startsWith(`${rel}/`)), [])
  })

  test('remove: a plain directory in place of a subvolume is removed too', async () => {
    const d = await openBtrfsDriver({ root: newRoot() })
    await d.create('real', null)
    const plain = join(d.home, 'subvolumes', 'plain')
    await mkdir(join(plain, 'sub'), { recursive: true })
    await writeFile(join(plain, 'sub/f'), 'f')
    assert.equal(await d.exists('plain'), true)
    await assert.rejects(d.create('child', 'plain'), assertCode('CORRUPT'))
    await d.remove('plain')
    assert.equal(await d.exists('plain'), false)
    assert.equal(await d.exists('real'), true)
  })

  test('a snapshot shares the unchanged extents of its parent', async () => {
    const d = await openBtrfsDriver({ root: newRoot() })
    await d.create('big', null)
    const p = await d.get('big')
    const MiB = 1024 * 1024
    const chunk = randomBytes(MiB)
    const fh = await import('node:fs/promises').then((m) => m.open(join(p, 'blob'), 'w'))
    try {
      for (let i = 0; i < 100; i++) await fh.write(chunk)
    } finally {
      await fh.close()
    }
    await d.put('big')
    await run('btrfs', ['filesystem', 'sync', fs.dir])
    await d.create('snap', 'big')
    const c = await d.get('snap')
    await run('btrfs', ['filesystem', 'sync', fs.dir])
    // Total / Exclusive / Set shared, in bytes.
    const out = (await run('btrfs', ['filesystem', 'du', '-s', '--raw', c])).stdout.toString()
    const row = out.trim().split('\n').at(-1)?.trim().split(/\s+/) ?? []
    const [total, exclusive, shared] = row.slice(0, 3).map(Number)
    assert.equal(total, 100 * MiB, out)
    assert.equal(exclusive, 0, out)
    assert.equal(shared, 100 * MiB, out)
    await d.put('snap')
  })

  test('btrfsFactory.open: the naive diff round-trips a layer between snapshots', async () => {
    assert.equal(btrfsFactory.name, 'btrfs')
    assert.deepEqual(await btrfsFactory.probe(newRoot()), { ok: true })
    const d = await btrfsFactory.open({ root: newRoot() })
    assert.equal(d.name, 'btrfs')
    await d.create('base', null)
    const base = await d.get('base')
    await mkdir(join(base, 'etc'))
    await writeFile(join(base, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n')
    await writeFile(join(base, 'etc/gone'), 'gone\n')
    await mkdir(join(base, 'opaque/sub'), { recursive: true })
    await writeFile(join(base, 'opaque/sub/old'), 'old\n')
    await d.put('base')

    await d.create('layer', 'base')
    const layer = await d.get('layer')
    await writeFile(join(layer, 'etc/passwd'), 'root:x:0:0::/root:/bin/bash\n')
    await rm(join(layer, 'etc/gone'))
    await writeFile(join(layer, 'added'), 'added!\n')
    await rm(join(layer, 'opaque'), { recursive: true })
    await mkdir(join(layer, 'opaque'))
    await writeFile(join(layer, 'opaque/new'), 'new\n')
    await d.put('layer')

    const changes = await d.changes('layer', 'base')
    const byPath = new Map(changes.map((c) => [c.path, c.kind]))
    assert.equal(byPath.get('/etc/passwd'), 'C')
    assert.equal(byPath.get('/etc/gone'), 'D')
    assert.equal(byPath.get('/added'), 'A')
    assert.equal(byPath.get('/opaque/new'), 'A')

    const size = await d.diffSize('layer', 'base')
    const tar = Buffer.concat(await (await d.diff('layer', 'base')).toArray())
    await d.create('copy', 'base')
    const applied = await d.applyLayer('copy', 'base', Readable.from([tar]))
    assert.equal(applied.size, size)
    assert.equal(applied.diffId, sha256Of(tar))
    // The layer's files are its subvolume; nothing is mounted, persistently or not.
    assert.equal(await d.diffFilesDir('copy'), join(d.home, 'subvolumes', 'copy'))
    assert.equal(await d.get('copy', { persistent: true }), join(d.home, 'subvolumes', 'copy'))
    await d.put('copy', { persistent: true })
    assert.deepEqual(await d.mountedLayers(), [])
    const a = await d.get('layer')
    const b = await d.get('copy')
    try {
      // As a dockerd layer carries them: mtimes to the second, only security.capability.
      assertSameTree(asDockerLayerCarries(await snapshotTree(a, { dirMtimes: false })), asDockerLayerCarries(await snapshotTree(b, { dirMtimes: false })))
    } finally {
      await d.put('layer')
      await d.put('copy')
    }
    // diff released what it held: everything can go, children first.
    await assert.rejects(d.remove('base'), assertCode('IN_USE'))
    await d.remove('copy')
    await d.remove('layer')
    await d.remove('base')
    await d.cleanup()
  })

  test('naive diff: a same-size rewrite with its mtime restored, right after the snapshot, is a change; untouched files are not read', async () => {
    const root = newRoot()
    const d = await btrfsFactory.open({ root })
    await d.create('base', null)
    const base = await d.get('base')
    await writeFile(join(base, 'untouched'), 'same\n')
    // Past the coarse-clock margin: "untouched" is older than the snapshot.
    await new Promise((resolve) => setTimeout(resolve, 120))
    // "config" is written, snapshotted and rewritten within a tick or so: same ctime is likely.
    await writeFile(join(base, 'config'), 'v1\n')
    await d.put('base')
    await d.create('child', 'base')
    const child = await d.get('child')
    // Within the same clock tick as the snapshot: inode, size and (restored) mtime all equal.
    const before = await lstat(join(child, 'config'), { bigint: true })
    await writeFile(join(child, 'config'), 'v2\n')
    const ns = before.mtimeNs
    lutimens(join(child, 'config'), { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) }, { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) })
    await d.put('child')
    assert.deepEqual((await d.changes('child', 'base')).map((c) => `${c.kind} ${c.path}`), ['C /config'])
    const raw = await openBtrfsDriver({ root })
    const before2 = raw.untouchedBefore('child')
    assert.ok(before2 !== undefined, 'a snapshot has a snapshot time')
    assert.equal(raw.untouchedBefore('base'), undefined, 'a base subvolume is no snapshot')
    const untouched = await lstat(join(d.home, 'subvolumes/child/untouched'), { bigint: true })
    assert.ok(untouched.ctimeNs < before2, 'a file written before the snapshot counts as untouched')
    await d.remove('child')
    await d.remove('base')
    await d.cleanup()
  })
})

describe('loopfs helper', { skip }, () => {
  test('withLoopFs mounts the filesystem and always takes it down, even when fn throws', async (t) => {
    let seen: { dir: string; type: string } | undefined
    await assert.rejects(
      withLoopFs(t, 'btrfs', 256 * 1024 * 1024, async (dir) => {
        seen = { dir, type: fsName(statfs(dir).type) }
        throw new Error('boom')
      }),
      /boom/,
    )
    assert.equal(seen?.type, 'btrfs')
    // The scratch dir (image, mount point) is gone, and with it the loop device's backing file.
    await assert.rejects(stat(seen?.dir ?? ''), { code: 'ENOENT' })
    const loops = (await run('losetup', ['-a'])).stdout.toString()
    assert.ok(!loops.includes(join(seen?.dir ?? '', '..')), loops)
  })

  test('createLoopFs makes xfs with reflink', async (t) => {
    if (findOnPath('mkfs.xfs') === undefined) return t.skip('needs mkfs.xfs (not installed)')
    const x = await createLoopFs('xfs', 512 * 1024 * 1024)
    try {
      assert.equal(fsName(statfs(x.dir).type), 'xfs')
      assert.match(x.device, /^\/dev\/loop\d+$/)
      const info = (await run('xfs_info', [x.dir]).catch(() => undefined))?.stdout.toString()
      if (info !== undefined) assert.match(info, /reflink=1/)
    } finally {
      await x.dispose()
    }
  })
})

// The shared conformance suite, on a loop btrfs of its own per setup (the
// "cleanup" case asks for a second instance). btrfs passes every case,
// remove-with-children included: children are found as snapshots.
if (skip === undefined) {
  driverConformance('btrfs', async () => {
    const lfs = await createLoopFs('btrfs', 2 * GiB)
    try {
      const root = join(lfs.dir, 'data')
      return { driver: await btrfsFactory.open({ root }), root, teardown: () => lfs.dispose() }
    } catch (err) {
      await lfs.dispose()
      throw err
    }
  })
} else {
  test('btrfs driver conformance', { skip }, () => {})
}
