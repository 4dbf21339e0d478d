/**
 * A layer stream that is a byte range of a file on disk (a layer member of
 * a docker-archive read in place, a blob file of a layout directory),
 * marked as such by whoever opened it.
 *
 * Why: applyLayerOffThread then lets its worker thread read the file
 * itself, into one reused buffer, instead of the main thread reading it
 * into fresh buffers, hashing them and handing a copy of each over. That
 * hand-over was most of a load's overhead on tmpfs: the copies, the
 * messages, and the garbage collections the transferred buffers cost in
 * both threads (see gc.ts).
 *
 * The stream itself stays a normal stream: whoever does not know the mark
 * reads it as before. The mark counts only while nothing has been read
 * from the stream (its bytes are then all still in the file, untouched by
 * whatever the stream would have done with them).
 */
import type { Readable } from 'node:stream'

export interface FileRange {
  /** The file, as the stream would open it. */
  path: string
  /** Byte offset of the range in the file. */
  start: number
  /** Bytes in the range; undefined: up to the end of the file. A file shorter than this is a truncated source (CORRUPT). */
  length?: number
  /** Told the bytes read so far as the range is read (progress). */
  onRead?: (bytesRead: number) => void
}

const FILE_RANGE = Symbol('strata.fileRange')

/** Marks `stream` as the bytes of `range`; returns `stream`. */
export function withFileRange<T extends Readable>(stream: T, range: FileRange): T {
  ;(stream as T & { [FILE_RANGE]?: FileRange })[FILE_RANGE] = range
  return stream
}

/** The range `stream` was marked with, while nothing has been read from it (nor was it destroyed); undefined otherwise. */
export function fileRangeOf(stream: Readable): FileRange | undefined {
  const range = (stream as Readable & { [FILE_RANGE]?: FileRange })[FILE_RANGE]
  if (range === undefined || stream.readableDidRead || stream.readableLength > 0 || stream.destroyed || stream.readableEnded) return undefined
  return range
}
