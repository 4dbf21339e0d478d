/**
 * exportChanges and exportOverlayUpper: what the layer tar holds (read back
 * with our reader and listed by GNU tar), that it is byte-for-byte
 * deterministic, that GNU tar extracting a lossless one rebuilds the tree
 * exactly, and what dockerd's header style keeps and drops. (That the
 * dockerd style is dockerd's bytes is container-dockerd.test.ts's job.)
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { appendFile, chmod, link, lstat, mkdir, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { test } from 'node:test'
import { changesNaive, type Change } from '../src/archive/changes.js'
import { exportChanges, exportOverlayUpper } from '../src/archive/export.js'
import { readTar, type TarHeader } from '../src/archive/tar/index.js'
import { isStrataError } from '../src/errors/index.js'
import { groupName, lsetxattr, MNT_DETACH, mount, umount2, userName } from '../src/sys/index.js'
import { BINARY_XATTR, CAP_NET_RAW_EP, makeRichTree, RICH } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { assertSameTree, snapshotTree } from './helpers/tree.js'

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

interface Entry {
  header: TarHeader
  sha256: string
  length: number
}

async function entriesOf(tar: Buffer): Promise<Entry[]> {
  const out: Entry[] = []
  const source = (async function* () {
    // Odd-sized pieces, so nothing depends on block-aligned input.
    for (let i = 0; i < tar.length; i += 7777) yield tar.subarray(i, i + 7777)
  })()
  for await (const e of readTar(source)) {
    const hash = createHash('sha256')
    let length = 0
    for await (const chunk of e.body()) {
      hash.update(chunk)
      length += chunk.length
    }
    out.push({ header: e.header, sha256: hash.digest('hex'), length })
  }
  return out
}

function byName(entries: Entry[]): Map<string, Entry> {
  return new Map(entries.map((e) => [e.header.name, e]))
}

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex')

const LOSSLESS = { headers: 'lossless' } as const

/** The raw mode field (octal text) of the ustar block of entry `name` in `tar`: what a reader masks away. */
function rawModeField(tar: Buffer, name: string): string {
  for (let off = 0; off + 512 <= tar.length; ) {
    const block = tar.subarray(off, off + 512)
    if (block.every((b) => b === 0)) break
    const size = parseInt(block.toString('latin1', 124, 136).replace(/\0.*$/, '').trim() || '0', 8)
    const typeflag = String.fromCharCode(block[156]!)
    const entryName = block.toString('utf8', 0, 100).replace(/\0.*$/s, '')
    if (typeflag !== 'x' && entryName === name) return block.toString('latin1', 100, 107)
    off += 512 + Math.ceil(size / 512) * 512
  }
  throw new Error(`no ustar block named ${name}`)
}

