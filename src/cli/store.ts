/** Opening the data root named by the global options, for the verbs that need the whole store. */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { StrataError, isErrno } from '../errors/index.js'
import { Store } from '../store/index.js'
import type { GlobalOptions } from './global.js'

/** The drivers whose image store under `root` holds something (`image/<driver>/` not empty). */
function driversWithData(root: string): string[] {
  const list = (dir: string): string[] => {
    try {
      return readdirSync(dir)
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR', 'EACCES')) return []
      throw err
    }
  }
  return list(join(root, 'image')).filter((d) => list(join(root, 'image', d)).length > 0)
}

/**
 * A driver asked for (-s, STRATA_DRIVER) on a root whose images are all
 * another driver's would show an empty store and start empty trees beside
 * the real ones: refused before anything is written, naming the driver the
 * root uses (as dockerd refuses a root with another driver's data).
 */
function checkDriverFits(global: GlobalOptions): void {
  if (global.driver === undefined) return
  const present = driversWithData(global.root)
  if (present.length === 0 || present.includes(global.driver)) return
  throw new StrataError('INVALID_ARGUMENT', `"${global.root}" holds the images of storage driver "${present.join('", "')}", not "${global.driver}": with -s ${global.driver} the store would look empty`, {
    hint: `leave out -s (strata uses ${present.length === 1 ? present[0] : 'the one there'}), or move the data with 'strata migrate --to ${global.driver}'`,
    details: { root: global.root, driver: global.driver, present },
  })
}

/**
 * Runs `fn` on the opened store and closes it however `fn` ends.
 * `reading`: the verb only reads (images, inspect, ps, history, version),
 * so the store is opened without its crash recovery (Store.open's
 * `reading`), which costs a cold command the data-root lock and a lock
 * probe per layer.
 */
export async function withStore<T>(global: GlobalOptions, fn: (store: Store) => Promise<T>, opts: { reading?: boolean } = {}): Promise<T> {
  checkDriverFits(global)
  const store = await Store.open({
    root: global.root,
    ...(global.driver === undefined ? {} : { driver: global.driver }),
    driverOptions: global.storageOpts,
    ...(opts.reading === true ? { reading: true } : {}),
  })
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}
