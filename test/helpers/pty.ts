/**
 * A program on a real pseudo-terminal, driven as a user would drive it:
 * keys typed, the window resized, the screen read. The terminal comes from
 * Python's pty module (test/helpers/pty-driver.py, read from the source
 * tree; python3 is in scripts/install-deps.sh).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Writable } from 'node:stream'

const DRIVER = fileURLToPath(new URL('../../../test/helpers/pty-driver.py', import.meta.url))

export interface PtySession {
  readonly pid: number
  /** Types `text` (use '\x10\x11' for Ctrl-P Ctrl-Q). */
  type(text: string): void
  /** Resizes the terminal window; the program gets SIGWINCH. */
  resize(rows: number, cols: number): void
  /** Everything the terminal showed so far. */
  output(): string
  /** Resolves with the output once `re` matches what the terminal showed after `from` (an output() length); rejects after `ms`. */
  waitFor(re: RegExp, from?: number, ms?: number): Promise<string>
  /** The program's exit status (the driver's, which is the program's). */
  readonly exit: Promise<number>
  /** Kills the driver and the program (SIGKILL to the driver's process group is not sent: only the driver). */
  kill(): void
}

export function onPty(cmd: string[], opts: { rows?: number; cols?: number; env?: NodeJS.ProcessEnv } = {}): PtySession {
  const child: ChildProcess = spawn('python3', [DRIVER, String(opts.rows ?? 24), String(opts.cols ?? 80), ...cmd], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    env: { TERM: 'xterm', ...(opts.env ?? process.env) },
  })
  let out = ''
  const waiters = new Set<() => void>()
  const poke = (): void => {
    for (const w of [...waiters]) w()
  }
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString('latin1')
    poke()
  })
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString('latin1')
    poke()
  })
  const exit = new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal === null ? -1 : 128))))
  let ended = false
  void exit.then(() => {
    ended = true
    poke()
  })
  const ctl = child.stdio[3] as Writable
  ctl.on('error', () => {})
  child.stdin!.on('error', () => {})
  return {
    pid: child.pid!,
    type: (text) => void child.stdin!.write(Buffer.from(text, 'latin1')),
    resize: (rows, cols) => void ctl.write(`${rows} ${cols}\n`),
    output: () => out,
    waitFor: (re, from = 0, ms = 30_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (re.test(out.slice(from))) {
            done()
            resolve(out)
          } else if (ended) {
            done()
            reject(new Error(`the program ended before ${re} showed; the terminal showed:\n${JSON.stringify(out)}`))
          }
        }
        const timer = setTimeout(() => {
          done()
          reject(new Error(`${re} did not show within ${ms} ms; the terminal showed:\n${JSON.stringify(out)}`))
        }, ms)
        const done = (): void => {
          clearTimeout(timer)
          waiters.delete(check)
        }
        waiters.add(check)
        check()
      }),
    exit,
    kill: () => {
      if (!ended) child.kill('SIGKILL')
    },
  }
}

