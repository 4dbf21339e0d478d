/**
 * changesNaive and changesOverlay on real trees, against the change lists
 * moby 20.10 gives (`docker diff`), plus the stricter checks we add
 * (content, every xattr, symlink targets).
 */
import assert from 'node:assert/strict'
import { appendFile, chmod, chown, link, lstat, mkdir, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { changesNaive, changesOverlay, formatChanges, type Change } from '../src/archive/changes.js'
import { isStrataError } from '../src/errors/index.js'
import { lsetxattr, lutimens, mknod, MNT_DETACH, MS_RDONLY, mount, S_IFCHR, umount2, type Timespec } from '../src/sys/index.js'
import { makeRichTree } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'

function ts(ns: bigint): Timespec {
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) }
}

/** Runs `fn` and puts atime/mtime of `path` back as they were, so only the content (or target) changes. */
async function keepingTimes(path: string, fn: () => Promise<void>): Promise<void> {
  const st = await lstat(path, { bigint: true })
  await fn()
  lutimens(path, ts(st.atimeNs), ts(st.mtimeNs))
}

async function put(root: string, rel: string, content: string, mode = 0o644): Promise<void> {
  const p = join(root, rel)
  await mkdir(join(p, '..'), { recursive: true })
  await writeFile(p, content)
  await chmod(p, mode)
}

/** A small base tree with something to change in each corner. */
async function makeBase(dir: string): Promise<void> {
  await put(dir, 'etc/passwd', 'root:x:0:0::/root:/bin/sh\n')
  await put(dir, 'etc/same', 'AAAA')
  await put(dir, 'bin/tool', 'tool\n', 0o755)
  await put(dir, 'home/user/file', 'f\n')
  await put(dir, 'x/file', 'x\n')
  lsetxattr(join(dir, 'x/file'), 'user.a', '1')
  await put(dir, 'var/old', 'old\n')
  await put(dir, 'var/keep', 'keep\n')
  await put(dir, 'deldir/a/b/c', 'c\n')
  await put(dir, 'deldir/top', 'top\n')
  await put(dir, 'replaced/child1', '1\n')
  await put(dir, 'replaced/sub/child2', '2\n')
  await put(dir, 'f2d', 'file to become a dir\n')
  await mkdir(join(dir, 'links'))
  await symlink('abc', join(dir, 'links/l'))
  await put(dir, 'hard/orig', 'orig\n')
  await put(dir, 'dirmtime/file', 'unchanged\n')
  await put(dir, 'ovl/file', 'unchanged\n')
}

