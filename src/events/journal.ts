/**
 * The events journal (see types.ts): append one line, read a time range,
 * follow new lines. Followers watch the data root's directory (inotify
 * through fs.watch) for changes to the journal's name, with a slow poll
 * besides in case a watch is lost, and read from the offset they reached;
 * a partial last line waits for its end.
 */
import { watch, type FSWatcher } from 'node:fs'
import { open, stat, rename, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../errors/index.js'
import { tryFlock } from '../sys/index.js'
import { JOURNAL_FILE, JOURNAL_ROTATE_BYTES, type EngineEvent } from './types.js'

/** How often a follower looks at the journal even without a change notice. */
const POLL_MS = 1000
/** Bytes read at a time. */
const CHUNK = 64 * 1024

export interface EventRange {
  /** Only events at or after this time (Unix ns). */
  sinceNano?: number
  /** Only events at or before this time (Unix ns). */
  untilNano?: number
}

export interface EventFollower {
  close(): void
}

/** Unix nanoseconds now (millisecond precision: a JSON number holds no more at this magnitude). */
export function nowNano(): number {
  return Date.now() * 1_000_000
}

/** An event stamped now. */
export function stampEvent(event: Omit<EngineEvent, 'scope' | 'time' | 'timeNano'>): EngineEvent {
  const timeNano = nowNano()
  return { ...event, scope: 'local', time: Math.floor(timeNano / 1e9), timeNano }
}

function parseLine(line: string): EngineEvent | undefined {
  if (line === '') return undefined
  try {
    const e = JSON.parse(line) as EngineEvent
    return typeof e === 'object' && e !== null && typeof e.Type === 'string' && typeof e.timeNano === 'number' ? e : undefined
  } catch {
    // A torn or foreign line: skipped, the journal is a record, not the truth.
    return undefined
  }
}

function inRange(e: EngineEvent, range: EventRange): boolean {
  return (range.sinceNano === undefined || e.timeNano >= range.sinceNano) && (range.untilNano === undefined || e.timeNano <= range.untilNano)
}

/**
 * Reads the complete lines of `fh` from `offset` on (up to `limit` when
 * given); returns them and the offset after the last newline read, where
 * the next read starts (a partial last line is read again then, whole).
 */
async function readLines(fh: FileHandle, offset: number, limit = Infinity): Promise<{ lines: string[]; offset: number }> {
  const lines: string[] = []
  let pos = offset
  let carry = Buffer.alloc(0)
  const buf = Buffer.alloc(CHUNK)
  let at = offset
  while (at < limit) {
    const want = Math.min(CHUNK, limit - at)
    const { bytesRead } = await fh.read(buf, 0, want, at)
    if (bytesRead === 0) break
    at += bytesRead
    let data = Buffer.concat([carry, buf.subarray(0, bytesRead)])
    for (;;) {
      const nl = data.indexOf(0x0a)
      if (nl < 0) break
      lines.push(data.toString('utf8', 0, nl))
      pos += nl + 1
      data = data.subarray(nl + 1)
    }
    carry = Buffer.from(data)
  }
  return { lines, offset: pos }
}

export class EventJournal {
  readonly path: string
  readonly #root: string

  constructor(root: string) {
    this.#root = root
    this.path = join(root, JOURNAL_FILE)
  }

  /** `events.log.1`, the rotated journal. */
  get previousPath(): string {
    return `${this.path}.1`
  }

  /** Appends `event` as one line; false when it could not be written (see types.ts: never fatal). */
  async append(event: EngineEvent): Promise<boolean> {
    let fh: FileHandle | undefined
    try {
      fh = await open(this.path, 'a', 0o600)
      const { size } = await fh.write(`${JSON.stringify(event)}\n`).then(() => fh!.stat())
      if (size > JOURNAL_ROTATE_BYTES) await this.#rotate(fh)
      return true
    } catch {
      return false
    } finally {
      await fh?.close().catch(() => {})
    }
  }

  /** Renames a full journal away, once: the flock makes one appender do it, the inode check keeps a late one from rotating the fresh file. */
  async #rotate(fh: FileHandle): Promise<void> {
    if (!tryFlock(fh.fd, 'exclusive', this.path)) return
    const [mine, named] = await Promise.all([fh.stat(), stat(this.path).catch(() => undefined)])
    if (named === undefined || named.ino !== mine.ino || named.dev !== mine.dev) return
    await rename(this.path, this.previousPath)
  }

  /** Past events in the range, oldest first (the rotated file, then the current one). */
  async readRange(range: EventRange = {}): Promise<EngineEvent[]> {
    const out: EngineEvent[] = []
    for (const path of [this.previousPath, this.path]) {
      let fh: FileHandle
      try {
        fh = await open(path, 'r')
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue
        throw err
      }
      try {
        const { lines } = await readLines(fh, 0)
        for (const line of lines) {
          const e = parseLine(line)
          if (e !== undefined && inRange(e, range)) out.push(e)
        }
      } finally {
        await fh.close()
      }
    }
    return out
  }

  /**
   * Past events in `range`, then every new one as it is appended, until
   * closed. `onEvent` is called in journal order; nothing appended after
   * follow() starts is missed or repeated.
   */
  async follow(range: EventRange, onEvent: (e: EngineEvent) => void): Promise<EventFollower> {
    let closed = false
    const emit = (lines: string[], filter: boolean): void => {
      for (const line of lines) {
        const e = parseLine(line)
        if (e !== undefined && !closed && (!filter || inRange(e, range))) onEvent(e)
      }
    }
    // The past: the rotated file whole, the current one up to its size now;
    // the follower reads on from where that stopped.
    let current = await this.#openCurrent()
    let offset = 0
    try {
      const prev = await open(this.previousPath, 'r')
      try {
        emit((await readLines(prev, 0)).lines, true)
      } finally {
        await prev.close()
      }
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err
    }
    if (current !== undefined) {
      const past = await readLines(current.fh, 0, (await current.fh.stat()).size)
      emit(past.lines, true)
      offset = past.offset
    }
    let busy: Promise<void> = Promise.resolve()
    const deliver = async (): Promise<void> => {
      if (closed) return
      if (current === undefined) {
        current = await this.#openCurrent()
        offset = 0
        if (current === undefined) return
      }
      const read = await readLines(current.fh, offset)
      offset = read.offset
      emit(read.lines, false)
      // A rotation: the name now holds a new file; the old one was drained above.
      const named = await stat(this.path).catch(() => undefined)
      if (named === undefined || named.ino !== current.ino) {
        await current.fh.close().catch(() => {})
        current = undefined
        if (named !== undefined) await deliver()
      }
    }
    const kick = (): void => {
      busy = busy.then(deliver).catch(() => {})
    }
    let watcher: FSWatcher | undefined
    try {
      watcher = watch(this.#root, { persistent: false }, (_type, name) => {
        if (name === null || name === JOURNAL_FILE) kick()
      })
      watcher.on('error', () => {})
    } catch {
      watcher = undefined
    }
    const timer = setInterval(kick, POLL_MS)
    timer.unref()
    // Lines appended between the past's read and the watch.
    kick()
    return {
      close: () => {
        closed = true
        clearInterval(timer)
        watcher?.close()
        void busy.then(() => current?.fh.close()).catch(() => {})
      },
    }
  }

  async #openCurrent(): Promise<{ fh: FileHandle; ino: number } | undefined> {
    try {
      const fh = await open(this.path, 'r')
      return { fh, ino: (await fh.stat()).ino }
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined
      throw err
    }
  }
}
