/**
 * src/sys against the real kernel: device numbers, xattrs, nanosecond times,
 * renameat2, statfs, FICLONE and mounts. Every mount made here is unmounted
 * in a finally, and the last test checks /proc/self/mountinfo for leftovers.
 */
import assert from 'node:assert/strict'
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import {
  FS_MAGIC,
  ficlone,
  fsName,
  futimens,
  lgetxattr,
  llistxattr,
  lremovexattr,
  lsetxattr,
  lutimens,
  major,
  makedev,
  minor,
  MNT_DETACH,
  mknod,
  mount,
  mountAsync,
  mountNewApi,
  renameat2,
  RENAME_EXCHANGE,
  RENAME_NOREPLACE,
  S_IFBLK,
  S_IFCHR,
  statfs,
  SysError,
  umount2,
  umount2Async,
  type Timespec,
} from '../src/sys/index.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { koffi, libc } from '../src/sys/libc.js'
import { createRequire } from 'node:module'
import { tempDirFor } from './helpers/tmp.js'

/** Every temp dir this file creates, to look for leftover mounts at the end. */
const made: string[] = []
function scratch(t: TestContext, prefix: string): string {
  const dir = tempDirFor(t, `sys-${prefix}-`)
  made.push(dir)
  return dir
}

function sysError(code: string | string[], syscall: string, pathStart?: string): (e: unknown) => boolean {
  const codes = Array.isArray(code) ? code : [code]
  return (e: unknown) => {
    assert.ok(e instanceof SysError, `expected a SysError, got ${String(e)}`)
    assert.ok(codes.includes(e.code), `code ${e.code} is one of ${codes.join(', ')}`)
    assert.equal(e.errno > 0, true)
    assert.equal(e.syscall, syscall)
    if (pathStart !== undefined) {
      assert.ok(e.path?.startsWith(pathStart), `path ${e.path} starts with ${pathStart}`)
      assert.ok(e.message.includes(pathStart), 'the message names the path')
    }
    assert.ok(e.message.includes(e.code))
    return true
  }
}

/** Mount points (field 5) of /proc/self/mountinfo, octal escapes decoded. */
function mountPoints(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l.split(' ')[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
}

function isMounted(path: string): boolean {
  return mountPoints().includes(path)
}

/** Unmounts `target`, falling back to a lazy detach; never throws (it runs in finally blocks). */
function unmount(target: string): void {
  if (!isMounted(target)) return
  try {
    umount2(target)
  } catch {
    try {
      umount2(target, MNT_DETACH)
    } catch {
      // reported by the leftover check at the end
    }
  }
}

const nsOf = (t: Timespec): bigint => BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec)

// ---------------------------------------------------------------- device numbers

test('makedev/major/minor: the glibc dev_t layout, round trip past 8 and 12 bits', () => {
  assert.equal(makedev(0, 0), 0n)
  assert.equal(makedev(1, 3), 0x103n)
  assert.equal(makedev(8, 1), 0x801n)
  // minor 0x12345: low byte at bits 0-7, the rest at bits 20+; major 0x123 at bits 8-19.
  assert.equal(makedev(0x123, 0x12345), 0x45n | (0x123n << 8n) | (0x123n << 20n))
  assert.equal(makedev(0xabcde, 0), (0xcden << 8n) | (0xab000n << 32n))
  const cases: Array<[number, number]> = [
    [0, 0], [1, 3], [8, 1], [255, 255], [256, 256], [259, 65536], [300, 70000], [4095, 1048575],
    [4096, 0], [5000, 1], [0, 1 << 20], [0xfffff000, 0], [0xffffffff, 0xffffffff], [12345678, 87654321],
  ]
  for (const [ma, mi] of cases) {
    const dev = makedev(ma, mi)
    assert.deepEqual([major(dev), minor(dev)], [ma, mi], `${ma},${mi}`)
    if (dev <= BigInt(Number.MAX_SAFE_INTEGER)) assert.deepEqual([major(Number(dev)), minor(Number(dev))], [ma, mi], `${ma},${mi} as a number`)
  }
  // What the kernel reports for /dev/null.
  const st = statSync('/dev/null', { bigint: true })
  assert.equal(st.rdev, makedev(1, 3))
})

