/**
 * `docker events --filter` as dockerd's daemon/events/filter.go applies it:
 * every key given must match (values of one key are alternatives).
 * container/image/network/volume/plugin: the actor's ID or name, exactly or
 * by prefix for container IDs; event: the action; type: the type; label:
 * `key` or `key=value` among the actor's attributes; scope: "local";
 * daemon: never (strata has no daemon events).
 */
import type { EngineEvent } from './types.js'

/** The filter keys `docker events` accepts. */
export const EVENT_FILTER_KEYS = ['container', 'image', 'event', 'type', 'label', 'volume', 'network', 'daemon', 'plugin', 'scope', 'node', 'service', 'secret', 'config'] as const

export type EventFilters = ReadonlyMap<string, ReadonlySet<string>>

function any(values: ReadonlySet<string> | undefined, test: (v: string) => boolean): boolean {
  if (values === undefined || values.size === 0) return true
  for (const v of values) if (test(v)) return true
  return false
}

/** The repository of `name:tag` (a tag after the last slash), for image filters given without a tag. */
function stripTag(name: string): string {
  const at = name.indexOf('@')
  if (at >= 0) return name.slice(0, at)
  const colon = name.lastIndexOf(':')
  return colon > name.lastIndexOf('/') ? name.slice(0, colon) : name
}

function matchName(e: EngineEvent, type: string, values: ReadonlySet<string> | undefined): boolean {
  if (values === undefined || values.size === 0) return true
  if (e.Type !== type) return false
  const id = e.Actor.ID
  const name = e.Actor.Attributes.name ?? ''
  return any(values, (v) => v === id || v === name || (v.length > 0 && id.startsWith(v)))
}

function matchImage(e: EngineEvent, values: ReadonlySet<string> | undefined): boolean {
  if (values === undefined || values.size === 0) return true
  // A container event names its image in `image`; an image event is its own actor.
  const candidates = e.Type === 'image' ? [e.Actor.ID, e.Actor.Attributes.name ?? ''] : e.Type === 'container' ? [e.Actor.Attributes.image ?? ''] : []
  return any(values, (v) => candidates.some((c) => c !== '' && (c === v || stripTag(c) === v || c === `sha256:${v}` || (v.length >= 12 && c.replace(/^sha256:/, '').startsWith(v)))))
}

function matchLabel(e: EngineEvent, values: ReadonlySet<string> | undefined): boolean {
  if (values === undefined || values.size === 0) return true
  // Every label filter must hold (docker: filters.MatchKVList).
  for (const v of values) {
    const eq = v.indexOf('=')
    const key = eq < 0 ? v : v.slice(0, eq)
    const attr = e.Actor.Attributes[key]
    if (attr === undefined) return false
    if (eq >= 0 && attr !== v.slice(eq + 1)) return false
  }
  return true
}

/** Whether `e` passes `filters` (parsed from the `filters` parameter). */
export function eventMatches(e: EngineEvent, filters: EventFilters): boolean {
  const typeFilter = filters.get('type')
  if (!any(typeFilter, (t) => t === e.Type)) return false
  if (!any(filters.get('event'), (a) => a === e.Action || e.Action.startsWith(`${a}: `))) return false
  if (!any(filters.get('scope'), (s) => s === e.scope)) return false
  if ((filters.get('daemon')?.size ?? 0) > 0) return false
  if (!matchName(e, 'container', filters.get('container'))) return false
  if (!matchName(e, 'network', filters.get('network'))) return false
  if (!matchName(e, 'volume', filters.get('volume'))) return false
  if (!matchName(e, 'plugin', filters.get('plugin'))) return false
  if (!matchImage(e, filters.get('image'))) return false
  return matchLabel(e, filters.get('label'))
}