test('changesNaive: every kind of change, as docker diff lists them', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'cp')) return
  const dir = tempDirFor(t, 'changes-')
  const base = join(dir, 'base')
  const layer = join(dir, 'layer')
  await makeBase(base)
  await run('cp', ['-a', '--preserve=all', base, layer])
  const p = (rel: string): string => join(layer, rel)

  assert.deepEqual(await changesNaive(layer, base), [], 'a cp -a copy has no changes')

  await put(layer, 'etc/new', 'new\n')
  await put(layer, 'etc.d', 'sorts between /etc and /etc/...\n')
  await keepingTimes(p('etc/same'), () => writeFile(p('etc/same'), 'BBBB')) // same size, same mtime
  await chmod(p('bin/tool'), 0o700)
  await chown(p('home/user/file'), 1000, 1000)
  lsetxattr(p('x/file'), 'user.a', '2')
  await unlink(p('var/old'))
  await rm(p('deldir'), { recursive: true })
  await rm(p('replaced'), { recursive: true })
  await put(layer, 'replaced', 'now a file\n')
  await unlink(p('f2d'))
  await put(layer, 'f2d/child', 'in the new dir\n')
  await keepingTimes(p('links/l'), async () => {
    await unlink(p('links/l'))
    await symlink('abd', p('links/l')) // same length, same mtime: only the target differs
  })
  await link(p('hard/orig'), p('hard/new'))
  lutimens(p('dirmtime'), { sec: 1, nsec: 0 }, { sec: 1, nsec: 0 }) // dir mtimes are not compared
  lsetxattr(p('ovl/file'), 'trusted.overlay.origin', 'x') // overlay's private xattrs are not compared
  await put(layer, 'newdir/sub/file', 'deep\n')
  await put(layer, 'rootfile', 'at the root\n')

  const expected = [
    'C /bin',
    'C /bin/tool',
    'D /deldir',
    'C /etc',
    'A /etc.d',
    'A /etc/new',
    'C /etc/same',
    'C /f2d',
    'A /f2d/child',
    'C /hard',
    'A /hard/new',
    'C /home',
    'C /home/user',
    'C /home/user/file',
    'C /links',
    'C /links/l',
    'A /newdir',
    'A /newdir/sub',
    'A /newdir/sub/file',
    'C /replaced',
    'A /rootfile',
    'C /var',
    'D /var/old',
    'C /x',
    'C /x/file',
  ]
  const changes = await changesNaive(layer, base)
  assert.deepEqual(formatChanges(changes), expected)
  // Already sorted, and formatChanges does not reorder a sorted list.
  assert.deepEqual(changes.map((c) => `${c.kind} ${c.path}`), expected)

  // Without the content comparison the same-size, same-mtime edit goes unseen (as in docker).
  const metaOnly = await changesNaive(layer, base, { compareContent: false })
  assert.deepEqual(formatChanges(metaOnly), expected.filter((l) => l !== 'C /etc/same'))

  // Content compare on a bigger file: a difference in the last byte of the second 64 KiB chunk.
  const big = Buffer.alloc(200 * 1024, 7)
  await writeFile(join(base, 'big'), big)
  await run('cp', ['-a', join(base, 'big'), p('big')])
  assert.ok(!formatChanges(await changesNaive(layer, base)).includes('C /big'))
  await keepingTimes(p('big'), async () => {
    const other = Buffer.from(big)
    other[128 * 1024 - 1] = 8
    await writeFile(p('big'), other)
  })
  assert.ok(formatChanges(await changesNaive(layer, base)).includes('C /big'))
})

test('changesNaive: a null parent makes everything added, sorted in byte order', async (t) => {
  if (!requireRoot(t)) return
  const dir = tempDirFor(t, 'changes-null-')
  await put(dir, 'b/c', 'c')
  await put(dir, 'a.b', 'x')
  await put(dir, 'a/z', 'z')
  await mkdir(join(dir, 'empty'))
  await symlink('/etc/passwd', join(dir, 'abs-link'))
  const changes = await changesNaive(dir, null)
  assert.deepEqual(formatChanges(changes), ['A /a', 'A /a.b', 'A /a/z', 'A /abs-link', 'A /b', 'A /b/c', 'A /empty'])
})

test('changesNaive: rich trees copied with cp -a or built twice show no changes', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'cp')) return
  const dir = tempDirFor(t, 'changes-rich-')
  const a = join(dir, 'a')
  const b = join(dir, 'b')
  const c = join(dir, 'c')
  await makeRichTree(a)
  await run('cp', ['-a', '--preserve=all', a, b])
  await makeRichTree(c)
  assert.deepEqual(await changesNaive(b, a), [])
  assert.deepEqual(await changesNaive(c, a), [], 'different inodes, same everything')
  assert.deepEqual(await changesNaive(a, a), [], 'a tree against itself (same inodes)')

  // A hardlinked copy shares every inode: pruned without being compared.
  const d = join(dir, 'd')
  await run('cp', ['-al', a, d])
  assert.deepEqual(await changesNaive(d, a), [])
})

test('changesNaive: missing or non-directory roots are refused', async (t) => {
  const dir = tempDirFor(t, 'changes-err-')
  await writeFile(join(dir, 'file'), '')
  await assert.rejects(changesNaive(join(dir, 'missing'), null), (e) => isStrataError(e, 'NOT_FOUND'))
  await assert.rejects(changesNaive(dir, join(dir, 'missing')), (e) => isStrataError(e, 'NOT_FOUND'))
  await assert.rejects(changesNaive(join(dir, 'file'), null), (e) => isStrataError(e, 'INVALID_ARGUMENT'))
})