test('mknod: the 0/0 whiteout char device, and devices with majors/minors past 255', (t) => {
  if (!requireRoot(t)) return
  const dir = scratch(t, 'mknod')
  const whiteout = join(dir, 'whiteout')
  mknod(whiteout, S_IFCHR, 0, 0)
  const w = lstatSync(whiteout, { bigint: true })
  assert.ok(w.isCharacterDevice())
  assert.equal(w.rdev, 0n)
  assert.equal(Number(w.mode) & 0o7777, 0)

  const devices: Array<[number, number, number]> = [
    [S_IFCHR, 1, 3],
    [S_IFBLK, 8, 1],
    [S_IFCHR, 300, 70000],
    [S_IFBLK, 259, 256],
    [S_IFBLK, 4095, 1048575], // the largest the kernel's 12/20-bit dev_t holds
  ]
  for (const [type, ma, mi] of devices) {
    const p = join(dir, `dev-${type}-${ma}-${mi}`)
    mknod(p, type | 0o640, ma, mi)
    const st = lstatSync(p, { bigint: true })
    assert.equal(type === S_IFCHR ? st.isCharacterDevice() : st.isBlockDevice(), true, p)
    assert.equal(Number(st.mode) & 0o777, 0o640 & ~process.umask())
    assert.deepEqual([major(st.rdev), minor(st.rdev)], [ma, mi], p)
    assert.equal(st.rdev, makedev(ma, mi))
  }
  assert.throws(() => mknod(whiteout, S_IFCHR, 0, 0), sysError('EEXIST', 'mknod', whiteout))
})

// ---------------------------------------------------------------- xattrs

test('lsetxattr/lgetxattr/llistxattr/lremovexattr: user.*, trusted.*, binary and large values', (t) => {
  if (!requireRoot(t)) return
  const dir = scratch(t, 'xattr')
  const f = join(dir, 'file')
  writeFileSync(f, 'x')
  const binary = Buffer.from([0x00, 0x01, 0xff, 0x00, 0x7f, 0x80, 0x00, 0x0a, 0x00])
  const large = Buffer.alloc(3000, 0xa5) // over lgetxattr's first 256-byte try
  lsetxattr(f, 'user.text', 'hello')
  lsetxattr(f, 'trusted.bin', binary)
  lsetxattr(f, 'user.large', large)
  lsetxattr(f, 'user.empty', Buffer.alloc(0))
  assert.equal(lgetxattr(f, 'user.text')?.toString(), 'hello')
  assert.deepEqual(lgetxattr(f, 'trusted.bin'), binary)
  assert.deepEqual(lgetxattr(f, 'user.large'), large)
  assert.deepEqual(lgetxattr(f, 'user.empty'), Buffer.alloc(0), 'present but empty is not missing')
  assert.equal(lgetxattr(f, 'user.missing'), undefined)
  assert.deepEqual(llistxattr(f).sort(), ['trusted.bin', 'user.empty', 'user.large', 'user.text'])

  // XATTR_CREATE (1) refuses to replace; XATTR_REPLACE (2) refuses to create.
  assert.throws(() => lsetxattr(f, 'user.text', 'again', 1), sysError('EEXIST', 'lsetxattr', `${f}: user.text`))
  assert.throws(() => lsetxattr(f, 'user.new', 'v', 2), sysError('ENODATA', 'lsetxattr', f))
  lsetxattr(f, 'user.text', 'replaced', 2)
  assert.equal(lgetxattr(f, 'user.text')?.toString(), 'replaced')

  lremovexattr(f, 'user.text')
  lremovexattr(f, 'user.large')
  assert.equal(lgetxattr(f, 'user.text'), undefined)
  assert.deepEqual(llistxattr(f).sort(), ['trusted.bin', 'user.empty'])
  assert.throws(() => lremovexattr(f, 'user.text'), sysError('ENODATA', 'lremovexattr', `${f}: user.text`))

  // A name list over llistxattr's first 1024-byte try.
  const g = join(dir, 'many')
  writeFileSync(g, '')
  const names = Array.from({ length: 40 }, (_, i) => `user.${String(i).padStart(2, '0')}-${'n'.repeat(40)}`)
  for (const n of names) lsetxattr(g, n, 'v')
  assert.deepEqual(llistxattr(g).sort(), names)
  assert.deepEqual(llistxattr(join(dir, 'file')).length, 2)
  writeFileSync(join(dir, 'bare'), '')
  assert.deepEqual(llistxattr(join(dir, 'bare')), [])

  assert.throws(() => lgetxattr(join(dir, 'nope'), 'user.x'), sysError('ENOENT', 'lgetxattr', join(dir, 'nope')))
  assert.throws(() => llistxattr(join(dir, 'nope')), sysError('ENOENT', 'llistxattr', join(dir, 'nope')))
})