test('exportChanges of a whole rich tree, lossless headers: every kind of entry, deterministic, and GNU tar rebuilds it', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'export-rich-')
  const src = join(dir, 'src')
  await makeRichTree(src)
  const changes = await changesNaive(src, null)

  const tar = await collect(exportChanges(src, changes, LOSSLESS))
  const again = await collect(exportChanges(src, [...changes].reverse(), LOSSLESS))
  assert.ok(tar.equals(again), 'two exports (changes in any order) are byte-identical')
  assert.equal(tar.length % 512, 0)
  assert.ok(tar.subarray(-1024).equals(Buffer.alloc(1024)), 'ends with two zero blocks')

  const entries = await entriesOf(tar)
  const names = entries.map((e) => e.header.name)
  assert.equal(names.length, changes.length)
  assert.ok(names.every((n) => !n.startsWith('/') && !n.startsWith('./')))
  const expectedNames = await Promise.all(changes.map(async (c) => c.path.slice(1) + ((await lstat(join(src, c.path))).isDirectory() ? '/' : '')))
  assert.deepEqual(names, expectedNames, 'one entry per change, in path order, dirs with a trailing slash')
  const m = byName(entries)

  const d = m.get('dirs/sticky/')!
  assert.equal(d.header.type, 'dir')
  assert.equal(d.header.mode, 0o1777)

  // Hardlinks: the first name in sorted order carries the content, the others point to it.
  const [first, ...others] = RICH.hardlinks
  assert.equal(m.get(first)!.header.type, 'file')
  assert.equal(m.get(first)!.length, 1000)
  for (const o of others) {
    assert.equal(m.get(o)!.header.type, 'hardlink')
    assert.equal(m.get(o)!.header.linkname, first)
    assert.equal(m.get(o)!.length, 0)
  }

  // Devices, fifo, symlinks.
  const nul = m.get('dev/null')!.header
  assert.deepEqual([nul.type, nul.devmajor, nul.devminor, nul.mode], ['char', 1, 3, 0o666])
  const loop = m.get('dev/loop0')!.header
  assert.deepEqual([loop.type, loop.devmajor, loop.devminor, loop.gid], ['block', 7, 0, 6])
  assert.equal(m.get('dev/fifo')!.header.type, 'fifo')
  assert.deepEqual([m.get('links/absolute')!.header.type, m.get('links/absolute')!.header.linkname], ['symlink', '/etc/passwd'])
  assert.equal(m.get(RICH.longTargetLink)!.header.linkname, RICH.longTarget)

  // xattrs, raw bytes included; nothing but what the file has.
  const xf = m.get('xattr/file')!.header
  assert.deepEqual([...xf.xattrs.keys()], ['user.binary', 'user.comment', 'user.empty'])
  assert.ok(xf.xattrs.get('user.binary')!.equals(BINARY_XATTR))
  assert.ok(m.get('xattr/cap')!.header.xattrs.get('security.capability')!.equals(CAP_NET_RAW_EP))
  assert.equal(m.get('xattr/dir/')!.header.xattrs.get('user.purpose')!.toString(), 'a directory with an attribute')

  // Owners (numeric only, no name lookups), nanosecond mtimes, big content.
  const huge = m.get('owners/huge')!.header
  assert.deepEqual([huge.uid, huge.gid, huge.uname, huge.gname], [3000000, 4000000, '', ''])
  for (const rel of ['files/b513', 'dirs/private/', 'links/relative']) {
    const st = await lstat(join(src, rel), { bigint: true })
    const mt = m.get(rel)!.header.mtime
    assert.equal(BigInt(mt.sec) * 1_000_000_000n + BigInt(mt.nsec), st.mtimeNs, rel)
  }
  assert.ok(entries.some((e) => e.header.mtime.nsec !== 0))
  const big = m.get('files/big')!
  assert.equal(big.length, 1024 * 1024 + 3)
  assert.equal(big.sha256, (await snapshotTree(join(src, 'files'))).get('big')!.sha256)

  // GNU tar lists it...
  const listing = await run('tar', ['-tvf', '-'], { input: tar })
  assert.ok(listing.stdout.toString().includes('hard/b/c/second link to hard/a/first'))

  // ...and extracting it gives back the tree (the root itself is not an entry).
  const out = join(dir, 'out')
  await mkdir(out)
  await run('tar', ['-xpf', '-', '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', out], { input: tar })
  const notRoot = { ignore: (rel: string) => rel === '.' }
  assertSameTree(await snapshotTree(src, notRoot), await snapshotTree(out, notRoot))
})

