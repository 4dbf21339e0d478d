/**
 * src/explore-server: the layer explorer over HTTP. A handler (the page
 * and a read-only JSON API, mountable under a prefix) and a loopback
 * server for `strata explore`. The library is src/explore.
 */
export { createExploreHandler, type ExploreHandler, type ExploreHandlerOptions } from './handler.js'
export { startExploreServer, type ExploreServer, type ExploreServerOptions } from './server.js'
export { isLoopbackAddress, isLoopbackHost, hostName } from './guard.js'
export { DEFAULT_ASSETS_DIR } from './assets.js'
