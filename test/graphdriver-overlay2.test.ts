/**
 * The overlay2 driver: mount planning (pure), dockerd's on-disk layout,
 * whiteouts, copy-up, native diff, stacks of 128 (mount(2)) and 500 (new
 * mount API) layers, reference counting, remove's refusals, mounts shared
 * with other processes (persistent get/put, adoption, cleanup) and status. Real mounts, as root; every test unmounts what it
 * mounted and checks /proc/self/mountinfo holds nothing under its root.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { after, test, type TestContext } from 'node:test'
import { promisify } from 'node:util'
import { readTar, END_OF_ARCHIVE, encodeHeader, padding, type TarHeaderInput } from '../src/archive/tar/index.js'
import { sha256Of } from '../src/digest/index.js'
import { isStrataError } from '../src/errors/index.js'
import {
  Overlay2Driver,
  directorySize,
  dockerFsName,
  generateShortId,
  lowerString,
  mountPlan,
  overlay2Factory,
  parseLower,
} from '../src/graphdriver/overlay2/index.js'
import { lgetxattr, major, minor, MNT_DETACH, mount, statfs, umount2 } from '../src/sys/index.js'
import { driverConformance } from './helpers/driver-suite.js'
import { requireRoot } from './helpers/peers.js'

// ---------------------------------------------------------------------------
// Helpers

const execFileAsync = promisify(execFile)
const PREFIX = 'strata-test-ovl2-'

interface Mount {
  mountPoint: string
  superOptions: string
}

/** Mounts below `dir` in this process's namespace, from /proc/self/mountinfo. */
function mountsUnder(dir: string): Mount[] {
  const prefix = `${realpathSync(dir)}/`
  const out: Mount[] = []
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (line === '') continue
    const fields = line.split(' ')
    const mountPoint = (fields[4] as string).replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
    if (!mountPoint.startsWith(prefix)) continue
    out.push({ mountPoint, superOptions: fields[fields.length - 1] as string })
  }
  return out
}

/**
 * A scratch data root. Removed when `t` ends, after `drivers` are cleaned
 * up and after checking nothing is left mounted under it (a recursive
 * delete through a mount would delete whatever is mounted there).
 */
function scratchRoot(t: TestContext): { root: string; drivers: Overlay2Driver[] } {
  const root = mkdtempSync(join(tmpdir(), PREFIX))
  const drivers: Overlay2Driver[] = []
  t.after(async () => {
    try {
      for (const d of drivers) await d.cleanup()
    } finally {
      const left = mountsUnder(root)
      // Unmount anyway before deleting, then fail the test.
      for (const m of left.reverse()) umount2(m.mountPoint, MNT_DETACH)
      rmSync(root, { recursive: true, force: true })
      assert.deepEqual(left, [], `mounts left under ${root}`)
    }
  })
  return { root, drivers }
}

async function openDriver(t: TestContext, options?: Record<string, string>): Promise<{ driver: Overlay2Driver; root: string }> {
  const { root, drivers } = scratchRoot(t)
  const driver = await Overlay2Driver.open({ root, options })
  drivers.push(driver)
  return { driver, root }
}

type TarItem = TarHeaderInput & { content?: string }