test('exportChanges of a whole rich tree, dockerd headers: second mtimes, host names, only security.capability', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'export-rich-dockerd-')
  const src = join(dir, 'src')
  await makeRichTree(src)
  const changes = await changesNaive(src, null)
  const tar = await collect(exportChanges(src, changes))
  assert.ok(tar.equals(await collect(exportChanges(src, changes, { headers: 'dockerd' }))), "'dockerd' is the default")
  const lossless = await entriesOf(await collect(exportChanges(src, changes, LOSSLESS)))
  const entries = await entriesOf(tar)
  assert.deepEqual(
    entries.map((e) => [e.header.name, e.header.type, e.header.mode, e.header.uid, e.header.gid, e.header.size, e.header.linkname, e.sha256]),
    lossless.map((e) => [e.header.name, e.header.type, e.header.mode, e.header.uid, e.header.gid, e.header.size, e.header.linkname, e.sha256]),
    'the same entries, modes, owners and content as the lossless export',
  )
  for (const [i, e] of entries.entries()) {
    const full = lossless[i]!.header.mtime
    assert.deepEqual(e.header.mtime, { sec: full.sec, nsec: 0 }, `${e.header.name}: mtime truncated to the second`)
    assert.equal(e.header.uname, userName(e.header.uid) ?? '', `${e.header.name}: uname of uid ${e.header.uid} on this host`)
    assert.equal(e.header.gname, groupName(e.header.gid) ?? '', `${e.header.name}: gname of gid ${e.header.gid} on this host`)
    const keys = [...e.header.xattrs.keys()]
    assert.deepEqual(keys, e.header.name === 'xattr/cap' ? ['security.capability'] : [], `${e.header.name}: only security.capability`)
  }
  assert.ok(entries.some((e) => e.header.uname === 'root'), 'root is named')
  assert.equal(byName(entries).get('owners/huge')!.header.uname, userName(3000000) ?? '', 'an id without a name has none')
  assert.ok(byName(entries).get('xattr/cap')!.header.xattrs.get('security.capability')!.equals(CAP_NET_RAW_EP))
  // The mode field carries the file type bits, as dockerd's FileInfoHeader writes them.
  assert.equal(rawModeField(tar, 'dirs/sticky/'), '0041777')
  assert.equal(rawModeField(tar, 'files/b513'), `0100${(await lstat(join(src, 'files/b513'))).mode.toString(8).slice(-3)}`)
})

test('security.capability in dockerd headers: a revision 3 value (with a root uid) is written as revision 2', async (t) => {
  if (!requireRoot(t)) return
  const dir = tempDirFor(t, 'export-cap3-')
  await writeFile(join(dir, 'bin'), '#!/bin/sh\n')
  const v3 = Buffer.concat([Buffer.from('01000003', 'hex'), CAP_NET_RAW_EP.subarray(4), Buffer.from([0xe8, 0x03, 0, 0])])
  lsetxattr(join(dir, 'bin'), 'security.capability', v3)
  const [entry] = await entriesOf(await collect(exportChanges(dir, [{ path: '/bin', kind: 'A' }])))
  assert.ok(entry!.header.xattrs.get('security.capability')!.equals(CAP_NET_RAW_EP), 'revision 2, 20 bytes, no root uid')
  const [kept] = await entriesOf(await collect(exportChanges(dir, [{ path: '/bin', kind: 'A' }], LOSSLESS)))
  assert.ok(kept!.header.xattrs.get('security.capability')!.equals(v3), 'lossless keeps it as it is')
})

