/**
 * src/explore: the layer explorer's library. What each layer of an image
 * holds, added, changed, removed and wasted, read from the layer store's
 * tar-split metadata without unpacking anything (types.ts is the spec).
 * The HTTP API and page are in src/explore-server; `strata explore` and
 * `strata image layers` in src/cli.
 */
export * from './types.js'
export { Explorer, readLayerIndex, type ExplorerOptions } from './explorer.js'
export { indexFromTarSplit, indexFromTar } from './layer-index.js'
export { ImageTree } from './image-tree.js'
export { diveEfficiency } from './efficiency.js'
export { compareImages } from './compare.js'
