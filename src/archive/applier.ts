/**
 * Writes the entries of a layer tar into a directory, synchronously, as
 * TarParser events arrive. Synchronous on purpose: a layer is thousands of
 * small files and each async fs call costs a thread-pool round trip; the
 * caller feeds one decompressed chunk at a time, so the event loop is never
 * held for long, while gunzip runs on the thread pool in parallel.
 *
 * What is restored exactly: numeric owners, modes with setuid/setgid/sticky,
 * nanosecond mtimes (also of symlinks; directories' are set at the end, after
 * their content stopped changing them), xattrs (but never overlayfs' own
 * `trusted.overlay.*`, which would let a layer steer the overlay mount),
 * hardlinks, device nodes and fifos. Ordering follows dockerd's
 * createTarFile: create, chown, xattrs, chmod (chown clears setuid and
 * file capabilities), times.
 *
 * Syscalls per entry are kept to what changes something: a regular file
 * is created with its final permission bits when the umask leaves them
 * alone (no fchmod then), and it is not chowned when it already has the
 * wanted owner. "Already" is known, not guessed: the target started empty
 * (nothing in it we did not make), neither it nor any directory this layer
 * made is setgid (a new file would take the directory's group), and no
 * default ACL is in play (it would replace the umask). Otherwise every
 * entry gets the full create, chown, xattrs, chmod, times sequence.
 *
 * The applied size: when the target started empty and the apply never
 * removed or replaced anything, `diskSize` is what moby's directory.Size
 * would count on the result (regular files' and symlinks' sizes, each inode
 * once), so overlay2 need not walk the tree again; otherwise it is
 * undefined and the caller walks.
 *
 * Safety: every name goes through entryComponents (".." above the root is
 * refused) and ScopedResolver (symlinked parents resolve inside the root);
 * the final component is created with O_EXCL/O_NOFOLLOW semantics after
 * removing what was there, so nothing outside the root is written, read
 * or deleted.
 */
import {
  chmodSync,
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeSync,
  type Stats,
} from 'node:fs'
import { StrataError, isErrno, isStrataError } from '../errors/index.js'
import { futimens, lgetxattr, lsetxattr, lutimens, mknod, S_IFBLK, S_IFCHR, S_IFIFO, type Timespec } from '../sys/index.js'
import { entryComponents, ScopedResolver, symlinkStaysInside } from './safepath.js'
import type { TarHandler, TarHeader } from './tar/index.js'
import { FUSE_OVERLAYFS_XATTR_PREFIX, OVERLAY_OPAQUE_XATTR, OVERLAY_XATTR_PREFIX, WHITEOUT_META_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX, type WhiteoutFormat } from './whiteout.js'

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW

interface PendingDir {
  components: string[]
  /** Where it was made; still right when nothing was removed or replaced since. */
  path: string
  atime: Timespec
  mtime: Timespec
}

const SPECIAL_BITS = 0o7000
const SETGID = 0o2000
const DEFAULT_ACL_XATTR = 'system.posix_acl_default'

export class Applier implements TarHandler {
  readonly root: string
  readonly #format: WhiteoutFormat
  readonly #resolver: ScopedResolver
  /**
   * Paths this layer wrote, as resolved below the root (symlinked parents
   * followed, so "link/x" and "target/x" are the same path): an opaque
   * marker keeps them. Kept for the full-copy format only, the one whose
   * opaque markers delete.
   */
  readonly #unpacked = new Set<string>()
  readonly #dirs: PendingDir[] = []
  #fd = -1
  #file: TarHeader | undefined
  #filePath = ''
  /** Sum of the entries' sizes, as dockerd counts a layer's size. */
  size = 0
  entries = 0
  /** Bits the process umask takes from the modes given to open/mkdir. */
  readonly #umask: number
  readonly #euid: number
  readonly #egid: number
  /** Whether a new entry's owner and mode are known without asking (see the header); cleared for good when that stops being sure. */
  #predictable: boolean
  /** Whether everything in the target was made by this apply and nothing was removed or replaced since (see diskSize). */
  #pristine: boolean
  #diskSize = 0

  constructor(root: string, format: WhiteoutFormat) {
    this.root = root
    this.#format = format
    this.#resolver = new ScopedResolver(root)
    this.#umask = process.umask()
    this.#euid = process.geteuid?.() ?? -1
    this.#egid = process.getegid?.() ?? -1
    const st = lstatSync(root)
    this.#pristine = st.isDirectory() && readdirSync(root).length === 0
    this.#predictable = this.#pristine && (st.mode & SETGID) === 0 && !hasDefaultAcl(root)
  }

  /**
   * moby's directory.Size of the target as the apply left it, when the
   * apply can tell (it started empty and nothing was removed or replaced);
   * undefined otherwise.
   */
  get diskSize(): number | undefined {
    return this.#pristine ? this.#diskSize : undefined
  }

