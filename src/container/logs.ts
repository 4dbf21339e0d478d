/**
 * Reading a container's json-file log (monitor/json-log.ts writes it):
 * docker logs with --tail, --since, --until, -f, and the attach of
 * `start -a` / `run` (a follow from where the log stood before the start).
 *
 * - A line that is not a log entry (a torn last line, a file cut by hand)
 *   is skipped, never an error; a file that shrank while followed (cut by
 *   hand) is read again from its start, as docker's follower does.
 * - --tail N reads the file backwards, so a big log costs what the last
 *   N lines cost.
 * - A follow ends once the container is not running and everything it
 *   wrote is read, or when the signal aborts.
 */
import { open, stat, type FileHandle } from 'node:fs/promises'
import { StrataError, isErrno } from '../errors/index.js'
import type { Store } from '../store/index.js'
import { DirWatch } from './dir-watch.js'
import { logPath } from './monitor/paths.js'
import { getContainer } from './process.js'

export interface LogEntry {
  stream: 'stdout' | 'stderr'
  /** The output, with its "\n" when it had one. */
  log: string
  /** RFC 3339 with nanoseconds, as written. */
  time: string
  /** `time` as nanoseconds since the epoch (for since/until). */
  timeNs: bigint
}

export interface ReadLogsOptions {
  /** Keep reading until the container stops (docker logs -f). */
  follow?: boolean
  /** Only the last N entries (docker's --tail; undefined or negative: all). */
  tail?: number
  /** Entries at or after this time, in ns since the epoch. */
  sinceNs?: bigint
  /** Entries at or before this time, in ns since the epoch. */
  untilNs?: bigint
  /** Start at this byte offset of the log (an attach starts where the log ended before its start). */
  fromOffset?: number
  stdout?: boolean
  stderr?: boolean
  signal?: AbortSignal
  /**
   * A follow that begins before the container's start (the API's attach,
   * sent before its start): the State.StartedAt read then. The log file is
   * opened at once (created if need be, as the monitor creates it) so that
   * a container removed right after its run (AutoRemove) is still read to
   * its end, and the follow does not end until a start after that one.
   */
  awaitStartAfter?: string
  /** Called once the log file is open (awaitStartAfter) or the read began: a caller may then let the start happen. */
  onOpen?: () => void
}

/** An RFC 3339 time as ns since the epoch (undefined when it is not one). */
export function parseRfc3339Ns(text: string): bigint | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(text)
  if (m === null) return undefined
  const ms = Date.parse(`${m[1]}${m[3]}`)
  if (Number.isNaN(ms)) return undefined
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0') || '0')
}

/** One line of the log as an entry, undefined when it is not one. */
export function parseLogLine(line: string): LogEntry | undefined {
  let v: unknown
  try {
    v = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof v !== 'object' || v === null) return undefined
  const { log, stream, time } = v as Record<string, unknown>
  if (typeof log !== 'string' || (stream !== 'stdout' && stream !== 'stderr') || typeof time !== 'string') return undefined
  const timeNs = parseRfc3339Ns(time)
  if (timeNs === undefined) return undefined
  return { stream, log, time, timeNs }
}

/**
 * docker's --since / --until value (timetypes.GetTimestamp): an RFC 3339
 * date-time (or date), Unix seconds with an optional fraction, or a Go
 * duration ("10m", "1h30m") meaning that long before `nowMs`.
 */
