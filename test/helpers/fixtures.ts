/**
 * Trees to pack, diff and extract. makeRichTree holds one of everything a
 * layer tar can carry, including the cases tar formats get wrong (names and
 * link targets past the 100-byte ustar fields, large ids, device numbers,
 * binary xattrs, nanosecond times). Both builders need root.
 */
import { copyFile, chmod, chown, lchown, link, mkdir, readdir, lstat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { lsetxattr, lutimens, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from '../../src/sys/index.js'
import { findOnPath, run } from './peers.js'

/** mulberry32: a tiny seeded PRNG, so "random" file content is the same on every run and machine. */
function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return (t ^ (t >>> 14)) >>> 0
  }
}

/** `size` deterministic pseudo-random bytes; each seed gives its own stream. */
export function randomBytesSeeded(size: number, seed: number): Buffer {
  const next = prng(seed)
  const buf = Buffer.alloc(size + 3)
  for (let i = 0; i < size; i += 4) buf.writeUInt32LE(next(), i)
  return buf.subarray(0, size)
}

/**
 * The security.capability value `setcap cap_net_raw+ep` writes: a v2
 * vfs_cap_data (20 bytes), magic 0x02000001 (revision 2 | effective) then
 * permitted bit 13 (CAP_NET_RAW) in the low word, all other words zero.
 * The kernel refuses any other length/revision combination with EINVAL.
 */
export const CAP_NET_RAW_EP = Buffer.from('0100000200200000000000000000000000000000', 'hex')

/** A user.* value with NUL and high bytes, to catch anyone treating xattr values as C strings. */
export const BINARY_XATTR = Buffer.from([0x00, 0x01, 0xff, 0x00, 0x7f, 0x80, 0x00, 0x0a, 0x00])

/** Paths in makeRichTree the tests refer to by name. */
export const RICH = {
  longName: `long/${'n'.repeat(150)}`,
  /** More than 255 bytes in total: five 60-char directories then a file. */
  longPath: `long/${Array.from({ length: 5 }, (_, i) => `${i}`.repeat(60)).join('/')}/file-at-the-bottom`,
  longTargetLink: 'long/link-with-long-target',
  longTarget: `${'t'.repeat(40)}/`.repeat(5).slice(0, 200),
  longHardlinkTarget: `long/${'l'.repeat(110)}`,
  longHardlink: `long/${'h'.repeat(120)}`,
  hardlinks: ['hard/a/first', 'hard/b/c/second', 'hard/third'],
  utf8: 'names/héllo-世界.txt',
  utf8Dir: 'names/目录-ünï',
  spaces: 'names/with  two spaces .txt',
} as const

/**
 * Builds, inside `dir` (created if needed), a tree exercising every kind of
 * entry a layer tar can hold. Deterministic: two calls give trees that
 * snapshotTree reports as equal (inode numbers aside). Needs root for
 * mknod, chown and security.capability.
 */