  entry(h: TarHeader): void {
    this.entries++
    this.size += h.size
    if (h.type === 'globalHeader') return // dockerd ignores PAX global headers
    try {
      this.#entry(h)
    } catch (err) {
      throw wrap(err, h.name)
    }
  }

  data(chunk: Buffer): void {
    if (this.#fd < 0) return // content of a skipped entry (whiteout, aufs metadata)
    try {
      let off = 0
      while (off < chunk.length) off += writeSync(this.#fd, chunk, off, chunk.length - off)
    } catch (err) {
      throw wrap(err, this.#file!.name)
    }
  }

  entryEnd(): void {
    if (this.#fd < 0) return
    const h = this.#file!
    const fd = this.#fd
    this.#fd = -1
    this.#file = undefined
    try {
      if (!this.#ownedAlready(h)) fchownSync(fd, h.uid, h.gid)
      this.#setXattrs(this.#filePath, h)
      if (!this.#modeAlready(h)) fchmodSync(fd, h.mode)
      futimens(fd, accessTime(h), h.mtime, this.#filePath)
    } catch (err) {
      throw wrap(err, h.name)
    } finally {
      closeSync(fd)
    }
  }

  /** After the last entry: directory times, which writing their content kept changing. */
  finish(): void {
    for (const d of this.#dirs) {
      if (this.#pristine) {
        // Nothing was removed or replaced: the directory is where it was made.
        lutimens(d.path, d.atime, d.mtime)
        continue
      }
      // Re-resolve: a later entry may have replaced a parent with a symlink.
      let path: string
      try {
        path = this.#resolver.path(d.components)
      } catch (err) {
        if (err instanceof StrataError && (err.code === 'NOT_FOUND' || err.code === 'INVALID_ARGUMENT')) continue
        throw err
      }
      const st = lstatSync(path, { throwIfNoEntry: false })
      if (st?.isDirectory() === true) lutimens(path, d.atime, d.mtime)
    }
  }

  /** Closes what an interrupted apply left open. */
  abort(): void {
    if (this.#fd >= 0) {
      try {
        closeSync(this.#fd)
      } catch {
        // already failing; the first error is the one to report
      }
      this.#fd = -1
    }
  }

  #entry(h: TarHeader): void {
    const components = entryComponents(h.name)
    if (components.length === 0) {
      // dockerd extracts overlay2 and aufs layers with archive.Unpack, which
      // skips a "." entry when the target exists: the layer dir keeps its own
      // metadata. vfs and btrfs go through UnpackLayer, which applies it.
      if (this.#format !== 'full') return
      if (h.type !== 'dir') throw new StrataError('UNSAFE_PATH', `Entry "${h.name}" names the layer root but is a ${h.type}, not a directory`)
      if ((h.mode & SETGID) !== 0) this.#predictable = false
      this.#applyMetadata(this.root, h)
      this.#dirs.push({ components, path: this.root, atime: accessTime(h), mtime: h.mtime })
      return
    }
    const base = components[components.length - 1]!
    // Kept verbatim in aufs form, but a whiteout must still name a file of its directory.
    if (this.#format === 'aufs' && base.startsWith(WHITEOUT_PREFIX) && !base.startsWith(WHITEOUT_META_PREFIX)) whiteoutVictim(base, h.name)
    if (this.#format !== 'aufs') {
      if (components[0]!.startsWith(WHITEOUT_META_PREFIX) && !(components.length === 1 && base === WHITEOUT_OPAQUE)) {
        // aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): dockerd skips it too.
        if (h.type === 'hardlink') throw new StrataError('NOT_SUPPORTED', `Entry "${h.name}" is an aufs hardlink-directory entry, which strata does not support`)
        return
      }
      if (base.startsWith(WHITEOUT_PREFIX)) {
        this.#whiteout(components, base, h)
        return
      }
      if (h.type === 'hardlink' && h.linkname.replace(/^[./]+/, '').startsWith(WHITEOUT_META_PREFIX)) {
        throw new StrataError('NOT_SUPPORTED', `Entry "${h.name}" links into aufs' "${h.linkname}", which strata does not support`)
      }
    }
    const path = this.#resolver.path(components, true)
    this.#create(path, components, h)
    // Read only by an opaque marker on a full copy (#removeNotUnpacked): overlay and aufs keep the marker instead.
    if (this.#format === 'full') this.#unpacked.add(this.#relative(path))
  }

  /** `abs` (the root or a path below it, as the resolver returns them) relative to the root: '' for the root. */
  #relative(abs: string): string {
    return abs.slice(this.#resolver.root.length).replace(/^\/+/, '')
  }

  #whiteout(components: string[], base: string, h: TarHeader): void {
    // The whiteout's directory, fully resolved inside the root: its last
    // component too may be a symlink ("link/.wh.x" with link -> /etc), and
    // the kernel must never be the one to follow it.
    if (base === WHITEOUT_OPAQUE) {
      const dir = this.#resolver.parentDir(components, true)
      if (this.#format === 'overlay') lsetxattr(dir, OVERLAY_OPAQUE_XATTR, 'y')
      else {
        this.#pristine = false
        this.#removeNotUnpacked(dir, this.#relative(dir))
      }
      return
    }
    const victim = whiteoutVictim(base, h.name)
    const path = `${this.#resolver.parentDir(components, true)}/${victim}`
    this.#remove(path)
    if (this.#format === 'overlay') {
      mknod(path, S_IFCHR, 0, 0)
      if (!this.#ownedAlready(h)) lchownSync(path, h.uid, h.gid)
    }
  }

  /** dockerd's opaque handling on a full copy: delete everything below `dir` this layer did not write. */
  #removeNotUnpacked(dir: string, rel: string): void {
    for (const ent of readdirSync(dir, { withFileTypes: true })) {
      const childRel = rel === '' ? ent.name : `${rel}/${ent.name}`
      const childPath = `${dir}/${ent.name}`
      if (!this.#unpacked.has(childRel)) {
        rmSync(childPath, { recursive: true, force: true })
        this.#resolver.invalidate()
      } else if (ent.isDirectory()) {
        this.#removeNotUnpacked(childPath, childRel)
      }
    }
  }

  #remove(path: string): Stats | undefined {
    const st = lstatSync(path, { throwIfNoEntry: false })
    if (st === undefined) return undefined
    // Sizes counted and directory paths remembered may be stale from here on.
    this.#pristine = false
    rmSync(path, { recursive: true, force: true })
    if (st.isDirectory() || st.isSymbolicLink()) this.#resolver.invalidate()
    return st
  }

  #create(path: string, components: string[], h: TarHeader): void {
    switch (h.type) {
      case 'file': {
        // The final permission bits right away when entryEnd will not chmod
        // (modeAlready); else owner-only until then, as dockerd does.
        const mode = this.#modeAlready(h) ? h.mode : 0o600
        let fd: number
        try {
          fd = openSync(path, CREATE_FLAGS, mode)
        } catch (err) {
          if (!isErrno(err, 'EEXIST')) throw err
          this.#remove(path)
          fd = openSync(path, CREATE_FLAGS, mode)
        }
        this.#diskSize += h.size
        this.#fd = fd
        this.#file = h
        this.#filePath = path
        return
      }
      case 'dir': {
        // A setgid directory hands its group to what is made in it: owners are no longer predictable.
        if ((h.mode & SETGID) !== 0) this.#predictable = false
        const exact = this.#modeAlready(h)
        let made = true
        try {
          mkdirSync(path, exact ? h.mode : 0o700)
        } catch (err) {
          if (!isErrno(err, 'EEXIST')) throw err
          // An existing directory merges with the layer's; anything else is replaced.
          if (lstatSync(path).isDirectory() !== true) {
            this.#remove(path)
            mkdirSync(path, exact ? h.mode : 0o700)
          } else made = false
        }
        if (made) {
          if (!this.#ownedAlready(h)) lchownSync(path, h.uid, h.gid)
          this.#setXattrs(path, h)
          // Again: an xattr (a default ACL) may have made the mode unpredictable.
          if (!exact || !this.#modeAlready(h)) chmodSync(path, h.mode)
        } else {
          this.#applyMetadata(path, h)
        }
        this.#dirs.push({ components, path, atime: accessTime(h), mtime: h.mtime })
        return
      }
      case 'symlink':
        if (!symlinkStaysInside(components, h.linkname)) {
          throw new StrataError('UNSAFE_PATH', `Symlink "${h.name}" -> "${h.linkname}" points outside the layer root`, { details: { entry: h.name, target: h.linkname } })
        }
        this.#replace(path, () => symlinkSync(h.linkname, path))
        this.#diskSize += Buffer.byteLength(h.linkname)
        if (!this.#ownedAlready(h)) lchownSync(path, h.uid, h.gid)
        this.#setXattrs(path, h)
        lutimens(path, accessTime(h), h.mtime)
        return
      case 'hardlink': {
        let target: string
        try {
          target = this.#resolver.path(entryComponents(h.linkname, `Hardlink "${h.name}" target`))
        } catch (err) {
          if (!isStrataError(err, 'NOT_FOUND')) throw err
          throw new StrataError('NOT_FOUND', `Hardlink "${h.name}" -> "${h.linkname}": the target is not in the layer`, { cause: err })
        }
        const st = lstatSync(target, { throwIfNoEntry: false })
        if (st === undefined) throw new StrataError('NOT_FOUND', `Hardlink "${h.name}" -> "${h.linkname}": the target is not in the layer`)
        if (st.isDirectory()) throw new StrataError('UNSAFE_PATH', `Hardlink "${h.name}" -> "${h.linkname}": the target is a directory`)
        if (target === path) return // a link to itself: nothing to do
        this.#replace(path, () => linkSync(target, path))
        if (!st.isSymbolicLink()) this.#applyMetadata(path, h)
        return
      }
      case 'char':
      case 'block':
      case 'fifo': {
        const type = h.type === 'char' ? S_IFCHR : h.type === 'block' ? S_IFBLK : S_IFIFO
        this.#replace(path, () => mknod(path, type | 0o600, h.devmajor, h.devminor))
        this.#applyMetadata(path, h)
        return
      }
      case 'globalHeader':
        return
    }
  }

  /** Creates with `make`; if something is in the way, removes it and tries once more. */
  #replace(path: string, make: () => void): void {
    try {
      make()
    } catch (err) {
      if (!isErrno(err, 'EEXIST')) throw err
      this.#remove(path)
      make()
    }
  }

  /**
   * Whether a new entry would have owner h.uid:h.gid without a chown: we
   * create as euid:egid, and no setgid directory can have changed the group.
   */
  #ownedAlready(h: TarHeader): boolean {
    return this.#predictable && h.uid === this.#euid && h.gid === this.#egid
  }

  /**
   * Whether creating with h.mode gives exactly h.mode: no setuid/setgid/
   * sticky bits (a chown after the create would clear them, so they are set
   * last, by chmod) and none the umask would strip.
   */
  #modeAlready(h: TarHeader): boolean {
    return this.#predictable && (h.mode & SPECIAL_BITS) === 0 && (h.mode & this.#umask) === 0
  }

  /** Owner, xattrs, mode, and (but for directories, done in finish) times of a non-symlink. */
  #applyMetadata(path: string, h: TarHeader): void {
    lchownSync(path, h.uid, h.gid)
    this.#setXattrs(path, h)
    chmodSync(path, h.mode)
    if (h.type !== 'dir') lutimens(path, accessTime(h), h.mtime)
  }

  #setXattrs(path: string, h: TarHeader): void {
    for (const [name, value] of h.xattrs) {
      if (name.startsWith(OVERLAY_XATTR_PREFIX) || name.startsWith(FUSE_OVERLAYFS_XATTR_PREFIX)) continue
      // A default ACL decides the modes of what is made below it, not the umask.
      if (name === DEFAULT_ACL_XATTR) this.#predictable = false
      try {
        lsetxattr(path, name, value)
      } catch (err) {
        // As dockerd: a filesystem without xattr support loses them, with no error.
        if (!isErrno(err, 'ENOTSUP', 'EOPNOTSUPP')) throw err
      }
    }
  }
}

/** The name a whiteout `.wh.<victim>` deletes; UNSAFE_PATH when that is not a file of its directory ("", ".", ".."). */
function whiteoutVictim(base: string, entry: string): string {
  const victim = base.slice(WHITEOUT_PREFIX.length)
  if (victim === '' || victim === '.' || victim === '..' || victim.includes('/')) {
    throw new StrataError('UNSAFE_PATH', `Whiteout "${entry}" names "${victim}", which is not a file in its directory`, { details: { entry } })
  }
  return victim
}

/** Whether `dir` carries a default ACL (which, not the umask, then shapes new entries' modes). */
function hasDefaultAcl(dir: string): boolean {
  try {
    return lgetxattr(dir, DEFAULT_ACL_XATTR) !== undefined
  } catch (err) {
    if (isErrno(err, 'ENOTSUP', 'EOPNOTSUPP')) return false
    throw err
  }
}

/** dockerd never lets atime be older than mtime. */
function accessTime(h: TarHeader): Timespec {
  const a = h.atime
  if (a === undefined || a.sec < h.mtime.sec || (a.sec === h.mtime.sec && a.nsec < h.mtime.nsec)) return h.mtime
  return a
}

function wrap(err: unknown, name: string): Error {
  if (err instanceof StrataError) {
    if (err.message.includes(`"${name}"`)) return err
    return new StrataError(err.code, `Cannot extract "${name}": ${err.message}`, { cause: err, details: { ...err.details, entry: name } })
  }
  const e = err as NodeJS.ErrnoException
  const code = typeof e.code === 'string' ? e.code : 'error'
  const what = code === 'ENOSPC' ? 'no space left on the device' : code === 'EDQUOT' ? 'disk quota exceeded' : e.message
  return new StrataError('SYSCALL', `Cannot extract "${name}": ${what}`, { cause: err, details: { entry: name, errno: code } })
}
