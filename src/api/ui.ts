/**
 * The layer explorer (src/explore-server's handler) mounted at /ui/ of the
 * API: the same page and read-only JSON API `strata explore` serves. On a
 * TCP connection the explorer's own guard applies (loopback peers and
 * Host headers only, against DNS rebinding); on the unix socket whoever
 * may connect may read (the socket's mode already said who that is).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Explorer } from '../explore/index.js'
import { createExploreHandler, type ExploreHandler } from '../explore-server/index.js'
import type { ApiServerOptions } from './types.js'

export const UI_PREFIX = '/ui'

/** Serves a request under /ui; resolves false when the explorer does not know the path. */
export type UiHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>

export function uiHandler(opts: ApiServerOptions): UiHandler {
  const explorer = new Explorer(opts.store)
  const assets = opts.uiAssetsDir === undefined ? {} : { assetsDir: opts.uiAssetsDir }
  let guarded: ExploreHandler | undefined
  let open: ExploreHandler | undefined
  return (req, res) => {
    if (req.socket.remoteAddress === undefined) {
      open ??= createExploreHandler({ explorer, prefix: UI_PREFIX, loopbackOnly: false, ...assets })
      return open(req, res)
    }
    guarded ??= createExploreHandler({ explorer, prefix: UI_PREFIX, ...assets })
    return guarded(req, res)
  }
}
