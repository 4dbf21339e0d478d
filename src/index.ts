/**
 * strata: Docker's image and layer storage as a library.
 *
 * @example
 * import { applyLayer } from 'strata'
 * const r = await applyLayer('/tmp/rootfs', createReadStream('layer.tar.gz'), { whiteouts: 'full' })
 * console.log(r.diffId)
 */
export * from './errors/index.js'
export * from './digest/index.js'
export * from './archive/index.js'
export * from './graphdriver/index.js'
export * as sys from './sys/index.js'
