/**
 * Attaching to a container that has a terminal (Config.Tty): a client of
 * its monitor's attach socket (monitor/attach-protocol.ts). The caller's
 * input goes to the terminal, its output comes back raw, window sizes go
 * to the pty; the detach keys (docker's default Ctrl-P Ctrl-Q) end the
 * attachment and leave the container running. Used by the CLI (run -it,
 * start -ai, attach) and the Engine API (attach on a tty container).
 */
import { connect, type Socket } from 'node:net'
import type { Readable, Writable } from 'node:stream'
import { StrataError } from '../errors/index.js'
import type { Store } from '../store/index.js'
import { FRAME_ATTACH, FRAME_STDIN, encodeFrame, resizeFrame } from './monitor/attach-protocol.js'
import { attachSocketPath } from './monitor/paths.js'
import { getContainer } from './process.js'

/** docker's default detach keys. */
export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q'

/** moby/term's ASCII table: ctrl-@ is 0, ctrl-a 1 … ctrl-z 26, then ctrl-[ ctrl-\ ctrl-] ctrl-^ ctrl-_. */
const CTRL_KEYS = ['ctrl-@', ...'abcdefghijklmnopqrstuvwxyz'.split('').map((c) => `ctrl-${c}`), 'ctrl-[', 'ctrl-\\', 'ctrl-]', 'ctrl-^', 'ctrl-_']

/**
 * docker's detach-keys notation (moby/term ToBytes): comma-separated keys,
 * each one character or `ctrl-X`. "" is the default. INVALID_ARGUMENT in
 * dockerd's words for anything else.
 */
export function parseDetachKeys(text: string): Buffer {
  if (text === '') return parseDetachKeys(DEFAULT_DETACH_KEYS)
  const out: number[] = []
  for (const key of text.split(',')) {
    if (key.length === 1) {
      out.push(key.charCodeAt(0))
      continue
    }
    const code = CTRL_KEYS.indexOf(key)
    if (code < 0) throw new StrataError('INVALID_ARGUMENT', `Invalid detach keys (${text}) provided`, { details: { keys: text } })
    out.push(code)
  }
  return Buffer.from(out)
}

/**
 * Finds the detach keys in the input as it is typed: bytes that may start
 * the sequence are held until it is clear whether they do; a full match is
 * the detach, bytes before it are passed on, bytes after it are dropped.
 */
export class DetachKeyScanner {
  readonly #keys: Buffer
  #held = 0

  constructor(keys: Buffer) {
    this.#keys = keys
  }

