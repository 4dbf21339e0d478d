/**
 * Output paths that are not regular files. Everything strata writes to a
 * path the user names (save -o, export -o, layer export -o) is staged
 * under a temp name and renamed over the destination at the end
 * (temp.ts), so a failure never leaves a half file that looks complete.
 * rename(2) over a device or a fifo replaces the device node itself: a
 * `save -o /dev/null` run as root turned the host's /dev/null into a
 * regular file holding the archive. A device, fifo or socket is written
 * in place instead (there is nothing to make atomic about it), and a
 * publish step refuses to rename over one (replaceTarget).
 *
 * API: `specialFileKind(path)`: 'character device' | 'block device' |
 * 'fifo' | 'socket' when `path` (symlinks followed) is one, else
 * undefined (absent, a regular file, a directory); `refuseSpecialTarget(
 * path, what)`: throws INVALID_ARGUMENT when it is one.
 */
import { stat } from 'node:fs/promises'
import { StrataError, isErrno } from '../errors/index.js'

export type SpecialFileKind = 'character device' | 'block device' | 'fifo' | 'socket'

/** What kind of special file `path` is (symlinks followed), or undefined for none / absent. */
export async function specialFileKind(path: string): Promise<SpecialFileKind | undefined> {
  let st
  try {
    st = await stat(path)
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) return undefined
    throw err
  }
  if (st.isCharacterDevice()) return 'character device'
  if (st.isBlockDevice()) return 'block device'
  if (st.isFIFO()) return 'fifo'
  if (st.isSocket()) return 'socket'
  return undefined
}

/**
 * Throws INVALID_ARGUMENT when `path` is a device, fifo or socket: a temp
 * file must never be renamed over one (it would replace the node, e.g.
 * /dev/null, by a regular file). `what` names the output in the message.
 */
export async function refuseSpecialTarget(path: string, what: string): Promise<void> {
  const kind = await specialFileKind(path)
  if (kind !== undefined) {
    throw new StrataError('INVALID_ARGUMENT', `Refusing to replace "${path}" with ${what}: it is a ${kind}, not a regular file`, {
      hint: 'write to a regular file, or stream to it from stdout',
      details: { path, kind },
    })
  }
}