test('xattrs on a symlink apply to the link itself; user.* there is EPERM', (t) => {
  if (!requireRoot(t)) return
  const dir = scratch(t, 'xattr-link')
  const target = join(dir, 'target')
  const link = join(dir, 'link')
  writeFileSync(target, '')
  symlinkSync('target', link)
  assert.throws(() => lsetxattr(link, 'user.x', 'v'), sysError('EPERM', 'lsetxattr', link))
  try {
    lsetxattr(link, 'user.x', 'v')
  } catch (e) {
    assert.ok(e instanceof SysError)
    assert.equal(e.errno, 1)
    assert.equal(e.path, `${link}: user.x`)
    assert.match(e.message, /^lsetxattr ".*\/link: user\.x" failed: EPERM$/)
  }
  assert.equal(lgetxattr(link, 'user.x'), undefined)

  lsetxattr(link, 'trusted.on-link', Buffer.from([0, 1, 2]))
  assert.deepEqual(lgetxattr(link, 'trusted.on-link'), Buffer.from([0, 1, 2]))
  assert.deepEqual(llistxattr(link), ['trusted.on-link'])
  assert.equal(lgetxattr(target, 'trusted.on-link'), undefined, 'the target is untouched')
  assert.deepEqual(llistxattr(target), [])
  lremovexattr(link, 'trusted.on-link')
  assert.deepEqual(llistxattr(link), [])
})

// ---------------------------------------------------------------- times

test('lutimens/futimens set atime and mtime to the nanosecond, on a symlink without following it', (t) => {
  const dir = scratch(t, 'times')
  const f = join(dir, 'file')
  const link = join(dir, 'link')
  writeFileSync(f, 'x')
  symlinkSync('file', link)
  const cases: Array<[Timespec, Timespec]> = [
    [{ sec: 1_234_567_890, nsec: 987_654_321 }, { sec: 1_700_000_000, nsec: 1 }],
    [{ sec: 0, nsec: 0 }, { sec: 0, nsec: 999_999_999 }],
    [{ sec: -2, nsec: 500_000_000 }, { sec: 8_589_934_592, nsec: 123 }], // before 1970; past the octal tar field
  ]
  for (const [atime, mtime] of cases) {
    lutimens(f, atime, mtime)
    const st = lstatSync(f, { bigint: true })
    assert.equal(st.atimeNs, nsOf(atime))
    assert.equal(st.mtimeNs, nsOf(mtime))
  }

  const before = lstatSync(f, { bigint: true })
  const linkTime = { sec: 1_500_000_000, nsec: 42 }
  lutimens(link, linkTime, linkTime)
  const ls = lstatSync(link, { bigint: true })
  assert.equal(ls.mtimeNs, nsOf(linkTime))
  assert.equal(ls.atimeNs, nsOf(linkTime))
  const after = lstatSync(f, { bigint: true })
  assert.equal(after.mtimeNs, before.mtimeNs, "the symlink's target keeps its times")
  assert.equal(after.atimeNs, before.atimeNs)

  const fd = openSync(f, 'r+')
  try {
    const m = { sec: 1_111_111_111, nsec: 111_111_111 }
    const a = { sec: 1_222_222_222, nsec: 222_222_222 }
    futimens(fd, a, m, f)
    const st = lstatSync(f, { bigint: true })
    assert.equal(st.mtimeNs, nsOf(m))
    assert.equal(st.atimeNs, nsOf(a))
    assert.throws(() => futimens(fd, a, { sec: 0, nsec: 1_000_000_000 }, f), sysError('EINVAL', 'futimens', f))
  } finally {
    closeSync(fd)
  }
  assert.throws(() => lutimens(join(dir, 'nope'), linkTime, linkTime), sysError('ENOENT', 'utimensat', join(dir, 'nope')))
})

