/**
 * Waiting for a container's record directory to change (its monitor
 * rewrote config.v2.json, appended to the log, removed a file): inotify
 * through fs.watch, with a poll as the fallback for what inotify misses
 * (a directory replaced, a watch that could not be set). Waits are
 * abortable, for callers in a long-running server.
 */
import { watch, type FSWatcher } from 'node:fs'

export class DirWatch {
  #watcher: FSWatcher | undefined
  #dirty = false
  #poke: (() => void) | undefined

  constructor(dir: string) {
    try {
      this.#watcher = watch(dir, () => {
        this.#dirty = true
        this.#poke?.()
      })
      this.#watcher.on('error', () => {})
    } catch {
      // Polling only.
    }
  }

  /** Resolves at the next change (at once if one came since the last call), after `pollMs`, or when `signal` aborts. */
  async next(pollMs: number, signal?: AbortSignal): Promise<void> {
    if (!this.#dirty) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, pollMs)
        const onAbort = (): void => done()
        signal?.addEventListener('abort', onAbort, { once: true })
        const self = this
        function done(): void {
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          self.#poke = undefined
          resolve()
        }
        this.#poke = done
      })
    }
    this.#dirty = false
  }

  close(): void {
    this.#watcher?.close()
    this.#watcher = undefined
  }
}
