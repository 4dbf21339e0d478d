/**
 * Whether a filesystem fills in d_type, the file type in directory entries
 * (dockerd's fsutils.SupportsDType). overlayfs relies on it to find
 * whiteouts; xfs formatted with ftype=0 leaves it DT_UNKNOWN, and overlay
 * then misbehaves silently, which is why dockerd refuses such a backing
 * filesystem.
 */
import { writeFileSync } from 'node:fs'
import { makeOwnedDir } from '../../fs/index.js'
import { join } from 'node:path'
import { DT_UNKNOWN, rawDirentTypes } from '../../sys/index.js'

/**
 * True when the filesystem holding `dir` reports file types in directory
 * entries: creates a scratch dir with one file in `dir` and reads it back.
 */
export function supportsDType(dir: string): boolean {
  // Owned (src/fs/owned.ts): a process killed here leaves a dir the next open removes.
  const owned = makeOwnedDir(dir, 'supports-dtype-check-')
  const scratch = owned.path
  try {
    writeFileSync(join(scratch, 'file'), '')
    return (rawDirentTypes(scratch).get('file') ?? DT_UNKNOWN) !== DT_UNKNOWN
  } finally {
    owned.removeSync()
  }
}
