/**
 * Writing answers as dockerd writes them: the version headers on every
 * versioned response, JSON with Go's encoder's trailing newline, errors
 * as `{"message": ...}`, and docker's JSON message stream (jsonmessage)
 * for pull, push, load and import: one JSON object per line ending in
 * `\r\n`, progress as `{"status","progressDetail","progress","id"}`, an
 * error inside the stream as `{"errorDetail":{"message"},"error"}`.
 */
import type { ServerResponse } from 'node:http'
import { API_VERSION } from './types.js'
import { messageOf, statusOf } from './errors.js'
import { strataVersion } from './server-version.js'

/** The headers dockerd's middleware puts on every versioned response. */
export function setVersionHeaders(res: ServerResponse): void {
  res.setHeader('Api-Version', API_VERSION)
  res.setHeader('Docker-Experimental', 'false')
  res.setHeader('Ostype', 'linux')
  // As dockerd's `Docker/20.10.24 (linux)`, naming strata (as podman's service says Libpod).
  res.setHeader('Server', `strata/${strataVersion()} (linux)`)
}

/** A JSON answer (Go's json.Encoder: one line, then "\n"). */
export function writeJson(res: ServerResponse, status: number, value: unknown): void {
  const body = `${JSON.stringify(value)}\n`
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
  res.end(body)
}

/** An empty answer (204 No Content, 201 Created without a body, ...). */
export function writeEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status)
  res.end()
}

/** `{"message": ...}` with the status the error maps to; a response already under way is cut instead. */
export function writeError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy(err instanceof Error ? err : new Error(String(err)))
    return
  }
  writeJson(res, statusOf(err), { message: messageOf(err) })
}

/** docker's units.HumanSize (4 significant digits, decimal units): "32.77kB", "3.147MB". */
export function progressSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB']
  let value = bytes
  let i = 0
  while (value >= 1000 && i < units.length - 1) {
    value /= 1000
    i++
  }
  return `${Number(value.toPrecision(4))}${units[i]}`
}

/** jsonmessage.JSONProgress.String() at dockerd's width: `[=====>      ]  1.2MB/3.4MB`. */
export function progressBar(current: number, total: number): string {
  if (total <= 0) return progressSize(current).padStart(8)
  let filled = Math.floor(Math.floor((current / total) * 100) / 2)
  if (filled > 50) filled = 50
  const bar = `[${'='.repeat(filled)}>${' '.repeat(50 - filled)}] `
  const numbers = current > total ? progressSize(current).padStart(8) : `${progressSize(current).padStart(8)}/${progressSize(total)}`
  return bar + numbers
}

/** One message of docker's JSON message stream. */
export interface JsonMessage {
  status?: string
  progressDetail?: { current?: number; total?: number }
  progress?: string
  id?: string
  stream?: string
  aux?: unknown
  errorDetail?: { message: string }
  error?: string
}

/**
 * A docker JSON message stream on `res`: 200 and headers go out with the
 * first message, so a failure before it is still an HTTP error status.
 * Writes after the client left are dropped (the work goes on: see
 * types.ts, "A client that goes away").
 */
export class JsonMessageStream {
  readonly #res: ServerResponse
  #closed = false

  constructor(res: ServerResponse) {
    this.#res = res
    res.on('close', () => (this.#closed = true))
  }

  /** Whether the client is gone. */
  get closed(): boolean {
    return this.#closed || this.#res.destroyed
  }

  get started(): boolean {
    return this.#res.headersSent
  }

  /** Sends the status and headers now (a stream that may be silent for long). */
  start(): void {
    if (this.#res.headersSent) return
    this.#res.writeHead(200, { 'Content-Type': 'application/json' })
    // The headers go out at once, not with the first body chunk.
    this.#res.flushHeaders()
  }

  write(message: JsonMessage): void {
    if (this.closed) return
    this.start()
    this.#res.write(`${JSON.stringify(message)}\r\n`)
  }

  status(status: string, id?: string): void {
    this.write(id === undefined ? { status } : { status, id })
  }

  /** A per-layer line without numbers ("Pull complete", "Already exists"). */
  layer(id: string, status: string): void {
    this.write({ status, progressDetail: {}, id })
  }

  progress(id: string, status: string, current: number, total: number): void {
    this.write({ status, progressDetail: total > 0 ? { current, total } : { current }, progress: progressBar(current, total), id })
  }

  stream(text: string): void {
    this.write({ stream: text })
  }

  aux(value: unknown): void {
    this.write({ progressDetail: {}, aux: value })
  }

  /** Ends the stream; with an error, as its last message (or as an HTTP error when nothing was sent yet). */
  end(err?: unknown): void {
    if (err !== undefined) {
      if (!this.started) {
        writeError(this.#res, err)
        return
      }
      const message = messageOf(err)
      this.write({ errorDetail: { message }, error: message })
    }
    if (!this.#res.writableEnded && !this.#res.destroyed) {
      this.start()
      this.#res.end()
    }
  }
}

/** One chunk of a container's output as docker sends it: stdcopy-framed (8-byte header: 1 stdout / 2 stderr, three zeros, the size big-endian) without a tty, the bytes alone with one. */
export function stdcopyFrame(tty: boolean, stream: 'stdout' | 'stderr', data: Buffer): Buffer {
  if (tty) return data
  const header = Buffer.alloc(8)
  header[0] = stream === 'stdout' ? 1 : 2
  header.writeUInt32BE(data.length, 4)
  return Buffer.concat([header, data])
}
