/** Streaming tar: parse with raw-byte accounting (for tar-split), encode headers. */
export * from './types.js'
export { TarParser, type TarHandler } from './parser.js'
export { encodeHeader, encodeStreamedHeader, padding, END_OF_ARCHIVE, type EncodeOptions } from './writer.js'
export { decodeHeader, isZeroBlock, paddingFor, type RawHeader } from './header.js'
export { parsePaxTime, formatPaxTime } from './pax.js'
export { MAX_META_SIZE, PendingMeta, checkMetaSize, isMetaType, paxNumber, type MergedHeader, type MetaTypeflag } from './meta.js'
export { readTar, type TarEntry } from './iterate.js'
