/**
 * The aufs driver: the conformance suite (mounted through fuse-overlayfs:
 * this kernel has no aufs), then what is particular to aufs: the mount
 * option pages dockerd builds for the kernel's aufs (pure), dockerd's
 * files on disk, aufs whiteouts in read-only branches, the overlay-style
 * whiteouts fuse-overlayfs leaves in a read-write branch and the aufs/OCI
 * tar made of them, byte-identical export through tar-split, the registry
 * (a root that has aufs/ keeps it; a fresh root never gets it), and bad
 * input named after the attack. Real fuse mounts, as root; every test
 * unmounts what it mounted and checks nothing is left under its root.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { chmod, link, lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { describe, test, type TestContext } from 'node:test'
import { readTar, encodeHeader, padding, END_OF_ARCHIVE, type TarHeaderInput } from '../src/archive/tar/index.js'
import { assembleTar, directoryFileGetter, readTarSplit } from '../src/archive/tarsplit/index.js'
import { sha256Of } from '../src/digest/index.js'
import { isStrataError, type StrataErrorCode } from '../src/errors/index.js'
import { aufsMountPlan, fuseOverlayfsArgs, layersFileContent, parseLayersFile } from '../src/graphdriver/aufs/index.js'
import { openDriver, type GraphDriver } from '../src/graphdriver/index.js'
import { lsetxattr, mknod, MNT_DETACH, S_IFCHR, umount2 } from '../src/sys/index.js'
import { driverConformance, mountPoints, newLayerId } from './helpers/driver-suite.js'
import { requireRoot, requireTool } from './helpers/peers.js'

const PREFIX = 'strata-test-aufs-'

/** Mount points at or under `dir`, deepest first. */
function mountsUnder(dir: string): string[] {
  return mountPoints().filter((m) => m === dir || m.startsWith(`${dir}/`)).reverse()
}

/** Unmounts what is left under `root` (failing the test if anything was), then removes it. */
async function disposeRoot(root: string): Promise<void> {
  const left = mountsUnder(root)
  for (const m of left) umount2(m, MNT_DETACH)
  await rm(root, { recursive: true, force: true })
  assert.deepEqual(left, [], `mounts left under ${root}`)
}

driverConformance(
  'aufs',
  async () => {
    const root = await mkdtemp(join(tmpdir(), `${PREFIX}suite-`))
    const driver = await openDriver(root, 'aufs', { 'aufs.mount': 'fuse' })
    return { driver, root, teardown: () => disposeRoot(root) }
  },
  {
    sizeRule: 'directory',
    lazyLinkCounts: "fuse-overlayfs reports a lower file's link count from the names it has looked up so far",
  },
)

// ---------------------------------------------------------------------------
// Helpers

/** An aufs driver (fuse-overlayfs) on a fresh root, cleaned up, unmounted and removed when `t` ends. */
async function scratchDriver(t: TestContext): Promise<{ root: string; driver: GraphDriver }> {
  const root = await mkdtemp(join(tmpdir(), PREFIX))
  const driver = await openDriver(root, 'aufs', { 'aufs.mount': 'fuse' })
  t.after(async () => {
    try {
      await driver.cleanup()
    } finally {
      await disposeRoot(root)
    }
  })
  return { root, driver }
}

type Entry = Omit<TarHeaderInput, 'size'> & { body?: string }

/** A layer tar of `entries` (regular files carry `body`), fixed times, made with strata's encoder so hostile names can be written. */
function tarOf(entries: Entry[]): Buffer {
  const parts: Buffer[] = []
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '')
    const { body: _, ...h } = e
    parts.push(encodeHeader({ mode: 0o644, mtime: { sec: 1700000000, nsec: 0 }, ...h, size: e.type === 'file' ? body.length : 0 }))
    if (e.type === 'file') parts.push(body, padding(body.length))
  }
  parts.push(END_OF_ARCHIVE)
  return Buffer.concat(parts)
}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** The member names of a tar, in order. */
async function tarNames(tar: Buffer): Promise<string[]> {
  const out: string[] = []
  for await (const e of readTar(Readable.from([tar]))) {
    out.push(e.header.name)
    for await (const _ of e.body()) void _
  }
  return out
}

