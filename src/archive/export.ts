/**
 * Turning changes into a layer tar, as moby 20.10 does for `docker commit`
 * and `docker save` of a container's layer:
 *
 *  - exportChanges (moby's ExportChanges): one entry per "A"/"C" change,
 *    read from the layer dir, and an AUFS-style whiteout (`.wh.<name>`) per
 *    "D";
 *  - exportOverlayUpper (the overlay2 driver's Diff): the whole upper dir,
 *    with overlayfs whiteouts and opaque dirs converted to AUFS whiteouts.
 *
 * Headers come in two styles (HeaderStyle). 'dockerd', the default, writes
 * the bytes dockerd 20.10 writes for the same tree (pkg/archive's
 * FileInfoHeader, tarAppender.addTarFile and the overlay whiteout
 * converter, through Go 1.19's archive/tar): mtimes truncated to seconds,
 * user and group names looked up on this host, only security.capability
 * among the xattrs, whiteouts and opaque markers shaped as dockerd shapes
 * them. 'lossless' keeps what a layer tar can carry: nanosecond mtimes,
 * every xattr but trusted.overlay.*, numeric owners only.
 *
 * Either way the output is a function of the tree (same tree → same
 * bytes), with one place where dockerd's is not: a deletion in
 * exportChanges gets mtime 0, where dockerd stamps the current time.
 *
 * File content is streamed in 64 KiB reads, never held whole in memory.
 */
import { WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from './whiteout.js'
import { constants, type BigIntStats } from 'node:fs'
import { open, readlink, type FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { StrataError, isErrno } from '../errors/index.js'
import { groupName, lgetxattr, major, minor, userName } from '../sys/index.js'
import { cleanPath } from './safepath.js'
import { END_OF_ARCHIVE, encodeHeader, padding, type EncodeOptions, type EntryType, type TarHeaderInput } from './tar/index.js'
import {
  isOverlayOpaque,
  isOverlayWhiteout,
  layerXattrs,
  lstatOrUndefined,
  sortChanges,
  sortedNames,
  timespecOf,
  type Change,
} from './changes.js'


/**
 * How entry headers are written (see the module comment): 'dockerd' as
 * dockerd 20.10 writes them, 'lossless' with everything the tree holds.
 */
export type HeaderStyle = 'dockerd' | 'lossless'

export interface ExportOptions {
  /** Default 'dockerd'. */
  headers?: HeaderStyle
}

export interface ExportChangesOptions extends ExportOptions {
  /** How deletions are written. Only 'aufs' (`.wh.<name>` files, what every registry layer uses) exists. */
  whiteoutFormat?: 'aufs'
}

const CAPABILITY_XATTR = 'security.capability'

/**
 * The security.capability of `path` as dockerd carries it
 * (ReadSecurityXattrToTarHeader): a VFS_CAP_REVISION_3 value, whose root
 * uid means nothing outside the user namespace it was set in, becomes a
 * revision 2 one (its first 20 bytes, revision byte rewritten).
 */
function dockerdXattrs(path: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>()
  let cap: Buffer | undefined
  try {
    cap = lgetxattr(path, CAPABILITY_XATTR)
  } catch (err) {
    if (isErrno(err, 'ENOTSUP', 'EOPNOTSUPP')) return out
    throw err
  }
  if (cap === undefined) return out
  if (cap.length > 3 && cap[3] === 3) {
    cap = Buffer.from(cap.subarray(0, 20))
    cap[3] = 2
  }
  out.set(CAPABILITY_XATTR, cap)
  return out
}

const CHUNK = 64 * 1024
/** Small pieces (headers, padding) are gathered up to this size before being pushed. */
export const FLUSH_AT = 64 * 1024

/** Gathers small buffers so the stream is not flooded with 512-byte chunks. */
class Batch {
  #parts: Buffer[] = []
  #size = 0

  add(b: Buffer): void {
    if (b.length === 0) return
    this.#parts.push(b)
    this.#size += b.length
  }

  get size(): number {
    return this.#size
  }

  take(): Buffer {
    const out = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#size)
    this.#parts = []
    this.#size = 0
    return out
  }
}

const S_IFMT = 0o170000n

function entryTypeOf(st: BigIntStats): EntryType | undefined {
  switch (st.mode & S_IFMT) {
    case 0o100000n:
      return 'file'
    case 0o040000n:
      return 'dir'
    case 0o120000n:
      return 'symlink'
    case 0o020000n:
      return 'char'
    case 0o060000n:
      return 'block'
    case 0o010000n:
      return 'fifo'
    default:
      return undefined // sockets: tar cannot carry them (Go's tar refuses them, dockerd skips them)
  }
}

/**
 * State of one archive being written: the hardlink table, which maps
 * (st_dev, st_ino) of a multiply-linked non-directory to the archive name
 * it was first written under, as moby's tarAppender.SeenFiles does.
 */
export class Appender {
  readonly #seen = new Map<string, string>()
  readonly #users = new Map<number, string>()
  readonly #groups = new Map<number, string>()
  readonly #encode: EncodeOptions
  readonly out = new Batch()

  constructor(readonly style: HeaderStyle) {
    this.#encode = style === 'dockerd' ? { subsecondTimes: false } : {}
  }

  /** The uname/gname of a header: looked up once per id in the 'dockerd' style ("" when there is none), never in 'lossless'. */
  #names(uid: number, gid: number): { uname: string; gname: string } {
    if (this.style === 'lossless') return { uname: '', gname: '' }
    let uname = this.#users.get(uid)
    if (uname === undefined) this.#users.set(uid, (uname = userName(uid) ?? ''))
    let gname = this.#groups.get(gid)
    if (gname === undefined) this.#groups.set(gid, (gname = groupName(gid) ?? ''))
    return { uname, gname }
  }

  /** Owner, names and mtime of a header for `st` (dockerd truncates the mtime to seconds). */
  #ownerAndTime(st: BigIntStats): Pick<TarHeaderInput, 'uid' | 'gid' | 'uname' | 'gname' | 'mtime'> {
    const uid = Number(st.uid)
    const gid = Number(st.gid)
    const mtime = timespecOf(st.mtimeNs)
    return { uid, gid, ...this.#names(uid, gid), mtime: this.style === 'dockerd' ? { sec: mtime.sec, nsec: 0 } : mtime }
  }

  /**
   * The hardlink table's answer for a multiply-linked non-directory: the
   * archive name its inode was first written under, or undefined when this
   * is the first (then `name` is remembered once `remember` is called).
   */
  #firstLink(st: BigIntStats): { first: string | undefined; remember: (name: string) => void } {
    if (st.isDirectory() || st.nlink <= 1n) return { first: undefined, remember: () => {} }
    const key = `${st.dev}:${st.ino}`
    const first = this.#seen.get(key)
    return { first, remember: first === undefined ? (name) => this.#seen.set(key, name) : () => {} }
  }

  /**
   * The tar entry for the file at `abs`, named `name` (relative, no "./",
   * no trailing slash), streamed into `out`. Yields output buffers as they
   * fill. Does nothing when the file vanished or is a socket.
   */
  async *addFile(abs: string, name: string, st: BigIntStats): AsyncGenerator<Buffer, void, undefined> {
    const type = entryTypeOf(st)
    if (type === undefined) return
    const header: TarHeaderInput = {
      name: type === 'dir' ? `${name}/` : name,
      type,
      mode: Number(st.mode & 0o7777n),
      ...this.#ownerAndTime(st),
    }
    let fh: FileHandle | undefined
    try {
      if (type === 'symlink') {
        try {
          header.linkname = await readlink(abs)
        } catch (err) {
          if (isErrno(err, 'ENOENT', 'ENOTDIR', 'EINVAL')) return // gone or replaced since the lstat
          throw err
        }
      }
      if (type === 'char' || type === 'block') {
        header.devmajor = major(st.rdev)
        header.devminor = minor(st.rdev)
      }
      try {
        header.xattrs = this.style === 'dockerd' ? dockerdXattrs(abs) : layerXattrs(abs)
      } catch (err) {
        if (isErrno(err, 'ENOENT', 'ENOTDIR')) return
        throw err
      }
      // Remembered only once the entry is certain to be written, so no hardlink points at a skipped name.
      const link = this.#firstLink(st)
      if (link.first !== undefined) {
        header.type = 'hardlink'
        header.linkname = link.first
      }
      if (header.type === 'file') {
        // Opened before the header is written, so a file that vanished is skipped
        // cleanly; O_NOFOLLOW|O_NONBLOCK so a symlink or fifo swapped in meanwhile
        // can neither redirect nor block us, and the inode is checked.
        try {
          fh = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
        } catch (err) {
          if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP', 'ENXIO')) return
          throw err
        }
        const fst = await fh.stat({ bigint: true })
        if (fst.ino !== st.ino || fst.dev !== st.dev) return
        header.size = Number(st.size)
      }
      link.remember(name)
      this.out.add(encodeHeader(header, this.#encode))
      if (fh !== undefined) yield* this.#content(fh, header.size ?? 0)
      if (this.out.size >= FLUSH_AT) yield this.out.take()
    } finally {
      await fh?.close()
    }
  }

  /**
   * Exactly `size` bytes of content plus padding. A file that shrank since
   * its lstat is padded with zeros, one that grew is cut (the header is
   * already out), as a layer must stay a valid tar whatever the container
   * does meanwhile.
   */
  async *#content(fh: FileHandle, size: number): AsyncGenerator<Buffer, void, undefined> {
    let pos = 0
    while (pos < size) {
      const want = Math.min(CHUNK, size - pos)
      const buf = Buffer.allocUnsafe(want)
      let filled = 0
      while (filled < want) {
        const { bytesRead } = await fh.read(buf, filled, want - filled, pos + filled)
        if (bytesRead === 0) break
        filled += bytesRead
      }
      if (filled < want) buf.fill(0, filled)
      if (this.out.size > 0) yield this.out.take()
      yield buf
      pos += want
    }
    this.out.add(padding(size))
  }

  /** A header-only entry (whiteouts), with or without file type bits in its mode. */
  addHeader(h: TarHeaderInput, modeTypeBits = true): void {
    this.out.add(encodeHeader(h, { ...this.#encode, modeTypeBits }))
  }

  /**
   * An overlayfs whiteout (0/0 char device) at `rel`, written as the empty
   * file `.wh.<name>`, mode 0600. In the 'dockerd' style its header is the
   * device's header rewritten as dockerd's whiteout converter does: owner,
   * names and mtime of the device, 0600 without type bits, and, since
   * overlayfs (5.8+) makes whiteouts links to one shared inode, a
   * whiteout after the first of its inode keeps the hardlink linkname
   * (the first whiteout's original path) while being a regular file.
   */
  addOverlayWhiteout(rel: string, st: BigIntStats): void {
    const [parent, base] = splitName(rel)
    const name = `${parent}${WHITEOUT_PREFIX}${base}`
    if (this.style === 'lossless') {
      this.addHeader({ name, type: 'file', mode: 0o600, uid: Number(st.uid), gid: Number(st.gid), mtime: timespecOf(st.mtimeNs) })
      return
    }
    const link = this.#firstLink(st)
    link.remember(rel)
    this.addHeader({ name, type: 'file', mode: 0o600, ...this.#ownerAndTime(st), linkname: link.first ?? '' }, false)
  }

  /**
   * The opaque marker `<dir>/.wh..wh..opq` written after the entry of the
   * opaque dir `rel`: an empty file with the dir's permission bits and
   * owner. dockerd gives it no mtime and no type bits; 'lossless' keeps the
   * dir's mtime.
   */
  addOpaqueMarker(rel: string, st: BigIntStats): void {
    const name = `${rel}/${WHITEOUT_OPAQUE}`
    const mode = Number(st.mode & 0o777n)
    if (this.style === 'lossless') {
      this.addHeader({ name, type: 'file', mode, uid: Number(st.uid), gid: Number(st.gid), mtime: timespecOf(st.mtimeNs) })
      return
    }
    this.addHeader({ name, type: 'file', mode, ...this.#ownerAndTime(st), mtime: { sec: 0, nsec: 0 } }, false)
  }

  *finish(): Generator<Buffer, void, undefined> {
    this.out.add(END_OF_ARCHIVE)
    yield this.out.take()
  }
}

export function splitName(rel: string): [dir: string, base: string] {
  const slash = rel.lastIndexOf('/')
  return slash < 0 ? ['', rel] : [rel.slice(0, slash + 1), rel.slice(slash + 1)]
}

/**
 * Checks that every ancestor of `components` below `root` is a real
 * directory, so a layer path never leads through a symlink out of the
 * layer (dockerd's plain Lstat of dir+path would follow one).
 */
class ParentCheck {
  readonly #known = new Map<string, boolean>()
  constructor(readonly root: string) {}

  async ok(components: string[]): Promise<boolean> {
    let rel = ''
    for (let i = 0; i < components.length - 1; i++) {
      rel += `/${components[i]}`
      let ok = this.#known.get(rel)
      if (ok === undefined) {
        const st = await lstatOrUndefined(this.root + rel)
        ok = st !== undefined && st.isDirectory()
        this.#known.set(rel, ok)
      }
      if (!ok) return false
    }
    return true
  }
}

export function toStream(gen: AsyncGenerator<Buffer, void, undefined>): Readable {
  return Readable.from(gen, { objectMode: false, highWaterMark: FLUSH_AT })
}

/**
 * A layer tar of `changes` over the tree in `dir`, as moby's ExportChanges
 * writes it: changes sorted by path; "D" → an empty regular file
 * `<parent>/.wh.<name>` (mode 0, uid/gid 0, no names, mtime 0, where
 * dockerd uses the current time); "A"/"C" → the entry at dir+path, read with lstat (names
 * relative without "./", directories with a trailing "/"). A multiply-
 * linked non-directory is written in full the first time (in sorted order)
 * and as a hardlink to that name afterwards. A change whose path is no
 * longer there (or sits below something that is not a directory) is
 * skipped, as dockerd logs and skips it; the root "/" is never an entry,
 * and a path listed twice is written once. A missing `dir` is a NOT_FOUND
 * error on the stream.
 */
export function exportChanges(dir: string, changes: Change[], opts: ExportChangesOptions = {}): Readable {
  const format = opts.whiteoutFormat ?? 'aufs'
  if (format !== 'aufs') throw new StrataError('INVALID_ARGUMENT', `Unknown whiteout format "${String(format)}"`)
  const root = dir.length > 1 && dir.endsWith('/') ? dir.slice(0, -1) : dir
  // Sorted (stable: the first of two changes to one path wins) and deduplicated,
  // so a path listed twice cannot become a hardlink to itself.
  const sorted = sortChanges(changes.map((c) => ({ path: cleanPath(`/${c.path}`), kind: c.kind }))).filter(
    (c, i, all) => i === 0 || all[i - 1]!.path !== c.path,
  )

  async function* generate(): AsyncGenerator<Buffer, void, undefined> {
    const st = await lstatOrUndefined(root)
    if (st === undefined) throw new StrataError('NOT_FOUND', `The layer directory "${dir}" does not exist`, { details: { path: dir } })
    if (!st.isDirectory()) throw new StrataError('INVALID_ARGUMENT', `The layer directory "${dir}" is not a directory`, { details: { path: dir } })
    const ta = new Appender(opts.headers ?? 'dockerd')
    const parents = new ParentCheck(root)
    for (const change of sorted) {
      if (change.path === '/') continue
      const rel = change.path.slice(1)
      if (change.kind === 'D') {
        const [parent, base] = splitName(rel)
        // dockerd's whiteout header sets no mode at all, so no type bits either.
        ta.addHeader({ name: `${parent}${WHITEOUT_PREFIX}${base}`, type: 'file', mode: 0, mtime: { sec: 0, nsec: 0 } }, ta.style === 'lossless')
        if (ta.out.size >= FLUSH_AT) yield ta.out.take()
        continue
      }
      if (!(await parents.ok(rel.split('/')))) continue
      const abs = root + change.path
      const st = await lstatOrUndefined(abs)
      if (st === undefined) continue
      yield* ta.addFile(abs, rel, st)
    }
    yield* ta.finish()
  }
  return toStream(generate())
}

/**
 * The overlay2 driver's Diff: a tar of the whole upper dir (not of its root
 * itself, as dockerd's TarWithOptions leaves the source dir out), walked
 * depth-first with names in byte order, in which
 *
 *  - a whiteout (0/0 char device) becomes an empty regular file
 *    `.wh.<name>`, mode 0600, with the device's owner and mtime (see
 *    Appender.addOverlayWhiteout for dockerd's stray linkname);
 *  - an opaque dir is written as its dir entry (trusted.overlay.* are never
 *    carried) followed by an empty regular file `<dir>/.wh..wh..opq` with
 *    the dir's permission bits (0777 part) and owner (Appender.addOpaqueMarker),
 *    before the dir's children.
 *
 * Hardlinks as in exportChanges.
 */
export function exportOverlayUpper(upperDir: string, opts: ExportOptions = {}): Readable {
  const root = upperDir.length > 1 && upperDir.endsWith('/') ? upperDir.slice(0, -1) : upperDir

  async function* walk(ta: Appender, rel: string): AsyncGenerator<Buffer, void, undefined> {
    for (const name of await sortedNames(rel === '' ? root : `${root}/${rel}`, true)) {
      const childRel = rel === '' ? name : `${rel}/${name}`
      const abs = `${root}/${childRel}`
      const st = await lstatOrUndefined(abs)
      if (st === undefined) continue
      if (isOverlayWhiteout(st)) {
        ta.addOverlayWhiteout(childRel, st)
        if (ta.out.size >= FLUSH_AT) yield ta.out.take()
        continue
      }
      yield* ta.addFile(abs, childRel, st)
      if (!st.isDirectory()) continue
      if (isOverlayOpaque(abs)) ta.addOpaqueMarker(childRel, st)
      yield* walk(ta, childRel)
    }
  }

  async function* generate(): AsyncGenerator<Buffer, void, undefined> {
    const st = await lstatOrUndefined(root)
    if (st === undefined) throw new StrataError('NOT_FOUND', `The upper directory "${upperDir}" does not exist`, { details: { path: upperDir } })
    if (!st.isDirectory()) throw new StrataError('INVALID_ARGUMENT', `The upper directory "${upperDir}" is not a directory`, { details: { path: upperDir } })
    const ta = new Appender(opts.headers ?? 'dockerd')
    yield* walk(ta, '')
    yield* ta.finish()
  }
  return toStream(generate())
}

/**
 * One path as a tar, as dockerd sends `GET /containers/{id}/archive`
 * (pkg/archive TarResourceRebase): the entry itself named `name`, and for
 * a directory everything beneath it as `name/...`, in byte order. Nothing
 * is followed (a symlink is an entry) and nothing is interpreted: it reads
 * a plain tree such as a mounted container's merged view.
 */
export function exportPath(absPath: string, name: string, opts: ExportOptions = {}): Readable {
  async function* walk(ta: Appender, dir: string, rel: string): AsyncGenerator<Buffer, void, undefined> {
    for (const child of await sortedNames(dir, true)) {
      const abs = `${dir}/${child}`
      const st = await lstatOrUndefined(abs)
      if (st === undefined) continue
      yield* ta.addFile(abs, `${rel}/${child}`, st)
      if (st.isDirectory()) yield* walk(ta, abs, `${rel}/${child}`)
    }
  }
  async function* generate(): AsyncGenerator<Buffer, void, undefined> {
    const st = await lstatOrUndefined(absPath)
    if (st === undefined) throw new StrataError('NOT_FOUND', `"${absPath}" does not exist`, { details: { path: absPath } })
    const ta = new Appender(opts.headers ?? 'dockerd')
    yield* ta.addFile(absPath, name, st)
    if (st.isDirectory()) yield* walk(ta, absPath, name)
    yield* ta.finish()
  }
  return toStream(generate())
}
