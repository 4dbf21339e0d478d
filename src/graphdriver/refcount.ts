/**
 * RefCounter: the get()s without a put() a driver instance holds on each
 * layer (moby's graphdriver.RefCounter), one for every driver, so that
 * every driver refuses the same things the same way (types.ts: a put
 * without a matching get is INVALID_ARGUMENT naming the layer; remove of a
 * held layer is IN_USE).
 *
 * A driver that mounts keeps what it knows about the mount behind the
 * count in the entry (`S`): see MountRefCounter (mount-refs.ts), which
 * overlay2, aufs and devicemapper use. vfs and btrfs mount nothing and
 * keep only the count. Persistent gets are not counted here (types.ts); a count that
 * must outlive the process is the layer store's `mount-count` file.
 *
 * API:
 * - `new RefCounter<S>(driverName, { held? })`: `held` is the word errors
 *   use for a counted layer ("mounted" for overlay2; default "held").
 * - `increment(id, state?)`: one more reference; `state` initialises the
 *   entry when this is the first one. Returns the entry (count >= 1).
 * - `decrement(id)`: one reference less; returns the entry with its new
 *   count, forgotten at 0 (then the caller unmounts, unless adopted).
 *   INVALID_ARGUMENT when `id` is not held.
 * - `peek(id)`: the entry or undefined, count unchanged (the entry is
 *   live: a driver may update its state in place).
 * - `count(id)`, `refuseRemoveIfHeld(id)` (IN_USE when count > 0),
 *   `entries()`, `clear()`.
 * - `releaseAll(owned, unmount)`: a driver's cleanup: unmounts every entry
 *   `owned` says this instance mounted (not adopted ones), forgets them
 *   all, and reports every failure at once.
 *
 * Not synchronised: hold the driver's KeyedLock for `id` around a
 * check-then-act sequence (mount, then increment).
 */
import { StrataError } from '../errors/index.js'

export type Ref<S extends object> = S & { count: number }

export class RefCounter<S extends object = Record<never, never>> {
  readonly #refs = new Map<string, Ref<S>>()
  readonly #driver: string
  readonly #held: string

  /**
   * `driver` names the driver in error messages; `held` is what a counted
   * layer is to its users ("mounted" for a driver that mounts, default
   * "held").
   */
  constructor(driver: string, opts: { held?: string } = {}) {
    this.#driver = driver
    this.#held = opts.held ?? 'held'
  }

  increment(id: string, state?: S): Ref<S> {
    let ref = this.#refs.get(id)
    if (ref === undefined) {
      ref = { ...(state ?? ({} as S)), count: 0 }
      this.#refs.set(id, ref)
    }
    ref.count++
    return ref
  }

  decrement(id: string): Ref<S> {
    const ref = this.#refs.get(id)
    if (ref === undefined) {
      throw new StrataError('INVALID_ARGUMENT', `Layer "${id}" is not ${this.#held}: put without a matching get (${this.#driver} driver)`, { details: { id } })
    }
    ref.count--
    if (ref.count === 0) this.#refs.delete(id)
    return ref
  }

  peek(id: string): Ref<S> | undefined {
    return this.#refs.get(id)
  }

  count(id: string): number {
    return this.#refs.get(id)?.count ?? 0
  }

  /** IN_USE when `id` is held: a layer in use is not removed. */
  refuseRemoveIfHeld(id: string): void {
    const n = this.count(id)
    if (n > 0) {
      throw new StrataError('IN_USE', `Layer "${id}" is ${this.#held} (${n} get${n === 1 ? '' : 's'} without a put); put it before removing it (${this.#driver} driver)`, { details: { id, refs: n } })
    }
  }

  entries(): Array<[string, Ref<S>]> {
    return [...this.#refs]
  }

  clear(): void {
    this.#refs.clear()
  }

  /**
   * Calls `unmount(id)` for every entry `owned(entry)` says this instance
   * must unmount, then forgets every entry. The unmounts all run whatever
   * fails; SYSCALL naming the driver and each failure when any did.
   */
  async releaseAll(owned: (ref: Ref<S>) => boolean, unmount: (id: string) => Promise<void>): Promise<void> {
    const failures: string[] = []
    for (const [id, ref] of [...this.#refs]) {
      if (!owned(ref)) continue
      try {
        await unmount(id)
      } catch (err) {
        failures.push((err as Error).message)
      }
    }
    this.#refs.clear()
    if (failures.length > 0) throw new StrataError('SYSCALL', `${this.#driver} cleanup: ${failures.join('; ')}`, { details: { failures } })
  }
}