async function expectError(what: Promise<unknown>, code: StrataErrorCode, ...mentions: string[]): Promise<void> {
  await assert.rejects(what, (err: unknown) => {
    assert.ok(isStrataError(err), `expected a StrataError ${code}, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    for (const m of mentions) assert.ok(err.message.includes(m), `the message should name "${m}": ${err.message}`)
    return true
  })
}

function mode(st: { mode: number }): string {
  return (st.mode & 0o7777).toString(8)
}

// ---------------------------------------------------------------------------
// Pure: dockerd's option pages and layers files

describe('aufs mount options (dockerd 20.10 aufsMount, pure)', () => {
  test('a few branches fit one mount(2): br:<rw>=rw:<ro>=ro+wh..., then dio,xino and dirperm1', () => {
    assert.deepEqual(aufsMountPlan('/d/rw', ['/d/p', '/d/b'], { dirperm1: true }), {
      data: 'br:/d/rw=rw:/d/p=ro+wh:/d/b=ro+wh,dio,xino=/dev/shm/aufs.xino,dirperm1',
      appends: [],
    })
    assert.equal(aufsMountPlan('/d/rw', ['/d/b'], { dirperm1: false }).data, 'br:/d/rw=rw:/d/b=ro+wh,dio,xino=/dev/shm/aufs.xino')
  })

  test('127 branches under /var/lib/docker/aufs/diff: 40 in the first page, then remounts of 38 "append:" pieces, in order', () => {
    const dir = (n: number): string => `/var/lib/docker/aufs/diff/${n.toString(16).padStart(64, '0')}`
    const ro = Array.from({ length: 126 }, (_, i) => dir(i + 1))
    for (const dirperm1 of [false, true]) {
      const plan = aufsMountPlan(dir(0), ro, { dirperm1 })
      const room = 4096 - 54 - (dirperm1 ? 9 : 0)
      const first = plan.data.slice(0, plan.data.indexOf(',dio'))
      assert.ok(Buffer.byteLength(first) <= room, 'the branch list fits the room dockerd leaves')
      const firstRo = first.split(':').filter((p) => p.endsWith('=ro+wh'))
      assert.equal(firstRo.length, 40, 'read-only branches in the first mount')
      assert.deepEqual(plan.appends.map((a) => a.split(',').filter((p) => p !== '').length), [38, 38, 10])
      for (const a of plan.appends) assert.ok(Buffer.byteLength(a) <= room)
      const order = [...firstRo.map((p) => p.replace(/=ro\+wh$/, '')), ...plan.appends.flatMap((a) => a.split(',').filter((p) => p !== '').map((p) => p.replace(/^append:/, '').replace(/=ro\+wh$/, '')))]
      assert.deepEqual(order, ro, 'every branch once, nearest first')
    }
  })

  test('a branch longer than the page is NOT_SUPPORTED (dockerd would loop forever), and option separators are refused', () => {
    assert.throws(() => aufsMountPlan('/rw', [`/${'x'.repeat(5000)}`], { dirperm1: false }), (e: unknown) => isStrataError(e, 'NOT_SUPPORTED'))
    assert.throws(() => aufsMountPlan('/rw', ['/a,b'], { dirperm1: false }), (e: unknown) => isStrataError(e, 'INVALID_ARGUMENT'))
    assert.throws(() => fuseOverlayfsArgs('/rw', ['/a:b'], '/w', '/m'), (e: unknown) => isStrataError(e, 'INVALID_ARGUMENT'))
    assert.deepEqual(fuseOverlayfsArgs('/rw', ['/p', '/b'], '/w', '/m'), ['-o', 'lowerdir=/p:/b,upperdir=/rw,workdir=/w', '/m'])
  })

  test('layers files: every ancestor nearest first, one per line; a line that is not a plain id, or a loop, is CORRUPT', () => {
    assert.equal(layersFileContent(null, []), '')
    assert.equal(layersFileContent('p', ['g', 'b']), 'p\ng\nb\n')
    assert.deepEqual(parseLayersFile('p\n\ng\r\nb\n', 'x'), ['p', 'g', 'b'])
    assert.throws(() => parseLayersFile('p\n../../etc\n', 'x'), (e: unknown) => isStrataError(e, 'CORRUPT') && e.message.includes('../../etc'))
    assert.throws(() => parseLayersFile('p\nx\n', 'x'), (e: unknown) => isStrataError(e, 'CORRUPT'))
    assert.throws(() => parseLayersFile('p\np\n', 'x'), (e: unknown) => isStrataError(e, 'CORRUPT'))
  })
})

// ---------------------------------------------------------------------------
// On disk and mounted

describe('aufs driver on disk (fuse-overlayfs)', { skip: process.getuid?.() !== 0 && !process.env.CI ? 'needs root' : false }, () => {
  test("dockerd 20.10's files: home, diff/, layers/, mnt/ 0701; a layer's diff and mnt dirs 0755; layers files list ancestors nearest first", async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs')) return
    const { root, driver } = await scratchDriver(t)
    const home = join(root, 'aufs')
    for (const d of [home, join(home, 'diff'), join(home, 'layers'), join(home, 'mnt')]) assert.equal(mode(await stat(d)), '701', d)
    const base = newLayerId()
    const child = newLayerId()
    const grandchild = newLayerId()
    await driver.create(base, null)
    await driver.create(child, base)
    await driver.createReadWrite(grandchild, child)
    for (const id of [base, child, grandchild]) {
      assert.equal(mode(await stat(join(home, 'diff', id))), '755')
      assert.equal(mode(await stat(join(home, 'mnt', id))), '755')
      assert.equal(mode(await stat(join(home, 'layers', id))), '644')
    }
    assert.equal(await readFile(join(home, 'layers', base), 'utf8'), '')
    assert.equal(await readFile(join(home, 'layers', child), 'utf8'), `${base}\n`)
    assert.equal(await readFile(join(home, 'layers', grandchild), 'utf8'), `${child}\n${base}\n`)
    assert.deepEqual((await readdir(join(home, 'layers'))).sort(), [base, child, grandchild].sort(), 'no temp files left in layers/')
    // A base layer is its diff dir; a child is mounted at mnt/<id> through fuse-overlayfs.
    assert.equal(await driver.get(base), join(home, 'diff', base))
    const path = await driver.get(grandchild)
    assert.equal(path, join(home, 'mnt', grandchild))
    assert.ok(mountPoints().includes(path), 'mnt/<id> is a mount point')
    assert.deepEqual(await driver.mountedLayers(), [grandchild])
    assert.ok(existsSync(join(home, 'fuse-work', grandchild)), "fuse-overlayfs's work dir exists while mounted")
    await driver.put(grandchild)
    await driver.put(base)
    assert.ok(!mountPoints().includes(path), 'the last put unmounts')
    assert.ok(!existsSync(join(home, 'fuse-work', grandchild)), 'and removes the work dir')
    assert.deepEqual(await driver.mountedLayers(), [])
    for (const id of [grandchild, child, base]) await driver.remove(id)
    assert.deepEqual(await readdir(join(home, 'diff')), [])
    assert.deepEqual(await readdir(join(home, 'mnt')), [])
    assert.deepEqual(await readdir(join(home, 'layers')), [])
  })

  test('aufs whiteouts and opaque markers applied into a branch stay as they are, and hide what is below in every mount above', async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs')) return
    const { root, driver } = await scratchDriver(t)
    const base = newLayerId()
    await driver.create(base, null)
    await driver.applyDiff(base, null, Readable.from([tarOf([
      { name: 'gone', type: 'file', body: 'gone\n' },
      { name: 'keep', type: 'file', body: 'keep\n' },
      { name: 'dir/', type: 'dir', mode: 0o755 },
      { name: 'dir/old', type: 'file', body: 'old\n' },
    ])]))
    const child = newLayerId()
    await driver.create(child, base)
    const tar = tarOf([
      { name: '.wh.gone', type: 'file', mode: 0 },
      { name: 'dir/', type: 'dir', mode: 0o755 },
      { name: 'dir/.wh..wh..opq', type: 'file', mode: 0 },
      { name: 'dir/new', type: 'file', body: 'new\n' },
    ])
    const lines: string[] = []
    const applied = await driver.applyLayer(child, base, Readable.from([tar]), { tarSplit: (l) => lines.push(l) })
    const branch = join(root, 'aufs', 'diff', child)
    assert.deepEqual((await readdir(branch)).sort(), ['.wh.gone', 'dir'])
    assert.deepEqual((await readdir(join(branch, 'dir'))).sort(), ['.wh..wh..opq', 'new'])
    // Rebuilt from tar-split and the branch: the same bytes.
    const rebuilt: Buffer[] = []
    for await (const c of assembleTar(readTarSplit(Readable.from([lines.join('\n') + '\n']), false), directoryFileGetter(await driver.diffFilesDir(child)))) rebuilt.push(c)
    assert.equal(sha256Of(Buffer.concat(rebuilt)), applied.diffId, 'export through tar-split is byte-identical')
    assert.ok(Buffer.concat(rebuilt).equals(tar))
    const top = newLayerId()
    await driver.createReadWrite(top, child)
    const view = await driver.get(top)
    try {
      assert.deepEqual((await readdir(view)).sort(), ['dir', 'keep'])
      assert.deepEqual(await readdir(join(view, 'dir')), ['new'])
    } finally {
      await driver.put(top)
    }
    assert.deepEqual((await driver.changes(child, base)).map((c) => `${c.kind} ${c.path}`), ['D /dir', 'A /dir/new', 'D /gone'])
    assert.deepEqual(await tarNames(await drain(await driver.diff(child, base))), ['.wh.gone', 'dir/', 'dir/.wh..wh..opq', 'dir/new'])
  })

  test("a read-write branch gets fuse-overlayfs' whiteouts (0/0 devices, opaque xattr); changes and the diff tar read them as aufs/OCI whiteouts", async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs')) return
    const { root, driver } = await scratchDriver(t)
    const base = newLayerId()
    await driver.create(base, null)
    await driver.applyDiff(base, null, Readable.from([tarOf([
      { name: 'etc/', type: 'dir', mode: 0o755 },
      { name: 'etc/passwd', type: 'file', body: 'root\n' },
      { name: 'lib/', type: 'dir', mode: 0o755 },
      { name: 'lib/a', type: 'file', body: 'a\n' },
    ])]))
    const rw = newLayerId()
    await driver.createReadWrite(rw, base)
    const view = await driver.get(rw)
    try {
      await rm(join(view, 'etc/passwd'))
      await rm(join(view, 'lib'), { recursive: true })
      await mkdir(join(view, 'lib'))
      await writeFile(join(view, 'lib/b'), 'b\n')
      await mkdir(join(view, 'new'))
      await writeFile(join(view, 'new/f'), 'f\n')
    } finally {
      await driver.put(rw)
    }
    const branch = join(root, 'aufs', 'diff', rw)
    const dev = await lstat(join(branch, 'etc/passwd'))
    assert.ok(dev.isCharacterDevice() && dev.rdev === 0, 'fuse-overlayfs writes an overlay whiteout into the rw branch')
    assert.deepEqual((await driver.changes(rw, base)).map((c) => `${c.kind} ${c.path}`), ['C /etc', 'D /etc/passwd', 'D /lib', 'A /lib/b', 'A /new', 'A /new/f'])
    const names = await tarNames(await drain(await driver.diff(rw, base)))
    assert.deepEqual(names, ['etc/', 'etc/.wh.passwd', 'lib/', 'lib/.wh..wh..opq', 'lib/b', 'new/', 'new/f'], 'aufs/OCI whiteouts; no opaque marker on the new dir, which hides nothing')
    for (const n of names) assert.ok(!n.includes('.wh..opq') || n.endsWith('.wh..wh..opq'), `no fuse-overlayfs artifact in the tar: ${n}`)
  })

  test("both whiteout forms in one branch, and aufs's bookkeeping (.wh..wh.aufs, .wh..wh.plnk/, .wh..wh.orph/), are read as aufs reads them", async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs')) return
    const { root, driver } = await scratchDriver(t)
    const base = newLayerId()
    await driver.create(base, null)
    await driver.applyDiff(base, null, Readable.from([tarOf([
      { name: 'a', type: 'file', body: 'a\n' },
      { name: 'b', type: 'file', body: 'b\n' },
      { name: 'd1/', type: 'dir', mode: 0o755 },
      { name: 'd1/x', type: 'file', body: 'x\n' },
      { name: 'd2/', type: 'dir', mode: 0o755 },
      { name: 'd2/y', type: 'file', body: 'y\n' },
    ])]))
    const rw = newLayerId()
    await driver.createReadWrite(rw, base)
    const branch = join(root, 'aufs', 'diff', rw)
    // What the kernel's aufs leaves in a branch it mounted read-write, and one whiteout of each form.
    await writeFile(join(branch, '.wh..wh.aufs'), '')
    await chmod(join(branch, '.wh..wh.aufs'), 0o444)
    await mkdir(join(branch, '.wh..wh.plnk'), { mode: 0o700 })
    await mkdir(join(branch, '.wh..wh.orph'), { mode: 0o700 })
    await writeFile(join(branch, '.wh..wh.plnk', '1234.5'), 'pseudo-link')
    await link(join(branch, '.wh..wh.aufs'), join(branch, '.wh.a'))
    mknod(join(branch, 'b'), S_IFCHR, 0, 0)
    await mkdir(join(branch, 'd1'))
    await link(join(branch, '.wh..wh.aufs'), join(branch, 'd1', '.wh..wh..opq'))
    await mkdir(join(branch, 'd2'))
    lsetxattr(join(branch, 'd2'), 'trusted.overlay.opaque', 'y')
    assert.deepEqual((await driver.changes(rw, base)).map((c) => `${c.kind} ${c.path}`), ['D /a', 'D /b', 'D /d1', 'D /d2'])
    assert.deepEqual(await tarNames(await drain(await driver.diff(rw, base))), ['.wh.a', '.wh.b', 'd1/', 'd1/.wh..wh..opq', 'd2/', 'd2/.wh..wh..opq'])
    const view = await driver.get(rw)
    try {
      assert.deepEqual((await readdir(view)).sort(), ['d1', 'd2'], 'fuse-overlayfs hides both forms and the bookkeeping')
      assert.deepEqual(await readdir(join(view, 'd1')), [])
      assert.deepEqual(await readdir(join(view, 'd2')), [])
    } finally {
      await driver.put(rw)
    }
  })

  test('a root that already has aufs/ opens as aufs without a name; a fresh root never gets aufs', async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs')) return
    const { root, driver } = await scratchDriver(t)
    await driver.create(newLayerId(), null)
    const again = await openDriver(root)
    assert.equal(again.name, 'aufs')
    await again.cleanup()
    const fresh = await mkdtemp(join(tmpdir(), PREFIX))
    t.after(() => rm(fresh, { recursive: true, force: true }))
    const picked = await openDriver(fresh)
    assert.notEqual(picked.name, 'aufs')
    await picked.cleanup()
  })

  test("aufs.mount=kernel where the kernel has no aufs is NOT_SUPPORTED, saying why", async (t) => {
    if (!requireRoot(t)) return
    if ((await readFile('/proc/filesystems', 'utf8')).includes('aufs')) return t.skip('this kernel has aufs')
    const root = await mkdtemp(join(tmpdir(), PREFIX))
    t.after(() => rm(root, { recursive: true, force: true }))
    await expectError(openDriver(root, 'aufs', { 'aufs.mount': 'kernel' }), 'NOT_SUPPORTED', 'the kernel has no aufs')
  })

  test('a crashed removal (diff/<id>-removing) is finished when the driver opens', async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs')) return
    const { root } = await scratchDriver(t)
    const doomed = join(root, 'aufs', 'diff', `${newLayerId()}-removing`)
    await mkdir(join(doomed, 'sub'), { recursive: true })
    const again = await openDriver(root, 'aufs')
    assert.ok(!existsSync(doomed))
    await again.cleanup()
  })
})

// ---------------------------------------------------------------------------
// Bad input, named after the attack

describe('aufs bad input', { skip: process.getuid?.() !== 0 && !process.env.CI ? 'needs root' : false }, () => {
  test('a layers/<id> naming a missing parent: get, changes and diff are CORRUPT naming both, and nothing is mounted', async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs')) return
    const { root, driver } = await scratchDriver(t)
    const base = newLayerId()
    const child = newLayerId()
    await driver.create(base, null)
    await driver.create(child, base)
    const missing = newLayerId()
    await writeFile(join(root, 'aufs', 'layers', child), `${missing}\n${base}\n`)
    await expectError(driver.get(child), 'CORRUPT', child, missing)
    await expectError(driver.changes(child, missing), 'CORRUPT', child, missing)
    assert.deepEqual(mountsUnder(root), [])
    assert.equal(await readFile(join(root, 'aufs', 'layers', child), 'utf8'), `${missing}\n${base}\n`, 'the file is left for a human')
  })

  test('a layers/<id> naming "../../.." (a branch outside the home): CORRUPT, nothing mounted', async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs')) return
    const { root, driver } = await scratchDriver(t)
    const child = newLayerId()
    await driver.create(child, null)
    await writeFile(join(root, 'aufs', 'layers', child), '../../..\n')
    await expectError(driver.get(child), 'CORRUPT', '../../..')
    assert.deepEqual(mountsUnder(root), [])
  })

  test('a diff dir with a whiteout naming "..": changes and diff are UNSAFE_PATH naming it; a tar carrying one is refused too', async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs')) return
    const { root, driver } = await scratchDriver(t)
    const base = newLayerId()
    await driver.create(base, null)
    const child = newLayerId()
    await driver.create(child, base)
    await mkdir(join(root, 'aufs', 'diff', child, 'etc'))
    await writeFile(join(root, 'aufs', 'diff', child, 'etc', '.wh...'), '')
    await expectError(driver.changes(child, base), 'UNSAFE_PATH', 'etc/.wh...')
    await expectError(drain(await driver.diff(child, base)), 'UNSAFE_PATH', 'etc/.wh...')
    const fresh = newLayerId()
    await driver.create(fresh, base)
    await expectError(driver.applyDiff(fresh, base, Readable.from([tarOf([{ name: 'etc/', type: 'dir', mode: 0o755 }, { name: 'etc/.wh...', type: 'file', mode: 0 }])])), 'UNSAFE_PATH', '..')
  })

  test('a .wh..wh.plnk hardlink pointing outside: a tar linking through it out of the layer is UNSAFE_PATH; one on disk is never read', async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs')) return
    const { root, driver } = await scratchDriver(t)
    const base = newLayerId()
    await driver.create(base, null)
    const layer = newLayerId()
    await driver.create(layer, base)
    await expectError(
      driver.applyDiff(layer, base, Readable.from([tarOf([
        { name: '.wh..wh.plnk/', type: 'dir', mode: 0o700 },
        { name: 'x', type: 'hardlink', linkname: '.wh..wh.plnk/../../../../etc/passwd' },
      ])])),
      'UNSAFE_PATH',
    )
    // On disk: a pseudo-link hardlinked to a file outside the data root (same filesystem).
    const outside = join(root, '..', `${PREFIX}outside-${newLayerId().slice(0, 8)}`)
    await writeFile(outside, 'secret\n')
    t.after(() => rm(outside, { force: true }))
    const rw = newLayerId()
    await driver.createReadWrite(rw, base)
    const branch = join(root, 'aufs', 'diff', rw)
    await mkdir(join(branch, '.wh..wh.plnk'), { mode: 0o700 })
    await link(outside, join(branch, '.wh..wh.plnk', '999.1'))
    await symlink('/etc/shadow', join(branch, '.wh..wh.plnk', '998.1'))
    await writeFile(join(branch, 'mine'), 'mine\n')
    assert.deepEqual((await driver.changes(rw, base)).map((c) => `${c.kind} ${c.path}`), ['A /mine'])
    const names = await tarNames(await drain(await driver.diff(rw, base)))
    assert.deepEqual(names, ['mine'])
    await driver.remove(rw)
    assert.equal(await readFile(outside, 'utf8'), 'secret\n', 'removing the layer left the outside file alone')
  })

  test('a root with two drivers\' trees (aufs/ and overlay2/) is refused by name when no driver is given', async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'fuse-overlayfs')) return
    const { root, driver } = await scratchDriver(t)
    await driver.create(newLayerId(), null)
    await mkdir(join(root, 'overlay2', 'l'), { recursive: true })
    await expectError(openDriver(root), 'INVALID_ARGUMENT', 'aufs', 'overlay2')
  })
})
