/**
 * A streaming tar parser that also accounts for every byte that is not file
 * content ("raw" bytes: headers, PAX and GNU meta entries, padding, the
 * end-of-archive blocks and whatever trails them).
 *
 * Why by hand: tar-split must reproduce a layer byte for byte, so it needs
 * the exact bytes of each header as they were read, and the entry/segment
 * boundaries Go's archive/tar (as forked by vbatts/tar-split) draws. No npm
 * tar library exposes those. The parser mirrors Go's reader on the points
 * that change what a layer means:
 *  - meta entries (`x`, `L`, `K`) fold into the next header and are not
 *    reported; `g` (PAX global) is reported as an entry of its own and not
 *    applied to later entries (dockerd ignores it);
 *  - header-only types (links, devices, dirs, fifos) carry no content,
 *    whatever their size field says;
 *  - two zero blocks end the archive; one zero block then EOF, or EOF right
 *    after an entry, is accepted as the end; a zero block followed by a
 *    non-zero one is an error.
 *
 * It is push-based and synchronous: `write(chunk)` calls the handler for
 * every event the chunk completes, content as sub-arrays of the chunk (no
 * copy). The handler may throw; the error propagates out of `write`.
 */
import { StrataError } from '../../errors/index.js'
import type { Timespec } from '../../sys/index.js'
import { decodeHeader, isZeroBlock, paddingFor, readNumber, type RawHeader } from './header.js'
import { checkMetaSize, isMetaType, PendingMeta, paxNumber, type MetaTypeflag } from './meta.js'
import { parsePaxTime } from './pax.js'
import { BLOCK, type EntryType, type TarHeader } from './types.js'

export interface TarHandler {
  /** A new entry; `header.size` bytes of content follow through `data`, then `entryEnd`. */
  entry(header: TarHeader): void
  data(chunk: Buffer): void
  entryEnd(): void
  /**
   * Non-content bytes, in order: called once just before each `entry` with
   * everything read since the previous entry's content (padding, meta
   * entries, the header block), once at the end with the end-of-archive
   * blocks, then once per ≤1 MiB of trailing bytes, then once with no
   * bytes (as dockerd 20.10's tar-split records the end). Concatenating these
   * segments with the entries' contents gives back the input exactly. Like
   * `data`'s chunks, the bytes are valid only during the call (the parser
   * reuses the buffer): copy what you keep.
   */
  segment?(bytes: Buffer): void
}

const TRAILING_CHUNK = 1 << 20

const enum State {
  Header,
  Meta,
  Data,
  Padding,
  SecondZero,
  Trailing,
}

const TYPE_NAMES: Record<string, string> = {
  S: 'GNU sparse file',
  V: 'GNU volume header',
  M: 'GNU multi-volume continuation',
  N: 'GNU old long name',
  D: 'GNU dump directory',
}

export class TarParser {
  readonly #handler: TarHandler
  readonly #accounting: boolean
  #state: State = State.Header
  readonly #block = Buffer.alloc(BLOCK)
  #blockFill = 0
  #remaining = 0
  /** Raw bytes since the last segment: #rawLength bytes of a buffer reused (and grown) from segment to segment, not a copy per header block. */
  #raw = Buffer.allocUnsafe(8192)
  #rawLength = 0
  #metaType: MetaTypeflag = 'x'
  #metaName = ''
  #meta: Buffer[] = []
  readonly #pendingMeta = new PendingMeta()
  #position = 0
  #ended = false
  #currentName = ''
  #trailing: Buffer[] = []
  #trailingSize = 0

  constructor(handler: TarHandler) {
    this.#handler = handler
    this.#accounting = handler.segment !== undefined
  }

  /** Bytes consumed so far. */
  get position(): number {
    return this.#position
  }

  /** True once the end-of-archive marker (or a clean EOF) has been seen. */
  get done(): boolean {
    return this.#state === State.Trailing
  }

