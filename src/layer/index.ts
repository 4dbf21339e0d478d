/**
 * src/layer: the layer store (dockerd's layerdb): read-only layers by
 * chainID, containers' mounted layers, references, transactions, recovery
 * and check, shared between processes through the locks of src/fs.
 */
export { LayerStore, type LayerStoreOptions } from './store.js'
export type { RecoveryReport } from './recover.js'
export type { CheckOptions } from './check.js'
export type { RemoveMountOptions } from './mounts.js'
export { LayerDbPaths } from './paths.js'
export { INIT_ENTRIES, setupInitLayer } from './initlayer.js'
export { childChainId } from './register.js'
export { driverLayersDir, listDriverLayerIds, removeDriverLayers, type RemovalOutcome } from './driver-layers.js'
export { LAYER_FILES, MOUNT_FILES } from './metadata.js'
export type * from './types.js'
