/**
 * Engine events without a daemon. dockerd keeps its events in memory and
 * streams them to `docker events`; strata has no process that sees every
 * action, so events go to a small journal in the data root that any
 * strata process appends to and any reader follows.
 *
 * Words:
 * - *Event*: docker's events.Message, exactly as GET /events sends it
 *   (API 1.41): `Type` (image, container, ...), `Action` (pull, tag,
 *   create, start, die, ...), `Actor` (`ID` and string `Attributes`),
 *   `scope` "local", `time` (s) and `timeNano` (ns), and for image and
 *   container events the legacy `status`/`id`/`from` docker still fills.
 * - *Journal*: `<root>/events.log`, one event per line (JSON), appended
 *   with one write(2) on an O_APPEND descriptor, so lines from several
 *   processes never interleave; when it grows past JOURNAL_ROTATE_BYTES,
 *   the appender that notices renames it to `events.log.1` (the previous
 *   `.1` is dropped), under a flock on the file so only one does.
 *
 * Rules:
 * - Appending never fails the operation it reports: an event that cannot
 *   be written is lost (the store changed all the same); `append` resolves
 *   either way and says whether it wrote.
 * - A reader asks for a time range (`since`/`until`, as `docker events`)
 *   and may follow the journal for new lines; a rotation while following
 *   is seen (the path names a new file) and the new file is read from its
 *   start.
 * - Events are a record of what happened, not a source of truth: the
 *   store's files are. Old events fall off with rotation, as dockerd
 *   keeps only its last 1024 in memory.
 */

/** docker's events.Actor. */
export interface EventActor {
  ID: string
  Attributes: Record<string, string>
}

/** docker's events.Message (API 1.41's field names and order). */
export interface EngineEvent {
  status?: string
  id?: string
  from?: string
  Type: EventType
  Action: string
  Actor: EventActor
  scope: 'local'
  /** Unix seconds. */
  time: number
  /** Unix nanoseconds. */
  timeNano: number
}

export type EventType = 'container' | 'image' | 'network' | 'volume' | 'daemon' | 'plugin'

/** The journal's file name in the data root, and the size past which it is rotated. */
export const JOURNAL_FILE = 'events.log'
export const JOURNAL_ROTATE_BYTES = 4 * 1024 * 1024