// ---------------------------------------------------------------- renameat2

test('renameat2: RENAME_NOREPLACE fails with EEXIST, RENAME_EXCHANGE swaps', (t) => {
  const dir = scratch(t, 'rename')
  const a = join(dir, 'a')
  const b = join(dir, 'b')
  writeFileSync(a, 'A')
  writeFileSync(b, 'B')
  assert.throws(() => renameat2(a, b, RENAME_NOREPLACE), sysError('EEXIST', 'renameat2', `${a} -> ${b}`))
  assert.equal(readFileSync(a, 'utf8'), 'A')
  assert.equal(readFileSync(b, 'utf8'), 'B')

  const c = join(dir, 'c')
  renameat2(a, c, RENAME_NOREPLACE)
  assert.equal(existsSync(a), false)
  assert.equal(readFileSync(c, 'utf8'), 'A')

  renameat2(b, c, RENAME_EXCHANGE)
  assert.equal(readFileSync(b, 'utf8'), 'A')
  assert.equal(readFileSync(c, 'utf8'), 'B')

  // A file and a directory swap too (how a staged tree replaces a live one atomically).
  const d = join(dir, 'd')
  mkdirSync(d)
  writeFileSync(join(d, 'inside'), 'dir')
  renameat2(c, d, RENAME_EXCHANGE)
  assert.equal(readFileSync(join(c, 'inside'), 'utf8'), 'dir')
  assert.equal(readFileSync(d, 'utf8'), 'B')

  assert.throws(() => renameat2(join(dir, 'missing'), b, RENAME_EXCHANGE), sysError('ENOENT', 'renameat2'))
  assert.throws(() => renameat2(b, c, RENAME_EXCHANGE | RENAME_NOREPLACE), sysError('EINVAL', 'renameat2'))
})

// ---------------------------------------------------------------- statfs and FICLONE

test('statfs: f_type of the temp dir and /proc', () => {
  const proc = statfs('/proc')
  assert.equal(proc.type, 0x9fa0)
  assert.equal(fsName(proc.type), '0x9fa0')
  const tmp = statfs(tmpdir())
  assert.ok(tmp.type > 0)
  assert.ok(tmp.blockSize >= 512 && (tmp.blockSize & (tmp.blockSize - 1)) === 0, `block size ${tmp.blockSize}`)
  assert.ok(tmp.blocks >= tmp.blocksFree && tmp.blocksFree >= tmp.blocksAvailable)
  assert.ok(tmp.files > 0n)
  assert.equal(fsName(FS_MAGIC.ext4!), 'ext4')
  assert.throws(() => statfs('/no/such/path'), sysError('ENOENT', 'statfs', '/no/such/path'))
})

test('statfs agrees with stat -f on the temp dir', async (t) => {
  if (!requireTool(t, 'stat')) return
  const { stdout } = await run('stat', ['-f', '-c', '%t %s %l', tmpdir()])
  const [type, bsize, namelen] = stdout.toString().trim().split(' ')
  const st = statfs(tmpdir())
  assert.equal(st.type, parseInt(type!, 16))
  assert.equal(st.blockSize, Number(bsize))
  assert.equal(st.nameMax, Number(namelen))
})

