/**
 * runContainer: docker run without a daemon: create, start (its monitor
 * runs it, see process.ts), and unless detached attach to it until it
 * exits. `rm`: a detached container is removed by its monitor when it
 * exits (AutoRemove, as dockerd does); an attached one by this call,
 * after its exit code is read.
 */
import type { Readable, Writable } from 'node:stream'
import type { Store } from '../store/index.js'
import { attachContainer } from './attach.js'
import { createContainer } from './create.js'
import { removeContainer } from './lifecycle.js'
import { logSize } from './logs.js'
import { startContainer, type StartOptions } from './process.js'
import type { CreateContainerOptions } from './types.js'

export interface RunContainerOptions extends CreateContainerOptions, StartOptions {
  /** Remove the container when it exits (docker run --rm). */
  rm?: boolean
  /** Return once it runs (docker run -d). */
  detach?: boolean
  /** Attached: where its output goes, and what feeds its stdin (with openStdin). */
  stdout?: Writable
  stderr?: Writable
  stdin?: Readable
  signal?: AbortSignal
}

export interface RunContainerResult {
  id: string
  /** Attached runs: the exit code. */
  exitCode?: number
}

export async function runContainer(store: Store, imageRef: string, opts: RunContainerOptions = {}): Promise<RunContainerResult> {
  const detach = opts.detach === true
  const c = await createContainer(store, imageRef, { ...opts, autoRemove: detach && opts.rm === true })
  const start = opts.runtime === undefined ? {} : { runtime: opts.runtime }
  if (detach) {
    await startContainer(store, c.id, start)
    return { id: c.id }
  }
  try {
    const offset = await logSize(store, c.id)
    await startContainer(store, c.id, start)
    const { exitCode } = await attachContainer(store, c.id, {
      fromOffset: offset,
      ...(opts.stdout === undefined ? {} : { stdout: opts.stdout }),
      ...(opts.stderr === undefined ? {} : { stderr: opts.stderr }),
      ...(opts.stdin === undefined ? {} : { stdin: opts.stdin }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    })
    return { id: c.id, exitCode }
  } finally {
    if (opts.rm === true) await removeContainer(store, c.id, { force: true })
  }
}