test('exportChanges: whiteouts for deletions, hardlinks among changes, vanished and unsafe paths skipped', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'cp', 'tar')) return
  const dir = tempDirFor(t, 'export-changes-')
  const base = join(dir, 'base')
  const layer = join(dir, 'layer')
  await mkdir(join(base, 'etc/sub'), { recursive: true })
  await writeFile(join(base, 'etc/gone'), 'gone\n')
  await writeFile(join(base, 'etc/sub/x'), 'x\n')
  await writeFile(join(base, 'etc/kept'), 'kept\n')
  await writeFile(join(base, 'toplevel'), 'top\n')
  await symlink('/etc', join(base, 'escape'))
  await run('cp', ['-a', base, layer])

  await rm(join(layer, 'etc/gone'))
  await rm(join(layer, 'etc/sub'), { recursive: true })
  await rm(join(layer, 'toplevel'))
  await writeFile(join(layer, 'etc/h1'), 'shared\n')
  await link(join(layer, 'etc/h1'), join(layer, 'etc/h2'))
  await appendFile(join(layer, 'etc/kept'), 'more\n')
  await chmod(join(layer, 'etc/kept'), 0o600)
  lsetxattr(join(layer, 'etc/kept'), 'trusted.overlay.origin', 'never exported')
  lsetxattr(join(layer, 'etc/kept'), 'user.note', 'exported')

  const changes = await changesNaive(layer, base)
  assert.deepEqual(
    changes.map((c) => `${c.kind} ${c.path}`),
    ['C /etc', 'D /etc/gone', 'A /etc/h1', 'A /etc/h2', 'C /etc/kept', 'D /etc/sub', 'D /toplevel'],
  )
  const extra: Change[] = [
    { path: '/no/such/file', kind: 'A' }, // gone since the diff: skipped
    { path: '/escape/passwd', kind: 'C' }, // through a symlink: never followed, skipped
    { path: '/', kind: 'C' }, // the root is never an entry
    { path: 'etc/h1', kind: 'A' }, // listed twice (and without the slash): written once
  ]
  const tar = await collect(exportChanges(layer, [...extra, ...changes]))
  const entries = await entriesOf(tar)
  const losslessEntries = await entriesOf(await collect(exportChanges(layer, [...extra, ...changes], LOSSLESS)))
  assert.deepEqual(
    losslessEntries.map((e) => e.header.name),
    entries.map((e) => e.header.name),
  )
  assert.deepEqual(
    entries.map((e) => `${e.header.type} ${e.header.name}${e.header.linkname === '' ? '' : ` -> ${e.header.linkname}`}`),
    ['dir etc/', 'file etc/.wh.gone', 'file etc/h1', 'hardlink etc/h2 -> etc/h1', 'file etc/kept', 'file etc/.wh.sub', 'file .wh.toplevel'],
  )
  const m = byName(entries)
  for (const wh of ['etc/.wh.gone', 'etc/.wh.sub', '.wh.toplevel']) {
    const h = m.get(wh)!.header
    assert.deepEqual([h.size, h.mode, h.uid, h.gid, h.uname, h.gname, h.mtime.sec, h.mtime.nsec, h.xattrs.size], [0, 0, 0, 0, '', '', 0, 0, 0], wh)
    assert.equal(rawModeField(tar, wh), '0000000', `${wh}: dockerd sets no mode, so no type bits`)
  }
  const kept = m.get('etc/kept')!
  assert.equal(kept.header.mode, 0o600)
  assert.equal(kept.sha256, sha('kept\nmore\n'))
  assert.deepEqual([...kept.header.xattrs.keys()], [], 'dockerd carries no user.* xattr')
  assert.deepEqual([...byName(losslessEntries).get('etc/kept')!.header.xattrs.keys()], ['user.note'], 'lossless does')
  assert.equal(m.get('etc/h1')!.sha256, sha('shared\n'))

  assert.ok((await collect(exportChanges(layer, changes))).equals(await collect(exportChanges(layer, changes))))
  await run('tar', ['-tvf', '-'], { input: tar })
})

test('exportChanges: only the aufs whiteout format exists; a missing dir is an error on the stream', async () => {
  assert.throws(() => exportChanges('/nonexistent', [], { whiteoutFormat: 'overlay' as 'aufs' }), { name: 'StrataError' })
  await assert.rejects(collect(exportChanges('/nonexistent-strata-dir', [{ path: '/x', kind: 'D' }])), (e) => isStrataError(e, 'NOT_FOUND'))
})

