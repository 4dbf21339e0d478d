/**
 * copyTree: an exact copy of a directory tree, which is what the vfs driver
 * does to create a child layer (moby's daemon/graphdriver/copy.DirCopy).
 *
 * "Exact" means everything a layer can hold, as snapshotTree in the tests
 * sees it: the entry types dir, file, symlink, char/block device and fifo
 * (sockets are skipped: no layer format carries them), numeric owners,
 * modes with setuid/setgid/sticky, nanosecond atime and mtime, every
 * extended attribute (security.capability included), symlink targets as
 * raw bytes, and hardlinks (names sharing an inode in the source share one
 * inode in the copy). Symlinks are never followed.
 *
 * Metadata is written in the order dockerd's createTarFile uses, because
 * each step can undo an earlier one: create, lchown (clears setuid/setgid
 * and file capabilities), xattrs (security.capability must come after the
 * chown), chmod (puts setuid/setgid back), times (last, since every other
 * step bumps ctime and creating children bumps a directory's mtime; so a
 * directory's times are set after its content is complete).
 *
 * Regular file content is shared with ioctl(FICLONE) where the filesystem
 * can (btrfs, xfs with reflink=1): instant, and no extra space until either
 * side is written. Elsewhere it is copied in the kernel by copy_file_range
 * (or sendfile), never through JS buffers. Both go through copyFileSync:
 * with COPYFILE_FICLONE_FORCE libuv issues the same ioctl as sys.ficlone,
 * but opens, clones, sets the mode and closes in one native call, where
 * sys.ficlone would need two opens and two closes from JS per file.
 *
 * Everything is synchronous on purpose: a root filesystem is thousands of
 * small files, each needing half a dozen calls; a thread-pool round trip
 * per call costs more than the calls. The event loop is held for the whole
 * copy (seconds for a large image), which the vfs driver accepts: vfs is the
 * driver of last resort.
 */
