/**
 * The archive engine's closing property: apply a layer, change the tree,
 * compute the changes, export them as a layer tar, apply that tar onto a
 * fresh copy of the parent — and get the changed tree back exactly (types,
 * modes, owners, sizes, ns mtimes, xattrs, link targets, hardlinks,
 * content). Once with the naive diff (two full trees), once with an
 * overlay upper dir (whiteouts and opaque dirs), applied both onto a full
 * copy and into a fresh overlay upper. The exports use lossless headers:
 * dockerd's (the default) drop sub-second mtimes and most xattrs.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { appendFileSync, chmodSync, chownSync, linkSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { applyLayer, changesNaive, changesOverlay, exportChanges, exportOverlayUpper, formatChanges } from '../src/archive/index.js'
import { lsetxattr, lutimens, mknod, mount, umount2, MNT_DETACH, S_IFCHR } from '../src/sys/index.js'
import { makeRichTree, RICH } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { assertSameTree, snapshotTree } from './helpers/tree.js'

/** The layer root's own metadata is not carried by a changes tar (dockerd's neither). */
const notRoot = { ignore: (p: string) => p === '.' }

async function tarOf(dir: string): Promise<Readable> {
  const { stdout } = await run('tar', ['--format=posix', '--xattrs', "--xattrs-include=*", '--numeric-owner', '-cf', '-', '-C', dir, '.'])
  return Readable.from([stdout])
}

/** Everything a container does to its filesystem, applied below `root`. */
function mutate(root: string): void {
  writeFileSync(`${root}/added.txt`, 'new file\n')
  mkdirSync(`${root}/added-dir/sub`, { recursive: true })
  writeFileSync(`${root}/added-dir/sub/deep`, 'deep\n')
  appendFileSync(`${root}/${RICH.utf8}`, 'appended\n')
  chmodSync(`${root}/dirs/private`, 0o750)
  chownSync(`${root}/${RICH.spaces}`, 4242, 4343)
  lsetxattr(`${root}/${RICH.utf8}`, 'user.changed', 'yes')
  unlinkSync(`${root}/${RICH.hardlinks[2]}`)
  rmSync(`${root}/long`, { recursive: true })
  rmSync(`${root}/names`, { recursive: true })
  mkdirSync(`${root}/names`)
  writeFileSync(`${root}/names/only-new`, 'replaced dir content\n')
  rmSync(`${root}/hard/b`, { recursive: true })
  writeFileSync(`${root}/hard/b`, 'a file where a dir was\n')
  linkSync(`${root}/added.txt`, `${root}/added-link`)
  symlinkSync('added.txt', `${root}/added-symlink`)
  renameSync(`${root}/files/one`, `${root}/files/one-renamed`)
  mknod(`${root}/added-null`, S_IFCHR | 0o666, 1, 3)
  pinFreshTimes(root)
}

/** Gives everything the mutations touched one fixed mtime, so two runs of mutate() agree. */
function pinFreshTimes(root: string): void {
  const fixed = { sec: 1_750_000_000, nsec: 424242 }
  const paths = ['.', ...readdirSync(root, { recursive: true }).map(String)]
  for (const rel of paths) {
    const p = `${root}/${rel}`
    if (lstatSync(p).mtimeMs > 1_750_000_000_000) lutimens(p, fixed, fixed)
  }
}

test('apply, naive changes, export, apply onto a fresh parent copy gives the same tree', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'cp')) return
  const work = tempDirFor(t, 'changes-rt-')
  const source = `${work}/source`
  await makeRichTree(source)
  for (const d of ['base', 'child', 'fresh']) mkdirSync(`${work}/${d}`)
  await applyLayer(`${work}/base`, await tarOf(source), { whiteouts: 'full' })
  await run('cp', ['-a', '--preserve=all', `${work}/base/.`, `${work}/child`])
  await run('cp', ['-a', '--preserve=all', `${work}/base/.`, `${work}/fresh`])
  mutate(`${work}/child`)

  const changes = await changesNaive(`${work}/child`, `${work}/base`)
  const lines = formatChanges(changes)
  for (const expected of ['A /added.txt', 'D /long', `C /${RICH.utf8.split('/')[0]}`, 'C /hard/b', 'A /added-null', 'D /files/one', 'A /files/one-renamed']) {
    assert.ok(lines.includes(expected), `changes should include "${expected}":\n${lines.join('\n')}`)
  }
  const result = await applyLayer(`${work}/fresh`, exportChanges(`${work}/child`, changes, { headers: 'lossless' }), { whiteouts: 'full' })
  assert.ok(result.entries > 0)
  assertSameTree(await snapshotTree(`${work}/fresh`, notRoot), await snapshotTree(`${work}/child`, notRoot), 'fresh parent copy + exported changes')
})

