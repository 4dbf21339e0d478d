/**
 * copyTree: exact copies (everything snapshotTree sees, hardlinks, the
 * root's own metadata), the argument checks, FICLONE where the filesystem
 * has it (xfs with reflink=1 and btrfs on loop devices) and not on ext4,
 * and, when a debootstrap tree is cached, the time against `cp -a`.
 */
import assert from 'node:assert/strict'
import { existsSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs'
import { chmod, chown, lstat, mkdir, readdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { isStrataError, type StrataErrorCode } from '../src/errors/index.js'
import { copyTree } from '../src/graphdriver/copy.js'
import { fsName, mknod, statfs } from '../src/sys/index.js'
import { makeRichTree, RICH } from './helpers/fixtures.js'
import { withLoopFs } from './helpers/loopfs.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { assertSameTree, snapshotTree } from './helpers/tree.js'

async function expectCode(what: Promise<unknown>, code: StrataErrorCode, mention?: string): Promise<void> {
  await assert.rejects(what, (err: unknown) => {
    assert.ok(isStrataError(err), `expected StrataError ${code}, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    if (mention !== undefined) assert.ok(err.message.includes(mention), `message should mention "${mention}": ${err.message}`)
    return true
  })
}

/** mknod(2) makes socket inodes too: no listening process needed for a socket file. */
const S_IFSOCK = 0o140000

test('copies a tree exactly: types, modes, owners, ns times, xattrs, hardlinks, the root; skips sockets', async (t) => {
  if (!requireRoot(t)) return
  const dir = tempDirFor(t, 'copytree-')
  const src = join(dir, 'src')
  await makeRichTree(src)
  await chmod(src, 0o2750) // the root's own metadata must come along
  await chown(src, 0, 1234)
  mknod(join(src, 'dev/socket'), S_IFSOCK | 0o755)
  assert.ok((await lstat(join(src, 'dev/socket'))).isSocket())

  const dst = join(dir, 'dst')
  const result = await copyTree(src, dst)
  const want = await snapshotTree(src, { ignore: (rel) => rel === 'dev/socket' })
  assertSameTree(await snapshotTree(dst), want)
  assert.equal(existsSync(join(dst, 'dev/socket')), false, 'sockets are not copied')

  // New inodes, and one per hardlinked source inode.
  const [s, d] = await Promise.all([lstat(join(src, RICH.hardlinks[0])), lstat(join(dst, RICH.hardlinks[0]))])
  assert.notEqual(d.ino, s.ino)
  for (const other of RICH.hardlinks.slice(1)) assert.equal((await lstat(join(dst, other))).ino, d.ino)

  if (fsName(statfs(dir).type) === 'ext4') assert.equal(result.reflinked, false, 'ext4 has no FICLONE')
})

test('an existing empty destination with another group and setgid still gets exact owners', async (t) => {
  if (!requireRoot(t)) return
  const dir = tempDirFor(t, 'copytree-')
  const src = join(dir, 'src')
  await makeRichTree(src)
  const dst = join(dir, 'dst')
  // Entries created below a setgid directory take its group: the copy must not trust "new files are root's".
  await mkdir(dst)
  await chown(dst, 0, 4321)
  await chmod(dst, 0o2777)
  await copyTree(src, dst)
  assertSameTree(await snapshotTree(dst), await snapshotTree(src))
})

test('symlink targets and names are copied as bytes; names that are not UTF-8 are refused by name', async (t) => {
  if (!requireRoot(t)) return
  const dir = tempDirFor(t, 'copytree-')
  const src = join(dir, 'src')
  await mkdir(src)
  const target = Buffer.from([0x2e, 0x2e, 0x2f, 0xe9, 0x74, 0xe9]) // "../été" in latin-1: not UTF-8
  symlinkSync(target, join(src, 'latin1-target'))
  await copyTree(src, join(dir, 'dst'))
  assert.ok(readlinkSync(join(dir, 'dst/latin1-target'), { encoding: 'buffer' }).equals(target))

  writeFileSync(Buffer.concat([Buffer.from(`${src}/`), Buffer.from([0x6e, 0xe9])]), 'latin-1 name')
  await expectCode(copyTree(src, join(dir, 'dst2')), 'NOT_SUPPORTED', '6ee9')
})

test('argument checks: missing source, non-directory source or destination, non-empty destination, unknown mode', async (t) => {
  if (!requireRoot(t)) return
  const dir = tempDirFor(t, 'copytree-')
  const src = join(dir, 'src')
  await mkdir(src)
  await writeFile(join(src, 'f'), 'f')
  await expectCode(copyTree(join(dir, 'missing'), join(dir, 'd1')), 'NOT_FOUND', 'missing')
  await symlink('src', join(dir, 'link'))
  await expectCode(copyTree(join(dir, 'link'), join(dir, 'd2')), 'INVALID_ARGUMENT', 'not a directory')
  await expectCode(copyTree(join(src, 'f'), join(dir, 'd3')), 'INVALID_ARGUMENT', 'not a directory')
  await writeFile(join(dir, 'file'), '')
  await expectCode(copyTree(src, join(dir, 'file')), 'INVALID_ARGUMENT', 'not a directory')
  await mkdir(join(dir, 'full'))
  await writeFile(join(dir, 'full/x'), '')
  await expectCode(copyTree(src, join(dir, 'full')), 'INVALID_ARGUMENT', 'not empty')
  await expectCode(copyTree(src, join(dir, 'd4'), { reflink: 'sometimes' as never }), 'INVALID_ARGUMENT', 'sometimes')
  await mkdir(join(dir, 'empty'))
  await copyTree(src, join(dir, 'empty'))
  assert.deepEqual(await readdir(join(dir, 'empty')), ['f'])
})

test('on ext4: reflink "always" is NOT_SUPPORTED, "auto" and "never" copy', async (t) => {
  if (!requireRoot(t)) return
  const dir = tempDirFor(t, 'copytree-')
  if (fsName(statfs(dir).type) !== 'ext4') {
    t.skip(`the scratch directory is on ${fsName(statfs(dir).type)}, not ext4`)
    return
  }
  const src = join(dir, 'src')
  await mkdir(src)
  await writeFile(join(src, 'f'), 'content')
  await expectCode(copyTree(src, join(dir, 'always'), { reflink: 'always' }), 'NOT_SUPPORTED', 'FICLONE')
  assert.deepEqual(await copyTree(src, join(dir, 'auto'), { reflink: 'auto' }), { reflinked: false })
  assert.deepEqual(await copyTree(src, join(dir, 'never'), { reflink: 'never' }), { reflinked: false })
})

for (const fsType of ['xfs', 'btrfs'] as const) {
  test(`on ${fsType} (loop device): files are reflinked and the copy is still exact`, async (t) => {
    if (!requireTool(t, 'filefrag')) return
    await withLoopFs(t, fsType, 1024 * 1024 * 1024, async (mnt) => {
      const src = join(mnt, 'src')
      await makeRichTree(src)
      const auto = await copyTree(src, join(mnt, 'auto'))
      assert.equal(auto.reflinked, true)
      assertSameTree(await snapshotTree(join(mnt, 'auto')), await snapshotTree(src))
      // btrfs needs a sync before FIEMAP reports the extents as shared.
      await run('sync', [])
      const { stdout } = await run('filefrag', ['-v', join(mnt, 'auto/files/big')])
      assert.match(stdout.toString(), /shared/, stdout.toString())
      assert.equal((await copyTree(src, join(mnt, 'always'), { reflink: 'always' })).reflinked, true)
      assert.equal((await copyTree(src, join(mnt, 'never'), { reflink: 'never' })).reflinked, false)
      assertSameTree(await snapshotTree(join(mnt, 'never')), await snapshotTree(src))
    })
  })
}

const DEBOOTSTRAP_TAR = '/var/cache/strata-test/debootstrap-bookworm.tar'

test('a debootstrap root filesystem: copyTree is exact, and about as fast as cp -a', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'cp')) return
  if (!existsSync(DEBOOTSTRAP_TAR)) {
    t.skip(`${DEBOOTSTRAP_TAR} is not there`)
    return
  }
  const dir = tempDirFor(t, 'copytree-deboot-')
  const src = join(dir, 'src')
  await mkdir(src)
  await run('tar', ['-xpf', DEBOOTSTRAP_TAR, '-C', src])
  await run('sync', [])
  // One round: the timing is information (the suite must not fail on a slow disk), exactness is the assertion.
  const t0 = performance.now()
  await copyTree(src, join(dir, 'ct'))
  const ctMs = performance.now() - t0
  await run('sync', [])
  const t1 = performance.now()
  await run('cp', ['-a', src, join(dir, 'cp')])
  const cpMs = performance.now() - t1
  assertSameTree(await snapshotTree(join(dir, 'ct')), await snapshotTree(src))
  t.diagnostic(`copyTree ${ctMs.toFixed(0)} ms, cp -a ${cpMs.toFixed(0)} ms (${fsName(statfs(dir).type)})`)
})
