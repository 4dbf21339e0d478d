/**
 * docker's json-file log format (daemon/logger/jsonfilelog), written by the
 * monitor and read by `logs`: `containers/<id>/<id>-json.log`, one JSON
 * object per line, in the order the output arrived:
 *
 *   {"log":"hello\n","stream":"stdout","time":"2026-12-05T06:50:01.123456789Z"}
 *
 * - `log` is one line of the container's output with its "\n"; a line
 *   longer than 16 KiB is cut into entries without "\n" (docker's copier
 *   buffer), and output that ends without a newline is the last entry
 *   without one; escaped as Go's encoding/json does (<, >, & as \u003c...);
 * - `stream` is "stdout" or "stderr"; `time` is when the monitor read it,
 *   UTC, RFC 3339 with nanoseconds and no trailing zeros.
 *
 * Entries are appended with one write each to a file opened O_APPEND, so a
 * reader sees whole lines except perhaps the last one, still being written
 * (or cut by a crash): readers skip a last line without "\n".
 */
import { closeSync, openSync, writeSync } from 'node:fs'
import { formatRfc3339Nano, goJsonString, nowNs } from '../../fs/index.js'

/** docker's copier buffer: a longer line is cut into entries of this size. */
export const MAX_LINE_BYTES = 16 * 1024

export type LogStream = 'stdout' | 'stderr'

/** One entry, as written. */
export function encodeLogEntry(stream: LogStream, text: string, timeNs: bigint): string {
  return `{"log":${goJsonString(text)},"stream":"${stream}","time":"${formatRfc3339Nano(timeNs, 0)}"}\n`
}

/** Appends the container's output to its json-file log, line by line per stream. */
export class JsonLogWriter {
  readonly path: string
  #fd: number | undefined
  readonly #pending: Record<LogStream, Buffer[]> = { stdout: [], stderr: [] }

  constructor(path: string) {
    this.path = path
    this.#fd = openSync(path, 'a', 0o640)
  }

  /** Output read from `stream`: whole lines are written now, the rest waits for its newline. */
  write(stream: LogStream, chunk: Buffer): void {
    const parts = this.#pending[stream]
    let start = 0
    for (;;) {
      const nl = chunk.indexOf(0x0a, start)
      if (nl < 0) break
      parts.push(chunk.subarray(start, nl + 1))
      this.#emit(stream, Buffer.concat(parts))
      parts.length = 0
      start = nl + 1
    }
    if (start < chunk.length) parts.push(chunk.subarray(start))
    let size = parts.reduce((n, b) => n + b.length, 0)
    while (size >= MAX_LINE_BYTES) {
      const all = Buffer.concat(parts)
      this.#emit(stream, all.subarray(0, MAX_LINE_BYTES))
      parts.length = 0
      if (all.length > MAX_LINE_BYTES) parts.push(all.subarray(MAX_LINE_BYTES))
      size -= MAX_LINE_BYTES
    }
  }

  /** The stream ended: what is left is an entry without a newline. */
  end(stream: LogStream): void {
    const parts = this.#pending[stream]
    if (parts.length > 0) this.#emit(stream, Buffer.concat(parts))
    parts.length = 0
  }

  close(): void {
    this.end('stdout')
    this.end('stderr')
    if (this.#fd !== undefined) closeSync(this.#fd)
    this.#fd = undefined
  }

  #emit(stream: LogStream, line: Buffer): void {
    if (this.#fd === undefined || line.length === 0) return
    writeSync(this.#fd, encodeLogEntry(stream, line.toString('utf8'), nowNs()))
  }
}
