/**
 * Errors as HTTP answers. The library throws StrataError with a code; the
 * API answers with the status dockerd's errdefs give the same condition
 * (moby api/server/httpstatus): not found 404, conflict 409, invalid
 * parameter 400, not implemented 501, anything else 500. ApiError is for
 * conditions only the HTTP layer knows (a bad query value, a body too big).
 */
import { StrataError, type StrataErrorCode } from '../errors/index.js'

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'ApiError'
  }
}

const STATUS_BY_CODE: Record<StrataErrorCode, number> = {
  NOT_FOUND: 404,
  ALREADY_EXISTS: 409,
  IN_USE: 409,
  INVALID_ARGUMENT: 400,
  UNSAFE_PATH: 400,
  NOT_SUPPORTED: 501,
  DIGEST_MISMATCH: 500,
  CORRUPT: 500,
  SYSCALL: 500,
}

/** The HTTP status for a thrown value. */
export function statusOf(err: unknown): number {
  if (err instanceof ApiError) return err.status
  if (err instanceof StrataError) return STATUS_BY_CODE[err.code] ?? 500
  return 500
}

/** The one-line message a client sees: the error's message, and the library's hint after it when there is one. */
export function messageOf(err: unknown): string {
  if (err instanceof StrataError) return err.hint === undefined ? err.message : `${err.message} (${err.hint})`
  if (err instanceof Error) return err.message
  return String(err)
}

/** 400 with a message naming a query parameter and what was wrong with its value. */
export function badParameter(name: string, value: string, expected: string): ApiError {
  return new ApiError(400, `invalid value for parameter "${name}": "${value}" is not ${expected}`)
}

/** 501: a feature of the Engine API strata does not have. */
export function notImplemented(what: string): ApiError {
  return new ApiError(501, `strata does not implement ${what}`)
}
