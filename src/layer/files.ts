/**
 * Small file primitives the layer store builds its atomic steps on: a
 * durable write (write, fsync, exact mode), a directory fsync (so a rename
 * or a new entry survives a crash), an atomic replace (temp file in the
 * same directory, then rename), reads that tell "absent" from "broken".
 */
import { randomBytes } from 'node:crypto'
import { lstat, open, readFile, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { isErrno } from '../errors/index.js'

/** Writes `data` to `path` (created or truncated) with exactly `mode`, fsynced. */
export async function writeFileDurable(path: string, data: string | Buffer, mode: number): Promise<void> {
  const fh = await open(path, 'w', mode)
  try {
    await fh.writeFile(data)
    // open's mode went through the umask; dockerd's files are 0644 whatever ours is.
    await fh.chmod(mode)
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** fsyncs an existing file or directory (its data, or its entries). */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/** Replaces `path` atomically: a reader sees the old content or the new one, never a mix. */
export async function writeFileAtomic(path: string, data: string | Buffer, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`)
  try {
    await writeFileDurable(tmp, data, mode)
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
  await fsyncPath(dirname(path))
}

/** The file's text, or undefined when it does not exist. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined
    throw err
  }
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false
    throw err
  }
}
