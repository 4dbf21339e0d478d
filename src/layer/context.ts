/**
 * What every part of the layer store works with: the data root, the
 * driver, the layerdb paths, the data-root lock and the image references.
 * One object, built by LayerStore.open and passed to the modules that
 * implement its verbs (register, refs, mounts, export, recover, check).
 */
import type { GraphDriver } from '../graphdriver/index.js'
import type { DataRootLock } from '../fs/index.js'
import type { LayerDbPaths } from './paths.js'
import type { ImageReferences } from './types.js'

export interface StoreContext {
  readonly root: string
  readonly driver: GraphDriver
  readonly paths: LayerDbPaths
  readonly lock: DataRootLock
  /** Called under the data-root lock: it must not take it. */
  imageReferences: ImageReferences | undefined
}
