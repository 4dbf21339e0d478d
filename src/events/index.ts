/**
 * src/events: docker's engine events without a daemon: a journal in the
 * data root that strata processes append to and readers follow (GET
 * /events of the Engine API). types.ts is the contract.
 *
 * @example
 * import { EventJournal, imageEvent } from 'strata'
 * await new EventJournal(store.root).append(imageEvent('tag', imageId, 'busybox:latest'))
 */
export type * from './types.js'
export { JOURNAL_FILE, JOURNAL_ROTATE_BYTES } from './types.js'
export { EventJournal, nowNano, stampEvent, type EventFollower, type EventRange } from './journal.js'
export { EVENT_FILTER_KEYS, eventMatches, type EventFilters } from './filter.js'
export { containerEvent, imageEvent, pruneEvent } from './make.js'
