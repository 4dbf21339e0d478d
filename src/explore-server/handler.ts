/**
 * The explorer's HTTP handler: the page and a small read-only JSON API
 * over an Explorer, mountable under any prefix (`strata explore` serves it
 * at `/`, an Engine API server may serve it at `/ui/`). The page uses
 * relative URLs only, so it works wherever it is mounted.
 *
 *   GET {prefix}/                                        the page (index.html)
 *   GET {prefix}/assets/...                              its scripts and styles
 *   GET {prefix}/api/info                                data root and driver
 *   GET {prefix}/api/images                              ExploreImageSummary[]
 *   GET {prefix}/api/images/{image}                      ExploreImage
 *   GET {prefix}/api/images/{image}/analysis             ImageAnalysis (counts, efficiency)
 *   GET {prefix}/api/images/{image}/layers/{k}/dir?path=P&changes=1&min=N&offset=O&limit=L   DirListing
 *   GET {prefix}/api/images/{image}/layers/{k}/search?q=Q&changes=1&min=N&limit=L  SearchResult
 *   GET {prefix}/api/images/{image}/path?path=P          PathHistory
 *   GET {prefix}/api/compare?a=IMAGE&b=IMAGE             ImageComparison
 *
 * `{image}` is an ID, short ID or reference, URL-encoded. Errors are
 * `{"error":{"code","message","hint"}}` with 404 for NOT_FOUND, 400 for a
 * bad argument, 500 otherwise. Listings are written in batches as they are
 * serialized, so a directory of 100k entries never sits in memory as one
 * string.
 *
 * Everything is refused to a peer that is not loopback or a Host header
 * that does not name this machine (guard.ts), and anything but GET/HEAD.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { StrataError } from '../errors/index.js'
import type { Explorer, TreeFilter } from '../explore/index.js'
import { loadAssets, type Asset } from './assets.js'
import { isLoopbackAddress, isLoopbackHost } from './guard.js'

export interface ExploreHandlerOptions {
  explorer: Explorer
  /** Where the handler is mounted: '' (default) or a path like '/ui' (no trailing slash). */
  prefix?: string
  /** The built page's directory (default dist/web). */
  assetsDir?: string
  /** Refuse non-loopback peers and foreign Host headers (default true). */
  loopbackOnly?: boolean
}

/** Handles a request under the prefix; resolves false (untouched) for any other path. */
export type ExploreHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

function statusOf(err: unknown): number {
  if (err instanceof HttpError) return err.status
  if (err instanceof StrataError) return err.code === 'NOT_FOUND' ? 404 : err.code === 'INVALID_ARGUMENT' ? 400 : 500
  return 500
}

