/**
 * directorySize: moby's pkg/directory.Size, the figure dockerd's overlay2
 * reports for a layer (ApplyDiff's return, written to layerdb's `size`
 * file, and DiffSize). Kept byte-for-byte compatible so a layer applied by
 * strata records the size dockerd would have recorded.
 */
import { lstatSync, readdirSync, type Dirent } from 'node:fs'
import { join } from 'node:path'
import { isErrno } from '../../errors/index.js'

/**
 * Sum of the lstat sizes of every non-directory entry under `dir`: regular
 * files, symlinks (their target's length), devices and fifos (0), entries
 * of size 0 skipped, each inode counted once (hardlinks). Entries that
 * vanish during the walk are skipped, as moby's walk does; `dir` itself
 * missing is an error.
 */
export async function directorySize(dir: string): Promise<number> {
  // Synchronous calls on purpose: thousands of tiny lstats cost more as
  // thread-pool round trips than they block (about 3x slower async).
  const seen = new Set<bigint>()
  let size = 0
  const stack = [dir]
  while (stack.length > 0) {
    const d = stack.pop() as string
    let entries: Dirent[]
    try {
      entries = readdirSync(d, { withFileTypes: true })
    } catch (err) {
      if (d !== dir && isErrno(err, 'ENOENT', 'ENOTDIR')) continue
      throw err
    }
    for (const entry of entries) {
      const p = join(d, entry.name)
      if (entry.isDirectory()) {
        stack.push(p)
        continue
      }
      let st
      try {
        st = lstatSync(p, { bigint: true })
      } catch (err) {
        if (isErrno(err, 'ENOENT')) continue
        throw err
      }
      if (st.isDirectory()) {
        stack.push(p)
        continue
      }
      // moby keys on the inode alone: one diff dir is one filesystem.
      if (st.size === 0n || seen.has(st.ino)) continue
      seen.add(st.ino)
      size += Number(st.size)
    }
  }
  return size
}
