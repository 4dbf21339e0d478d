/**
 * The route table: every path of Engine API v1.41 that dockerd 20.10
 * serves, each bound to a handler or to a 501 naming what strata does not
 * implement (so that no request to a real Engine API path is answered
 * "page not found" or left hanging). Fixed paths come before the
 * templates that would swallow them (see router.ts).
 */
import { ApiError, notImplemented } from './errors.js'
import * as archive from './handlers/archive.js'
import * as containers from './handlers/containers.js'
import * as streams from './handlers/attach-exec.js'
import * as tty from './handlers/tty.js'
import * as events from './handlers/events.js'
import * as images from './handlers/images.js'
import * as lifecycle from './handlers/lifecycle.js'
import * as transfer from './handlers/image-transfer.js'
import * as networks from './handlers/networks.js'
import * as stats from './handlers/stats.js'
import * as system from './handlers/system.js'
import { writeJson } from './response.js'
import type { Handler, RequestContext, Route } from './types.js'

function route(method: string, path: string, handler: Handler, extra: Partial<Route> = {}): Route {
  return { method, path, handler, ...extra }
}

/** A route strata knows and does not implement: 501 saying what. */
function unsupported(method: string, path: string, what: string): Route {
  return route(method, path, async () => {
    throw notImplemented(what)
  })
}

function unsupportedAll(what: string, entries: Array<[string, string]>): Route[] {
  return entries.map(([method, path]) => unsupported(method, path, what))
}

async function noSuchVolume(ctx: RequestContext): Promise<void> {
  throw new ApiError(404, `get ${ctx.params.name}: no such volume`)
}

/** The routes, in the order they are tried (as gorilla/mux tries dockerd's). */
export function apiRoutes(): Route[] {
  return [
    ...systemRoutes(),
    ...imageRoutes(),
    ...containerRoutes(),
    ...buildRoutes(),
    ...networkRoutes(),
    ...volumeRoutes(),
    ...swarmRoutes(),
    ...pluginRoutes(),
  ]
}

/** System: ping, version, info, disk usage, events. */
function systemRoutes(): Route[] {
  return [
    route('GET', '/_ping', system.ping),
    route('HEAD', '/_ping', system.ping),
    route('GET', '/version', system.version),
    route('GET', '/info', system.info),
    route('GET', '/system/df', images.systemDf),
    route('GET', '/events', events.streamEvents),
    unsupported('POST', '/auth', 'registry login through the API (docker login writes config.json; strata reads it and X-Registry-Auth)'),
  ]
}

/** Images. */
function imageRoutes(): Route[] {
  return [
    route('GET', '/images/json', images.listImagesHandler),
    route('POST', '/images/create', transfer.createImage),
    route('POST', '/images/load', transfer.loadImagesHandler),
    route('GET', '/images/get', transfer.saveImagesHandler),
    route('POST', '/images/prune', images.pruneImagesHandler),
    unsupported('GET', '/images/search', 'registry search'),
    route('GET', '/images/{name*}/json', images.inspectImageHandler),
    route('GET', '/images/{name*}/history', images.imageHistoryHandler),
    route('POST', '/images/{name*}/tag', images.tagImageHandler),
    route('POST', '/images/{name*}/push', transfer.pushImageHandler),
    route('GET', '/images/{name*}/get', transfer.saveImagesHandler),
    route('DELETE', '/images/{name*}', images.removeImageHandler),
    unsupported('GET', '/distribution/{name*}/json', 'registry manifest inspection (docker manifest inspect)'),
  ]
}

/** Containers. */
function containerRoutes(): Route[] {
  return [
    route('GET', '/containers/json', containers.listContainersHandler),
    route('POST', '/containers/create', containers.createContainerHandler),
    route('GET', '/containers/{id}/json', containers.inspectContainerHandler),
    route('GET', '/containers/{id}/changes', containers.containerChangesHandler),
    route('GET', '/containers/{id}/export', containers.exportContainerHandler),
    route('DELETE', '/containers/{id}', containers.removeContainerHandler),
    route('POST', '/commit', containers.commitHandler),
    route('POST', '/containers/prune', containers.pruneContainersHandler),
    route('HEAD', '/containers/{id}/archive', archive.headArchive),
    route('GET', '/containers/{id}/archive', archive.getArchive),
    route('PUT', '/containers/{id}/archive', archive.putArchive),
    route('POST', '/containers/{id}/start', lifecycle.startContainerHandler),
    route('POST', '/containers/{id}/stop', lifecycle.stopContainerHandler),
    route('POST', '/containers/{id}/kill', lifecycle.killContainerHandler),
    route('POST', '/containers/{id}/restart', lifecycle.restartContainerHandler),
    route('POST', '/containers/{id}/wait', lifecycle.waitContainerHandler),
    route('GET', '/containers/{id}/logs', lifecycle.containerLogsHandler),
    route('POST', '/containers/{id}/attach', streams.attachHandler, { hijack: true }),
    route('GET', '/containers/{id}/top', streams.topHandler),
    route('POST', '/containers/{id}/exec', streams.execCreateHandler),
    route('POST', '/exec/{id}/start', streams.execStartHandler, { hijack: true }),
    route('GET', '/exec/{id}/json', streams.execInspectHandler),
    route('POST', '/containers/{id}/resize', tty.resizeContainerHandler),
    route('POST', '/exec/{id}/resize', streams.execResizeHandler),
    route('POST', '/containers/{id}/rename', lifecycle.renameContainerHandler),
    route('POST', '/containers/{id}/pause', lifecycle.pauseContainerHandler),
    route('POST', '/containers/{id}/unpause', lifecycle.unpauseContainerHandler),
    route('GET', '/containers/{id}/stats', stats.containerStatsHandler),
    ...unsupportedAll('this container verb (no resource updates, no websocket attach)', [
      ['POST', '/containers/{id}/update'],
      ['GET', '/containers/{id}/attach/ws'],
    ]),
  ]
}

