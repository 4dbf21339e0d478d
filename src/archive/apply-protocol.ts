/**
 * The messages between applyLayerOffThread and its worker (apply-worker.ts),
 * and how errors cross the thread boundary: structured clone keeps neither
 * the class nor the extra fields of an Error, so a StrataError is sent as
 * its code, message, details and hint and rebuilt on the other side; a
 * system error keeps its errno code, syscall and path.
 */
import { StrataError, type StrataErrorCode } from '../errors/index.js'
import type { DecompressedApplyResult, FileApplyResult } from './apply.js'
import type { WhiteoutFormat } from './whiteout.js'

export type WorkerRequest =
  /** `file`: the worker reads the source itself from this byte range of a file (file-source.ts), reporting progress if asked to. */
  | { t: 'start'; id: number; target: string; whiteouts: WhiteoutFormat; tarSplit: boolean; file?: { path: string; start: number; length?: number; progress: boolean } }
  | { t: 'chunk'; id: number; data: Uint8Array }
  | { t: 'end'; id: number }
  | { t: 'abort'; id: number; error: SerializedError }

export type WorkerReply =
  | { t: 'pull'; id: number }
  /** tar-split lines, each ending in "\n", joined (one string clones far cheaper than thousands). */
  | { t: 'lines'; id: number; lines: string }
  /** Bytes of the file read so far (a file source with progress). */
  | { t: 'read'; id: number; bytes: number }
  | { t: 'done'; id: number; result: DecompressedApplyResult | FileApplyResult }
  | { t: 'failed'; id: number; error: SerializedError }

export interface SerializedError {
  message: string
  /** A StrataError's code. */
  strataCode?: StrataErrorCode
  details?: Record<string, unknown>
  hint?: string
  /** A system error's errno name, syscall and path. */
  code?: string
  syscall?: string
  path?: string
  stack?: string
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof StrataError) {
    const out: SerializedError = { message: err.message, strataCode: err.code, details: structuredClone(err.details) }
    if (err.hint !== undefined) out.hint = err.hint
    if (err.stack !== undefined) out.stack = err.stack
    return out
  }
  if (err instanceof Error) {
    const e = err as NodeJS.ErrnoException
    const out: SerializedError = { message: e.message }
    if (typeof e.code === 'string') out.code = e.code
    if (typeof e.syscall === 'string') out.syscall = e.syscall
    if (typeof e.path === 'string') out.path = e.path
    if (e.stack !== undefined) out.stack = e.stack
    return out
  }
  return { message: String(err) }
}

export function deserializeError(s: SerializedError): Error {
  let err: Error
  if (s.strataCode !== undefined) {
    err = new StrataError(s.strataCode, s.message, { details: s.details ?? {}, ...(s.hint === undefined ? {} : { hint: s.hint }) })
  } else {
    const e: NodeJS.ErrnoException = new Error(s.message)
    if (s.code !== undefined) e.code = s.code
    if (s.syscall !== undefined) e.syscall = s.syscall
    if (s.path !== undefined) e.path = s.path
    err = e
  }
  // The stack where it happened (in the worker) says more than where it was rebuilt.
  if (s.stack !== undefined) err.stack = s.stack
  return err
}