/** A layer tar of `items` (dirs 0755 and files 0644 unless given). */
function tarOf(items: TarItem[]): Readable {
  const chunks: Buffer[] = []
  for (const { content, ...h } of items) {
    const body = content === undefined ? undefined : Buffer.from(content)
    chunks.push(encodeHeader({ mode: h.type === 'dir' ? 0o755 : 0o644, ...h, size: body?.length ?? 0 }))
    if (body !== undefined) chunks.push(body, padding(body.length))
  }
  chunks.push(END_OF_ARCHIVE)
  return Readable.from([Buffer.concat(chunks)])
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** Entry names of a tar, with their bodies as text. */
async function tarEntries(tar: Buffer): Promise<Array<{ name: string; type: string; body: string }>> {
  const out: Array<{ name: string; type: string; body: string }> = []
  for await (const e of readTar(Readable.from([tar]) as AsyncIterable<Buffer>)) {
    const parts: Buffer[] = []
    for await (const c of e.body()) parts.push(c)
    out.push({ name: e.header.name, type: e.header.type, body: Buffer.concat(parts).toString() })
  }
  return out
}

function modeOf(path: string): Promise<number> {
  return lstat(path).then((s) => s.mode & 0o7777)
}

async function rejectsWith(p: Promise<unknown>, code: string, pattern?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isStrataError(err), `expected a StrataError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (pattern !== undefined) assert.match(err.message, pattern)
    return true
  })
}

/** Creates read-only layers L1..Ln, each with a file `layer-<i>`; returns their ids. */
async function makeChain(driver: Overlay2Driver, n: number, prefix = 'L'): Promise<string[]> {
  const ids: string[] = []
  let parent: string | null = null
  for (let i = 1; i <= n; i++) {
    const id = `${prefix}${i}`
    await driver.create(id, parent)
    // Writing into diff/ directly is what applyDiff would do; it keeps 500 layers fast.
    await writeFile(join(driver.home, id, 'diff', `layer-${i}`), `${i}\n`)
    ids.push(id)
    parent = id
  }
  return ids
}

// Every test's root is checked in its own after hook; this is the net under them.
after(() => {
  const stray = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.includes(`/${PREFIX}`))
  assert.deepEqual(stray, [], 'overlay2 tests left mounts behind')
})

// ---------------------------------------------------------------------------
// Pure: layout helpers and mount plans

test('short IDs are 26 characters of base32, as dockerd generates them', () => {
  for (let i = 0; i < 100; i++) assert.match(generateShortId(), /^[A-Z2-7]{26}$/)
  assert.equal(generateShortId((n) => Buffer.alloc(n, 0)), 'A'.repeat(26))
  assert.equal(generateShortId((n) => Buffer.alloc(n, 0xff)), '7'.repeat(26))
  // base32 of 0x00 0x44 0x32 0x14 0xc7 ... : "AB" "CD" ... (RFC 4648 test vector bytes)
  assert.equal(generateShortId((n) => Buffer.concat([Buffer.from('foobar'), Buffer.alloc(n - 6)])).slice(0, 10), 'MZXW6YTBOI')
})

test('lower strings: the parent first, then its lowers; anything but l/<id> is CORRUPT', () => {
  assert.equal(lowerString('AAAA'), 'l/AAAA')
  assert.equal(lowerString('CCCC', 'l/BBBB:l/AAAA'), 'l/CCCC:l/BBBB:l/AAAA')
  assert.deepEqual(parseLower('l/BBBB:l/AAAA'), ['l/BBBB', 'l/AAAA'])
  for (const bad of ['../x', 'l/../../etc', 'l/', 'x/AAAA', 'l/A:', '/abs/l/A']) {
    assert.throws(() => parseLower(bad), (err: unknown) => isStrataError(err, 'CORRUPT'), bad)
  }
})

test('mountPlan: up to 128 lowers through mount(2), fitting one page', () => {
  const link = (i: number): string => `l/${String(i).padStart(26, 'A')}`
  const lowers = (n: number): string[] => Array.from({ length: n }, (_, i) => link(i))
  const home = '/var/lib/docker/overlay2'
  const id = 'f'.repeat(64)
  const opts = { home, indexOff: true }

  // One lower: absolute paths fit, no chdir needed (what dockerd mounts).
  const one = mountPlan(lowers(1), `${id}/diff`, `${id}/work`, opts)
  assert.deepEqual(one, {
    api: 'legacy',
    data: `index=off,lowerdir=${home}/${link(0)},upperdir=${home}/${id}/diff,workdir=${home}/${id}/work`,
    cwd: home,
    relative: false,
  })
  const noIndex = mountPlan(lowers(1), `${id}/diff`, `${id}/work`, { home, indexOff: false })
  assert.ok(noIndex.api === 'legacy' && noIndex.data.startsWith('lowerdir='))
  assert.ok(noIndex.api === 'legacy' && !noIndex.data.includes('userxattr'))

  // 128 lowers: only relative paths fit; the caller chdirs into the home.
  const full = mountPlan(lowers(128), `${id}/diff`, `${id}/work`, opts)
  assert.equal(full.api, 'legacy')
  if (full.api !== 'legacy') return
  assert.equal(full.relative, true)
  assert.equal(full.cwd, home)
  assert.ok(full.data.length < 4096, `${full.data.length} bytes`)
  assert.equal(full.data, `index=off,lowerdir=${lowers(128).join(':')},upperdir=${id}/diff,workdir=${id}/work`)

  // Read-only (a committed layer): its diff on top, no upper or work.
  const ro = mountPlan([`${id}/diff`, ...lowers(127)], null, null, opts)
  assert.ok(ro.api === 'legacy' && ro.data === `index=off,lowerdir=${id}/diff:${lowers(127).join(':')}` && ro.data.length < 4096)

  // A worker thread cannot chdir: the same stack goes through the new API.
  assert.equal(mountPlan(lowers(128), `${id}/diff`, `${id}/work`, { ...opts, allowRelative: false }).api, 'new')
  assert.equal(mountPlan(lowers(1), `${id}/diff`, `${id}/work`, { ...opts, api: 'new' }).api, 'new')
})

test('mountPlan: 129 to 500 lowers through the new mount API, 501 refused', () => {
  const lowers = (n: number): string[] => Array.from({ length: n }, (_, i) => `l/${String(i).padStart(26, 'B')}`)
  const home = '/var/lib/docker/overlay2'
  const opts = { home, indexOff: true }
  for (const n of [129, 500]) {
    const plan = mountPlan(lowers(n), 'c/diff', 'c/work', opts)
    assert.equal(plan.api, 'new')
    if (plan.api !== 'new') return
    assert.deepEqual(plan.options, [
      ['source', 'overlay'],
      ['index', 'off'],
      ...lowers(n).map((l) => ['lowerdir+', `${home}/${l}`]),
      ['upperdir', `${home}/c/diff`],
      ['workdir', `${home}/c/work`],
    ])
  }
  const ro = mountPlan(lowers(500), null, null, opts)
  assert.ok(ro.api === 'new' && !ro.options.some(([k]) => k === 'upperdir' || k === 'workdir'))

  assert.throws(
    () => mountPlan(lowers(501), 'c/diff', 'c/work', opts),
    (err: unknown) =>
      isStrataError(err, 'NOT_SUPPORTED') && err.message === 'image has 501 layers; overlayfs on this kernel stacks at most 500',
  )
  assert.throws(
    () => mountPlan(lowers(129), 'c/diff', 'c/work', { ...opts, api: 'legacy' }),
    (err: unknown) => isStrataError(err, 'NOT_SUPPORTED'),
  )
  assert.throws(() => mountPlan([], 'c/diff', 'c/work', opts), (err: unknown) => isStrataError(err, 'INVALID_ARGUMENT'))
  assert.throws(() => mountPlan(lowers(1), 'c/diff', null, opts), (err: unknown) => isStrataError(err, 'INVALID_ARGUMENT'))
  assert.throws(() => mountPlan(['../x'], null, null, opts), (err: unknown) => isStrataError(err, 'INVALID_ARGUMENT'))
})

// ---------------------------------------------------------------------------
// On disk

test('layout of a 3-layer stack matches dockerd', async (t) => {
  if (!requireRoot(t)) return
  const { driver, root } = await openDriver(t)
  const home = join(root, 'overlay2')
  assert.equal(driver.home, home)
  assert.equal(await modeOf(home), 0o710)
  assert.equal(await modeOf(join(home, 'l')), 0o700)

  await driver.create('A', null)
  await driver.create('B', 'A')
  await driver.createReadWrite('C', 'B')

  const links: Record<string, string> = {}
  for (const id of ['A', 'B', 'C']) {
    const dir = join(home, id)
    assert.equal(await modeOf(dir), 0o710, `${id}/`)
    assert.equal(await modeOf(join(dir, 'diff')), 0o755, `${id}/diff`)
    const link = await readFile(join(dir, 'link'), 'utf8')
    assert.match(link, /^[A-Z2-7]{26}$/, `${id}/link has no newline`)
    assert.equal(await modeOf(join(dir, 'link')), 0o644)
    assert.equal(await readlink(join(home, 'l', link)), `../${id}/diff`)
    links[id] = link
    assert.ok(!existsSync(join(dir, 'merged')), `${id}/merged exists before any get`)
  }
  assert.equal(new Set(Object.values(links)).size, 3)

  assert.ok(!existsSync(join(home, 'A', 'lower')), 'a base layer has no lower file')
  assert.equal(await readFile(join(home, 'B', 'lower'), 'utf8'), `l/${links.A}`)
  assert.equal(await readFile(join(home, 'C', 'lower'), 'utf8'), `l/${links.B}:l/${links.A}`)
  assert.equal(await modeOf(join(home, 'C', 'lower')), 0o644)

  assert.ok(!existsSync(join(home, 'A', 'work')), 'a base layer has no work dir')
  for (const id of ['B', 'C']) assert.equal(await modeOf(join(home, id, 'work')), 0o700)

  for (const id of ['A', 'B']) {
    assert.equal(await readFile(join(home, id, 'committed'), 'utf8'), '')
    assert.equal(await modeOf(join(home, id, 'committed')), 0o600)
  }
  assert.ok(!existsSync(join(home, 'C', 'committed')), 'the top layer has no child')
  assert.deepEqual((await readdir(join(home, 'l'))).sort(), Object.values(links).sort())

  assert.deepEqual(await driver.getMetadata('C'), {
    LowerDir: `${home}/B/diff:${home}/A/diff`,
    MergedDir: `${home}/C/merged`,
    UpperDir: `${home}/C/diff`,
    WorkDir: `${home}/C/work`,
  })
  assert.deepEqual(await driver.getMetadata('A'), { MergedDir: `${home}/A/merged`, UpperDir: `${home}/A/diff`, WorkDir: `${home}/A/work` })

  assert.equal(await driver.exists('B'), true)
  assert.equal(await driver.exists('nope'), false)
  assert.equal(await driver.exists('../etc'), false)
  await rejectsWith(driver.create('B', null), 'ALREADY_EXISTS', /"B"/)
  await rejectsWith(driver.create('D', 'missing'), 'NOT_FOUND', /"missing"/)
  await rejectsWith(driver.create('l', null), 'INVALID_ARGUMENT')
  await rejectsWith(driver.create('../x', null), 'UNSAFE_PATH')
  await rejectsWith(driver.create('', null), 'INVALID_ARGUMENT')
  await rejectsWith(driver.create('x,y', null), 'INVALID_ARGUMENT')
  await rejectsWith(driver.get('missing'), 'NOT_FOUND', /"missing"/)
  await rejectsWith(driver.getMetadata('missing'), 'NOT_FOUND')
  await rejectsWith(driver.create('D', 'A', { storageOpt: { size: '10G' } }), 'INVALID_ARGUMENT')
  await rejectsWith(driver.createReadWrite('D', 'A', { storageOpt: { size: '10G' } }), 'NOT_SUPPORTED')
  assert.ok(!existsSync(join(home, 'D')), 'a refused create leaves nothing')
})

test('applyDiff writes whiteouts as overlayfs wants them, and the mount hides what they delete', async (t) => {
  if (!requireRoot(t)) return
  const { driver } = await openDriver(t)
  const home = driver.home
  await driver.create('base', null)
  const baseSize = await driver.applyDiff(
    'base',
    null,
    tarOf([
      { name: 'x', type: 'file', content: 'xx' },
      { name: 'keep', type: 'file', content: 'keep' },
      { name: 'dir/', type: 'dir' },
      { name: 'dir/a', type: 'file', content: 'a' },
      { name: 'dir/b', type: 'file', content: 'b' },
    ]),
  )
  assert.equal(baseSize, 2 + 4 + 1 + 1)

  await driver.create('top', 'base')
  const size = await driver.applyDiff(
    'top',
    'base',
    tarOf([
      { name: '.wh.x', type: 'file' },
      { name: 'dir/', type: 'dir' },
      { name: 'dir/.wh..wh..opq', type: 'file' },
      { name: 'dir/new', type: 'file', content: 'new!' },
    ]),
  )
  assert.equal(size, 4)

  const wh = await lstat(join(home, 'top/diff/x'))
  assert.ok(wh.isCharacterDevice(), 'x is a character device')
  assert.deepEqual([major(wh.rdev), minor(wh.rdev)], [0, 0])
  assert.ok(!existsSync(join(home, 'top/diff/.wh.x')))
  assert.equal(lgetxattr(join(home, 'top/diff/dir'), 'trusted.overlay.opaque')?.toString(), 'y')
  assert.ok(!existsSync(join(home, 'top/diff/dir/.wh..wh..opq')))

  await driver.createReadWrite('ctr', 'top')
  const merged = await driver.get('ctr')
  try {
    assert.deepEqual((await readdir(merged)).sort(), ['dir', 'keep'])
    assert.deepEqual(await readdir(join(merged, 'dir')), ['new'])
  } finally {
    await driver.put('ctr')
  }

  // Native diff turns them back into aufs whiteouts (in the upper dir's name order: "dir" < "x").
  const entries = await tarEntries(await collect(await driver.diff('top', 'base')))
  assert.deepEqual(
    entries.map((e) => e.name),
    ['dir/', 'dir/.wh..wh..opq', 'dir/new', '.wh.x'],
  )
  const changes = await driver.changes('top', 'base')
  assert.ok(changes.some((c) => c.path === '/x' && c.kind === 'D'), JSON.stringify(changes))
  assert.ok(changes.some((c) => c.path === '/dir/new' && c.kind === 'A'), JSON.stringify(changes))

  // Against anything but its parent (here: nothing), dockerd's naive diff of the full mounted tree.
  const full = await tarEntries(await collect(await driver.diff('top', null)))
  assert.deepEqual(
    full.map((e) => e.name),
    ['dir/', 'dir/new', 'keep'],
  )
  assert.equal(mountsUnder(driver.home).length, 0, 'the naive diff released its mount')
})

test('copy-up: writes through the mount land in the container diff, the parent is untouched', async (t) => {
  if (!requireRoot(t)) return
  const { driver } = await openDriver(t)
  await driver.create('img', null)
  await mkdir(join(driver.home, 'img/diff/etc'))
  await writeFile(join(driver.home, 'img/diff/etc/conf'), 'original\n')
  await driver.createReadWrite('ctr', 'img')

  const merged = await driver.get('ctr')
  try {
    assert.equal(merged, join(driver.home, 'ctr/merged'))
    // A short stack: mount(2) with absolute paths, as dockerd mounts it.
    const opts = mountsUnder(driver.home)[0]?.superOptions ?? ''
    assert.match(opts, new RegExp(`lowerdir=${driver.home}/l/[A-Z2-7]{26},upperdir=${driver.home}/ctr/diff,workdir=`))
    assert.equal(await readFile(join(merged, 'etc/conf'), 'utf8'), 'original\n')
    await writeFile(join(merged, 'etc/conf'), 'changed\n')
    await writeFile(join(merged, 'added'), 'added\n')
  } finally {
    await driver.put('ctr')
  }
  assert.equal(await readFile(join(driver.home, 'ctr/diff/etc/conf'), 'utf8'), 'changed\n')
  assert.equal(await readFile(join(driver.home, 'ctr/diff/added'), 'utf8'), 'added\n')
  assert.equal(await readFile(join(driver.home, 'img/diff/etc/conf'), 'utf8'), 'original\n')
  assert.deepEqual(await readdir(join(driver.home, 'img/diff')), ['etc'])

  // get of a base layer is its diff dir, nothing mounted.
  assert.equal(await driver.get('img'), join(driver.home, 'img/diff'))
  assert.equal(mountsUnder(driver.home).length, 0)
  await driver.put('img')
})

test('a volatile get (the init layer at create) mounts with volatile, and its put leaves the writes in diff/ and no volatile marker: the layer mounts again', async (t) => {
  if (!requireRoot(t)) return
  const { driver } = await openDriver(t)
  await driver.create('img', null)
  await mkdir(join(driver.home, 'img/diff/etc'))
  await driver.createReadWrite('init', 'img')
  const merged = await driver.get('init', { volatile: true })
  try {
    // Shown as "volatile" (5.10) or "fsync=volatile" (6.x). Kernels before 5.10 refuse the option; the driver then mounts without it.
    assert.match(mountsUnder(driver.home)[0]?.superOptions ?? '', /(^|,)(fsync=)?volatile(,|$)/)
    assert.ok(existsSync(join(driver.home, 'init/work/work/incompat/volatile')), 'the kernel marks a volatile work dir')
    await writeFile(join(merged, 'etc/hosts'), '')
    await mkdir(join(merged, 'proc'))
  } finally {
    await driver.put('init')
  }
  assert.equal(mountsUnder(driver.home).length, 0)
  assert.deepEqual((await readdir(join(driver.home, 'init/diff'))).sort(), ['etc', 'proc'])
  assert.deepEqual(await readdir(join(driver.home, 'init/diff/etc')), ['hosts'])
  // Left behind, the marker makes the kernel refuse the next read-write mount (EINVAL).
  assert.ok(!existsSync(join(driver.home, 'init/work/work/incompat')))
  const again = await driver.get('init')
  try {
    assert.doesNotMatch(mountsUnder(driver.home)[0]?.superOptions ?? '', /volatile/)
    assert.deepEqual(await readdir(join(again, 'etc')), ['hosts'])
  } finally {
    await driver.put('init')
  }
})

test('diff of a container that changed one file holds exactly that file and its parent dirs', async (t) => {
  if (!requireRoot(t)) return
  const { driver } = await openDriver(t)
  await driver.create('img', null)
  await driver.applyDiff(
    'img',
    null,
    tarOf([
      { name: 'etc/', type: 'dir' },
      { name: 'etc/app/', type: 'dir' },
      { name: 'etc/app/conf', type: 'file', content: 'v1\n' },
      { name: 'etc/other', type: 'file', content: 'other\n' },
      { name: 'usr/', type: 'dir' },
      { name: 'usr/bin/', type: 'dir' },
      { name: 'usr/bin/tool', type: 'file', content: '#!/bin/sh\n', mode: 0o755 },
    ]),
  )
  await driver.createReadWrite('ctr', 'img')
  const merged = await driver.get('ctr')
  try {
    await writeFile(join(merged, 'etc/app/conf'), 'v2, longer\n')
  } finally {
    await driver.put('ctr')
  }
  const entries = await tarEntries(await collect(await driver.diff('ctr', 'img')))
  assert.deepEqual(
    entries.map((e) => [e.name, e.type]),
    [
      ['etc/', 'dir'],
      ['etc/app/', 'dir'],
      ['etc/app/conf', 'file'],
    ],
  )
  assert.equal(entries[2]?.body, 'v2, longer\n')
  const changes = await driver.changes('ctr', 'img')
  assert.ok(changes.some((c) => c.path === '/etc/app/conf' && c.kind === 'C'), JSON.stringify(changes))
  assert.ok(changes.every((c) => c.path.startsWith('/etc')), JSON.stringify(changes))
  assert.equal(await driver.diffSize('ctr', 'img'), 'v2, longer\n'.length)
})

test("applyLayer's size and diffSize are dockerd's directory.Size of the diff dir: symlinks count, hardlinks once, whiteouts nothing", async (t) => {
  if (!requireRoot(t)) return
  const { driver } = await openDriver(t)
  await driver.create('base', null)
  await writeFile(join(driver.home, 'base/diff/base-file'), 'abc')
  await driver.create('layer', 'base')
  const target = 'busybox-with-a-long-name'
  const tar = await collect(
    tarOf([
      { name: 'bin/', type: 'dir' },
      { name: 'bin/busybox', type: 'file', content: '12345', mode: 0o755 },
      { name: 'bin/sh', type: 'hardlink', linkname: 'bin/busybox' },
      { name: 'bin/ls', type: 'symlink', linkname: target },
      { name: 'empty', type: 'file', content: '' },
      { name: '.wh.gone', type: 'file' },
    ]),
  )
  const lines: string[] = []
  const result = await driver.applyLayer('layer', 'base', Readable.from([tar]), { tarSplit: (l) => lines.push(l) })
  assert.equal(result.size, 5 + target.length, 'the file once (two names, one inode) plus the symlink target')
  assert.equal(result.diffId, sha256Of(tar))
  assert.ok(lines.length > 0)
  assert.equal(await directorySize(join(driver.home, 'layer/diff')), result.size)
  assert.equal(await driver.diffSize('layer', 'base'), result.size)
  // Against no parent: the whole tree, compared naively (as dockerd does): regular files only.
  assert.equal(await driver.diffSize('layer', null), 5 + 3)
  await rejectsWith(driver.diffSize('missing', null), 'NOT_FOUND')
  await rejectsWith(driver.diffFilesDir('missing'), 'NOT_FOUND', /"missing"/)
  assert.equal(await driver.diffFilesDir('layer'), join(driver.home, 'layer/diff'))

  // applyDiff into a mounted layer is refused: overlayfs forbids writing under a mount.
  await driver.createReadWrite('ctr', 'layer')
  await driver.get('ctr')
  try {
    await rejectsWith(driver.applyDiff('ctr', 'layer', tarOf([{ name: 'f', type: 'file', content: 'x' }])), 'IN_USE', /"ctr" is mounted/)
  } finally {
    await driver.put('ctr')
  }
})

// ---------------------------------------------------------------------------
// Deep stacks

test('128 layers through mount(2), 500 through the new mount API, 501 refused', async (t) => {
  if (!requireRoot(t)) return
  const { driver } = await openDriver(t)
  const chain = await makeChain(driver, 501)
  const expected = (n: number): string[] => Array.from({ length: n }, (_, i) => `layer-${i + 1}`).sort()

  // A container on the 128th layer: 128 lowers, a relative option string.
  await driver.createReadWrite('c128', 'L128')
  const m128 = await driver.get('c128')
  try {
    assert.deepEqual((await readdir(m128)).sort(), expected(128))
    assert.equal(await readFile(join(m128, 'layer-1'), 'utf8'), '1\n')
    const mounts = mountsUnder(driver.home)
    assert.equal(mounts.length, 1)
    // mount(2) with paths relative to the home: the kernel shows them as given.
    assert.match(mounts[0]?.superOptions ?? '', /lowerdir=l\/[A-Z2-7]{26}:/)
    await writeFile(join(m128, 'from-container'), 'c\n')
  } finally {
    await driver.put('c128')
  }
  assert.ok(existsSync(join(driver.home, 'c128/diff/from-container')))

  // A container on the 500th: 500 lowers, fsconfig("lowerdir+") each.
  await driver.createReadWrite('c500', 'L500')
  assert.equal((await driver.getMetadata('c500')).LowerDir?.split(':').length, 500)
  const m500 = await driver.get('c500')
  try {
    assert.deepEqual((await readdir(m500)).sort(), expected(500))
    assert.equal(await readFile(join(m500, 'layer-500'), 'utf8'), '500\n')
    assert.equal(await readFile(join(m500, 'layer-1'), 'utf8'), '1\n')
    const mounts = mountsUnder(driver.home)
    assert.equal(mounts.length, 1)
    // The new API: the kernel lists each lower as its own lowerdir+ option.
    assert.equal(mounts[0]?.superOptions.match(/(^|,)lowerdir\+=/g)?.length, 500)
  } finally {
    await driver.put('c500')
  }

  // The 500th layer itself now has a child: mounted read-only, its diff plus 499 lowers.
  const ro = await driver.get('L500')
  try {
    assert.deepEqual((await readdir(ro)).sort(), expected(500))
    await assert.rejects(writeFile(join(ro, 'nope'), 'x'), (err: NodeJS.ErrnoException) => err.code === 'EROFS')
  } finally {
    await driver.put('L500')
  }

  // 501 lowers: more than overlayfs stacks, refused before anything is written.
  await rejectsWith(driver.createReadWrite('c501', chain[500] as string), 'NOT_SUPPORTED', /^image has 501 layers; overlayfs on this kernel stacks at most 500$/)
  assert.ok(!existsSync(join(driver.home, 'c501')))
  assert.ok(!existsSync(join(driver.home, 'L501/committed')), 'a refused child does not mark its parent')
  assert.equal(mountsUnder(driver.home).length, 0)
})

// ---------------------------------------------------------------------------
// get/put/remove

test('get/put are reference counted: one mount however many gets, gone after the last put', async (t) => {
  if (!requireRoot(t)) return
  const { driver } = await openDriver(t)
  await driver.create('img', null)
  await driver.createReadWrite('ctr', 'img')
  const merged = join(driver.home, 'ctr/merged')

  assert.equal(await driver.get('ctr'), merged)
  assert.equal(await driver.get('ctr'), merged)
  assert.deepEqual(
    mountsUnder(driver.home).map((m) => m.mountPoint),
    [join(realpathSync(driver.home), 'ctr/merged')],
  )
  await driver.put('ctr')
  assert.equal(mountsUnder(driver.home).length, 1, 'still mounted after the first put')
  await driver.put('ctr')
  assert.equal(mountsUnder(driver.home).length, 0)
  assert.ok(!existsSync(merged), 'merged/ removed by the last put')
  await rejectsWith(driver.put('ctr'), 'INVALID_ARGUMENT', /"ctr" is not mounted/)
  await rejectsWith(driver.put('missing'), 'NOT_FOUND', /"missing"/)

  // Concurrent gets in one process mount once.
  const paths = await Promise.all(Array.from({ length: 8 }, () => driver.get('ctr')))
  assert.deepEqual(new Set(paths), new Set([merged]))
  assert.equal(mountsUnder(driver.home).length, 1)
  await Promise.all(paths.map(() => driver.put('ctr')))
  assert.equal(mountsUnder(driver.home).length, 0)
})

test('remove refuses a mounted layer and a layer with children, then removes dir and link', async (t) => {
  if (!requireRoot(t)) return
  const { driver } = await openDriver(t)
  await driver.create('img', null)
  await driver.create('mid', 'img')
  await driver.createReadWrite('ctr', 'mid')
  const links = await readdir(join(driver.home, 'l'))
  assert.equal(links.length, 3)

  await driver.get('ctr')
  await rejectsWith(driver.remove('ctr'), 'IN_USE', /"ctr" is mounted/)
  await driver.put('ctr')

  await rejectsWith(driver.remove('mid'), 'IN_USE', /"mid" has a child layer "ctr"/)
  await rejectsWith(driver.remove('img'), 'IN_USE', /"img" has a child layer "mid"/)
  await driver.get('img')
  await rejectsWith(driver.remove('img'), 'IN_USE', /mounted/)
  await driver.put('img')

  const ctrLink = await readFile(join(driver.home, 'ctr/link'), 'utf8')
  await driver.remove('ctr')
  assert.ok(!existsSync(join(driver.home, 'ctr')))
  assert.ok(!existsSync(join(driver.home, 'l', ctrLink)))
  // `committed` stays (dockerd never removes it), but no lower names mid any more.
  await driver.remove('mid')
  await driver.remove('img')
  assert.deepEqual(await readdir(join(driver.home, 'l')), [])
  assert.deepEqual(await readdir(driver.home), ['l'])
  await rejectsWith(driver.remove('img'), 'NOT_FOUND', /"img"/)
})

// ---------------------------------------------------------------------------
// Mounts shared between processes

const INDEX_URL = new URL('../src/graphdriver/index.js', import.meta.url).href

/**
 * Runs a separate node process that opens overlay2 on `root` and does
 * `action` on layer `id`, then exits without cleanup: "get" is a
 * persistent get (what `strata mount` does), "hold" a counted get never
 * put (a process that dies holding a mount), "put" a persistent put.
 * Returns what it printed (get: the path).
 */
async function inChild(root: string, id: string, action: 'get' | 'hold' | 'put'): Promise<string> {
  const script = `
    const [, url, root, id, action] = process.argv
    const { overlay2Factory } = await import(url)
    const d = await overlay2Factory.open({ root })
    if (action === 'get') process.stdout.write(await d.get(id, { persistent: true }))
    else if (action === 'hold') process.stdout.write(await d.get(id))
    else await d.put(id, { persistent: true })
  `
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', script, INDEX_URL, root, id, action])
  return stdout
}

/** Mount points under `root`, relative to its real path. */
function mountedUnder(root: string): string[] {
  const real = realpathSync(root)
  return mountsUnder(root).map((m) => m.mountPoint.slice(real.length + 1))
}

test('a persistent get in another process: listed by mountedLayers, kept by opens and by get/put here, released by a persistent put', async (t) => {
  if (!requireRoot(t)) return
  const { root, drivers } = scratchRoot(t)
  const driver = await Overlay2Driver.open({ root })
  drivers.push(driver)
  await driver.create('img', null)
  await writeFile(join(driver.home, 'img/diff/file'), 'data\n')
  await driver.createReadWrite('ctr', 'img')
  const merged = join(driver.home, 'ctr/merged')
  assert.deepEqual(await driver.mountedLayers(), [])

  assert.equal(await inChild(root, 'ctr', 'get'), merged)
  assert.deepEqual(mountedUnder(root), ['overlay2/ctr/merged'], 'the mount outlives the process that made it')
  assert.deepEqual(await driver.mountedLayers(), ['ctr'])

  // Opening another instance unmounts nothing.
  const second = await Overlay2Driver.open({ root })
  drivers.push(second)
  assert.deepEqual(await second.mountedLayers(), ['ctr'])
  assert.deepEqual(mountedUnder(root), ['overlay2/ctr/merged'])

  // A counted get here adopts the mount (no second overlay on top); its put leaves it.
  assert.equal(await driver.get('ctr'), merged)
  assert.equal(await readFile(join(merged, 'file'), 'utf8'), 'data\n')
  assert.deepEqual(mountedUnder(root), ['overlay2/ctr/merged'], 'adopted, not mounted over')
  await driver.put('ctr')
  assert.deepEqual(mountedUnder(root), ['overlay2/ctr/merged'], 'the last put of an adopted mount does not unmount it')
  await rejectsWith(driver.put('ctr'), 'INVALID_ARGUMENT', /"ctr"/)
  await rejectsWith(driver.remove('ctr'), 'IN_USE', /"ctr" is mounted/)
  await second.cleanup()
  assert.deepEqual(mountedUnder(root), ['overlay2/ctr/merged'], 'cleanup leaves a mount it did not make')

  // A persistent put while this instance holds references: the last of them unmounts.
  await driver.get('ctr')
  await driver.get('ctr')
  await driver.put('ctr', { persistent: true })
  assert.deepEqual(mountedUnder(root), ['overlay2/ctr/merged'], 'held here: the persistent put defers to our references')
  await driver.put('ctr')
  assert.deepEqual(mountedUnder(root), ['overlay2/ctr/merged'])
  await driver.put('ctr')
  assert.deepEqual(mountedUnder(root), [], 'the last reference unmounted it')
  assert.ok(!existsSync(merged))

  // A persistent put with no references here unmounts at once; again, it is a no-op.
  await inChild(root, 'ctr', 'get')
  assert.deepEqual(await driver.mountedLayers(), ['ctr'])
  await driver.put('ctr', { persistent: true })
  assert.deepEqual(mountedUnder(root), [])
  assert.ok(!existsSync(merged), 'merged/ removed with the mount')
  await driver.put('ctr', { persistent: true })
  await driver.put('img', { persistent: true })
  await rejectsWith(driver.put('missing', { persistent: true }), 'NOT_FOUND', /"missing"/)

  // Mounted here persistently, released by another process.
  assert.equal(await driver.get('ctr', { persistent: true }), merged)
  await rejectsWith(driver.put('ctr'), 'INVALID_ARGUMENT', /"ctr"/)
  await inChild(root, 'ctr', 'put')
  assert.deepEqual(mountedUnder(root), [])

  // A process that died holding a counted get: the mount stays until someone releases it.
  assert.equal(await inChild(root, 'ctr', 'hold'), merged)
  assert.deepEqual(await driver.mountedLayers(), ['ctr'])
  await driver.put('ctr', { persistent: true })
  assert.deepEqual(mountedUnder(root), [])
  await driver.remove('ctr')
})

test('cleanup unmounts only what this instance mounted and holds: persistent and adopted mounts stay', async (t) => {
  if (!requireRoot(t)) return
  const { root, drivers } = scratchRoot(t)
  const driver = await Overlay2Driver.open({ root })
  drivers.push(driver)
  await driver.create('img', null)
  for (const id of ['own', 'persistent', 'adopted', 'shared']) await driver.createReadWrite(id, 'img')
  await driver.get('own')
  await driver.get('own')
  await driver.get('persistent', { persistent: true })
  await inChild(root, 'adopted', 'get')
  await driver.get('adopted')
  // Mounted by our get, then also taken persistently: no longer ours alone.
  await driver.get('shared')
  await driver.get('shared', { persistent: true })
  assert.deepEqual(await driver.mountedLayers(), ['adopted', 'own', 'persistent', 'shared'])

  await driver.cleanup()
  assert.deepEqual(await driver.mountedLayers(), ['adopted', 'persistent', 'shared'])
  await rejectsWith(driver.put('adopted'), 'INVALID_ARGUMENT', /"adopted"/)
  for (const id of ['adopted', 'persistent', 'shared']) await driver.put(id, { persistent: true })
  assert.deepEqual(mountedUnder(root), [])
})

test('something other than the layer overlay mounted on merged/ is refused by get, and released by a persistent put', async (t) => {
  if (!requireRoot(t)) return
  const { driver, root } = await openDriver(t)
  await driver.create('img', null)
  await driver.createReadWrite('ctr', 'img')
  const merged = join(driver.home, 'ctr/merged')
  await mkdir(merged)
  mount('tmpfs', merged, 'tmpfs', 0, 'size=1m')
  await rejectsWith(driver.get('ctr'), 'IN_USE', /tmpfs/)
  assert.deepEqual(await driver.mountedLayers(), ['ctr'])
  await rejectsWith(driver.remove('ctr'), 'IN_USE')
  await driver.put('ctr', { persistent: true })
  assert.deepEqual(mountedUnder(root), [])
  assert.equal(await driver.get('ctr'), merged)
  assert.deepEqual(mountedUnder(root), ['overlay2/ctr/merged'])
  await driver.put('ctr')
})

// ---------------------------------------------------------------------------
// Host facts

test('status: the lines dockerd 20.10 prints for overlay2', async (t) => {
  if (!requireRoot(t)) return
  const { driver, root } = await openDriver(t)
  const fs = dockerFsName(statfs(root).type)
  assert.notEqual(fs, '<unknown>')
  assert.deepEqual(await driver.status(), [
    ['Backing Filesystem', fs],
    ['Supports d_type', 'true'],
    ['Native Overlay Diff', 'true'],
    ['userxattr', 'false'],
  ])
  if (statfs(root).type === 0xef53) assert.equal(fs, 'extfs')
})

test('probe: accepts a data root here, refuses one on overlayfs with a reason', async (t) => {
  if (!requireRoot(t)) return
  const { root } = scratchRoot(t)
  assert.deepEqual(await overlay2Factory.probe(join(root, 'data')), { ok: true })
  assert.equal(overlay2Factory.name, 'overlay2')

  for (const d of ['lower', 'upper', 'work', 'merged']) await mkdir(join(root, d))
  mount('overlay', join(root, 'merged'), 'overlay', 0, `lowerdir=${root}/lower,upperdir=${root}/upper,workdir=${root}/work`)
  try {
    const r = await overlay2Factory.probe(join(root, 'merged', 'data'))
    assert.equal(r.ok, false)
    assert.match(r.reason ?? '', /overlayfs/)
    await rejectsWith(overlay2Factory.open({ root: join(root, 'merged', 'data') }), 'NOT_SUPPORTED', /overlayfs/)
  } finally {
    umount2(join(root, 'merged'))
  }
  await rejectsWith(Overlay2Driver.open({ root, options: { 'overlay2.bogus': '1' } }), 'INVALID_ARGUMENT', /overlay2\.bogus/)
})

test('overlay2.mountapi=new mounts even a one-layer stack through the new API', async (t) => {
  if (!requireRoot(t)) return
  const { driver } = await openDriver(t, { 'overlay2.mountapi': 'new' })
  await makeChain(driver, 2)
  await driver.createReadWrite('ctr', 'L2')
  const merged = await driver.get('ctr')
  try {
    assert.deepEqual((await readdir(merged)).sort(), ['layer-1', 'layer-2'])
    assert.equal(mountsUnder(driver.home)[0]?.superOptions.match(/(^|,)lowerdir\+=/g)?.length, 2)
  } finally {
    await driver.put('ctr')
  }
})

// ---------------------------------------------------------------------------
// The shared conformance suite, with a 500-layer deep read (the new mount API)

driverConformance(
  'overlay2',
  async () => {
    const root = await mkdtemp(join(tmpdir(), `${PREFIX}suite-`))
    const driver = await overlay2Factory.open({ root })
    return {
      driver,
      root,
      teardown: async () => {
        const left = mountsUnder(root)
        for (const m of left.reverse()) umount2(m.mountPoint, MNT_DETACH)
        await rm(root, { recursive: true, force: true })
        assert.deepEqual(left, [], `mounts left under ${root}`)
      },
    }
  },
  { maxDepth: 500, sizeRule: 'directory' },
)
