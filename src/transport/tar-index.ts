/**
 * An index of a tar file on disk, built from its headers alone: one
 * positional read per header (and per PAX or GNU long-name record), the
 * content of every member skipped by offset. `load` reads an image archive
 * in place this way (each blob streamed from its offset) instead of
 * unpacking it into a temp directory first, as dockerd does.
 *
 * Headers are decoded with src/archive/tar's ustar/GNU/V7 decoder and its
 * meta-entry merging (PendingMeta, as the streaming parser uses it), so
 * names and sizes mean what they mean when layers are applied (PAX
 * `path`/`linkpath`/`size`, GNU `L`/`K` long names, base-256 sizes).
 * Member names are cleaned and refused (UNSAFE_PATH) when absolute or with
 * "..": an archive holding such a member is not an image archive anyone
 * should trust, and dockerd's untar refuses it too. A member that
 * would extend past the end of the file is CORRUPT (a truncated archive).
 *
 * Links are kept as links. `stat`/`open` follow a symlink or hardlink to a
 * regular file while the target stays inside the archive (docker save
 * writes `<v1id>/layer.tar -> ../<other>/layer.tar` for a layer it already
 * wrote); a link out of the archive is UNSAFE_PATH, a link to something
 * that is not a regular file (or to nothing) is CORRUPT.
 */
import { createReadStream } from 'node:fs'
import { open, type FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'
import { BLOCK, PendingMeta, checkMetaSize, decodeHeader, isMetaType, isZeroBlock, paddingFor, paxNumber, withFileRange } from '../archive/index.js'
import { StrataError } from '../errors/index.js'
import { lazyStream, READ_CHUNK } from './blob-stream.js'
import type { ArchiveFile, ArchiveFiles } from './files.js'
import { cleanArchiveName, resolveLinkTarget } from './names.js'

export type TarMemberType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'other'

/** One member of the archive, by its cleaned name. */
export interface TarMember {
  name: string
  type: TarMemberType
  /** Byte offset of the member's content in the file. */
  offset: number
  /** Bytes of content (0 for everything but regular files). */
  size: number
  /** Symlink target or hardlink source name, as written. */
  linkname: string
}

/** How many links a name may go through before it is taken as a loop. */
const MAX_LINK_HOPS = 16

/** Header-only types carry no content whatever their size field says (as in Go's reader). */
function memberType(typeflag: string, name: string): { type: TarMemberType; hasContent: boolean } {
  switch (typeflag) {
    case '0':
    case '7':
      return { type: 'file', hasContent: true }
    case '\0':
      return name.endsWith('/') ? { type: 'dir', hasContent: false } : { type: 'file', hasContent: true }
    case '1':
      return { type: 'hardlink', hasContent: false }
    case '2':
      return { type: 'symlink', hasContent: false }
    case '3':
    case '4':
    case '6':
      return { type: 'other', hasContent: false }
    case '5':
      return { type: 'dir', hasContent: false }
    default:
      // GNU sparse and other exotic types: skip their stored bytes, never hand them out.
      return { type: 'other', hasContent: true }
  }
}

export class TarIndex implements ArchiveFiles {
  readonly path: string
  readonly description: string
  readonly isTar = true
  /** The file's size when indexed. */
  readonly fileSize: number
  readonly #members: Map<string, TarMember>
  #fh: FileHandle | undefined
  readonly #onClose: (() => Promise<void>) | undefined

  private constructor(path: string, description: string, fileSize: number, members: Map<string, TarMember>, fh: FileHandle, onClose?: () => Promise<void>) {
    this.path = path
    this.description = description
    this.fileSize = fileSize
    this.#members = members
    this.#fh = fh
    this.#onClose = onClose
  }

  /**
   * Indexes the plain tar file at `path`. `description` names it in
   * messages (default `archive "<path>"`); `onClose` runs after close()
   * (the spool's cleanup).
   */
  static async open(path: string, opts: { description?: string; onClose?: () => Promise<void> } = {}): Promise<TarIndex> {
    const description = opts.description ?? `archive "${path}"`
    const fh = await open(path, 'r')
    try {
      const { size } = await fh.stat()
      const members = await indexMembers(fh, size, description)
      return new TarIndex(path, description, size, members, fh, opts.onClose)
    } catch (err) {
      await fh.close().catch(() => {})
      throw err
    }
  }

  /** Every member, in archive order (a name written twice: the later one, as tar extracts it). */
  members(): TarMember[] {
    return [...this.#members.values()]
  }

  /** The member named `name` (cleaned), links not followed. */
  lookup(name: string, what = 'Tar member'): TarMember | undefined {
    return this.#members.get(cleanArchiveName(name, what))
  }

  /** The regular-file member `name` leads to, following links inside the archive. */
  resolve(name: string, what: string): TarMember | undefined {
    let current = cleanArchiveName(name, what)
    for (let hop = 0; hop <= MAX_LINK_HOPS; hop++) {
      const m = this.#members.get(current)
      if (m === undefined) {
        if (hop === 0) return undefined
        throw new StrataError('CORRUPT', `${what} "${name}" in the ${this.description} is a link to "${current}", which is not in the archive`, { details: { name, target: current } })
      }
      switch (m.type) {
        case 'file':
          return m
        case 'symlink':
          current = resolveLinkTarget(m.name, m.linkname, what)
          break
        case 'hardlink':
          // A hardlink names another member from the archive's top.
          current = cleanArchiveName(m.linkname, `${what} "${name}" (a hardlink) target`)
          break
        default:
          throw new StrataError('CORRUPT', `${what} "${name}" in the ${this.description} is a ${m.type === 'dir' ? 'directory' : 'special file'}, not a regular file`, { details: { name } })
      }
    }
    throw new StrataError('CORRUPT', `${what} "${name}" in the ${this.description} goes through more than ${MAX_LINK_HOPS} links (a link loop?)`, { details: { name } })
  }

  async stat(name: string, what: string): Promise<ArchiveFile | undefined> {
    const m = this.resolve(name, what)
    return m === undefined ? undefined : { name: cleanArchiveName(name, what), size: m.size }
  }

  async open(name: string, what: string): Promise<Readable> {
    const m = this.resolve(name, what)
    if (m === undefined) throw new StrataError('CORRUPT', `${what} "${name}" is not in the ${this.description}`, { details: { name } })
    return this.openMember(m)
  }

  /**
   * A member's content as a stream of its byte range, opened on first read
   * (its own descriptor: streams may run at once), marked as that range of
   * the file (a layer apply may read it in its worker thread instead).
   */
  openMember(m: TarMember): Readable {
    if (this.#fh === undefined) throw new StrataError('INVALID_ARGUMENT', `The ${this.description} is closed`)
    if (m.size === 0) return Readable.from([])
    const stream = lazyStream(() => createReadStream(this.path, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: READ_CHUNK }))
    return withFileRange(stream, { path: this.path, start: m.offset, length: m.size })
  }

  async close(): Promise<void> {
    const fh = this.#fh
    if (fh === undefined) return
    this.#fh = undefined
    try {
      await fh.close()
    } finally {
      await this.#onClose?.()
    }
  }
}

/** Reads exactly `length` bytes at `position`, or fewer at the end of the file. */
async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length)
  let done = 0
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done)
    if (bytesRead === 0) break
    done += bytesRead
  }
  return done === length ? buf : buf.subarray(0, done)
}