test('ficlone on a filesystem without reflinks is a SysError from ioctl(FICLONE)', (t) => {
  const dir = scratch(t, 'ficlone')
  const fsType = fsName(statfs(dir).type)
  if (fsType === 'btrfs' || fsType === 'xfs') {
    t.skip(`${dir} is on ${fsType}, which may support reflinks`)
    return
  }
  const src = join(dir, 'src')
  const dst = join(dir, 'dst')
  writeFileSync(src, Buffer.alloc(8192, 1))
  writeFileSync(dst, '')
  const s = openSync(src, 'r')
  const d = openSync(dst, 'r+')
  try {
    assert.throws(() => ficlone(d, s, dst), sysError(['EOPNOTSUPP', 'EXDEV', 'EINVAL'], 'ioctl(FICLONE)', dst))
  } finally {
    closeSync(s)
    closeSync(d)
  }
  assert.equal(statSync(dst).size, 0, 'nothing was cloned')
})

// ---------------------------------------------------------------- mounts

test('mount tmpfs on a temp dir and umount2 it', (t) => {
  if (!requireRoot(t)) return
  const dir = scratch(t, 'tmpfs')
  const target = join(dir, 'mnt')
  mkdirSync(target)
  writeFileSync(join(target, 'under'), 'hidden by the mount')
  try {
    mount('tmpfs', target, 'tmpfs', 0, 'size=1m,mode=0750')
    assert.ok(isMounted(target))
    assert.equal(statfs(target).type, FS_MAGIC.tmpfs)
    assert.equal(fsName(statfs(target).type), 'tmpfs')
    assert.deepEqual(readdirSync(target), [])
    assert.equal(statSync(target).mode & 0o7777, 0o750)
    writeFileSync(join(target, 'on-tmpfs'), 'x')
    assert.throws(() => umount2(join(dir, 'not-a-mount-point')), sysError(['ENOENT', 'EINVAL'], 'umount2'))
    umount2(target)
    assert.equal(isMounted(target), false)
    assert.deepEqual(readdirSync(target), ['under'])
  } finally {
    unmount(target)
  }
  assert.throws(() => umount2(target), sysError('EINVAL', 'umount2', target))
  assert.throws(() => mount('tmpfs', join(dir, 'missing'), 'tmpfs', 0, null), sysError('ENOENT', 'mount', join(dir, 'missing')))
})

test('mountAsync/umount2Async: on the thread pool, each failure with its own errno even when they overlap', async (t) => {
  if (!requireRoot(t)) return
  const dir = scratch(t, 'async')
  const target = join(dir, 'mnt')
  mkdirSync(target)
  try {
    await mountAsync('tmpfs', target, 'tmpfs', 0, 'size=1m,mode=0700')
    assert.ok(isMounted(target))
    assert.equal(statfs(target).type, FS_MAGIC.tmpfs)
    // Started together, finishing in any order: ENOENT for the missing path, EINVAL for a dir that is no mount point.
    const results = await Promise.allSettled([
      umount2Async(join(dir, 'missing')),
      umount2Async(dir),
      mountAsync('tmpfs', join(dir, 'missing'), 'tmpfs', 0, null),
      umount2Async(join(dir, 'missing')),
      umount2Async(dir),
    ])
    const reasons = results.map((r) => (r.status === 'rejected' ? r.reason : assert.fail('every call must fail')))
    assert.ok(sysError('ENOENT', 'umount2', join(dir, 'missing'))(reasons[0]))
    assert.ok(sysError('EINVAL', 'umount2', dir)(reasons[1]))
    assert.ok(sysError('ENOENT', 'mount', join(dir, 'missing'))(reasons[2]))
    assert.ok(sysError('ENOENT', 'umount2', join(dir, 'missing'))(reasons[3]))
    assert.ok(sysError('EINVAL', 'umount2', dir)(reasons[4]))
    await umount2Async(target)
    assert.equal(isMounted(target), false)
  } finally {
    unmount(target)
  }
})

/** Lower directories l0..l(n-1): each holds its own file and a shared one whose content names the layer. */
function makeLowers(dir: string, n: number): string[] {
  const lowers: string[] = []
  for (let i = 0; i < n; i++) {
    const l = join(dir, `l${i}`)
    mkdirSync(l)
    writeFileSync(join(l, `only-in-${i}`), `layer ${i}\n`)
    writeFileSync(join(l, 'shared'), `top is ${i}\n`)
    lowers.push(l)
  }
  return lowers
}

