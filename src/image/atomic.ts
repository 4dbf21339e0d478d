/**
 * Small file helpers shared by the image, reference and distribution stores,
 * doing what moby's pkg/ioutils.AtomicWriteFile does so the files look the
 * same to dockerd: the data goes to `.tmp-<name><random digits>` in the
 * target's directory, is fsync'd, chmod'ed to the exact mode (the umask
 * does not apply), and renamed over the target. A reader sees the old file
 * or the new one, never a torn one; a crash leaves at most a `.tmp-*` file,
 * which the stores' check() removes.
 */
import { randomInt } from 'node:crypto'
import { chmod, open, readFile, rename, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { isErrno } from '../errors/index.js'

/** The prefix of every temp file an atomic write leaves behind if it is interrupted. */
export const TEMP_PREFIX = '.tmp-'

/** Writes `data` to `path` atomically with permission bits `mode` (exactly, as Go's os.Chmod sets them). */
export async function atomicWriteFile(path: string, data: Buffer | string, mode: number): Promise<void> {
  const dir = dirname(path)
  // Go's ioutil.TempFile appends a random decimal number to the pattern.
  const tmp = join(dir, `${TEMP_PREFIX}${basename(path)}${randomInt(1, 2 ** 31 - 1)}`)
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
  // The rename itself is durable only once the directory is synced; dockerd skips this, it costs little.
  await syncDir(dir)
}

/** fsync on a directory, so renames and unlinks in it survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** The file's bytes, or undefined when it does not exist. */
export async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path)
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined
    throw err
  }
}