/** Builds: not in strata. */
function buildRoutes(): Route[] {
  return [
    ...unsupportedAll('image builds (docker build)', [
      ['POST', '/build'],
      ['POST', '/build/prune'],
      ['POST', '/build/cancel'],
      ['POST', '/session'],
    ]),
  ]
}

/** Networks: none and host only. */
function networkRoutes(): Route[] {
  return [
    route('GET', '/networks', networks.listNetworks),
    route('POST', '/networks/create', networks.networkNotImplemented),
    route('POST', '/networks/prune', networks.pruneNetworks),
    route('GET', '/networks/{id}', networks.inspectNetwork),
    route('DELETE', '/networks/{id}', networks.removeNetwork),
    route('POST', '/networks/{id}/connect', networks.networkNotImplemented),
    route('POST', '/networks/{id}/disconnect', networks.networkNotImplemented),
  ]
}

/** Volumes and plugins: strata has none, and says so to readers (an empty list, 404 for a name, nothing to prune: `docker inspect NAME` tries every kind of object in turn); making one is 501. */
function volumeRoutes(): Route[] {
  return [
    route('GET', '/volumes', async (ctx) => writeJson(ctx.res, 200, { Volumes: [], Warnings: null })),
    unsupported('POST', '/volumes/create', 'volumes'),
    route('POST', '/volumes/prune', async (ctx) => writeJson(ctx.res, 200, { VolumesDeleted: null, SpaceReclaimed: 0 })),
    route('GET', '/volumes/{name}', noSuchVolume),
    unsupported('PUT', '/volumes/{name}', 'volumes'),
    route('DELETE', '/volumes/{name}', noSuchVolume),
  ]
}

/** Swarm and what lives in it: not in strata. */
function swarmRoutes(): Route[] {
  return [
    ...unsupportedAll('swarm mode', [
      ['GET', '/swarm'],
      ['POST', '/swarm/init'],
      ['POST', '/swarm/join'],
      ['POST', '/swarm/leave'],
      ['POST', '/swarm/update'],
      ['GET', '/swarm/unlockkey'],
      ['POST', '/swarm/unlock'],
      ['GET', '/nodes'],
      ['GET', '/nodes/{id}'],
      ['DELETE', '/nodes/{id}'],
      ['POST', '/nodes/{id}/update'],
      ['GET', '/services'],
      ['POST', '/services/create'],
      ['GET', '/services/{id}'],
      ['DELETE', '/services/{id}'],
      ['POST', '/services/{id}/update'],
      ['GET', '/services/{id}/logs'],
      ['GET', '/tasks'],
      ['GET', '/tasks/{id}'],
      ['GET', '/tasks/{id}/logs'],
      ['GET', '/secrets'],
      ['POST', '/secrets/create'],
      ['GET', '/secrets/{id}'],
      ['DELETE', '/secrets/{id}'],
      ['POST', '/secrets/{id}/update'],
      ['GET', '/configs'],
      ['POST', '/configs/create'],
      ['GET', '/configs/{id}'],
      ['DELETE', '/configs/{id}'],
      ['POST', '/configs/{id}/update'],
    ]),
  ]
}

/** Plugins: strata has none. */
function pluginRoutes(): Route[] {
  return [
    route('GET', '/plugins', async (ctx) => writeJson(ctx.res, 200, [])),
    route('GET', '/plugins/{name*}/json', async (ctx) => {
      throw new ApiError(404, `plugin "${ctx.params.name}" not found`)
    }),
    ...unsupportedAll('plugins', [
      ['GET', '/plugins/privileges'],
      ['POST', '/plugins/pull'],
      ['POST', '/plugins/create'],
      ['DELETE', '/plugins/{name*}'],
      ['POST', '/plugins/{name*}/enable'],
      ['POST', '/plugins/{name*}/disable'],
      ['POST', '/plugins/{name*}/upgrade'],
      ['POST', '/plugins/{name*}/push'],
      ['POST', '/plugins/{name*}/set'],
    ]),
  ]
}