async function indexMembers(fh: FileHandle, fileSize: number, description: string): Promise<Map<string, TarMember>> {
  const members = new Map<string, TarMember>()
  let pos = 0
  const meta = new PendingMeta()
  const truncated = (where: string): StrataError =>
    new StrataError('CORRUPT', `The ${description} is truncated: it ends ${where} (the file is ${fileSize} bytes)`, { details: { size: fileSize } })

  for (;;) {
    const block = await readAt(fh, pos, BLOCK)
    // EOF at a header boundary, or a zero block: the end, as Go's reader takes it.
    if (block.length === 0) break
    if (block.length < BLOCK) {
      if (pos === 0) throw new StrataError('CORRUPT', `The ${description} is not a tar archive (${fileSize} bytes, shorter than one tar header)`)
      throw truncated('inside a tar header')
    }
    if (isZeroBlock(block)) break
    let raw
    try {
      raw = decodeHeader(block, pos)
    } catch (err) {
      if (pos === 0 && err instanceof StrataError && err.code === 'CORRUPT') {
        throw new StrataError('CORRUPT', `The ${description} is not a tar archive (its first 512 bytes are not a tar header)`, { cause: err })
      }
      throw err
    }
    const dataPos = pos + BLOCK
    const tf = raw.typeflag
    if (isMetaType(tf)) {
      checkMetaSize(raw, ` in the ${description}`)
      const data = await readAt(fh, dataPos, raw.size)
      if (data.length < raw.size) throw truncated(`inside the meta entry "${raw.name}"`)
      // 'g' (global PAX) describes no member and, as in dockerd, changes none: its records are dropped.
      meta.add(tf, data, raw.name)
      pos = dataPos + raw.size + paddingFor(raw.size)
      continue
    }
    const { name, linkname, text } = meta.take(raw)
    const declared = paxNumber(text, 'size', raw.size, name)
    const { type, hasContent } = memberType(tf, name)
    const size = hasContent ? declared : 0
    if (dataPos + size > fileSize) throw truncated(`inside "${name}" (${size} bytes of content from byte ${dataPos})`)
    const clean = cleanArchiveName(name, `Tar member`)
    if (clean !== '') members.set(clean, { name: clean, type, offset: dataPos, size, linkname })
    pos = dataPos + size + paddingFor(size)
  }
  return members
}
