/**
 * Tests of the test helpers themselves: if snapshotTree missed a field,
 * every round-trip test built on it would pass while proving nothing.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { chmod, chown, lstat, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { lsetxattr, lutimens } from '../src/sys/index.js'
import { BINARY_XATTR, CAP_NET_RAW_EP, makeBusyboxRootfs, makeRichTree, RICH } from './helpers/fixtures.js'
import { findOnPath, requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor, withTempDir } from './helpers/tmp.js'
import { assertSameTree, diffTrees, snapshotTree, type TreeEntry } from './helpers/tree.js'

/** A stand-in TestContext that records skip() instead of skipping the real test. */
function fakeContext(): { t: TestContext; skipped: string[] } {
  const skipped: string[] = []
  const t = { skip: (msg?: string) => skipped.push(msg ?? '') } as unknown as TestContext
  return { t, skipped }
}

/** Runs `fn` with process.env.CI set to `value` (or removed), restoring it afterwards. */
function withCI<T>(value: string | undefined, fn: () => T): T {
  const saved = process.env.CI
  if (value === undefined) delete process.env.CI
  else process.env.CI = value
  try {
    return fn()
  } finally {
    if (saved === undefined) delete process.env.CI
    else process.env.CI = saved
  }
}

const MISSING = 'strata-no-such-tool-x9'

test('requireTool: present tools pass; a missing one skips locally and fails in CI', () => {
  const { t, skipped } = fakeContext()
  assert.equal(requireTool(t, 'sh', 'cp'), true)
  assert.deepEqual(skipped, [])
  assert.equal(findOnPath('sh')?.endsWith('/sh'), true)
  assert.equal(findOnPath(MISSING), undefined)

  assert.equal(withCI(undefined, () => requireTool(t, 'sh', MISSING)), false)
  assert.deepEqual(skipped, [`needs ${MISSING} (not installed)`])
  assert.throws(
    () => withCI('true', () => requireTool(t, MISSING)),
    { message: `peer tool ${MISSING} is required in CI but missing; .ci/run must install it` },
  )
  assert.equal(skipped.length, 1)
  const root = withCI(undefined, () => requireRoot(t))
  assert.equal(root, process.getuid?.() === 0)
  assert.deepEqual(skipped.slice(1), root ? [] : ['needs root'])
})

test('run: collects binary stdout, feeds stdin, and reports failures with command, code and stderr', async () => {
  const bytes = Buffer.from([0, 1, 2, 255, 10])
  assert.deepEqual((await run('cat', [], { input: bytes })).stdout, bytes)
  assert.equal((await run('pwd', [], { cwd: '/' })).stdout.toString(), '/\n')
  assert.equal((await run('sh', ['-c', 'echo $FOO'], { env: { FOO: 'bar', PATH: process.env.PATH } })).stdout.toString(), 'bar\n')
  await assert.rejects(run('sh', ['-c', 'echo oops >&2; exit 3']), (e: Error) => {
    assert.match(e.message, /^sh -c 'echo oops >&2; exit 3' failed \(exit code 3\):\noops$/)
    return true
  })
  await assert.rejects(run(MISSING, []), new RegExp(`${MISSING}: could not run`))
  // A child that ignores its stdin must not turn into an EPIPE crash.
  await run('true', [], { input: Buffer.alloc(1 << 20) })
})

test('withTempDir and tempDirFor remove their directory, also after a throw', async (t) => {
  let seen = ''
  await assert.rejects(
    withTempDir('helpers-', async (dir) => {
      seen = dir
      await writeFile(join(dir, 'x'), 'x')
      throw new Error('boom')
    }),
    /boom/,
  )
  assert.equal(existsSync(seen), false)
  assert.equal(await withTempDir('helpers-', async (dir) => existsSync(dir)), true)

  let inner = ''
  await t.test('inner', (t2) => {
    inner = tempDirFor(t2, 'helpers-')
    assert.equal(existsSync(inner), true)
  })
  assert.equal(existsSync(inner), false)
})

