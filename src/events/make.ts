/**
 * Events as dockerd 20.10 makes them (daemon/events.go LogImageEvent,
 * LogContainerEventWithAttributes): the legacy status/id/from fields beside
 * Type, Action and Actor.
 */
import { stampEvent } from './journal.js'
import type { EngineEvent } from './types.js'

/** An image event: actor = the image ID, `name` = the reference involved (or the ID). */
export function imageEvent(action: string, imageId: string, name?: string): EngineEvent {
  return stampEvent({ status: action, id: imageId, Type: 'image', Action: action, Actor: { ID: imageId, Attributes: { name: name ?? imageId } } })
}

/**
 * A container event: actor = the container ID, with `image` (what it was
 * created from, as given) and `name` (without "/") among the attributes,
 * sorted by key as Go's map encoding sorts them.
 */
export function containerEvent(action: string, id: string, image: string, name: string, extra: Record<string, string> = {}): EngineEvent {
  const attrs: Record<string, string> = {}
  const all: Record<string, string> = { ...extra, image, name }
  for (const k of Object.keys(all).sort()) attrs[k] = all[k]!
  return stampEvent({ status: action, id, from: image, Type: 'container', Action: action, Actor: { ID: id, Attributes: attrs } })
}

/** A prune event (dockerd 20.10 logs one per prune, with no actor ID and the bytes reclaimed). */
export function pruneEvent(type: 'container' | 'image', reclaimed: number): EngineEvent {
  return stampEvent({ Type: type, Action: 'prune', Actor: { ID: '', Attributes: { reclaimed: String(reclaimed) } } })
}