test('exportOverlayUpper: whiteouts and opaque dirs in AUFS form, from a real overlay mount', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'export-ovl-')
  const lower = join(dir, 'lower')
  const upper = join(dir, 'upper')
  const work = join(dir, 'work')
  const merged = join(dir, 'merged')
  await mkdir(join(lower, 'dir/sub'), { recursive: true })
  await writeFile(join(lower, 'dir/sub/x'), 'x\n')
  await writeFile(join(lower, 'dir/y'), 'y\n')
  await mkdir(join(lower, 'a'))
  await writeFile(join(lower, 'a/file'), 'a\n')
  await writeFile(join(lower, 'a/gone'), 'gone\n')
  await writeFile(join(lower, 'f'), 'f\n')
  for (const d of [upper, work, merged]) await mkdir(d)

  mount('overlay', merged, 'overlay', 0, `lowerdir=${lower},upperdir=${upper},workdir=${work}`)
  let sharedWhiteouts = false
  try {
    await rm(join(merged, 'f'))
    await rm(join(merged, 'a/gone'))
    await appendFile(join(merged, 'a/file'), 'more\n')
    await rm(join(merged, 'dir'), { recursive: true })
    await mkdir(join(merged, 'dir'))
    await chmod(join(merged, 'dir'), 0o2750)
    await writeFile(join(merged, 'dir/new'), 'new\n')
    await writeFile(join(merged, 'n1'), 'linked\n')
    await link(join(merged, 'n1'), join(merged, 'n2'))
  } finally {
    try {
      umount2(merged)
    } catch {
      umount2(merged, MNT_DETACH)
    }
  }
  sharedWhiteouts = (await lstat(join(upper, 'f'))).nlink > 1

  const tar = await collect(exportOverlayUpper(upper))
  assert.ok(tar.equals(await collect(exportOverlayUpper(upper))), 'deterministic')
  const entries = await entriesOf(tar)
  const losslessTar = await collect(exportOverlayUpper(upper, LOSSLESS))
  const lossless = byName(await entriesOf(losslessTar))
  assert.deepEqual(
    entries.map((e) => `${e.header.type} ${e.header.name}${e.header.linkname === '' ? '' : ` -> ${e.header.linkname}`}`),
    [
      'dir a/',
      'file a/file',
      'file a/.wh.gone',
      'dir dir/',
      'file dir/.wh..wh..opq',
      'file dir/new',
      // overlayfs (5.8+) makes whiteouts links to one inode; dockerd writes the later ones as
      // regular files that keep the hardlink's linkname: the first whiteout's own path.
      `file .wh.f${sharedWhiteouts ? ' -> a/gone' : ''}`,
      'file n1',
      'hardlink n2 -> n1',
    ],
  )
  const m = byName(entries)
  for (const wh of ['a/.wh.gone', '.wh.f']) {
    const h = m.get(wh)!.header
    assert.deepEqual([h.size, h.mode, h.uname], [0, 0o600, userName(0)], wh)
    assert.equal(rawModeField(tar, wh), '0000600', `${wh}: no type bits`)
    assert.equal(lossless.get(wh)!.header.linkname, '', `${wh}: no linkname when lossless`)
  }
  const opq = m.get('dir/.wh..wh..opq')!.header
  const dirHeader = m.get('dir/')!.header
  assert.deepEqual([opq.size, opq.mode, opq.uid, opq.gid, opq.uname, opq.mtime], [0, 0o750, dirHeader.uid, dirHeader.gid, dirHeader.uname, { sec: 0, nsec: 0 }])
  assert.equal(rawModeField(tar, 'dir/.wh..wh..opq'), '0000750', 'the dir permission bits alone, no type bits')
  assert.deepEqual(lossless.get('dir/.wh..wh..opq')!.header.mtime, lossless.get('dir/')!.header.mtime, 'lossless: the dir mtime')
  assert.equal(dirHeader.mode, 0o2750)
  for (const e of entries) {
    assert.ok(![...e.header.xattrs.keys()].some((k) => k.startsWith('trusted.overlay.')), `${e.header.name} carries no overlay xattr`)
  }
  assert.equal(m.get('a/file')!.sha256, sha('a\nmore\n'))

  const listing = (await run('tar', ['-tvf', '-'], { input: tar })).stdout.toString()
  assert.ok(listing.includes('dir/.wh..wh..opq') && listing.includes('.wh.f'))

  // A missing upper dir is an error on the stream.
  await assert.rejects(collect(exportOverlayUpper(join(dir, 'missing'))), { name: 'StrataError' })
})
