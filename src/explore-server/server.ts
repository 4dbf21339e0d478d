/**
 * `strata explore`'s server: the explorer's handler alone on a loopback
 * port (a free one unless asked), until closed.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { StrataError } from '../errors/index.js'
import type { Explorer } from '../explore/index.js'
import { createExploreHandler } from './handler.js'

export interface ExploreServerOptions {
  explorer: Explorer
  /** 0 (default): a free port. */
  port?: number
  /** The built page's directory (default dist/web). */
  assetsDir?: string
}

export interface ExploreServer {
  /** `http://127.0.0.1:PORT/` */
  url: string
  port: number
  close(): Promise<void>
}

/** Listens on 127.0.0.1 only; the handler refuses other peers and foreign Host headers besides. */
export async function startExploreServer(opts: ExploreServerOptions): Promise<ExploreServer> {
  const handler = createExploreHandler({ explorer: opts.explorer, ...(opts.assetsDir === undefined ? {} : { assetsDir: opts.assetsDir }) })
  const server: Server = createServer((req, res) => {
    handler(req, res).then(
      (handled) => {
        if (!handled) res.writeHead(404).end()
      },
      (err: unknown) => res.destroy(err as Error),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new StrataError('IN_USE', `Port ${opts.port} on 127.0.0.1 is in use`, { cause: err, hint: 'choose another with --port, or leave it out for a free one' }) : err),
    )
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve())
  })
  const port = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
