/**
 * Reading a request: query values as dockerd's httputils reads them,
 * docker's `filters` parameter, and bodies with bounds (size, time between
 * bytes), so that no client can hold the server with a body that never
 * ends or never stops.
 */
import { Transform, type Readable } from 'node:stream'
import { ApiError, badParameter } from './errors.js'
import type { RequestContext } from './types.js'

/** dockerd's httputils.BoolValue: absent, "", "0", "no", "false", "none" are false; anything else true. */
export function boolParam(query: URLSearchParams, name: string, fallback = false): boolean {
  const raw = query.get(name)
  if (raw === null) return fallback
  const v = raw.trim().toLowerCase()
  return !(v === '' || v === '0' || v === 'no' || v === 'false' || v === 'none')
}

/** An integer parameter; absent or "" gives `fallback`; anything but an integer is a 400 naming it. */
export function intParam(query: URLSearchParams, name: string, fallback: number | undefined): number | undefined {
  const raw = query.get(name)
  if (raw === null || raw.trim() === '') return fallback
  if (!/^-?\d+$/.test(raw.trim())) throw badParameter(name, raw, 'an integer')
  const n = Number(raw.trim())
  if (!Number.isSafeInteger(n)) throw badParameter(name, raw, 'an integer in range')
  return n
}

/** docker's filters.Args: key → the set of values. */
export type Filters = Map<string, Set<string>>

/**
 * Parses docker's `filters` JSON: `{"key":{"value":true}}` (API ≥ 1.22) or
 * the older `{"key":["value"]}`. Keys not in `accepted` are a 400 as
 * dockerd's filters.Validate answers (`invalid filter 'x'`).
 */
export function parseFilters(raw: string | null, accepted: readonly string[]): Filters {
  const out: Filters = new Map()
  if (raw === null || raw.trim() === '') return out
  let doc: unknown
  try {
    doc = JSON.parse(raw)
  } catch (err) {
    throw new ApiError(400, `invalid filter: ${(err as Error).message}`, { cause: err })
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new ApiError(400, 'invalid filter: filters must be a JSON object')
  for (const [key, value] of Object.entries(doc as Record<string, unknown>)) {
    const values = new Set<string>()
    if (Array.isArray(value)) {
      for (const v of value) {
        if (typeof v !== 'string') throw new ApiError(400, `invalid filter: values of "${key}" must be strings`)
        values.add(v)
      }
    } else if (typeof value === 'object' && value !== null) {
      for (const [v, on] of Object.entries(value as Record<string, unknown>)) {
        if (on !== true) throw new ApiError(400, `invalid filter: "${key}": {"${v}": ${JSON.stringify(on)}} must map the value to true`)
        values.add(v)
      }
    } else {
      throw new ApiError(400, `invalid filter: "${key}" must be a list or a map of values`)
    }
    if (!accepted.includes(key)) throw new ApiError(400, `invalid filter '${key}'`)
    out.set(key, values)
  }
  return out
}

/** The only value of a filter that takes one (`dangling=true`); 400 when given several. */
export function singleFilter(filters: Filters, key: string): string | undefined {
  const values = filters.get(key)
  if (values === undefined || values.size === 0) return undefined
  if (values.size > 1) throw new ApiError(400, `invalid filter: "${key}" takes one value, got ${values.size}`)
  return [...values][0]!
}

/** A filter's boolean value (`dangling=true|1|false|0`), 400 otherwise, as dockerd's filters.GetBoolOrDefault. */
export function boolFilter(filters: Filters, key: string): boolean | undefined {
  const v = singleFilter(filters, key)
  if (v === undefined) return undefined
  const l = v.toLowerCase()
  if (l === 'true' || l === '1') return true
  if (l === 'false' || l === '0') return false
  throw new ApiError(400, `invalid filter '${key}=${v}'`)
}

/** Content-Length as a number, undefined when absent; 400 when malformed. */
export function contentLength(ctx: RequestContext): number | undefined {
  const raw = ctx.req.headers['content-length']
  if (raw === undefined) return undefined
  if (!/^\d+$/.test(raw)) throw new ApiError(400, `invalid Content-Length "${raw}"`)
  return Number(raw)
}

function hasBody(ctx: RequestContext): boolean {
  const len = contentLength(ctx)
  return len === undefined ? ctx.req.headers['transfer-encoding'] !== undefined : len > 0
}

/**
 * The body's bytes, at most `limit` of them (413 beyond), with at most
 * `limits.bodyTimeoutMs` between chunks (408 after). On an upgraded
 * connection only Content-Length bytes are the body; what follows stays
 * in the stream (a process's stdin).
 */
export async function readBodyBytes(ctx: RequestContext, limit: number): Promise<Buffer> {
  const length = contentLength(ctx)
  if (length !== undefined && length > limit) throw new ApiError(413, `request body of ${length} bytes is larger than the ${limit} bytes allowed`)
  if (!hasBody(ctx)) return Buffer.alloc(0)
  const upgraded = ctx.body !== ctx.req
  if (upgraded && length === undefined) throw new ApiError(400, 'a request upgraded to a raw stream needs a Content-Length for its body')
  const stream = ctx.body
  const chunks: Buffer[] = []
  let size = 0
  return new Promise<Buffer>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined
    const arm = (): void => {
      clearTimeout(timer)
      timer = setTimeout(() => done(new ApiError(408, `request body stalled for ${ctx.limits.bodyTimeoutMs} ms`)), ctx.limits.bodyTimeoutMs)
    }
    const done = (err?: Error): void => {
      clearTimeout(timer)
      stream.off('readable', onReadable)
      stream.off('end', onEnd)
      stream.off('error', onError)
      stream.off('close', onClose)
      if (err !== undefined) {
        reject(err)
        return
      }
      resolve(Buffer.concat(chunks, size))
    }
    const onReadable = (): void => {
      arm()
      for (;;) {
        const chunk = stream.read() as Buffer | null
        if (chunk === null) return
        let piece = chunk
        if (length !== undefined && size + piece.length > length) {
          // The rest belongs to what follows the body (upgraded connections).
          stream.unshift(piece.subarray(length - size))
          piece = piece.subarray(0, length - size)
        }
        chunks.push(piece)
        size += piece.length
        if (size > limit) return done(new ApiError(413, `request body is larger than the ${limit} bytes allowed`))
        if (length !== undefined && size === length) return done()
      }
    }
    const onEnd = (): void => {
      if (length !== undefined && size < length) done(new ApiError(400, `request body ended after ${size} of ${length} bytes`))
      else done()
    }
    const onError = (err: Error): void => done(new ApiError(400, `reading the request body: ${err.message}`, { cause: err }))
    const onClose = (): void => {
      if (length === undefined || size < length) done(new ApiError(400, 'the client closed the connection before sending its whole body'))
    }
    stream.on('readable', onReadable)
    stream.on('end', onEnd)
    stream.on('error', onError)
    stream.on('close', onClose)
    arm()
    onReadable()
  })
}