export function parseLogTime(text: string, nowMs = Date.now()): bigint {
  if (/^[0-9]+(\.[0-9]{1,9})?$/.test(text)) {
    const [s, f = ''] = text.split('.')
    return BigInt(s!) * 1_000_000_000n + BigInt(f.padEnd(9, '0') || '0')
  }
  const dur = /^(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+$/.test(text)
  if (dur) {
    let ns = 0
    const unit: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 }
    for (const m of text.matchAll(/([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h)/g)) ns += Number(m[1]) * unit[m[2]!]!
    return BigInt(nowMs) * 1_000_000n - BigInt(Math.round(ns))
  }
  const full = parseRfc3339Ns(text)
  if (full !== undefined) return full
  // Shorter forms docker takes: a date, a date-time without zone (UTC).
  const m = /^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?$/.exec(text)
  if (m !== null) {
    const ms = Date.parse(`${m[1]}T${m[2] === undefined ? '00:00:00' : m[2].length === 5 ? `${m[2]}:00` : m[2]}${m[4] ?? 'Z'}`)
    if (!Number.isNaN(ms)) return BigInt(ms) * 1_000_000n + BigInt((m[3] ?? '').padEnd(9, '0') || '0')
  }
  throw new StrataError('INVALID_ARGUMENT', `failed to parse value as time or duration: "${text}"`)
}

/** The byte offset of the start of the last `n` complete lines of `fh` (size `size`). */
async function tailOffset(fh: FileHandle, size: number, n: number): Promise<number> {
  if (n === 0) return size
  const chunk = Buffer.alloc(64 * 1024)
  let pos = size
  let seen = 0
  // A last line without "\n" is not a whole entry: counting starts at the last "\n".
  let first = true
  while (pos > 0) {
    const len = Math.min(chunk.length, pos)
    pos -= len
    await fh.read(chunk, 0, len, pos)
    for (let i = len - 1; i >= 0; i--) {
      if (chunk[i] !== 0x0a) continue
      if (first) {
        first = false
        continue
      }
      seen++
      if (seen === n) return pos + i + 1
    }
  }
  return 0
}

/** The log file's size now (0 when there is none): where an attach starts reading. */
export async function logSize(store: Store, id: string): Promise<number> {
  try {
    return (await stat(logPath(store.root, id))).size
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return 0
    throw err
  }
}

/**
 * The container's log entries, oldest first (docker logs). With follow,
 * goes on while the container runs. NOT_FOUND for an unknown container.
 */
export async function* readLogs(store: Store, ref: string, opts: ReadLogsOptions = {}): AsyncGenerator<LogEntry, void, undefined> {
  const c = await getContainer(store, ref)
  const path = logPath(store.root, c.id)
  const wantOut = opts.stdout !== false
  const wantErr = opts.stderr !== false
  const keep = (e: LogEntry): boolean =>
    (e.stream === 'stdout' ? wantOut : wantErr) && (opts.sinceNs === undefined || e.timeNs >= opts.sinceNs)

  const changes = opts.follow === true ? new DirWatch(store.containers.path(c.id)) : undefined
  let fh: FileHandle | undefined
  try {
    // O_APPEND never moves a positioned read; 0o640 as the monitor's json-log.ts makes it.
    if (opts.awaitStartAfter !== undefined) fh = await open(path, 'a+', 0o640)
    opts.onOpen?.()
    let pos = opts.fromOffset ?? 0
    let rest = Buffer.alloc(0)
    const buf = Buffer.alloc(256 * 1024)
    let tailDone = opts.tail === undefined || opts.tail < 0
    for (;;) {
      opts.signal?.throwIfAborted()
      if (fh === undefined) {
        try {
          fh = await open(path, 'r')
        } catch (err) {
          if (!isErrno(err, 'ENOENT')) throw err
        }
      }
      if (fh !== undefined) {
        const size = (await fh.stat()).size
        if (size < pos) {
          // Cut while we read: from its start again.
          pos = 0
          rest = Buffer.alloc(0)
        }
        if (!tailDone) {
          pos = Math.max(pos, await tailOffset(fh, size, opts.tail!))
          tailDone = true
        }
        while (pos < size) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos)
          if (bytesRead === 0) break
          pos += bytesRead
          let data = rest.length > 0 ? Buffer.concat([rest, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead)
          let start = 0
          for (;;) {
            const nl = data.indexOf(0x0a, start)
            if (nl < 0) break
            const entry = parseLogLine(data.toString('utf8', start, nl))
            start = nl + 1
            if (entry === undefined) continue
            // docker's reader: the first entry after --until ends the read; --since and --until are inclusive.
            if (opts.untilNs !== undefined && entry.timeNs > opts.untilNs) return
            if (keep(entry)) yield entry
          }
          rest = Buffer.from(data.subarray(start))
          data = Buffer.alloc(0)
        }
      }
      if (opts.follow !== true) return
      // Stopped, and everything read: the end (the last state is read after the last write).
      const now = await store.containers.get(c.id).catch(() => undefined)
      const started = opts.awaitStartAfter === undefined || (now !== undefined && now.record.State.StartedAt !== opts.awaitStartAfter)
      if (now === undefined || (!now.running && started)) {
        const size = fh === undefined ? 0 : (await fh.stat()).size
        if (size <= pos) return
        continue
      }
      await changes!.next(250, opts.signal)
    }
  } finally {
    changes?.close()
    await fh?.close()
  }
}

/** docker logs -t's time: RFC 3339 with exactly nine fraction digits (jsonmessage.RFC3339NanoFixed). */
export function fixedNanoTime(e: LogEntry): string {
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(.*)$/.exec(e.time)
  if (m === null) return e.time
  return `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}${m[3]}`
}