test('formatChanges sorts by path as Go compares strings', () => {
  const changes: Change[] = [
    { path: '/a/b', kind: 'A' },
    { path: '/a.b', kind: 'D' },
    { path: '/a', kind: 'C' },
    { path: '/\u{1F600}', kind: 'A' }, // above the BMP: UTF-16 order would put it before U+FFFD
    { path: '/\uFFFD', kind: 'A' },
  ]
  assert.deepEqual(formatChanges(changes), ['C /a', 'D /a.b', 'A /a/b', 'A /\uFFFD', 'A /\u{1F600}'])
})

/** Mounts an overlay of `lowers` (nearest first) + upper at `merged`, runs `fn`, always unmounts. */
async function withOverlay(dir: string, lowers: string[], fn: (merged: string, upper: string) => Promise<void>): Promise<string> {
  const upper = join(dir, 'upper')
  const work = join(dir, 'work')
  const merged = join(dir, 'merged')
  for (const d of [upper, work, merged]) await mkdir(d, { recursive: true })
  mount('overlay', merged, 'overlay', 0, `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work}`)
  try {
    await fn(merged, upper)
  } finally {
    try {
      umount2(merged)
    } catch {
      umount2(merged, MNT_DETACH)
    }
  }
  return upper
}

test('changesOverlay: whiteouts, opaque dirs, copy-ups and new files through a real overlay mount', async (t) => {
  if (!requireRoot(t)) return
  const dir = tempDirFor(t, 'changes-ovl-')
  const l1 = join(dir, 'l1')
  const l2 = join(dir, 'l2')
  await put(l1, 'a/file1', 'one\n')
  await put(l1, 'b/file1', '1\n')
  await put(l1, 'b/file2', '2\n')
  await put(l1, 'dir/sub/x', 'x\n')
  await put(l1, 'dir/y', 'y\n')
  await put(l1, 'keep/k', 'k\n')
  await put(l1, 'deep/er/file', 'deep\n')
  await put(l1, 'f', 'f\n')
  await put(l2, 'only2/file', 'two\n')

  const upper = await withOverlay(dir, [l1, l2], async (m) => {
    await rm(join(m, 'f')) // whiteout
    await rm(join(m, 'dir'), { recursive: true }) // whiteout, then...
    await mkdir(join(m, 'dir')) // ...an opaque dir over it
    await writeFile(join(m, 'dir/new'), 'new\n')
    await appendFile(join(m, 'a/file1'), 'more\n') // copy-up of a/ (unchanged) and a/file1
    await rm(join(m, 'b/file2'))
    await writeFile(join(m, 'newfile'), 'n\n')
    await mkdir(join(m, 'newdir'))
    await writeFile(join(m, 'newdir/f'), 'f\n')
    await appendFile(join(m, 'only2/file'), 'more\n') // from the second lower
    await appendFile(join(m, 'deep/er/file'), 'more\n')
    await chmod(join(m, 'keep/k'), 0o600)
    await writeFile(join(m, 'keep/newk'), 'nk\n')
  })

  const expected = [
    'C /a/file1', // /a itself: same size, mode and mtime as in the lower, so moby leaves it out
    'C /b',
    'D /b/file2',
    'C /deep/er/file',
    'D /dir', // moby 20.10 reports an opaque dir as deleted...
    'A /dir/new', // ...and its contents as new
    'D /f',
    'C /keep',
    'C /keep/k',
    'A /keep/newk',
    'A /newdir',
    'A /newdir/f',
    'A /newfile',
    'C /only2/file',
  ]
  assert.deepEqual(formatChanges(await changesOverlay(upper, [l1, l2])), expected)

  // A directory that looks unchanged is still listed when an A or D sits right in it.
  for (const rel of ['b', 'keep']) {
    const st = await lstat(join(l1, rel), { bigint: true })
    lutimens(join(upper, rel), ts(st.atimeNs), ts(st.mtimeNs))
  }
  assert.deepEqual(formatChanges(await changesOverlay(upper, [l1, l2])), expected)

  // With no lower dirs everything not a whiteout is new.
  const alone = formatChanges(await changesOverlay(upper, []))
  assert.ok(alone.includes('A /a') && alone.includes('A /a/file1') && alone.includes('D /f') && alone.includes('D /dir'))
})