/**
 * The JSON body, or undefined when there is none. As dockerd's
 * CheckForJSON: a non-empty body must say `Content-Type: application/json`.
 * Malformed JSON is a 400 with the parser's words.
 */
export async function readJsonBody(ctx: RequestContext): Promise<unknown> {
  if (!hasBody(ctx)) return undefined
  const type = ctx.req.headers['content-type']
  if (type !== undefined && type !== '' && !/^application\/json\s*(;|$)/i.test(type)) {
    throw new ApiError(400, `Content-Type specified (${type}) must be 'application/json'`)
  }
  const bytes = await readBodyBytes(ctx, ctx.limits.maxJsonBodyBytes)
  if (bytes.length === 0) return undefined
  try {
    return JSON.parse(bytes.toString('utf8'))
  } catch (err) {
    throw new ApiError(400, `invalid JSON in the request body: ${(err as Error).message}`, { cause: err })
  }
}

/** A JSON body that must be an object (container create, exec create); `{}` when there is none. */
export async function readJsonObject(ctx: RequestContext): Promise<Record<string, unknown>> {
  const doc = await readJsonBody(ctx)
  if (doc === undefined || doc === null) return {}
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ApiError(400, 'the request body must be a JSON object')
  return doc as Record<string, unknown>
}

/**
 * The request body as a stream for a large upload (a tar for load, import
 * or archive PUT): no size limit, but it fails with a clear error when
 * the client stops sending for `limits.bodyTimeoutMs` or goes away before
 * the end, so the library's consumer fails (and keeps nothing) instead of
 * waiting forever.
 */
export function uploadStream(ctx: RequestContext): Readable {
  const source = ctx.body
  const ms = ctx.limits.bodyTimeoutMs
  let ended = false
  let timer: NodeJS.Timeout | undefined
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      arm()
      cb(null, chunk)
    },
    flush(cb) {
      ended = true
      clearTimeout(timer)
      cb()
    },
  })
  const arm = (): void => {
    clearTimeout(timer)
    timer = setTimeout(() => out.destroy(new ApiError(408, `the upload stalled: nothing received for ${ms} ms`)), ms)
  }
  source.on('error', (err) => out.destroy(new ApiError(400, `the upload failed: ${err.message}`, { cause: err })))
  source.on('close', () => {
    if (!ended && !source.readableEnded) out.destroy(new ApiError(400, 'the client closed the connection before the upload ended'))
  })
  out.on('close', () => clearTimeout(timer))
  arm()
  source.pipe(out)
  return out
}
