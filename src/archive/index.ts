/**
 * src/archive: layer tars in and out of directories, exactly as dockerd
 * does it: streaming tar, tar-split, compression, apply with the three
 * whiteout conventions, changes between trees, export of changes.
 */
export * from './tar/index.js'
export * from './tarsplit/index.js'
export * from './compression.js'
export * from './whiteout.js'
export { applyDecompressed, applyFile, applyLayer, type ApplyOptions, type ApplyResult, type DecompressedApplyResult, type FileApplyResult } from './apply.js'
export { fileRangeOf, withFileRange, type FileRange } from './file-source.js'
export { Applier } from './applier.js'
export { applyLayerOffThread, prestartApplyWorkers, stopIdleApplyWorkers } from './apply-offthread.js'
export { changesNaive, changesOverlay, formatChanges, layerXattrs, sortChanges, timespecOf, type Change, type ChangeKind, type NaiveChangesOptions } from './changes.js'
export { exportChanges, exportOverlayUpper, exportPath, type ExportChangesOptions, type ExportOptions, type HeaderStyle } from './export.js'
export { changesAufs, classifyBranchEntry, exportAufsBranch, type BranchEntry } from './aufs-branch.js'
export { cleanPath, entryComponents, ScopedResolver, symlinkStaysInside } from './safepath.js'
