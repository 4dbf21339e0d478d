/**
 * The command's own output (what a verb returns, help, the error line),
 * written to fd 1 and 2 with writeSync instead of process.stdout/stderr.
 *
 * Why: process.stdout is created on first use, and when fd 1 is a pipe
 * (any caller that captures the output: scripts, tests, the benches) it is
 * a net.Socket: its first use loads net and the streams, ~28 builtin
 * modules, 3-9 ms of CPU on this machine, more than many verbs' own work.
 * A file gets a SyncWriteStream (streams still loaded, ~3 ms).
 *
 * Order: a verb that streamed to process.stdout (export -o -, run's
 * output, progress bars) has created it and may have writes queued in it;
 * then its stream is used here too, so the bytes keep their order. Whether
 * it was created is known by wrapping process's own getters (watchStdio).
 * A non-blocking fd (EAGAIN: a descriptor someone else made non-blocking)
 * hands the rest to the stream, which waits for it. A reader that went
 * away (EPIPE: `strata images | head -1`) ends the output quietly, as
 * docker's CLI dies of SIGPIPE; process.stdout crashed with a stack.
 */
import { writeSync } from 'node:fs'
import { isErrno } from '../errors/index.js'

type StdName = 'stdout' | 'stderr'

const used: Record<StdName, boolean> = { stdout: false, stderr: false }
let watching = false

/** From now on, notes when process.stdout or process.stderr is first touched. Call once, early. */
export function watchStdio(): void {
  if (watching) return
  watching = true
  for (const name of ['stdout', 'stderr'] as const) {
    const d = Object.getOwnPropertyDescriptor(process, name)
    const get = d?.get
    if (get === undefined || d?.configurable !== true) {
      // Not Node's lazy getter: use the stream as it is.
      used[name] = true
      continue
    }
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: d.enumerable ?? true,
      get() {
        used[name] = true
        return get.call(process)
      },
    })
  }
}

/**
 * Writes `text` to stdout or stderr, in order with whatever went through
 * the stream; false when the reader has gone away (EPIPE), so that a verb
 * that writes until stopped (stats) can end.
 */
export function writeStd(name: StdName, text: string): boolean {
  if (text === '') return true
  if (!watching || used[name]) {
    process[name].write(text)
    return true
  }
  const buf = Buffer.from(text, 'utf8')
  const fd = name === 'stdout' ? 1 : 2
  let off = 0
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off)
    } catch (err) {
      if (isErrno(err, 'EAGAIN')) {
        process[name].write(buf.subarray(off))
        return true
      }
      if (isErrno(err, 'EPIPE')) return false
      throw err
    }
  }
  return true
}