/** mtime the fixture gave an entry, to check nanoseconds survived. */
function secNsec(e: TreeEntry): [bigint, bigint] {
  return [e.mtimeNs / 1_000_000_000n, e.mtimeNs % 1_000_000_000n]
}

test('snapshotTree sees everything makeRichTree built', async (t) => {
  if (!requireRoot(t)) return
  const dir = tempDirFor(t, 'rich-')
  await makeRichTree(dir)
  const snap = await snapshotTree(dir)
  const get = (rel: string): TreeEntry => {
    const e = snap.get(rel)
    assert.ok(e, `snapshot lacks ${rel}`)
    return e
  }

  // Every type a layer tar can hold.
  const types = new Set([...snap.values()].map((e) => e.type))
  assert.deepEqual([...types].sort(), ['block', 'char', 'dir', 'fifo', 'file', 'symlink'])

  assert.equal(get('.').type, 'dir')
  assert.equal(get('.').mode, 0o755)
  assert.equal(get('dirs/private').mode, 0o700)
  assert.equal(get('dirs/sticky').mode, 0o1777)
  assert.equal(get('perms/setuid').mode, 0o4755)
  assert.equal(get('perms/setgid').mode, 0o2755)
  assert.equal(get('owners/setuid-1000').mode, 0o4750)

  assert.deepEqual([get('owners/u1000').uid, get('owners/u1000').gid], [1000, 1000])
  assert.deepEqual([get('owners/nobody').uid, get('owners/nobody').gid], [65534, 65534])
  assert.deepEqual([get('owners/large').uid, get('owners/large').gid], [123456, 654321])
  assert.deepEqual([get('links/owned').uid, get('links/owned').gid], [1000, 1000])

  for (const [rel, size] of [['files/empty', 0], ['files/one', 1], ['files/b511', 511], ['files/b512', 512], ['files/b513', 513], ['files/big', 1048579]] as const) {
    assert.equal(get(rel).size, size, rel)
    assert.match(get(rel).sha256 ?? '', /^[0-9a-f]{64}$/)
  }
  assert.equal(get('files/empty').sha256, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')

  // Symlinks are recorded, never followed.
  const abs = get('links/absolute')
  assert.equal(abs.type, 'symlink')
  assert.equal(abs.linkTarget, '/etc/passwd')
  assert.equal(abs.sha256, undefined)
  assert.equal(abs.size, 0)
  assert.equal(get('links/relative').linkTarget, '../files/one')
  assert.equal(get('links/dangling').linkTarget, 'missing/nowhere')
  assert.equal(get('links/to-dir').type, 'symlink')
  assert.equal(snap.has('links/to-dir/nested'), false)
  assert.equal(get(RICH.longTargetLink).linkTarget?.length, 200)

  assert.deepEqual([get('dev/null').type, get('dev/null').rdevMajor, get('dev/null').rdevMinor], ['char', 1, 3])
  assert.deepEqual([get('dev/loop0').type, get('dev/loop0').rdevMajor, get('dev/loop0').rdevMinor], ['block', 7, 0])
  assert.equal(get('dev/fifo').type, 'fifo')

  // Hardlinks: one group naming all three paths, on each of them.
  const group = [...RICH.hardlinks].sort().join('|')
  for (const rel of RICH.hardlinks) {
    assert.equal(get(rel).nlink, 3)
    assert.equal(get(rel).inodeGroup, group)
  }
  assert.equal(get(RICH.longHardlink).inodeGroup, `${RICH.longHardlink}|${RICH.longHardlinkTarget}`)
  assert.ok(RICH.longHardlink.length - 'long/'.length > 100)
  assert.equal(get('files/one').inodeGroup, undefined)
  assert.equal(get('files/one').nlink, 1)

  assert.equal(get(RICH.longName).type, 'file')
  assert.ok(Buffer.byteLength(RICH.longPath) > 255)
  assert.equal(get(RICH.longPath).type, 'file')
  assert.equal(get(RICH.utf8).type, 'file')
  assert.equal(get(`${RICH.utf8Dir}/ünïcödé`).type, 'file')
  assert.equal(get(RICH.spaces).type, 'file')

  // xattrs, binary values intact, names sorted.
  const fx = get('xattr/file').xattrs
  assert.deepEqual(Object.keys(fx), ['user.binary', 'user.comment', 'user.empty'])
  assert.equal(fx['user.binary'], BINARY_XATTR.toString('hex'))
  assert.equal(fx['user.comment'], Buffer.from('hello world').toString('hex'))
  assert.equal(fx['user.empty'], '')
  assert.deepEqual(get('xattr/dir').xattrs, { 'user.purpose': Buffer.from('a directory with an attribute').toString('hex') })
  assert.deepEqual(get('xattr/cap').xattrs, { 'security.capability': CAP_NET_RAW_EP.toString('hex') })
  if (findOnPath('getcap')) {
    const { stdout } = await run('getcap', [join(dir, 'xattr/cap')])
    assert.match(stdout.toString(), /cap_net_raw[=+]ep/)
  }

  // Nanosecond mtimes on files, symlinks and directories, as set.
  const nsecs = new Set<bigint>()
  for (const [rel, e] of snap) {
    const [sec, nsec] = secNsec(e)
    assert.ok(sec >= 1700000000n, `${rel}: mtime ${sec}`)
    nsecs.add(nsec)
  }
  assert.ok(nsecs.has(123456789n) && nsecs.has(999999999n) && nsecs.has(0n), [...nsecs].join(','))
  const rootSt = await lstat(dir, { bigint: true })
  assert.equal(get('.').mtimeNs, rootSt.mtimeNs)
  for (const e of snap.values()) if (e.type === 'dir') assert.equal(e.nlink, 0)

  // Deterministic: a second build snapshots the same.
  const again = tempDirFor(t, 'rich2-')
  await makeRichTree(again)
  assertSameTree(snap, await snapshotTree(again))
})

test('a cp -a --preserve=all copy compares equal', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'cp')) return
  const dir = tempDirFor(t, 'cp-')
  const src = join(dir, 'src')
  const dst = join(dir, 'dst')
  await makeRichTree(src)
  // dst does not exist yet, so cp makes it a copy of src itself, root attributes included.
  await run('cp', ['-a', '--preserve=all', src, dst])
  const a = await snapshotTree(src)
  const b = await snapshotTree(dst)
  assert.deepEqual(diffTrees(a, b), [])
  assertSameTree(a, b)
  assert.equal(b.get('xattr/cap')!.xattrs['security.capability'], CAP_NET_RAW_EP.toString('hex'))
})

