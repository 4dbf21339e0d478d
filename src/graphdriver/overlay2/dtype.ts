/**
 * Whether a filesystem fills in d_type, the file type in directory entries
 * (dockerd's fsutils.SupportsDType). overlayfs relies on it to find
 * whiteouts; xfs formatted with ftype=0 leaves it DT_UNKNOWN, and overlay
 * then misbehaves silently, which is why dockerd refuses such a backing
 * filesystem.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DT_UNKNOWN, rawDirentTypes } from '../../sys/index.js'

/**
 * True when the filesystem holding `dir` reports file types in directory
 * entries: creates a scratch dir with one file in `dir` and reads it back.
 */
export function supportsDType(dir: string): boolean {
  const scratch = mkdtempSync(join(dir, 'supports-dtype-check-'))
  try {
    writeFileSync(join(scratch, 'file'), '')
    return (rawDirentTypes(scratch).get('file') ?? DT_UNKNOWN) !== DT_UNKNOWN
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}