test('changesNaive with upperDir: the full comparison of two overlay mounts, walking only what the upper dir holds', async (t) => {
  if (!requireRoot(t)) return
  const dir = tempDirFor(t, 'changes-guided-')
  // The lower stack: l1 over l2, with a whiteout and an opaque dir of its own.
  const l1 = join(dir, 'l1')
  const l2 = join(dir, 'l2')
  await put(l2, 'data/keep/a.txt', 'a\n')
  await put(l2, 'data/keep/b.txt', 'b\n')
  await put(l2, 'data/one', '1\n')
  await put(l2, 'srv/tree/sub/x', 'x\n')
  await put(l2, 'srv/tree/y', 'y\n')
  await put(l2, 'srv/other', 'o\n')
  await put(l2, 'opq/old', 'hidden by l1\n')
  await put(l2, 'gone-in-l1', 'whited out by l1\n')
  await put(l2, 'f2d', 'file to become a dir\n')
  await put(l2, 'd2f/child', 'dir to become a file\n')
  await put(l2, 'meta/file', 'm\n')
  await put(l2, 'untouched/deep/file', 'u\n')
  await put(l1, 'opq/new', 'l1 only\n')
  lsetxattr(join(l1, 'opq'), 'trusted.overlay.opaque', 'y')
  mknod(join(l1, 'gone-in-l1'), S_IFCHR, 0, 0)
  await put(l1, 'data/from-l1', 'l1\n')

  const parentMerged = join(dir, 'parent')
  const layer = join(dir, 'layer')
  const merged = join(layer, 'merged')
  await mkdir(parentMerged)
  await mkdir(layer)
  mount('overlay', parentMerged, 'overlay', MS_RDONLY, `lowerdir=${l1}:${l2}`)
  try {
    const upper = await withOverlay(layer, [l1, l2], async (m) => {
      await appendFile(join(m, 'data/keep/a.txt'), 'more\n') // copies /data/keep up with its mtime kept
      await rm(join(m, 'data/one')) // a whiteout
      await mkdir(join(m, 'newdir/sub'), { recursive: true })
      await rm(join(m, 'srv/tree'), { recursive: true }) // a tree removed
      await rm(join(m, 'opq'), { recursive: true })
      await mkdir(join(m, 'opq')) // an opaque dir over l1's opaque dir
      await writeFile(join(m, 'opq/newer'), 'n\n')
      await rm(join(m, 'f2d'))
      await mkdir(join(m, 'f2d'))
      await writeFile(join(m, 'f2d/in'), 'i\n')
      await rm(join(m, 'd2f'), { recursive: true })
      await writeFile(join(m, 'd2f'), 'now a file\n')
      await writeFile(join(m, 'gone-in-l1'), 'back\n')
      await chmod(join(m, 'meta'), 0o700) // a dir whose own metadata changed, nothing below it
      await keepingTimes(join(m, 'data/keep/b.txt'), () => chmod(join(m, 'data/keep/b.txt'), 0o644)) // copied up, unchanged
    })
    // The layer mounted again, as a container's rootfs is for the comparison.
    mount('overlay', merged, 'overlay', 0, `lowerdir=${l1}:${l2},upperdir=${upper},workdir=${join(layer, 'work')}`)
    try {
      const expected = [
        'C /d2f',
        'C /data',
        'C /data/keep',
        'C /data/keep/a.txt',
        'D /data/one',
        'C /f2d',
        'A /f2d/in',
        'A /gone-in-l1',
        'C /meta',
        'A /newdir',
        'A /newdir/sub',
        'C /opq',
        'D /opq/new',
        'A /opq/newer',
        'C /srv',
        'D /srv/tree',
      ]
      const full = formatChanges(await changesNaive(merged, parentMerged))
      assert.deepEqual(full, expected, 'docker diff of the two mounts')
      assert.deepEqual(formatChanges(await changesNaive(merged, parentMerged, { upperDir: upper })), full, 'the same when guided by the upper dir')
      await assert.rejects(changesNaive(merged, parentMerged, { upperDir: join(dir, 'missing') }), (e) => isStrataError(e, 'NOT_FOUND'))
    } finally {
      umount2(merged, MNT_DETACH)
    }
  } finally {
    umount2(parentMerged, MNT_DETACH)
  }
})