test('overlay upper dir: changes, export with whiteouts, apply (full copy and overlay upper) gives the merged view', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'cp')) return
  const work = tempDirFor(t, 'changes-ovl-')
  const source = `${work}/source`
  await makeRichTree(source)
  for (const d of ['lower', 'truth', 'upper', 'work', 'merged', 'fresh', 'upper2', 'work2', 'merged2']) mkdirSync(`${work}/${d}`)
  await applyLayer(`${work}/lower`, await tarOf(source), { whiteouts: 'full' })
  await run('cp', ['-a', '--preserve=all', `${work}/lower/.`, `${work}/fresh`])
  // The same mutations on a plain copy: what the merged view means, without
  // overlayfs' artifacts (a lower file keeps its lower nlink in the merged view).
  await run('cp', ['-a', '--preserve=all', `${work}/lower/.`, `${work}/truth`])
  mutate(`${work}/truth`)
  const truth = await snapshotTree(`${work}/truth`, notRoot)

  const mounts: string[] = []
  const mountOverlay = (upper: string, wk: string, target: string): void => {
    mount('overlay', target, 'overlay', 0, `lowerdir=${work}/lower,upperdir=${upper},workdir=${wk},index=off`)
    mounts.push(target)
  }
  const unmountAll = (): void => {
    for (const m of mounts.reverse()) {
      try {
        umount2(m, MNT_DETACH)
      } catch {
        // already unmounted
      }
    }
  }
  try {
    await overlayRoundTrip()
  } finally {
    unmountAll()
  }

  async function overlayRoundTrip(): Promise<void> {
    mountOverlay(`${work}/upper`, `${work}/work`, `${work}/merged`)
    mutate(`${work}/merged`)
    umount2(`${work}/merged`)
    mounts.pop()

    const lines = formatChanges(await changesOverlay(`${work}/upper`, [`${work}/lower`]))
    assert.ok(lines.includes('D /long'), lines.join('\n'))
    assert.ok(lines.includes('A /added.txt'), lines.join('\n'))

    // The exported upper dir carries .wh. files and an opaque marker for "names".
    const tar = exportOverlayUpper(`${work}/upper`, { headers: 'lossless' })
    const chunks: Buffer[] = []
    for await (const c of tar) chunks.push(c as Buffer)
    const layer = Buffer.concat(chunks)
    const { stdout } = await run('tar', ['-tf', '-'], { input: layer })
    const names = stdout.toString().split('\n')
    assert.ok(names.includes('.wh.long'), 'whiteout for the removed dir')
    assert.ok(names.includes('names/.wh..wh..opq'), 'opaque marker for the replaced dir')

    // Onto a full copy of the parent (vfs/btrfs convention).
    await applyLayer(`${work}/fresh`, Readable.from([layer]), { whiteouts: 'full' })
    assertSameTree(await snapshotTree(`${work}/fresh`, notRoot), truth, 'full copy + exported upper')

    // Into a fresh overlay upper dir (overlay2 convention), then mounted.
    await applyLayer(`${work}/upper2`, Readable.from([layer]), { whiteouts: 'overlay' })
    mountOverlay(`${work}/upper2`, `${work}/work2`, `${work}/merged2`)
    const merged = await snapshotTree(`${work}/merged2`, notRoot)
    const firstLink = merged.get(RICH.hardlinks[0])!
    assert.equal(firstLink.nlink, 3, 'overlayfs shows the lower inode link count')
    merged.set(RICH.hardlinks[0], { ...firstLink, nlink: 1, inodeGroup: undefined })
    assertSameTree(merged, truth, 'overlay upper from the exported tar')
  }
})
