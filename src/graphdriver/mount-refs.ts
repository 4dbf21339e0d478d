/**
 * MountRefCounter: the get/put bookkeeping of the drivers that mount a
 * layer while it is in use (overlay2, aufs, devicemapper), one copy for
 * all three so that they adopt, share and take down mounts the same way.
 *
 * Beside each layer's get count (RefCounter) it keeps whether the layer is
 * mounted at all (overlay2's and aufs's base layers are plain directories)
 * and whether the mount is adopted: not this instance's alone to take down,
 * because another process mounted it or a persistent get also holds it.
 * The last put of a mount this instance made unmounts it; the last put of
 * an adopted one only forgets it.
 *
 * Persistent gets and puts (types.ts) are not counted: a persistent get
 * mounts if needed; a persistent put unmounts unless this instance still
 * holds the layer, in which case its own last put will.
 *
 * Not synchronised: callers hold the driver's KeyedLock for the id.
 */
import { RefCounter } from './refcount.js'

/** What a mounting driver keeps beside a layer's get count. */
export interface MountState {
  mounted: boolean
  adopted: boolean
}

/** How the driver checks, makes and takes down one layer's mount. */
export interface MountOps {
  isMounted: () => Promise<boolean>
  mount: () => Promise<void>
}

export class MountRefCounter extends RefCounter<MountState> {
  constructor(driver: string) {
    super(driver, { held: 'mounted' })
  }

  /** A get of a layer that is never mounted (a base layer): counted unless persistent. */
  holdUnmounted(id: string, persistent: boolean): void {
    if (!persistent) this.increment(id, { mounted: false, adopted: false })
  }

  /**
   * A get of a layer that is mounted while in use: a mount already there
   * is adopted (checked even when this instance holds the layer, since a
   * persistent put of another process may have taken it down), otherwise
   * `ops.mount()` makes one. Counted unless persistent.
   */
  async holdMounted(id: string, persistent: boolean, ops: MountOps): Promise<void> {
    const ref = this.peek(id)
    if (await ops.isMounted()) {
      if (!persistent) this.increment(id, { mounted: true, adopted: true })
      else if (ref !== undefined) ref.adopted = true
      return
    }
    await ops.mount()
    // Our references now hold a mount we made; a persistent get shares it.
    if (ref !== undefined) ref.adopted = persistent
    if (!persistent) this.increment(id, { mounted: true, adopted: false })
  }

  /**
   * A put: one reference less. The last reference of a mount this instance
   * made unmounts first, so a failed unmount keeps the reference.
   * INVALID_ARGUMENT (RefCounter) when `id` is not held.
   */
  async release(id: string, unmount: () => Promise<void>): Promise<void> {
    const ref = this.peek(id)
    if (ref !== undefined && ref.count === 1 && ref.mounted && !ref.adopted) await unmount()
    this.decrement(id)
  }

  /** A persistent put, of any process's persistent get: unmounts unless this instance still holds the layer (then its last put does). */
  async releasePersistent(id: string, isMounted: () => Promise<boolean>, unmount: () => Promise<void>): Promise<void> {
    const ref = this.peek(id)
    if (ref !== undefined) {
      ref.adopted = false
      return
    }
    if (await isMounted()) await unmount()
  }

  /** A driver's cleanup: unmounts what this instance mounted and still holds; adopted mounts stay. */
  async unmountAll(unmount: (id: string) => Promise<void>): Promise<void> {
    await this.releaseAll((ref) => ref.mounted && !ref.adopted, unmount)
  }
}
