/**
 * The data root, validated once before anything is read or written in it.
 *
 * What goes wrong without this: an empty path quietly makes a store in the
 * current directory; a path through a regular file surfaces as a raw
 * `EEXIST: mkdir` from deep inside a driver; and a path on procfs (or any
 * filesystem where mkdir(2) answers ENOENT under an existing directory)
 * makes Node's recursive mkdir retry for ever. So the root is created here
 * one component at a time with plain mkdir(2), and every refusal names the
 * root and the reason.
 *
 * API: `prepareRoot(root)` (creates a missing root with mode 0711, as
 * dockerd creates its data root; an existing one keeps its mode).
 */
import { mkdirSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { StrataError, isErrno } from '../errors/index.js'

/** The mode dockerd gives a data root it creates (daemon.setupDaemonRoot). */
export const ROOT_DIR_MODE = 0o711

function refuse(root: string, why: string, cause?: unknown): StrataError {
  return new StrataError('INVALID_ARGUMENT', `Cannot use "${root}" as the data root: ${why}`, { details: { root }, ...(cause === undefined ? {} : { cause }) })
}

/**
 * Checks that `root` can be a data root and creates it (and missing
 * parents) if needed. INVALID_ARGUMENT, naming the root and why, for an
 * empty path, a path through or onto a non-directory, or a directory that
 * cannot be created.
 */
export function prepareRoot(root: string): void {
  if (root === '') throw refuse(root, 'the path is empty', undefined)
  if (root.includes('\0')) throw refuse(root, 'the path contains a NUL byte', undefined)
  const abs = resolve(root)
  // Walk up to the deepest component that exists.
  const missing: string[] = []
  let at = abs
  for (;;) {
    try {
      const st = statSync(at)
      if (!st.isDirectory()) {
        throw refuse(root, at === abs ? 'it is not a directory' : `"${at}" is not a directory`)
      }
      break
    } catch (err) {
      if (err instanceof StrataError) throw err
      // ENOTDIR: a file somewhere above; walking up finds and names it.
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) {
        missing.unshift(at)
        const up = dirname(at)
        if (up === at) throw refuse(root, 'no part of the path exists')
        at = up
        continue
      }
      if (isErrno(err, 'EACCES')) throw refuse(root, `permission denied on "${at}"`, err)
      if (isErrno(err, 'ELOOP')) throw refuse(root, 'too many levels of symbolic links', err)
      throw refuse(root, (err as Error).message, err)
    }
  }
  // Create what is missing, parent first, without recursion or retries.
  for (const dir of missing) {
    try {
      mkdirSync(dir, { mode: ROOT_DIR_MODE })
    } catch (err) {
      if (isErrno(err, 'EEXIST')) {
        // A concurrent opener made it; fine if it is a directory.
        if (statSync(dir, { throwIfNoEntry: false })?.isDirectory() === true) continue
        throw refuse(root, `"${dir}" is not a directory`, err)
      }
      const code = (err as NodeJS.ErrnoException).code ?? 'error'
      throw refuse(root, `cannot create "${dir}" (${code}: ${describe(code)})`, err)
    }
  }
}

function describe(code: string): string {
  switch (code) {
    case 'ENOENT':
      return 'the filesystem there does not allow new directories'
    case 'EACCES':
    case 'EPERM':
      return 'permission denied'
    case 'EROFS':
      return 'read-only filesystem'
    case 'ENOSPC':
      return 'no space left on the device'
    default:
      return 'mkdir failed'
  }
}