export function createExploreHandler(opts: ExploreHandlerOptions): ExploreHandler {
  const prefix = (opts.prefix ?? '').replace(/\/+$/, '')
  const loopbackOnly = opts.loopbackOnly !== false
  const explorer = opts.explorer
  let assets: Map<string, Asset> | undefined

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const path = url.pathname
    if (prefix !== '' && path !== prefix && !path.startsWith(`${prefix}/`)) return false
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v)
    if (loopbackOnly && !isLoopbackAddress(req.socket.remoteAddress)) {
      refuse(res, 403, `Refused: the explorer answers this machine only, not ${req.socket.remoteAddress ?? 'an unknown peer'}`)
      req.socket.destroySoon()
      return true
    }
    if (loopbackOnly && !isLoopbackHost(req.headers.host)) {
      refuse(res, 403, `Refused: Host "${req.headers.host ?? ''}" is not localhost, 127.0.0.1 or [::1] (the explorer refuses other names, against DNS rebinding)`)
      return true
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      refuse(res, 405, `Method ${req.method ?? ''} not allowed: the explorer is read-only`)
      return true
    }
    const rest = path.slice(prefix.length) || '/'
    if (prefix !== '' && path === prefix) {
      // `/ui` → `/ui/`, so that the page's relative URLs resolve under the prefix.
      res.writeHead(308, { Location: `${prefix}/` }).end()
      return true
    }
    try {
      if (rest.startsWith('/api/')) await api(rest.slice(5), url.searchParams, res)
      else {
        assets ??= loadAssets(opts.assetsDir)
        serveAsset(assets, rest, req, res)
      }
    } catch (err) {
      const status = statusOf(err)
      const e = err as Error & { code?: string; hint?: string }
      if (res.headersSent) res.destroy(e)
      else sendJson(res, status, { error: { code: typeof e.code === 'string' ? e.code : 'INTERNAL', message: e.message, ...(e.hint === undefined ? {} : { hint: e.hint }) } })
    }
    return true
  }

  async function api(route: string, q: URLSearchParams, res: ServerResponse): Promise<void> {
    const parts = route.split('/').map((p) => {
      try {
        return decodeURIComponent(p)
      } catch {
        throw new HttpError(400, 'INVALID_ARGUMENT', `Malformed escape in the URL path "${p}"`)
      }
    })
    const filter = (): TreeFilter => ({ onlyChanges: q.get('changes') === '1', minSize: numberParam(q, 'min', 0) })
    if (parts.length === 1 && parts[0] === 'info') return sendJson(res, 200, { root: explorer.store.root, driver: explorer.store.driver.name })
    if (parts.length === 1 && parts[0] === 'images') return sendJson(res, 200, await explorer.listImages())
    if (parts.length === 1 && parts[0] === 'compare') return sendJson(res, 200, await explorer.compare(required(q, 'a'), required(q, 'b'), { limit: numberParam(q, 'limit', 500) }))
    if (parts[0] === 'images' && parts.length >= 2) {
      const image = parts[1]!
      if (parts.length === 2) return sendJson(res, 200, await explorer.image(image))
      if (parts.length === 3 && parts[2] === 'analysis') return sendJson(res, 200, await explorer.analysis(image, { limit: numberParam(q, 'limit', 100) }))
      if (parts.length === 3 && parts[2] === 'path') return sendJson(res, 200, await explorer.pathHistory(image, required(q, 'path')))
      if (parts.length === 5 && parts[2] === 'layers') {
        if (!/^\d{1,6}$/.test(parts[3]!)) throw new HttpError(400, 'INVALID_ARGUMENT', `Layer "${parts[3]}" is not a layer number`)
        const layer = Number(parts[3])
        if (parts[4] === 'dir') {
          const page = { offset: numberParam(q, 'offset', 0), ...(q.has('limit') ? { limit: numberParam(q, 'limit', 0) } : {}) }
          const { entries, ...head } = await explorer.listDir(image, layer, q.get('path') ?? '/', filter(), page)
          return streamJson(res, head, 'entries', entries)
        }
        if (parts[4] === 'search') {
          const { entries, ...head } = await explorer.search(image, layer, required(q, 'q'), filter(), numberParam(q, 'limit', 500))
          return streamJson(res, head, 'entries', entries)
        }
      }
    }
    throw new HttpError(404, 'NOT_FOUND', `No API route "/api/${route}"`)
  }
}

function required(q: URLSearchParams, name: string): string {
  const v = q.get(name)
  if (v === null || v === '') throw new HttpError(400, 'INVALID_ARGUMENT', `Query parameter "${name}" is required`)
  return v
}

function numberParam(q: URLSearchParams, name: string, fallback: number): number {
  const raw = q.get(name)
  if (raw === null || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n) || n < 0) throw new HttpError(400, 'INVALID_ARGUMENT', `Query parameter "${name}" must be a whole number, not "${raw}"`)
  return n
}

function refuse(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', Connection: 'close' }).end(`${message}\n`)
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

const BATCH = 500

/** `{...head, [key]: [items...]}`, written a batch of items at a time, waiting for the socket when it is full. */
async function streamJson(res: ServerResponse, head: object, key: string, items: readonly unknown[]): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' })
  if (res.req.method === 'HEAD') return void res.end()
  const open = JSON.stringify(head)
  res.write(`${open.slice(0, -1)}${open.length > 2 ? ',' : ''}${JSON.stringify(key)}:[`)
  for (let i = 0; i < items.length; i += BATCH) {
    const chunk = items
      .slice(i, i + BATCH)
      .map((x) => JSON.stringify(x))
      .join(',')
    const ok = res.write(i === 0 ? chunk : `,${chunk}`)
    if (!ok) await drained(res)
  }
  res.end(']}')
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      res.off('drain', onDrain)
      res.off('close', onClose)
      if (err === undefined) resolve()
      else reject(err)
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new Error('The client went away'))
    res.on('drain', onDrain)
    res.on('close', onClose)
  })
}

function serveAsset(assets: Map<string, Asset>, rest: string, req: IncomingMessage, res: ServerResponse): void {
  if (assets.size === 0) {
    res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' }).end("The explorer's page is not built: run `npm run build` in strata's source tree.\n")
    return
  }
  const asset = assets.get(rest === '/' ? '/index.html' : rest)
  if (asset === undefined) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found\n')
    return
  }
  res.writeHead(200, {
    'Content-Type': asset.type,
    'Content-Length': asset.body.length,
    'Cache-Control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
  })
  res.end(req.method === 'HEAD' ? undefined : asset.body)
}
