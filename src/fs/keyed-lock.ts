/**
 * KeyedLock: one lock per key, inside one process (moby's pkg/locker).
 * Operations on the same key run one at a time, in the order they asked;
 * operations on different keys run side by side. Graph drivers hold it per
 * layer id so that create, remove, get and put of one layer never
 * interleave; DataRootLock queues its callers on it before they wait for
 * the kernel's flock.
 *
 * API:
 * - `withLock(keys, fn)`: runs `fn` holding every key in `keys` (one key or
 *   several; several are taken in sorted order, so two multi-key holders
 *   never deadlock) and releases them when `fn` settles.
 * - `acquire(key)`: waits for `key` and returns its release function (for
 *   holds that do not fit one callback); releasing twice is harmless.
 * - `settled()`: resolves once every holder and waiter present at the call
 *   is done (a driver's cleanup waits for operations in flight).
 *
 * Not reentrant: `fn` must not ask again for a key it holds. Nothing is
 * kept for a key nobody holds or waits for, so the map does not grow with
 * every key ever used.
 */
export class KeyedLock {
  /** Per key: the promise that resolves when the last holder or waiter of that key lets go. */
  readonly #tails = new Map<string, Promise<void>>()

  async acquire(key: string): Promise<() => void> {
    const previous = this.#tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const mine = new Promise<void>((resolve) => (release = resolve))
    const tail = previous.then(() => mine)
    this.#tails.set(key, tail)
    await previous
    let released = false
    return () => {
      if (released) return
      released = true
      release()
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    }
  }

  async withLock<T>(keys: string | readonly string[], fn: () => Promise<T>): Promise<T> {
    const sorted = typeof keys === 'string' ? [keys] : [...new Set(keys)].sort()
    const releases: Array<() => void> = []
    try {
      for (const key of sorted) releases.push(await this.acquire(key))
      return await fn()
    } finally {
      for (const release of releases.reverse()) release()
    }
  }

  /** Whether anyone holds or waits for `key`. */
  isLocked(key: string): boolean {
    return this.#tails.has(key)
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.#tails.values()])
  }
}