function checkOverlay(merged: string, n: number): void {
  assert.ok(isMounted(merged))
  assert.equal(fsName(statfs(merged).type), 'overlay')
  for (let i = 0; i < n; i++) assert.equal(readFileSync(join(merged, `only-in-${i}`), 'utf8'), `layer ${i}\n`)
  assert.equal(readFileSync(join(merged, 'shared'), 'utf8'), 'top is 0\n', 'the first lowerdir is the top layer')
  assert.equal(readdirSync(merged).length, n + 1)
  // No upper layer: the mount is read-only.
  assert.throws(() => writeFileSync(join(merged, 'new'), 'x'), (e: unknown) => (e as NodeJS.ErrnoException).code === 'EROFS')
}

test('overlay through the legacy mount() option string, 3 lowers', (t) => {
  if (!requireRoot(t)) return
  const dir = scratch(t, 'ovl-legacy')
  const lowers = makeLowers(dir, 3)
  const merged = join(dir, 'merged')
  mkdirSync(merged)
  try {
    mount('overlay', merged, 'overlay', 0, `lowerdir=${lowers.join(':')}`)
    checkOverlay(merged, 3)
  } finally {
    unmount(merged)
  }
  assert.equal(isMounted(merged), false)
})

test('overlay through mountNewApi with lowerdir+ for 3 lowers', (t) => {
  if (!requireRoot(t)) return
  const dir = scratch(t, 'ovl-new')
  const lowers = makeLowers(dir, 3)
  const merged = join(dir, 'merged')
  mkdirSync(merged)
  try {
    mountNewApi('overlay', merged, lowers.map((l) => ['lowerdir+', l] as [string, string]))
    checkOverlay(merged, 3)
  } finally {
    unmount(merged)
  }
  assert.equal(isMounted(merged), false)
  // Errors name the step that failed.
  assert.throws(() => mountNewApi('overlay', merged, [['lowerdir+', join(dir, 'missing')]]), sysError('ENOENT', 'fsconfig', `${merged}: lowerdir+=`))
  assert.throws(() => mountNewApi('no-such-fs', merged, []), sysError('ENODEV', 'fsopen', 'no-such-fs'))
  assert.throws(() => mountNewApi('overlay', merged, [['lowerdir+', lowers[0]!], ['no_such_option']]), sysError('EINVAL', 'fsconfig', `${merged}: no_such_option`))
  assert.equal(isMounted(merged), false)
})

test('overlay through mountNewApi with 200 lowers (more than one page of options)', (t) => {
  if (!requireRoot(t)) return
  const dir = scratch(t, 'ovl-200')
  const lowers = makeLowers(dir, 200)
  const optionBytes = `lowerdir=${lowers.join(':')}`.length
  assert.ok(optionBytes > 4096, `the legacy option string would be ${optionBytes} bytes`)
  const merged = join(dir, 'merged')
  mkdirSync(merged)
  try {
    mountNewApi('overlay', merged, lowers.map((l) => ['lowerdir+', l] as [string, string]))
    checkOverlay(merged, 200)
  } finally {
    unmount(merged)
  }
  assert.equal(isMounted(merged), false)
})

test('no mount of a temp dir of this file is left behind', () => {
  const leftovers = mountPoints().filter((m) => made.some((d) => m === d || m.startsWith(`${d}/`)))
  for (const m of leftovers) unmount(m)
  assert.deepEqual(leftovers, [])
  assert.ok(made.length > 0)
})

test("koffi: on glibc Linux, the binary koffi's own index loads, required directly (no wrapper), and it calls libc", (t) => {
  const musl = { x64: 'x86_64', arm64: 'aarch64' }[process.arch as string]
  if (process.platform !== 'linux' || musl === undefined || existsSync(`/lib/ld-musl-${musl}.so.1`)) {
    t.skip('not glibc Linux on x64/arm64: koffi() goes through koffi\'s index')
    return
  }
  const viaIndex = createRequire(import.meta.url)('koffi') as { default: unknown }
  // The index exports the native module as `default`, beside wrapped copies of its functions.
  assert.equal(koffi(), viaIndex.default)
  const getpid = libc.func('int getpid()')
  assert.equal(getpid(), process.pid)
})
