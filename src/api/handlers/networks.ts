/**
 * Networks: strata has the two networks that need no daemon, `none` (a
 * namespace with loopback only, what every strata container gets) and
 * `host`. They can be listed and inspected; creating, removing,
 * connecting or disconnecting networks is not implemented (501), and the
 * predefined ones cannot be removed (403, as dockerd says).
 */
import { createHash } from 'node:crypto'
import { ApiError, notImplemented } from '../errors.js'
import { parseFilters } from '../request.js'
import { writeJson } from '../response.js'
import type { RequestContext } from '../types.js'

interface Network {
  Name: string
  Id: string
  Created: string
  Scope: 'local'
  Driver: string
  EnableIPv6: false
  IPAM: { Driver: 'default'; Options: null; Config: [] }
  Internal: false
  Attachable: false
  Ingress: false
  ConfigFrom: { Network: '' }
  ConfigOnly: false
  Containers: Record<string, never>
  Options: Record<string, never>
  Labels: Record<string, never>
}

function network(name: string, driver: string): Network {
  return {
    Name: name,
    // Stable across restarts and hosts: there is nothing to make unique.
    Id: createHash('sha256').update(`strata network ${name}`).digest('hex'),
    Created: '0001-01-01T00:00:00Z',
    Scope: 'local',
    Driver: driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: [] },
    Internal: false,
    Attachable: false,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: {},
    Options: {},
    Labels: {},
  }
}

const NETWORKS: readonly Network[] = [network('none', 'null'), network('host', 'host')]

/** The network `ref` names (name, full ID or ID prefix). */
function findNetwork(ref: string): Network | undefined {
  return NETWORKS.find((n) => n.Name === ref || n.Id === ref) ?? NETWORKS.find((n) => ref.length > 0 && n.Id.startsWith(ref))
}

/** GET /networks */
export async function listNetworks(ctx: RequestContext): Promise<void> {
  const filters = parseFilters(ctx.query.get('filters'), ['driver', 'id', 'label', 'name', 'scope', 'type', 'dangling'])
  const keep = (n: Network): boolean => {
    const has = (key: string, test: (v: string) => boolean): boolean => {
      const values = filters.get(key)
      return values === undefined || [...values].some(test)
    }
    return (
      has('driver', (v) => v === n.Driver) &&
      has('id', (v) => n.Id.startsWith(v)) &&
      has('name', (v) => n.Name.includes(v)) &&
      has('scope', (v) => v === 'local') &&
      has('type', (v) => v === 'builtin') &&
      has('label', () => false) &&
      has('dangling', () => false)
    )
  }
  writeJson(ctx.res, 200, NETWORKS.filter(keep))
}

/** GET /networks/{id} */
export async function inspectNetwork(ctx: RequestContext): Promise<void> {
  const n = findNetwork(ctx.params.id!)
  if (n === undefined) throw new ApiError(404, `network ${ctx.params.id} not found`)
  writeJson(ctx.res, 200, n)
}

/** DELETE /networks/{id} */
export async function removeNetwork(ctx: RequestContext): Promise<void> {
  const n = findNetwork(ctx.params.id!)
  if (n === undefined) throw new ApiError(404, `network ${ctx.params.id} not found`)
  throw new ApiError(403, `${n.Name} is a pre-defined network and cannot be removed`)
}

/** POST /networks/prune: nothing to prune (there are no user networks). */
export async function pruneNetworks(ctx: RequestContext): Promise<void> {
  parseFilters(ctx.query.get('filters'), ['label', 'label!', 'until'])
  writeJson(ctx.res, 200, { NetworksDeleted: null })
}

/** POST /networks/create, /networks/{id}/connect, /networks/{id}/disconnect */
export async function networkNotImplemented(): Promise<void> {
  throw notImplemented('user-defined networks (only "none" and "host" exist)')
}
