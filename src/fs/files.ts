/**
 * Small file primitives every store builds on: existence that tells
 * "absent" from "broken", reads that return undefined for a missing file,
 * a durable write (write, fsync, exact mode) and an fsync of a file or a
 * directory (so a rename or a new entry in it survives a crash).
 *
 * API:
 * - `pathExists(path)`: true/false; lstat, so a dangling symlink exists;
 *   errors other than ENOENT/ENOTDIR are thrown.
 * - `readIfExists(path)` / `readTextIfExists(path)`: the bytes / UTF-8 text,
 *   or undefined when the file (or a parent) does not exist.
 * - `writeFileDurable(path, data, mode)`: creates or truncates `path` in
 *   place (not atomic: use atomicWriteFile to replace a file others read),
 *   with exactly `mode` (the umask does not apply), fsynced;
 *   `writeFileWithMode` the same without the fsync (the caller fsyncs).
 * - `fsyncPath(path)`: fsync of an existing file or directory;
 *   `fsyncInOneRound(dir, names)`: files of a directory and the directory,
 *   side by side.
 */
import { lstat, open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isErrno } from '../errors/index.js'
import { faultPoint } from '../sys/index.js'

/** Whether something (anything, even a dangling symlink) is at `path`. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return false
    throw err
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

/** The file's text, or undefined when it does not exist. */
export async function readTextIfExists(path: string): Promise<string | undefined> {
  return (await readIfExists(path))?.toString('utf8')
}

/**
 * Writes `data` to `path` (created or truncated) with exactly `mode`, NOT
 * fsynced: for files a caller makes durable later in one round with
 * others (fsyncInOneRound: a layer transaction's files and its directory,
 * fsynced side by side before the rename that publishes them).
 */
export function writeFileWithMode(path: string, data: string | Buffer, mode: number): Promise<void> {
  return writeWithMode(path, data, mode, false)
}

/** Writes `data` to `path` (created or truncated) with exactly `mode`, fsynced. */
export function writeFileDurable(path: string, data: string | Buffer, mode: number): Promise<void> {
  return writeWithMode(path, data, mode, true)
}

async function writeWithMode(path: string, data: string | Buffer, mode: number, durable: boolean): Promise<void> {
  faultPoint('write', path)
  const fh = await open(path, 'w', mode)
  try {
    await fh.writeFile(data)
    // open's mode went through the umask; dockerd's files have their exact modes whatever ours is.
    await fh.chmod(mode)
    if (durable) await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * fsyncs the files `names` in `dir` and `dir` itself (its entries), side by
 * side: one wait for the disk (ext4 commits them in one journal
 * transaction) where one after another each waited for its own.
 */
export async function fsyncInOneRound(dir: string, names: Iterable<string>): Promise<void> {
  await Promise.all([...[...names].map((name) => fsyncPath(join(dir, name))), fsyncPath(dir)])
}

/** fsyncs an existing file or directory (its data, or its entries). */
export async function fsyncPath(path: string): Promise<void> {
  faultPoint('fsync', path)
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}
