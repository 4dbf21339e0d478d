/**
 * strata: Docker's image and layer storage as a library.
 *
 * @example
 * import { Store } from 'strata'
 * const store = await Store.open({ root: '/var/lib/strata' })
 * const { layer } = await store.layers.register(createReadStream('layer.tar.gz'), null)
 * console.log(layer.chainId, layer.diffId)
 * await store.close()
 */
export * from './errors/index.js'
export * from './digest/index.js'
export * from './archive/index.js'
export * from './graphdriver/index.js'
export * as sys from './sys/index.js'
export * as fs from './fs/index.js'
export { DATA_ROOT_LOCK_FILE, DataRootLock, DirLock, RFC3339_NANO_RE, formatRfc3339Nano, type StoreLock } from './fs/index.js'
export * from './layer/index.js'
export * from './image/index.js'
export * from './containerdb/index.js'
export * from './store/index.js'
export * from './container/index.js'
export * from './migrate/index.js'
export * as transport from './transport/index.js'
export * as registry from './transport/registry/index.js'
/** The former name of `registry` (the code lived in src/distribution). */
export * as distribution from './transport/registry/index.js'
export * from './events/index.js'
export * as api from './api/index.js'