export async function makeRichTree(dir: string): Promise<void> {
  const p = (rel: string): string => join(dir, rel)
  const mkdirMode = async (rel: string, mode: number): Promise<void> => {
    await mkdir(p(rel), { recursive: true })
    await chmod(p(rel), mode) // mkdir's mode goes through the umask; chmod does not
  }
  const file = async (rel: string, content: Buffer | string, mode = 0o644): Promise<void> => {
    await writeFile(p(rel), content)
    await chmod(p(rel), mode)
  }

  await mkdirMode('.', 0o755)

  // Directory modes, including the sticky bit.
  await mkdirMode('dirs/public/nested/deeper', 0o755)
  await mkdirMode('dirs/private', 0o700)
  await mkdirMode('dirs/sticky', 0o1777)
  await mkdirMode('dirs/empty', 0o750)
  await file('dirs/private/secret', 'only root\n', 0o600)

  // Sizes around the 512-byte tar block boundary, and one spanning many blocks.
  await mkdirMode('files', 0o755)
  await file('files/empty', Buffer.alloc(0))
  await file('files/one', randomBytesSeeded(1, 1))
  await file('files/b511', randomBytesSeeded(511, 511))
  await file('files/b512', randomBytesSeeded(512, 512))
  await file('files/b513', randomBytesSeeded(513, 513))
  await file('files/big', randomBytesSeeded(1024 * 1024 + 3, 1048579))
  await file('files/script.sh', '#!/bin/sh\necho hi\n', 0o755)
  await file('files/readonly', 'ro\n', 0o444)

  // setuid/setgid: chown clears them, so owners come first and modes last.
  await mkdirMode('perms', 0o755)
  await file('perms/setuid', 'suid\n')
  await chmod(p('perms/setuid'), 0o4755)
  await file('perms/setgid', 'sgid\n')
  await chmod(p('perms/setgid'), 0o2755)
  await mkdirMode('perms/setgid-dir', 0o2775)

  // Owners, including ids too large for the 7-digit octal ustar fields (2097151 max).
  await mkdirMode('owners', 0o755)
  for (const [name, uid, gid] of [
    ['u1000', 1000, 1000],
    ['nobody', 65534, 65534],
    ['large', 123456, 654321],
    ['huge', 3000000, 4000000],
  ] as const) {
    await file(`owners/${name}`, `${name}\n`)
    await chown(p(`owners/${name}`), uid, gid)
  }
  await mkdirMode('owners/dir-1000', 0o750)
  await chown(p('owners/dir-1000'), 1000, 1000)
  await chmod(p('owners/dir-1000'), 0o750)
  await file('owners/setuid-1000', 'suid 1000\n')
  await chown(p('owners/setuid-1000'), 1000, 1000)
  await chmod(p('owners/setuid-1000'), 0o4750)

  // Symlinks: none of these may ever be followed, the absolute one least of all.
  await mkdirMode('links', 0o755)
  await symlink('../files/one', p('links/relative'))
  await symlink('/etc/passwd', p('links/absolute'))
  await symlink('missing/nowhere', p('links/dangling'))
  await symlink('../dirs/public', p('links/to-dir'))
  await symlink('relative', p('links/owned'))
  await lchown(p('links/owned'), 1000, 1000)

  // One inode, three names, in three different directories.
  await mkdirMode('hard/a', 0o755)
  await mkdirMode('hard/b/c', 0o755)
  const [first, ...others] = RICH.hardlinks
  await file(first!, randomBytesSeeded(1000, 3))
  for (const other of others) await link(p(first!), p(other))

  // Devices and a fifo.
  await mkdirMode('dev', 0o755)
  mknod(p('dev/null'), S_IFCHR | 0o666, 1, 3)
  await chmod(p('dev/null'), 0o666)
  mknod(p('dev/loop0'), S_IFBLK | 0o660, 7, 0)
  await chmod(p('dev/loop0'), 0o660)
  await chown(p('dev/loop0'), 0, 6)
  mknod(p('dev/fifo'), S_IFIFO | 0o640)
  await chmod(p('dev/fifo'), 0o640)

  // Names and link targets past ustar's 100-byte name/linkname and 155-byte prefix fields.
  await mkdirMode('long', 0o755)
  await file(RICH.longName, 'long name\n')
  await mkdir(p(RICH.longPath.slice(0, RICH.longPath.lastIndexOf('/'))), { recursive: true })
  await file(RICH.longPath, 'deep\n')
  await symlink(RICH.longTarget, p(RICH.longTargetLink))
  // Both names > 100 bytes, so whichever the archiver meets second, its linkname overflows.
  await file(RICH.longHardlinkTarget, 'linked with a long name\n')
  await link(p(RICH.longHardlinkTarget), p(RICH.longHardlink))

  // Non-ASCII and space-laden names.
  await mkdirMode('names', 0o755)
  await file(RICH.utf8, 'bonjour\n')
  await mkdirMode(RICH.utf8Dir, 0o755)
  await file(`${RICH.utf8Dir}/ünïcödé`, 'ü\n')
  await file(RICH.spaces, 'spaces\n')
  await file('names/ leading-space', 'lead\n')

  // xattrs on a file, a directory, and a capability (set after chown/chmod/write, which all clear it).
  await mkdirMode('xattr/dir', 0o755)
  await file('xattr/file', 'has xattrs\n')
  lsetxattr(p('xattr/file'), 'user.comment', 'hello world')
  lsetxattr(p('xattr/file'), 'user.binary', BINARY_XATTR)
  lsetxattr(p('xattr/file'), 'user.empty', Buffer.alloc(0))
  lsetxattr(p('xattr/dir'), 'user.purpose', 'a directory with an attribute')
  await file('xattr/cap', '#!/bin/sh\n', 0o755)
  lsetxattr(p('xattr/cap'), 'security.capability', CAP_NET_RAW_EP)

  await setTimes(dir)
}

