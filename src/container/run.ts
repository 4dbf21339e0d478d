/**
 * runContainer: docker run in the foreground without a daemon: create,
 * start with runc (see runtime.ts), and with `rm` remove the container
 * afterwards whatever its exit status.
 */
import type { Store } from '../store/index.js'
import { createContainer } from './create.js'
import { removeContainer } from './lifecycle.js'
import { startContainer } from './runtime.js'
import type { CreateContainerOptions, RunOptions } from './types.js'

export interface RunContainerOptions extends CreateContainerOptions, RunOptions {
  /** Remove the container when it exits (docker run --rm). */
  rm?: boolean
}

export interface RunContainerResult {
  id: string
  exitCode: number
}

export async function runContainer(store: Store, imageRef: string, opts: RunContainerOptions = {}): Promise<RunContainerResult> {
  const c = await createContainer(store, imageRef, opts)
  try {
    const exitCode = await startContainer(store, c.id, opts)
    return { id: c.id, exitCode }
  } finally {
    if (opts.rm === true) await removeContainer(store, c.id, { force: true })
  }
}
