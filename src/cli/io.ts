/** Where CLI verbs read from and write to: a path, or "-" for stdin/stdout. */
import { createReadStream, createWriteStream } from 'node:fs'
import { rename, rm, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { StrataError, isErrno } from '../errors/index.js'
import { pipeline } from 'node:stream/promises'
import { Readable } from 'node:stream'
import { specialFileKind, tempPathFor } from '../fs/index.js'

export function openInput(path: string): Readable {
  return path === '-' ? process.stdin : createReadStream(path)
}

/**
 * Streams `data` to `path` (or stdout). A file is written under a temp name
 * and renamed at the end, so a failed export never leaves a half file that
 * looks complete. A device, fifo or socket (/dev/null, a named pipe) is
 * written in place: renaming over it would replace the node itself.
 */
export async function writeOutput(path: string, data: AsyncIterable<Buffer> | Readable): Promise<void> {
  const source = data instanceof Readable ? data : Readable.from(data)
  if (path === '-') {
    await pipeline(source, process.stdout, { end: false })
    return
  }
  if ((await specialFileKind(path)) !== undefined) {
    await pipeline(source, createWriteStream(path))
    return
  }
  const tmp = tempPathFor(path)
  try {
    await pipeline(source, createWriteStream(tmp))
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

/**
 * docker's command.ValidateOutputPath, before any work: the directory of
 * an output file must exist (`invalid output path: directory "/x" does not
 * exist`), named as the user gave it, not as the temp file written there.
 */
export async function validateOutputPath(path: string, what: string): Promise<void> {
  if (path === '-') return
  const dir = dirname(path)
  try {
    if (!(await stat(dir)).isDirectory()) throw new StrataError('INVALID_ARGUMENT', `${what}: invalid output path: "${dir}" is not a directory`)
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) throw new StrataError('INVALID_ARGUMENT', `${what}: invalid output path: directory "${dir}" does not exist`)
    throw err
  }
}
