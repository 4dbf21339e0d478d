/**
 * Atomic replace of a file, as moby's pkg/ioutils.AtomicWriteFile does it
 * (so the files look the same to dockerd): the data goes to a temp file in
 * the target's directory (`.tmp-<name><random decimal>`, see temp.ts), is
 * fsync'd, chmod'ed to the exact mode (the umask does not apply), and
 * renamed over the target; then the directory is fsync'd, so the rename
 * itself survives a crash (dockerd skips that; it costs little).
 *
 * A reader sees the old file or the new one, never a torn one. A crash
 * leaves at most the temp file, which sweepTempFiles removes (temp.ts).
 *
 * API: `atomicWriteFile(path, data, mode)`. Writers of one directory
 * should hold one lock (in the data root: the DataRootLock), which is
 * what lets the sweep run safely under it.
 */
import { chmod, open, rename, unlink } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fsyncPath } from './files.js'
import { tempPathFor } from './temp.js'

/** Replaces `path` with `data`, permission bits exactly `mode`; see the file header. */
export async function atomicWriteFile(path: string, data: Buffer | string, mode: number): Promise<void> {
  const tmp = tempPathFor(path)
  const fh = await open(tmp, 'wx', 0o600)
  let renamed = false
  try {
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await chmod(tmp, mode)
    await rename(tmp, path)
    renamed = true
  } finally {
    if (!renamed) await unlink(tmp).catch(() => {})
  }
  await fsyncPath(dirname(path))
}
