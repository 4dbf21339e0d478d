/**
 * The lock the image, reference and distribution stores run their
 * read-modify-write steps under: the data root's DataRootLock
 * (src/layer/lock.ts), the same one the layer store uses, so that images,
 * tags and the layers they keep change under one lock across processes.
 * Typed structurally (only withLock is needed) so that callers can wrap it,
 * e.g. to observe when it is held.
 */
import type { DataRootLock } from '../layer/lock.js'

export type StoreLock = Pick<DataRootLock, 'withLock'>
