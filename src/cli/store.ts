/** Opening the data root named by the global options, for the verbs that need the whole store. */
import { Store } from '../store/index.js'
import type { GlobalOptions } from './global.js'

/** Runs `fn` on the opened store and closes it however `fn` ends. */
export async function withStore<T>(global: GlobalOptions, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await Store.open({ root: global.root, ...(global.driver === undefined ? {} : { driver: global.driver }), driverOptions: global.storageOpts })
  try {
    return await fn(store)
  } finally {
    await store.close()
  }
}