test('diffTrees notices every kind of change', async (t) => {
  if (!requireRoot(t)) return
  const dir = tempDirFor(t, 'diff-')
  await makeRichTree(dir)
  const before = await snapshotTree(dir)
  const p = (rel: string): string => join(dir, rel)

  /** Applies `change`, expects exactly `expected` (regexps, in order) from diffTrees, then restores by rebuilding. */
  const expectDiff = async (name: string, change: () => Promise<void> | void, expected: RegExp[]): Promise<void> => {
    await change()
    const diffs = diffTrees(before, await snapshotTree(dir))
    assert.equal(diffs.length, expected.length, `${name}: ${diffs.join('\n')}`)
    expected.forEach((re, i) => assert.match(diffs[i]!, re, name))
  }

  // One byte of content (same size, same mtime restored): only the hash differs.
  const big = p('files/big')
  const st = await lstat(big, { bigint: true })
  const content = await readFile(big)
  content[500000] ^= 0xff
  await expectDiff('content', async () => {
    await writeFile(big, content)
    const ts = { sec: Number(st.mtimeNs / 1_000_000_000n), nsec: Number(st.mtimeNs % 1_000_000_000n) }
    lutimens(big, ts, ts)
  }, [/^files\/big: sha256 [0-9a-f]{64} != [0-9a-f]{64}$/])
  content[500000] ^= 0xff
  await writeFile(big, content)
  const ts = { sec: Number(st.mtimeNs / 1_000_000_000n), nsec: Number(st.mtimeNs % 1_000_000_000n) }
  lutimens(big, ts, ts)
  assert.deepEqual(diffTrees(before, await snapshotTree(dir)), [])

  await expectDiff('mode', () => chmod(p('dirs/public'), 0o700), [/^dirs\/public: mode 0755 != 0700$/])
  await chmod(p('dirs/public'), 0o755)

  await expectDiff('owner', () => chown(p('files/one'), 1000, 0), [/^files\/one: uid 0 != 1000$/])
  await chown(p('files/one'), 0, 0)

  await expectDiff('xattr', () => lsetxattr(p('xattr/file'), 'user.comment', 'hello World'), [
    /^xattr\/file: xattr user\.comment 0x68656c6c6f20776f726c64 != 0x68656c6c6f20576f726c64$/,
  ])
  lsetxattr(p('xattr/file'), 'user.comment', 'hello world')

  const one = before.get('files/one')!
  await expectDiff('mtime', () => lutimens(p('files/one'), { sec: 1700000000, nsec: 5 }, { sec: 1700000000, nsec: 5 }), [
    new RegExp(`^files/one: mtime ${secNsec(one)[0]}\\.${secNsec(one)[1].toString().padStart(9, '0')} != 1700000000\\.000000005$`),
  ])
  // ...which the mtimes option can turn off.
  assert.deepEqual(diffTrees(await snapshotTree(dir, { mtimes: false }), await snapshotTree(dir, { mtimes: false })), [])
  const noMtimes = await snapshotTree(dir, { mtimes: false })
  assert.equal(noMtimes.get('files/one')!.mtimeNs, 0n)
  const noDirMtimes = await snapshotTree(dir, { dirMtimes: false })
  assert.equal(noDirMtimes.get('dirs')!.mtimeNs, 0n)
  assert.notEqual(noDirMtimes.get('files/one')!.mtimeNs, 0n)

  // assertSameTree lists at most 50 differences, then a count.
  assert.throws(() => assertSameTree(before, new Map(), 'extracted tree'), (e: Error) => {
    const lines = e.message.split('\n')
    assert.equal(lines[0], `extracted tree (${before.size} differences):`)
    assert.equal(lines.length, 52)
    assert.equal(lines[1], '  only in a: .')
    assert.equal(lines[51], `  ... and ${before.size - 50} more`)
    return true
  })

  // A new file, and ignore().
  await writeFile(p('dirs/new'), '')
  const after = await snapshotTree(dir, { dirMtimes: false })
  const d = diffTrees(await snapshotTree(dir, { dirMtimes: false, ignore: (r) => r === 'dirs/new' }), after)
  assert.deepEqual(d, ['only in b: dirs/new'])
  const ignoredDir = await snapshotTree(dir, { ignore: (r) => r === 'hard' || r === '.' })
  assert.equal(ignoredDir.has('.'), false)
  assert.equal([...ignoredDir.keys()].some((k) => k.startsWith('hard')), false)
  assert.equal(ignoredDir.has('files/one'), true)
})

test('makeBusyboxRootfs builds a runnable tree', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'busybox')) return
  const dir = tempDirFor(t, 'busybox-')
  await makeBusyboxRootfs(dir)
  const snap = await snapshotTree(dir)
  assert.equal(snap.get('bin/busybox')?.type, 'file')
  assert.equal(snap.get('bin/busybox')?.mode, 0o755)
  assert.equal(snap.get('bin/sh')?.linkTarget, '/bin/busybox')
  assert.equal(snap.get('bin/ls')?.linkTarget, '/bin/busybox')
  assert.equal(snap.get('tmp')?.mode, 0o1777)
  assert.equal(snap.get('root')?.mode, 0o700)
  assert.match(await readFile(join(dir, 'etc/passwd'), 'utf8'), /^root:x:0:0:/)
  assert.equal(snap.get('etc/hostname')?.type, 'file')
  const { stdout } = await run(join(dir, 'bin/busybox'), ['sh', '-c', 'echo ok'])
  assert.equal(stdout.toString(), 'ok\n')
})
