/**
 * src/graphdriver: how layers are stored and stacked on disk (types.ts is
 * the contract), the drivers, and the registry that picks one for a data
 * root. Importing this module registers the built-in drivers in the
 * default registry, so `openDriver(root)` can find them. Every driver
 * counts get/put with RefCounter (refcount.ts) and serialises work on one
 * layer id with src/fs's KeyedLock.
 *
 * @example
 * import { openDriver } from 'strata'
 * const driver = await openDriver('/var/lib/strata')        // the prior run's driver, or overlay2, btrfs, vfs
 * await driver.create(id, null)
 * await driver.applyDiff(id, null, createReadStream('layer.tar'))
 */
import { registerDriver } from './registry.js'
import { vfsFactory } from './vfs/driver.js'
import { overlay2Factory } from './overlay2/index.js'
import { btrfsFactory } from './btrfs/index.js'
import { devicemapperFactory } from './devicemapper/index.js'
import { aufsFactory } from './aufs/index.js'

export type { ApplyLayerOptions, Change, CreateOpts, DiffOptions, DiffFiles, DriverProblem, DriverFactory, DriverOptions, GetOpts, GraphDriver, LayerApplyResult, ProbeResult, PutOpts } from './types.js'
export { DRIVER_ORDER, DriverRegistry, defaultRegistry, openDriver, registerDriver } from './registry.js'
export { withNaiveDiff, type ProtoDriver } from './naive-diff.js'
export { RefCounter, type Ref } from './refcount.js'
export { copyTree, type CopyTreeOptions, type CopyTreeResult, type ReflinkMode } from './copy.js'
export { VfsDriver, vfsFactory } from './vfs/driver.js'
export { Overlay2Driver, overlay2Factory, mountPlan, mountEntries, type MountEntry } from './overlay2/index.js'
export { BtrfsDriver, btrfsFactory } from './btrfs/index.js'
export { DevmapperDriver, devicemapperFactory, openDevmapperGraph, type DevmapperGraph } from './devicemapper/index.js'
export { AufsDriver, aufsFactory } from './aufs/index.js'

registerDriver(overlay2Factory)
registerDriver(btrfsFactory)
registerDriver(vfsFactory)
registerDriver(devicemapperFactory)
// Never picked for a fresh root (not in DRIVER_ORDER): only by name, or for a root that already has aufs/.
registerDriver(aufsFactory)
