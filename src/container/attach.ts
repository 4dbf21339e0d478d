/**
 * Attaching to a started container without a daemon (docker start -a,
 * docker run without -d): its output is followed in its json-file log
 * from where the log stood before the start, and with Config.OpenStdin
 * the caller's input goes into the container's stdin through the fifo
 * its monitor reads (monitor/paths.ts); returns once the container
 * stopped and all its output was passed on, with its exit code.
 */
import { createWriteStream, existsSync } from 'node:fs'
import type { Readable, Writable } from 'node:stream'
import type { Store } from '../store/index.js'
import { readLogs } from './logs.js'
import { stdinFifoPath } from './monitor/paths.js'
import { waitContainer, type WaitResult } from './process.js'

export interface AttachOptions {
  /** Where the log stood before the start (logSize): output from there on is passed on. */
  fromOffset: number
  stdout?: Writable
  stderr?: Writable
  /** Fed into the container's stdin (only when it was created with OpenStdin, -i). */
  stdin?: Readable
  signal?: AbortSignal
}

function writeTo(out: Writable, text: string): Promise<void> {
  return new Promise((resolve) => {
    if (out.write(text)) resolve()
    else out.once('drain', resolve)
  })
}

/**
 * Feeds `input` into the stdin of container `id` (created with OpenStdin)
 * through the fifo its monitor reads; waits for the fifo when the
 * container is about to start (docker run -i attaches first). With
 * StdinOnce the container's stdin closes when `input` ends. `signal`
 * gives up waiting.
 */
export async function feedContainerStdin(store: Store, id: string, input: Readable, signal?: AbortSignal): Promise<void> {
  const fifo = stdinFifoPath(store.root, id)
  while (!existsSync(fifo)) {
    if (signal?.aborted === true) return
    await new Promise((r) => setTimeout(r, 20))
  }
  const out = createWriteStream(fifo)
  out.on('error', () => {})
  input.pipe(out)
}

export async function attachContainer(store: Store, id: string, opts: AttachOptions): Promise<WaitResult> {
  const c = await store.containers.get(id)
  if (opts.stdin !== undefined && c.record.Config.OpenStdin === true) {
    const fifo = createWriteStream(stdinFifoPath(store.root, c.id))
    fifo.on('error', () => {})
    opts.stdin.pipe(fifo)
  }
  for await (const e of readLogs(store, c.id, { follow: true, fromOffset: opts.fromOffset, ...(opts.signal === undefined ? {} : { signal: opts.signal }) })) {
    const out = e.stream === 'stdout' ? opts.stdout : opts.stderr
    if (out !== undefined) await writeTo(out, e.log)
  }
  return waitContainer(store, c.id, opts.signal === undefined ? {} : { signal: opts.signal })
}
