/**
 * The monitor's attach socket (`/run/strata/containers/<id>/attach.sock`,
 * paths.ts), for a container with a terminal (Config.Tty): the monitor
 * owns the pty master and serves any number of clients on it.
 *
 * - monitor → client: the terminal's output, raw bytes, as it comes (the
 *   first client of a start made with `attachFirst` also gets what came
 *   before it connected, up to 1 MiB: docker run -it attaches before the
 *   start). The monitor ends the connection once the container's process
 *   has exited and its output is drained; a client that wants the exit
 *   code then waits for the container (process.ts waitContainer).
 * - client → monitor: frames of [type u8][length u32 big-endian][payload]:
 *   ATTACH (empty: send me the output; until then a connection gets none,
 *   so a resize-only connection never takes the first client's output), STDIN (bytes for the terminal, only passed on with Config.OpenStdin)
 *   and RESIZE (rows u16, cols u16: TIOCSWINSZ on the master, the
 *   process gets SIGWINCH).
 * - A client leaves by closing its end (a detach, or it died): the
 *   container goes on.
 */
export const FRAME_STDIN = 1
export const FRAME_RESIZE = 2
/** The client wants the output (an attach; a connection that only resizes never sends it). */
export const FRAME_ATTACH = 3

/** A frame longer than this is a broken client: it is cut off. */
export const MAX_FRAME = 1 << 20

export function encodeFrame(type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(5)
  head.writeUInt8(type, 0)
  head.writeUInt32BE(payload.length, 1)
  return Buffer.concat([head, payload])
}

export function resizeFrame(rows: number, cols: number): Buffer {
  const p = Buffer.alloc(4)
  p.writeUInt16BE(Math.max(0, Math.min(rows, 0xffff)), 0)
  p.writeUInt16BE(Math.max(0, Math.min(cols, 0xffff)), 2)
  return encodeFrame(FRAME_RESIZE, p)
}

export interface Frame {
  type: number
  payload: Buffer
}

/** Splits a byte stream into frames; throws on a frame over MAX_FRAME. */
export class FrameDecoder {
  #buf: Buffer = Buffer.alloc(0)

  push(chunk: Buffer): Frame[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk])
    const out: Frame[] = []
    while (this.#buf.length >= 5) {
      const len = this.#buf.readUInt32BE(1)
      if (len > MAX_FRAME) throw new Error(`an attach frame of ${len} bytes`)
      if (this.#buf.length < 5 + len) break
      out.push({ type: this.#buf.readUInt8(0), payload: this.#buf.subarray(5, 5 + len) })
      this.#buf = this.#buf.subarray(5 + len)
    }
    return out
  }
}