  write(chunk: Buffer): void {
    let off = 0
    const len = chunk.length
    while (off < len) {
      switch (this.#state) {
        case State.Header:
        case State.SecondZero: {
          const n = Math.min(BLOCK - this.#blockFill, len - off)
          chunk.copy(this.#block, this.#blockFill, off, off + n)
          this.#blockFill += n
          off += n
          this.#position += n
          if (this.#blockFill === BLOCK) {
            this.#blockFill = 0
            this.#onBlock()
          }
          break
        }
        case State.Meta: {
          const n = Math.min(this.#remaining, len - off)
          const piece = chunk.subarray(off, off + n)
          this.#meta.push(Buffer.from(piece))
          this.#account(piece)
          this.#remaining -= n
          off += n
          this.#position += n
          if (this.#remaining === 0) this.#onMetaEnd()
          break
        }
        case State.Data: {
          const n = Math.min(this.#remaining, len - off)
          this.#handler.data(chunk.subarray(off, off + n))
          this.#remaining -= n
          off += n
          this.#position += n
          if (this.#remaining === 0) this.#onDataEnd()
          break
        }
        case State.Padding: {
          const n = Math.min(this.#remaining, len - off)
          this.#account(chunk.subarray(off, off + n))
          this.#remaining -= n
          off += n
          this.#position += n
          if (this.#remaining === 0) this.#state = State.Header
          break
        }
        case State.Trailing: {
          const piece = chunk.subarray(off)
          off = len
          this.#position += piece.length
          if (this.#accounting) this.#addTrailing(piece)
          break
        }
      }
    }
  }

  /** The input has ended: checks it did not end inside an entry, flushes the last raw bytes. */
  end(): void {
    if (this.#ended) return
    this.#ended = true
    switch (this.#state) {
      case State.Header:
        if (this.#blockFill !== 0 && this.#position === this.#blockFill) {
          throw new StrataError('CORRUPT', `Not a tar archive: the stream is ${this.#position} bytes, shorter than one 512-byte header`)
        }
        if (this.#blockFill !== 0) throw this.#truncated('inside a header block')
        break
      case State.SecondZero:
        if (this.#blockFill !== 0) throw this.#truncated('inside the end-of-archive marker')
        break
      case State.Meta:
      case State.Data:
        throw this.#truncated(`inside "${this.#currentName || this.#metaName}", ${this.#remaining} bytes of content missing`)
      case State.Padding:
        // Go's reader takes a missing (not a partial) last padding as the end.
        if (this.#remaining !== paddingFor(this.#lastSize)) throw this.#truncated(`inside the padding after "${this.#currentName}"`)
        break
      case State.Trailing:
        break
    }
    this.#state = State.Trailing
    this.#flushRaw()
    if (this.#trailingSize > 0) this.#flushTrailing()
    // dockerd 20.10's tar-split reads what follows the archive until EOF and
    // records every read, the last (empty) one included: its files always
    // end with an empty segment. We write what dockerd writes, so layerdb's
    // tar-split files match line for line (checked against a real dockerd).
    if (this.#accounting) this.#handler.segment!(Buffer.alloc(0))
  }

  #lastSize = 0

  #account(bytes: Buffer): void {
    if (!this.#accounting || bytes.length === 0) return
    const need = this.#rawLength + bytes.length
    if (need > this.#raw.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.#raw.length * 2))
      this.#raw.copy(grown, 0, 0, this.#rawLength)
      this.#raw = grown
    }
    bytes.copy(this.#raw, this.#rawLength)
    this.#rawLength = need
  }

  #flushRaw(): void {
    if (!this.#accounting || this.#rawLength === 0) return
    const seg = this.#raw.subarray(0, this.#rawLength)
    this.#rawLength = 0
    this.#handler.segment!(seg)
  }

  #addTrailing(piece: Buffer): void {
    let p = piece
    while (p.length > 0) {
      const n = Math.min(TRAILING_CHUNK - this.#trailingSize, p.length)
      this.#trailing.push(Buffer.from(p.subarray(0, n)))
      this.#trailingSize += n
      p = p.subarray(n)
      if (this.#trailingSize === TRAILING_CHUNK) this.#flushTrailing()
    }
  }

  #flushTrailing(): void {
    const seg = Buffer.concat(this.#trailing)
    this.#trailing = []
    this.#trailingSize = 0
    this.#handler.segment!(seg)
  }

  #truncated(where: string): StrataError {
    return new StrataError('CORRUPT', `Truncated tar archive: the stream ended ${where} (at byte ${this.#position})`)
  }

  #onBlock(): void {
    const block = this.#block
    this.#account(block)
    if (this.#state === State.SecondZero) {
      if (!isZeroBlock(block)) throw new StrataError('CORRUPT', `Invalid tar archive: a zero block is followed by a non-zero block at byte ${this.#position - BLOCK}`)
      this.#state = State.Trailing
      this.#flushRaw()
      return
    }
    if (isZeroBlock(block)) {
      this.#state = State.SecondZero
      return
    }
    const raw = decodeHeader(block, this.#position - BLOCK)
    const tf = raw.typeflag
    if (isMetaType(tf)) {
      checkMetaSize(raw)
      this.#metaType = tf
      this.#metaName = raw.name
      this.#meta = []
      this.#remaining = raw.size
      this.#lastSize = raw.size
      this.#state = State.Meta
      this.#pendingRaw = raw
      if (raw.size === 0) this.#onMetaEnd()
      return
    }
    this.#startEntry(raw)
  }

  #pendingRaw: RawHeader | undefined

  #onMetaEnd(): void {
    const data = Buffer.concat(this.#meta)
    this.#meta = []
    const type = this.#metaType
    // Padding after a meta entry belongs to the raw bytes before the next header.
    const pad = paddingFor(this.#lastSize)
    this.#state = pad > 0 ? State.Padding : State.Header
    this.#remaining = pad
    const global = this.#pendingMeta.add(type, data, this.#metaName)
    if (global !== undefined) {
      // 'g': reported as an entry (after its data, before its padding), as Go does.
      const pax = global
      const raw = this.#pendingRaw!
      this.#flushRaw()
      const header: TarHeader = {
        name: raw.name,
        type: 'globalHeader',
        mode: raw.mode & 0o7777,
        uid: raw.uid,
        gid: raw.gid,
        uname: raw.uname,
        gname: raw.gname,
        size: 0,
        mtime: { sec: raw.mtime, nsec: 0 },
        linkname: '',
        devmajor: 0,
        devminor: 0,
        xattrs: pax.xattrs,
        pax: pax.text,
      }
      this.#currentName = raw.name
      this.#handler.entry(header)
      this.#handler.entryEnd()
    }
  }

  #startEntry(raw: RawHeader): void {
    const { name, linkname, text, xattrs } = this.#pendingMeta.take(raw)

    let tf = raw.typeflag
    // Old tars mark directories only by a trailing slash on a NUL typeflag.
    if (tf === '\0') tf = name.endsWith('/') ? '5' : '0'
    const type = entryType(tf)
    if (type === undefined) {
      const what = TYPE_NAMES[tf] ?? `type '${tf}'`
      throw new StrataError('NOT_SUPPORTED', `Tar entry "${name}" is a ${what}, which layers cannot hold`, { details: { entry: name, typeflag: tf } })
    }
    for (const key of text.keys()) {
      if (key.startsWith('GNU.sparse.')) {
        // PAX sparse 1.0 keeps the real name in GNU.sparse.name; the header holds a made-up "GNUSparseFile.<pid>/..." one.
        const real = text.get('GNU.sparse.name') ?? name
        throw new StrataError('NOT_SUPPORTED', `Tar entry "${real}" is a sparse file (PAX ${key}), which strata does not support; re-create the archive without --sparse`, { details: { entry: real } })
      }
    }
    const numeric = (key: string, fallback: number): number => paxNumber(text, key, fallback, name)
    const declaredSize = numeric('size', raw.size)
    const size = type === 'file' ? declaredSize : 0
    const header: TarHeader = {
      name,
      type,
      mode: raw.mode & 0o7777,
      uid: numeric('uid', raw.uid),
      gid: numeric('gid', raw.gid),
      uname: text.get('uname') ?? raw.uname,
      gname: text.get('gname') ?? raw.gname,
      size,
      mtime: text.has('mtime') ? parsePaxTime(text.get('mtime')!, 'mtime') : { sec: raw.mtime, nsec: 0 },
      linkname,
      devmajor: raw.devmajor,
      devminor: raw.devminor,
      xattrs,
      pax: text,
    }
    const atime = text.has('atime') ? parsePaxTime(text.get('atime')!, 'atime') : gnuTime(this.#block, raw, 345)
    const ctime = text.has('ctime') ? parsePaxTime(text.get('ctime')!, 'ctime') : gnuTime(this.#block, raw, 357)
    if (atime !== undefined) header.atime = atime
    if (ctime !== undefined) header.ctime = ctime
    this.#currentName = name
    this.#flushRaw()
    this.#handler.entry(header)
    this.#lastSize = size
    if (size > 0) {
      this.#remaining = size
      this.#state = State.Data
    } else {
      this.#handler.entryEnd()
      this.#state = State.Header
    }
  }

  #onDataEnd(): void {
    this.#handler.entryEnd()
    const pad = paddingFor(this.#lastSize)
    this.#remaining = pad
    this.#state = pad > 0 ? State.Padding : State.Header
  }
}

function entryType(typeflag: string): EntryType | undefined {
  switch (typeflag) {
    case '0':
    case '7':
      return 'file'
    case '1':
      return 'hardlink'
    case '2':
      return 'symlink'
    case '3':
      return 'char'
    case '4':
      return 'block'
    case '5':
      return 'dir'
    case '6':
      return 'fifo'
    default:
      return undefined
  }
}

/** GNU-format headers keep atime and ctime in the area ustar uses for the prefix. */
function gnuTime(block: Buffer, raw: RawHeader, offset: number): Timespec | undefined {
  if (raw.format !== 'gnu' || block[offset] === 0) return undefined
  return { sec: readNumber(block, offset, 12, offset === 345 ? 'atime' : 'ctime'), nsec: 0 }
}