/** Nanosecond parts cycled through, including the edges 0 and 999999999. */
const NSECS = [123456789, 0, 999999999, 1, 500000000, 987654321, 100]

/**
 * Gives every entry its own sub-second mtime (and atime). Non-directories
 * first, then directories deepest first and the root last, because creating
 * or removing a child would bump a directory's mtime; setting a child's time
 * does not, so this order leaves every time as set.
 */
async function setTimes(root: string): Promise<void> {
  const others: string[] = []
  const dirs: string[] = []
  const walk = async (abs: string): Promise<void> => {
    for (const name of (await readdir(abs)).sort()) {
      const child = join(abs, name)
      const st = await lstat(child)
      if (st.isDirectory()) {
        await walk(child)
        dirs.push(child)
      } else {
        others.push(child)
      }
    }
  }
  await walk(root)
  dirs.push(root) // post-order already puts children before parents; the root goes last
  let i = 0
  for (const path of [...others, ...dirs]) {
    const t = { sec: 1700000000 + i * 3601, nsec: NSECS[i % NSECS.length]! }
    lutimens(path, t, t)
    i++
  }
}

/**
 * A minimal but working root filesystem: the static busybox from Debian's
 * busybox-static, one symlink per applet, the usual top-level directories
 * with their usual modes, and a few files in etc. Needs root; callers check
 * requireTool(t, 'busybox') first.
 *
 * The applet links point at the absolute '/bin/busybox', as in a real
 * image. They are made here rather than by `busybox --install -s`, which
 * links to wherever the binary was run from, i.e. the temporary directory.
 */
export async function makeBusyboxRootfs(dir: string): Promise<void> {
  const host = findOnPath('busybox')
  if (host === undefined) throw new Error('makeBusyboxRootfs: busybox is not installed (apt-get install busybox-static)')
  const p = (rel: string): string => join(dir, rel)
  for (const [rel, mode] of [
    ['.', 0o755],
    ['bin', 0o755],
    ['etc', 0o755],
    ['tmp', 0o1777],
    ['root', 0o700],
    ['home', 0o755],
    ['var', 0o755],
    ['dev', 0o755],
    ['proc', 0o555],
    ['sys', 0o555],
  ] as const) {
    await mkdir(p(rel), { recursive: true })
    await chmod(p(rel), mode)
  }
  await copyFile(host, p('bin/busybox'))
  await chmod(p('bin/busybox'), 0o755)
  const { stdout } = await run(p('bin/busybox'), ['--list'])
  for (const applet of stdout.toString().split('\n')) {
    if (applet === '' || applet === 'busybox' || applet.includes('/')) continue
    await symlink('/bin/busybox', p(`bin/${applet}`))
  }
  const files: [string, string][] = [
    ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n'],
    ['etc/group', 'root:x:0:\nnogroup:x:65534:\n'],
    ['etc/hostname', 'strata-test\n'],
  ]
  for (const [rel, content] of files) {
    await writeFile(p(rel), content)
    await chmod(p(rel), 0o644)
  }
}
