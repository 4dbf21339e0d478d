/** Streaming tar: parse with raw-byte accounting (for tar-split), encode headers. */
export * from './types.js'
export { TarParser, type TarHandler } from './parser.js'
export { encodeHeader, padding, END_OF_ARCHIVE, type EncodeOptions } from './writer.js'
export { paddingFor } from './header.js'
export { parsePaxTime, formatPaxTime } from './pax.js'
export { readTar, type TarEntry } from './iterate.js'
