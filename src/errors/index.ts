/**
 * One error type for the whole library. Callers switch on `code`, the CLI
 * prints `message` and, when present, `hint`. The set of codes is closed on
 * purpose: a new condition a caller must handle differently deserves a new
 * code and a note in the changelog, not a new class.
 */

export type StrataErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'IN_USE'
  | 'INVALID_ARGUMENT'
  | 'NOT_SUPPORTED'
  | 'DIGEST_MISMATCH'
  | 'UNSAFE_PATH'
  | 'CORRUPT'
  | 'SYSCALL'

export interface StrataErrorOptions {
  cause?: unknown
  hint?: string
  /** Structured facts about the failure (paths, digests, entry names). */
  details?: Record<string, unknown>
}

/**
 * @example
 * throw new StrataError('UNSAFE_PATH', `Entry "../etc/passwd" escapes the root "${root}"`)
 */
export class StrataError extends Error {
  readonly code: StrataErrorCode
  readonly hint: string | undefined
  readonly details: Record<string, unknown>

  constructor(code: StrataErrorCode, message: string, options: StrataErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'StrataError'
    this.code = code
    this.hint = options.hint
    this.details = options.details ?? {}
  }
}

/** True when `err` is a StrataError with the given code. */
export function isStrataError(err: unknown, code?: StrataErrorCode): err is StrataError {
  return err instanceof StrataError && (code === undefined || err.code === code)
}

/**
 * True when `err` is a Node system error (or a SysError from src/sys) whose
 * errno name is one of `codes`, e.g. `isErrno(e, 'ENOENT')`.
 */
export function isErrno(err: unknown, ...codes: string[]): boolean {
  if (typeof err !== 'object' || err === null) return false
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && codes.includes(code)
}