  /** What to pass on from `chunk`, and whether the keys were typed. */
  scan(chunk: Buffer): { pass: Buffer; detach: boolean } {
    if (this.#keys.length === 0) return { pass: chunk, detach: false }
    const pass: number[] = []
    for (const byte of chunk) {
      if (byte === this.#keys[this.#held]) {
        this.#held++
        if (this.#held === this.#keys.length) return { pass: Buffer.from(pass), detach: true }
        continue
      }
      // Not the sequence after all: what was held is plain input (and this byte may start it afresh).
      for (let i = 0; i < this.#held; i++) pass.push(this.#keys[i]!)
      this.#held = 0
      if (byte === this.#keys[0]) {
        this.#held = 1
        if (this.#keys.length === 1) return { pass: Buffer.from(pass), detach: true }
      } else pass.push(byte)
    }
    return { pass: Buffer.from(pass), detach: false }
  }
}

export interface TtyAttachOptions {
  /** Typed into the terminal (only reaches it when the container has OpenStdin). Its end does not end the attachment. */
  stdin?: Readable
  /** Receives the terminal's output. */
  stdout: Writable
  /** docker's notation; default ctrl-p,ctrl-q. */
  detachKeys?: string
  /** The window size to set at once. */
  size?: { rows: number; cols: number }
  signal?: AbortSignal
}

export interface TtyAttachment {
  /** Sets the terminal's window size (the process gets SIGWINCH). */
  resize(rows: number, cols: number): void
  /** Settles when the attachment ends: the detach keys, the container's exit (its output all passed on), or the signal. */
  readonly done: Promise<{ detached: boolean }>
  /** Leaves (as a detach does). */
  close(): void
}

function connectTo(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path)
    s.once('connect', () => {
      s.off('error', reject)
      resolve(s)
    })
    s.once('error', reject)
  })
}

/**
 * Attaches to running container `ref`, which has a terminal. IN_USE when
 * it is not running (docker's "You cannot attach to a stopped container"),
 * INVALID_ARGUMENT when it has no terminal or the detach keys are wrong.
 */
export async function attachTty(store: Store, ref: string, opts: TtyAttachOptions): Promise<TtyAttachment> {
  const keys = parseDetachKeys(opts.detachKeys ?? '')
  const c = await getContainer(store, ref)
  if (c.record.Config.Tty !== true) throw new StrataError('INVALID_ARGUMENT', `Container ${c.id} has no terminal (created without -t)`, { details: { id: c.id } })
  if (!c.running) throw new StrataError('IN_USE', 'You cannot attach to a stopped container, start it first', { details: { id: c.id } })
  let socket: Socket
  try {
    socket = await connectTo(attachSocketPath(c.id))
  } catch (err) {
    // The monitor is gone or going: the container stopped between the look and the connect.
    throw new StrataError('IN_USE', 'You cannot attach to a stopped container, start it first', { details: { id: c.id }, cause: err })
  }
  socket.on('error', () => {})
  socket.write(encodeFrame(FRAME_ATTACH, Buffer.alloc(0)))
  if (opts.size !== undefined && opts.size.rows > 0 && opts.size.cols > 0) socket.write(resizeFrame(opts.size.rows, opts.size.cols))
  let detached = false
  const scanner = new DetachKeyScanner(keys)
  const stdin = opts.stdin
  const onInput = (chunk: Buffer | string): void => {
    const { pass, detach } = scanner.scan(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
    if (pass.length > 0 && !socket.destroyed) socket.write(encodeFrame(FRAME_STDIN, pass))
    if (detach) leave()
  }
  const leave = (): void => {
    detached = true
    socket.destroy()
  }
  stdin?.on('data', onInput)
  socket.on('data', (chunk: Buffer) => {
    if (!opts.stdout.write(chunk)) {
      socket.pause()
      opts.stdout.once('drain', () => socket.resume())
    }
  })
  const onAbort = (): void => leave()
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  const done = new Promise<{ detached: boolean }>((resolve) => {
    socket.once('close', () => {
      stdin?.off('data', onInput)
      opts.signal?.removeEventListener('abort', onAbort)
      resolve({ detached })
    })
  })
  return {
    resize: (rows, cols) => {
      if (!socket.destroyed && rows > 0 && cols > 0) socket.write(resizeFrame(rows, cols))
    },
    done,
    close: leave,
  }
}

/**
 * Sets the window size of running container `ref`'s terminal (the API's
 * POST /containers/{id}/resize): a connection to its monitor that only
 * resizes. A container without a terminal is left alone. IN_USE when it
 * is not running.
 */
export async function resizeContainerTty(store: Store, ref: string, rows: number, cols: number): Promise<void> {
  const c = await getContainer(store, ref)
  if (!c.running) throw new StrataError('IN_USE', `Container ${c.id} is not running`, { details: { id: c.id } })
  if (c.record.Config.Tty !== true) return
  let socket: Socket
  try {
    socket = await connectTo(attachSocketPath(c.id))
  } catch (err) {
    throw new StrataError('IN_USE', `Container ${c.id} is not running`, { details: { id: c.id }, cause: err })
  }
  socket.on('error', () => {})
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve())
    socket.end(resizeFrame(rows, cols))
  })
}
