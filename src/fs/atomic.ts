/**
 * Atomic replace of a file, as moby's pkg/ioutils.AtomicWriteFile does it
 * (so the files look the same to dockerd): the data goes to a temp file in
 * the target's directory (`.tmp-<name><random decimal>`, see temp.ts), is
 * fsync'd, chmod'ed to the exact mode (the umask does not apply), and
 * renamed over the target; then the directory is fsync'd, so the rename
 * itself survives a crash (dockerd skips that; it costs little).
 *
 * A reader sees the old file or the new one, never a torn one. A crash
 * leaves at most the temp files (the new data, and a hard link to the old
 * file kept until the new one is durable), which sweepTempFiles removes
 * (temp.ts). The write, fsync and rename steps are fault points for the
 * tests (src/sys/faults.ts).
 *
 * API: `atomicWriteFile(path, data, mode)`. Writers of one directory
 * should hold one lock (in the data root: the DataRootLock), which is
 * what lets the sweep run safely under it.
 */
import { chmod, link, open, rename, unlink } from 'node:fs/promises'
import { isErrno } from '../errors/index.js'
import { dirname } from 'node:path'
import { faultPoint } from '../sys/index.js'
import { fsyncPath } from './files.js'
import { tempPathFor } from './temp.js'

/** Replaces `path` with `data`, permission bits exactly `mode`; see the file header. */
export async function atomicWriteFile(path: string, data: Buffer | string, mode: number): Promise<void> {
  const tmp = tempPathFor(path)
  // The old file stays reachable under a second temp name until the new one
  // is durable: when the directory's fsync fails after the rename, the old
  // one is put back, so a caller that sees the failure also sees the old
  // state (not a new file it believes was never written).
  const backup = tempPathFor(path)
  let hadOld = true
  let backedUp = false
  try {
    await link(path, backup)
    backedUp = true
  } catch (err) {
    // ENOENT: nothing to keep. Anything else (the target is a directory, say)
    // is left to the rename, which reports it in its own words.
    if (isErrno(err, 'ENOENT')) hadOld = false
  }
  let renamed = false
  try {
    const fh = await open(tmp, 'wx', 0o600)
    try {
      faultPoint('write', path)
      await fh.writeFile(data)
      faultPoint('fsync', path)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await chmod(tmp, mode)
    faultPoint('rename', path)
    await rename(tmp, path)
    renamed = true
    try {
      await fsyncPath(dirname(path))
    } catch (err) {
      if (backedUp) await rename(backup, path)
      else if (!hadOld) await unlink(path)
      backedUp = false
      throw err
    }
  } finally {
    if (!renamed) await unlink(tmp).catch(() => {})
    if (backedUp) await unlink(backup).catch(() => {})
  }
}
