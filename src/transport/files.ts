/**
 * The files of an image archive or layout, read in place: `ArchiveFiles`
 * is what the docker-archive and OCI sources read through, whether the
 * files are members of a tar on disk (TarIndex) or files in a directory
 * (DirectoryFiles, an OCI layout directory or an unpacked docker-archive).
 *
 * Every name is cleaned and checked (names.ts) before it is looked up, and
 * every file handed out is a regular file inside the archive: links are
 * followed only while they stay inside, anything else is refused.
 */
import { createReadStream } from 'node:fs'
import { lstat, realpath } from 'node:fs/promises'
import { join, sep } from 'node:path'
import type { Readable } from 'node:stream'
import { withFileRange } from '../archive/index.js'
import { StrataError, isErrno } from '../errors/index.js'
import { lazyStream, READ_CHUNK, readLimited } from './blob-stream.js'
import { cleanArchiveName } from './names.js'

/** A regular file of an archive. */
export interface ArchiveFile {
  /** The cleaned name it was asked for. */
  name: string
  size: number
}

export interface ArchiveFiles {
  /** What the files are, for messages: `archive "/x/image.tar"`, `directory "/x/oci"`. */
  readonly description: string
  /** Whether the archive is a tar file (false: a directory). */
  readonly isTar: boolean
  /**
   * The regular file `name` names (links inside the archive followed), or
   * undefined when there is none. UNSAFE_PATH for names or links that leave
   * the archive, CORRUPT when the name is something other than a file.
   * `what` names the file's role in messages ("Layer file").
   */
  stat(name: string, what: string): Promise<ArchiveFile | undefined>
  /** The file's bytes as a stream (after stat's checks); CORRUPT when it is missing. */
  open(name: string, what: string): Promise<Readable>
  /** Closes what the reader holds open. Idempotent. */
  close(): Promise<void>
}

/** A file that must be there; CORRUPT naming the archive otherwise. */
export async function requireFile(files: ArchiveFiles, name: string, what: string): Promise<ArchiveFile> {
  const file = await files.stat(name, what)
  if (file === undefined) {
    throw new StrataError('CORRUPT', `${what} "${name}" is not in the ${files.description}`, { details: { name } })
  }
  return file
}

/** A small file (a JSON document) read whole, refusing more than `limit` bytes. */
export async function readArchiveFile(files: ArchiveFiles, name: string, what: string, limit: number): Promise<Buffer> {
  const file = await requireFile(files, name, what)
  if (file.size > limit) throw new StrataError('CORRUPT', `${what} "${name}" in the ${files.description} is ${file.size} bytes, over the ${limit}-byte limit for a JSON document`)
  return readLimited(await files.open(name, what), limit, `${what} "${name}"`)
}

/**
 * Files in a directory. A name is resolved with realpath and must land
 * inside the directory (a layout may symlink its blobs directory within
 * itself, nothing may point outside) and be a regular file.
 */
export class DirectoryFiles implements ArchiveFiles {
  readonly description: string
  readonly isTar = false
  readonly #dir: string
  #realDir: string | undefined

  constructor(dir: string) {
    this.#dir = dir
    this.description = `directory "${dir}"`
  }

  async stat(name: string, what: string): Promise<ArchiveFile | undefined> {
    const clean = cleanArchiveName(name, what)
    if (clean === '') throw new StrataError('CORRUPT', `${what} "${name}" names the ${this.description} itself, not a file in it`)
    const path = join(this.#dir, clean)
    let real: string
    try {
      real = await realpath(path)
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined
      if (isErrno(err, 'ELOOP')) throw new StrataError('UNSAFE_PATH', `${what} "${name}" in the ${this.description} is a symlink loop`, { cause: err })
      throw err
    }
    this.#realDir ??= await realpath(this.#dir)
    if (!real.startsWith(this.#realDir + sep)) {
      throw new StrataError('UNSAFE_PATH', `${what} "${name}" in the ${this.description} resolves to "${real}", outside it`, { details: { name, resolved: real } })
    }
    const st = await lstat(real)
    if (!st.isFile()) throw new StrataError('CORRUPT', `${what} "${name}" in the ${this.description} is not a regular file`, { details: { name } })
    return { name: clean, size: st.size }
  }

  async open(name: string, what: string): Promise<Readable> {
    const file = await requireFile(this, name, what)
    // realpath again: what stat() checked is what gets opened, not a path a link could redirect.
    const path = await realpath(join(this.#dir, file.name))
    // Marked as the file's bytes: a layer apply may read it in its worker thread instead (src/archive/file-source.ts).
    return withFileRange(
      lazyStream(() => createReadStream(path, { highWaterMark: READ_CHUNK })),
      { path, start: 0 },
    )
  }

  async close(): Promise<void> {}
}
