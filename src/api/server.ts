/**
 * The Engine API server: Node's http server on each `-H` address, one
 * router, and the plumbing around the handlers: version prefixes and
 * headers, errors as JSON, bounded header time, upgraded (hijacked)
 * connections for attach and exec start, the layer explorer under /ui/,
 * and a close that ends every connection it owns (hijacked ones too).
 */
import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { PassThrough, type Duplex } from 'node:stream'
import { EventJournal } from '../events/index.js'
import { ImageView } from '../store/index.js'
import { ApiError, statusOf, messageOf } from './errors.js'
import { DEFAULT_HOST, formatListenAddress, listenOn, parseListenAddress } from './listen.js'
import { setVersionHeaders, writeError, writeJson } from './response.js'
import { Router } from './router.js'
import { apiRoutes } from './routes.js'
import type { ApiLimits, ApiServerOptions, Hijacked, ListenAddress, RequestContext, Route } from './types.js'
import { requestVersion, splitVersion } from './version.js'
import { uiHandler, type UiHandler } from './ui.js'

export interface ApiServer {
  /** Where it listens, as `-H` values (a TCP port 0 resolved to the real one). */
  hosts: string[]
  close(): Promise<void>
}

const DEFAULT_LIMITS: ApiLimits = { headersTimeoutMs: 10_000, bodyTimeoutMs: 60_000, maxJsonBodyBytes: 4 * 1024 * 1024 }

/** Starts serving `opts.store` on every host; resolves once all listen (or rejects, closing those that did). */
export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const limits: ApiLimits = {
    headersTimeoutMs: opts.headersTimeoutMs ?? DEFAULT_LIMITS.headersTimeoutMs,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? DEFAULT_LIMITS.bodyTimeoutMs,
    maxJsonBodyBytes: opts.maxJsonBodyBytes ?? DEFAULT_LIMITS.maxJsonBodyBytes,
  }
  const addresses = (opts.hosts ?? [DEFAULT_HOST]).map(parseListenAddress)
  const app = new ApiApp(opts, limits)
  const servers: Array<{ server: Server; address: ListenAddress }> = []
  try {
    for (const address of addresses) {
      const server = app.httpServer()
      await listenOn(server, address, opts.socketGroup)
      if (address.kind === 'tcp') {
        const bound = server.address()
        if (bound !== null && typeof bound === 'object') address.port = bound.port
      }
      servers.push({ server, address })
    }
  } catch (err) {
    await Promise.all(servers.map((s) => closeServer(s.server)))
    throw err
  }
  return {
    hosts: servers.map((s) => formatListenAddress(s.address)),
    close: async () => {
      await Promise.all(servers.map((s) => closeServer(s.server)))
      app.closeHijacked()
    },
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

/** The request handling shared by every listening server. */
class ApiApp {
  readonly #opts: ApiServerOptions
  readonly #limits: ApiLimits
  readonly #router: Router
  readonly #events: EventJournal
  readonly #imageView: ImageView
  readonly #hijacked = new Set<Duplex>()
  readonly #log: (line: string) => void
  #ui: UiHandler | undefined

  constructor(opts: ApiServerOptions, limits: ApiLimits) {
    this.#opts = opts
    this.#limits = limits
    this.#router = new Router(apiRoutes())
    this.#events = new EventJournal(opts.store.root)
    this.#imageView = new ImageView(opts.store)
    this.#log = opts.log ?? (() => {})
  }

  httpServer(): Server {
    const server = createServer(
      {
        headersTimeout: this.#limits.headersTimeoutMs,
        // Uploads (load, import) may be long: their stall bound is uploadStream's, per chunk.
        requestTimeout: 0,
        keepAliveTimeout: 5_000,
        // How often Node checks the header deadline (its default, 30 s, would let a slow client hold a socket 3× longer).
        connectionsCheckingInterval: Math.min(1_000, this.#limits.headersTimeoutMs),
      },
      (req, res) => void this.#handle(req, res, undefined),
    )
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      const res = new ServerResponse(req)
      res.assignSocket(socket)
      res.shouldKeepAlive = false
      res.on('finish', () => socket.end())
      socket.on('error', () => socket.destroy())
      if (head.length > 0) socket.unshift(head)
      void this.#handle(req, res, socket)
    })
    return server
  }

  closeHijacked(): void {
    for (const s of this.#hijacked) s.destroy()
    this.#hijacked.clear()
  }

  async #handle(req: IncomingMessage, res: ServerResponse, upgraded: Socket | undefined): Promise<void> {
    try {
      let url: URL
      try {
        url = new URL(req.url ?? '/', 'http://localhost')
      } catch {
        throw new ApiError(400, `invalid request URL "${req.url}"`)
      }
      if (url.pathname === '/ui' || url.pathname.startsWith('/ui/')) {
        if (this.#opts.ui === false) return writeJson(res, 404, { message: 'page not found' })
        this.#ui ??= uiHandler(this.#opts)
        if (await this.#ui(req, res)) return
        return writeJson(res, 404, { message: 'page not found' })
      }
      const split = splitVersion(url.pathname)
      let version: string
      try {
        version = requestVersion(split.version)
      } catch (err) {
        setVersionHeaders(res)
        throw err
      }
      const match = this.#router.match(req.method ?? 'GET', split.path)
      // dockerd answers an unknown path without its version headers.
      if (match === undefined) return writeJson(res, 404, { message: 'page not found' })
      setVersionHeaders(res)
      if (upgraded !== undefined && match.route.hijack !== true) {
        // An Upgrade header on a route that does not hijack: answered as a plain request on that connection.
        req.headers.connection = 'close'
      }
      const ctx = this.#context(req, res, upgraded, match.route, match.params, url.searchParams, version)
      await match.route.handler(ctx)
    } catch (err) {
      if (statusOf(err) === 500) this.#log(`${req.method} ${req.url}: ${err instanceof Error && err.stack !== undefined ? err.stack : messageOf(err)}`)
      if (!res.writableEnded) writeError(res, err)
    }
  }

  #context(req: IncomingMessage, res: ServerResponse, upgraded: Socket | undefined, route: Route, params: Record<string, string>, query: URLSearchParams, version: string): RequestContext {
    const hijacked = this.#hijacked
    let taken = false
    return {
      req,
      res,
      params,
      query,
      version,
      store: this.#opts.store,
      imageView: this.#imageView,
      events: this.#events,
      limits: this.#limits,
      body: upgraded ?? req,
      log: this.#log,
      hijack(): Hijacked {
        if (route.hijack !== true) throw new Error(`route ${route.method} ${route.path} cannot hijack its connection`)
        if (taken) throw new Error('the connection is already hijacked')
        taken = true
        const headers = ['Api-Version', 'Docker-Experimental', 'Ostype', 'Server']
          .map((h) => `${h}: ${String(res.getHeader(h) ?? '')}\r\n`)
          .join('')
        if (upgraded !== undefined) {
          // dockerd: 101 UPGRADED, then the raw stream both ways on the connection.
          res.detachSocket(upgraded)
          upgraded.write(`HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n${headers}\r\n`)
          hijacked.add(upgraded)
          upgraded.on('close', () => hijacked.delete(upgraded))
          return { input: upgraded, output: upgraded }
        }
        // No upgrade asked: a 200 whose body is the raw stream, unframed, until the connection closes.
        res.useChunkedEncodingByDefault = false
        res.shouldKeepAlive = false
        res.writeHead(200, { 'Content-Type': 'application/vnd.docker.raw-stream' })
        res.flushHeaders()
        const input = new PassThrough()
        req.pipe(input)
        return { input, output: res }
      },
    }
  }
}
