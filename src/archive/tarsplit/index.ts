/** tar-split: record a layer tar's raw bytes while it is applied, rebuild it byte for byte later. */
export * from './entries.js'
export { TarSplitRecorder, combineHandlers, createTarSplitFile, type TarSplitFile, type LineSink } from './recorder.js'
export { readTarSplit, assembleTar, directoryFileGetter, type FileGetter, type AssembleOptions } from './assemble.js'
export { Crc64, crc64 } from './crc64.js'
export { readTarSplitPlan, rebuildTarAt, type TarSplitPlan, type RebuildAtOptions } from './rebuild-file.js'