import {
  chmodSync,
  constants,
  copyFileSync,
  linkSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  symlinkSync,
  type BigIntStats,
} from 'node:fs'
import { timespecOf } from '../archive/index.js'
import { StrataError, isErrno, isStrataError } from '../errors/index.js'
import { lgetxattr, llistxattr, lsetxattr, lutimens, major, minor, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from '../sys/index.js'

/**
 * How regular files get their content:
 * - `auto`: FICLONE, tried on the first file; if the filesystem cannot
 *   (EOPNOTSUPP, EXDEV, EINVAL, ENOTTY), a plain copy for the rest of the tree;
 * - `always`: FICLONE or fail (NOT_SUPPORTED);
 * - `never`: no FICLONE. Note the kernel's copy_file_range may still share
 *   extents on filesystems that implement it by remapping (btrfs, xfs);
 *   that is the kernel's choice, as it is for `cp --reflink=never`.
 */
export type ReflinkMode = 'auto' | 'always' | 'never'

export interface CopyTreeOptions {
  reflink?: ReflinkMode
}

export interface CopyTreeResult {
  /** True when at least one regular file's content was shared with FICLONE. */
  reflinked: boolean
}

const S_IFMT = 0o170000n
const S_IFDIR = 0o040000n
const S_IFREG = 0o100000n
const S_IFLNK = 0o120000n
const S_IFCHR_N = 0o020000n
const S_IFBLK_N = 0o060000n
const S_IFIFO_N = 0o010000n

/** errnos with which FICLONE says "not on this filesystem / between these files" (ENOTSUP is how libuv names EOPNOTSUPP). */
const CLONE_UNSUPPORTED = ['EOPNOTSUPP', 'ENOTSUP', 'EXDEV', 'EINVAL', 'ENOTTY']

const CLONE_FLAGS = constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE_FORCE
const COPY_FLAGS = constants.COPYFILE_EXCL

/** The state of one copy: the hardlink table and whether cloning works here. */
class TreeCopier {
  /** (st_dev, st_ino) of a multiply-linked source → the destination path it was first copied to. */
  readonly #links = new Map<string, string>()
  readonly #mode: ReflinkMode
  /** Whether FICLONE works between these trees: unknown until the first regular file has been tried. */
  #clone: 'unknown' | 'yes' | 'no'
  /**
   * The owner every entry we create gets by itself (see ownerOfNew), so
   * lchown can be skipped for source entries that have it; undefined when
   * that cannot be relied on.
   */
  readonly #newOwner: { uid: bigint; gid: bigint } | undefined
  reflinked = false

  constructor(mode: ReflinkMode, newOwner: { uid: bigint; gid: bigint } | undefined) {
    this.#mode = mode
    this.#clone = mode === 'never' ? 'no' : 'unknown'
    this.#newOwner = newOwner
  }

  /** Copies the content of directory `src` into the existing directory `dst` (not their own metadata). */
  copyChildren(src: string, dst: string): void {
    let names: Buffer[]
    try {
      names = readdirSync(src, { encoding: 'buffer' })
    } catch (err) {
      throw copyError('read the directory', src, dst, err)
    }
    for (const raw of names) {
      const name = raw.toString()
      // Every path below is a JS string; a name that is not valid UTF-8 would
      // come back with U+FFFD in it and name a different file (or none). Say so
      // rather than copy something else or fail with a baffling ENOENT.
      if (name.includes('\uFFFD') && !Buffer.from(name).equals(raw)) {
        throw new StrataError('NOT_SUPPORTED', `Cannot copy "${src}/${name}": its name is not valid UTF-8 (bytes ${raw.toString('hex')})`, {
          details: { dir: src, nameHex: raw.toString('hex') },
        })
      }
      this.#entry(`${src}/${name}`, `${dst}/${name}`)
    }
  }

  #entry(src: string, dst: string): void {
    let st: BigIntStats
    try {
      st = lstatSync(src, { bigint: true })
    } catch (err) {
      throw copyError('stat', src, dst, err)
    }
    const type = st.mode & S_IFMT
    if (type === S_IFDIR) {
      try {
        // 0700 while it fills: nobody else should see a half-copied directory.
        mkdirSync(dst, 0o700)
      } catch (err) {
        throw copyError('create the directory', src, dst, err)
      }
      this.copyChildren(src, dst)
      this.writeMetadata(src, dst, st, false)
      return
    }
    if (type !== S_IFREG && type !== S_IFLNK && type !== S_IFCHR_N && type !== S_IFBLK_N && type !== S_IFIFO_N) return // a socket

    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`
      const first = this.#links.get(key)
      if (first !== undefined) {
        try {
          linkSync(first, dst)
        } catch (err) {
          throw copyError(`hardlink "${first}" as`, src, dst, err)
        }
        return // the inode's metadata was written with its first name
      }
      this.#links.set(key, dst)
    }

    try {
      if (type === S_IFREG) {
        this.#content(src, dst)
      } else if (type === S_IFLNK) {
        // As raw bytes: a link target need not be UTF-8.
        symlinkSync(readlinkSync(src, { encoding: 'buffer' }), dst)
      } else {
        const kind = type === S_IFCHR_N ? S_IFCHR : type === S_IFBLK_N ? S_IFBLK : S_IFIFO
        mknod(dst, kind | 0o600, major(st.rdev), minor(st.rdev))
      }
    } catch (err) {
      if (isStrataError(err)) throw err
      throw copyError('copy', src, dst, err)
    }
    this.writeMetadata(src, dst, st, type === S_IFREG)
  }

  /** A regular file's content, and its mode: copyfile fchmods the new file to the source's st_mode. */
  #content(src: string, dst: string): void {
    if (this.#clone !== 'no') {
      try {
        copyFileSync(src, dst, CLONE_FLAGS)
        this.#clone = 'yes'
        this.reflinked = true
        return
      } catch (err) {
        if (!isErrno(err, ...CLONE_UNSUPPORTED)) throw err
        if (this.#mode === 'always') {
          throw new StrataError('NOT_SUPPORTED', `Cannot reflink "${src}" to "${dst}": ${(err as NodeJS.ErrnoException).code} (FICLONE is not supported here; use reflink "auto" or "never")`, {
            cause: err,
            details: { src, dst },
          })
        }
        // Refused on the first try: the filesystem (or the pair of them) cannot
        // clone, so stop asking. Refused after clones worked: something about this
        // one file (btrfs refuses to clone between nodatasum and datasum files),
        // so copy just this one.
        if (this.#clone === 'unknown') this.#clone = 'no'
      }
    }
    copyFileSync(src, dst, COPY_FLAGS)
  }

  /**
   * Owner, xattrs, mode and times of `dst` from `src`'s stat, in the order
   * that keeps each (see the module comment). `modeSet`: dst already has
   * st's mode (a regular file from copyfile), so only a chown that cleared
   * setuid/setgid makes a chmod necessary. Skipping the calls that would
   * change nothing is a fifth of the time on a fast disk.
   */
  writeMetadata(src: string, dst: string, st: BigIntStats, modeSet: boolean, forceChown = false): void {
    const isLink = (st.mode & S_IFMT) === S_IFLNK
    const owned = !forceChown && this.#newOwner !== undefined && st.uid === this.#newOwner.uid && st.gid === this.#newOwner.gid
    try {
      if (!owned) lchownSync(dst, Number(st.uid), Number(st.gid))
      copyXattrs(src, dst)
      // Linux has no lchmod: a symlink's own mode is always 0777 and chmod would follow it.
      if (!isLink && (!modeSet || (!owned && (st.mode & 0o6000n) !== 0n))) chmodSync(dst, Number(st.mode & 0o7777n))
      lutimens(dst, timespecOf(st.atimeNs), timespecOf(st.mtimeNs))
    } catch (err) {
      if (isStrataError(err)) throw err
      throw copyError('copy the metadata of', src, dst, err)
    }
  }
}

/**
 * The owner of every entry created below the (already existing) directory
 * `dstRoot`: uid is always our fsuid (= euid); gid is our egid unless the
 * directory passes its own group down (setgid bit, or a `grpid` mount),
 * in which case it is the directory's gid, passed on to every subdirectory
 * we create. Both cases give the same answer when the directory's gid is
 * our egid; otherwise we do not rely on it (undefined: always lchown).
 */
function ownerOfNew(dstRoot: string): { uid: bigint; gid: bigint } | undefined {
  const euid = process.geteuid?.()
  const egid = process.getegid?.()
  if (euid === undefined || egid === undefined) return undefined
  const st = lstatSync(dstRoot)
  if (st.gid !== egid) return undefined
  return { uid: BigInt(euid), gid: BigInt(egid) }
}

/** Copies every extended attribute of `src` (the link itself) to `dst`. */
function copyXattrs(src: string, dst: string): void {
  let names: string[]
  try {
    names = llistxattr(src)
  } catch (err) {
    if (isErrno(err, 'ENOTSUP', 'EOPNOTSUPP')) return // the source filesystem has none to give
    throw err
  }
  for (const name of names) {
    const value = lgetxattr(src, name)
    if (value === undefined) continue // removed since it was listed
    try {
      lsetxattr(dst, name, value)
    } catch (err) {
      if (isErrno(err, 'ENOTSUP', 'EOPNOTSUPP')) {
        throw new StrataError('NOT_SUPPORTED', `Cannot copy the extended attribute "${name}" of "${src}" to "${dst}": the destination filesystem does not support it`, {
          cause: err,
          details: { src, dst, xattr: name },
        })
      }
      throw err
    }
  }
}

function copyError(what: string, src: string, dst: string, err: unknown): StrataError {
  const msg = err instanceof Error ? err.message : String(err)
  return new StrataError('SYSCALL', `Cannot ${what} "${src}" (copying to "${dst}"): ${msg}`, { cause: err, details: { src, dst } })
}

/**
 * Copies the directory tree `src` to `dst` exactly (see the module comment),
 * including the metadata of `src` itself onto `dst`. `dst` must not exist
 * (it is created) or be an empty directory. Never follows a symlink, `src`
 * included: a symlink there is INVALID_ARGUMENT.
 *
 * A failure leaves `dst` partly written; callers copy into a directory they
 * can discard whole (the vfs driver copies into a temporary name).
 *
 * The source must not change during the copy (a layer does not): a file
 * replaced between its lstat and its copy is copied as it then is.
 */
export async function copyTree(src: string, dst: string, opts: CopyTreeOptions = {}): Promise<CopyTreeResult> {
  const mode = opts.reflink ?? 'auto'
  if (mode !== 'auto' && mode !== 'always' && mode !== 'never') {
    throw new StrataError('INVALID_ARGUMENT', `Unknown reflink mode "${String(mode)}" (expected "auto", "always" or "never")`)
  }
  let st: BigIntStats
  try {
    st = lstatSync(src, { bigint: true })
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new StrataError('NOT_FOUND', `Cannot copy "${src}": it does not exist`, { cause: err, details: { src } })
    throw copyError('stat', src, dst, err)
  }
  if ((st.mode & S_IFMT) !== S_IFDIR) throw new StrataError('INVALID_ARGUMENT', `Cannot copy "${src}" as a tree: it is not a directory`, { details: { src } })

  try {
    mkdirSync(dst, 0o700)
  } catch (err) {
    if (!isErrno(err, 'EEXIST')) throw copyError('create the destination for', src, dst, err)
    const dstSt = lstatSync(dst)
    if (!dstSt.isDirectory()) throw new StrataError('INVALID_ARGUMENT', `Cannot copy "${src}" to "${dst}": the destination exists and is not a directory`, { details: { src, dst } })
    if (readdirSync(dst).length > 0) throw new StrataError('INVALID_ARGUMENT', `Cannot copy "${src}" to "${dst}": the destination is not empty`, { details: { src, dst } })
  }

  const copier = new TreeCopier(mode, ownerOfNew(dst))
  copier.copyChildren(trimSlash(src), trimSlash(dst))
  // The root was not created with the source's owner whatever ownerOfNew says
  // (it may have existed), and its mode was not set: always both.
  copier.writeMetadata(src, dst, st, false, true)
  return { reflinked: copier.reflinked }
}

/** "/a/b/" → "/a/b" and "/" → "", so child paths are built by appending "/name". */
function trimSlash(p: string): string {
  let out = p
  while (out.length > 1 && out.endsWith('/')) out = out.slice(0, -1)
  return out === '/' ? '' : out
}
