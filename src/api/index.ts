/**
 * src/api: the Docker Engine API (v1.41) over strata's library, so that
 * the docker CLI, docker-py and dockerode work against a strata data root.
 * types.ts is the contract; `strata serve` (src/cli/serve.ts) runs it.
 *
 * @example
 * import { Store, api } from 'strata'
 * const store = await Store.open({ root: '/var/lib/strata' })
 * const server = await api.startApiServer({ store, hosts: ['unix:///run/strata.sock'] })
 * // DOCKER_HOST=unix:///run/strata.sock docker images
 * await server.close()
 * await store.close()
 */
export type * from './types.js'
export { API_VERSION, MIN_API_VERSION } from './types.js'
export { startApiServer, type ApiServer } from './server.js'
export { DEFAULT_HOST, DEFAULT_SOCKET_GROUP, DEFAULT_TCP_PORT, formatListenAddress, parseListenAddress } from './listen.js'
export { compareVersions } from './version.js'
