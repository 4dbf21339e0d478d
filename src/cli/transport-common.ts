/**
 * What load, save and import share: the transport's scratch directory on
 * the data root, and turning a failure into the one line the CLI prints
 * ("loading image.tar: layer sha256:... does not match ...").
 */
import { scratchDir } from '../store/index.js'
import { StrataError, type StrataErrorCode } from '../errors/index.js'
import type { TransportFormat } from '../transport/index.js'
import { UsageError } from './errors.js'

/**
 * `<root>/tmp`, created on first use: spools and archives being written
 * live on the data root's filesystem (renames stay atomic, and a big
 * image does not fill a small /tmp).
 */
export async function transportTmpDir(root: string): Promise<string> {
  return scratchDir(root)
}

/** The formats `save --format` takes. */
export const SAVE_FORMATS: readonly TransportFormat[] = ['docker-archive', 'oci-archive', 'oci-layout']

export function parseFormat(value: string | undefined): TransportFormat {
  if (value === undefined) return 'docker-archive'
  if ((SAVE_FORMATS as readonly string[]).includes(value)) return value as TransportFormat
  throw new UsageError(`--format takes ${SAVE_FORMATS.join(', ')}, not "${value}"`)
}

/** Node's errno names for the system errors worth a plain-words message. */
const ERRNO_CODES: Record<string, StrataErrorCode> = { ENOENT: 'NOT_FOUND', EACCES: 'INVALID_ARGUMENT', EISDIR: 'INVALID_ARGUMENT', ENOTDIR: 'INVALID_ARGUMENT', EEXIST: 'ALREADY_EXISTS' }

/**
 * Rethrows `err` with `context` (what the verb was doing) in front of its
 * message, on one line. Usage errors pass through untouched; a system
 * error becomes a StrataError (NOT_FOUND for ENOENT, ...).
 */
export function rethrowAs(err: unknown, context: string): never {
  if (err instanceof UsageError) throw err
  const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, '; ').trim()
  if (err instanceof StrataError) {
    throw new StrataError(err.code, `${context}: ${oneLine(err.message)}`, {
      cause: err,
      ...(err.hint === undefined ? {} : { hint: err.hint }),
      details: err.details,
    })
  }
  const errno = (err as NodeJS.ErrnoException | undefined)?.code
  const message = `${context}: ${oneLine((err as Error | undefined)?.message ?? String(err))}`
  if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno)) throw new StrataError(ERRNO_CODES[errno] ?? 'SYSCALL', message, { cause: err })
  throw new Error(message, { cause: err })
}
