/**
 * Go's time formats, as dockerd writes and prints times:
 *
 * - `formatRfc3339Nano(epochNs, offset?)`: time.Format(time.RFC3339Nano),
 *   what dockerd writes to imagedb `lastUpdated` (local zone) and to
 *   configs and container records (UTC): the zone's offset (`Z` when it
 *   is zero, else `+01:00`), nanoseconds with trailing zeros trimmed (no
 *   dot when they are all zero), e.g. `2026-11-23T18:41:31.006541983Z`;
 *   `nowNs()` is the clock it is fed with, `RFC3339_NANO_RE` its pattern.
 * - `goRfc3339Nano(text)`: an RFC 3339 time as Go re-marshals it after
 *   parsing (time.Time's MarshalJSON): fraction without trailing zeros, a
 *   zero offset as `Z`; undefined when Go could not parse it.
 * - `unixSeconds(text)`: Time.Unix() of an RFC 3339 time, Go's zero time
 *   (GO_ZERO_TIME_UNIX) when missing or unreadable.
 * - `goTimeString(unixSeconds)`: time.Unix(s, 0).String() in the local
 *   zone, "2026-12-01 19:17:18 +0000 UTC" (docker images/ps CreatedAt);
 *   `goRfc3339(unixSeconds)`: time.Unix(s, 0).Format(time.RFC3339) in the
 *   local zone, "2026-12-01T19:17:18Z" (docker history CreatedAt).
 * - `GO_ZERO_TIME`: Go's zero time.Time as JSON, what docker shows for a
 *   missing time.
 */

/** Go's zero time.Time, as JSON text and as Unix seconds. */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z'
export const GO_ZERO_TIME_UNIX = -62135596800

/** Go's RFC3339Nano layout as a pattern, for checking what a file holds. */
export const RFC3339_NANO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/

/** What Go's time.Parse(time.RFC3339, ...) accepts: date-time, optional fraction, zone. */
const RFC3339_PARTS_RE = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i

/** Nanoseconds since the epoch. Date.now() fixes the offset once; hrtime gives the sub-millisecond part. */
const EPOCH_NS_AT_HRTIME_ZERO = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint()

export function nowNs(): bigint {
  return EPOCH_NS_AT_HRTIME_ZERO + process.hrtime.bigint()
}

/** The local zone's offset east of UTC, in minutes, at `epochMs` (what Go's time.Local gives). */
export function localOffsetMinutes(epochMs: number): number {
  // getTimezoneOffset is west of UTC, and -0 must print as Z.
  return -new Date(epochMs).getTimezoneOffset() || 0
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0')
}

/** `+01:00` (colon) or `+0100`: Go's -07:00 and -0700. */
function offsetText(offset: number, colon: boolean): string {
  const abs = Math.abs(offset)
  return `${offset < 0 ? '-' : '+'}${pad(Math.floor(abs / 60), 2)}${colon ? ':' : ''}${pad(abs % 60, 2)}`
}

/** Wall-clock date and time of `epochSeconds` in a zone `offset` minutes east of UTC. */
function wallClock(epochSeconds: number, offset: number): { date: string; time: string } {
  // Shift the instant by the offset and read it as UTC.
  const wall = new Date((epochSeconds + offset * 60) * 1000)
  return {
    date: `${pad(wall.getUTCFullYear(), 4)}-${pad(wall.getUTCMonth() + 1, 2)}-${pad(wall.getUTCDate(), 2)}`,
    time: `${pad(wall.getUTCHours(), 2)}:${pad(wall.getUTCMinutes(), 2)}:${pad(wall.getUTCSeconds(), 2)}`,
  }
}

/**
 * Formats `epochNs` as RFC3339Nano in a zone `offsetMinutes` east of UTC
 * (default: the local zone at that instant).
 * @example formatRfc3339Nano(1795459291006541983n, 0) // '2026-11-23T18:41:31.006541983Z'
 */
export function formatRfc3339Nano(epochNs: bigint, offsetMinutes?: number): string {
  const secondsUtc = epochNs / 1_000_000_000n - (epochNs % 1_000_000_000n < 0n ? 1n : 0n)
  const nanos = Number(epochNs - secondsUtc * 1_000_000_000n)
  const offset = offsetMinutes ?? localOffsetMinutes(Number(secondsUtc) * 1000)
  const { date, time } = wallClock(Number(secondsUtc), offset)
  let out = `${date}T${time}`
  if (nanos !== 0) out += `.${pad(nanos, 9).replace(/0+$/, '')}`
  return offset === 0 ? `${out}Z` : `${out}${offsetText(offset, true)}`
}

/**
 * An RFC 3339 time re-formatted as Go re-marshals a parsed time.Time
 * (RFC3339Nano): fraction cut to nanoseconds without trailing zeros, a
 * zero offset as `Z`. Undefined when it is not an RFC 3339 time.
 * @example goRfc3339Nano('2026-01-02T03:04:05.120+00:00') // '2026-01-02T03:04:05.12Z'
 */
export function goRfc3339Nano(text: string | undefined): string | undefined {
  if (text === undefined) return undefined
  const m = RFC3339_PARTS_RE.exec(text)
  if (m === null) return undefined
  const fraction = (m[2] ?? '').slice(0, 9).replace(/0+$/, '')
  const zone = m[3]!.toUpperCase()
  return `${m[1]}${fraction === '' ? '' : `.${fraction}`}${zone === 'Z' || /^[+-]00:00$/.test(zone) ? 'Z' : zone}`
}

/** An RFC 3339 time as Unix seconds (Go's Time.Unix), or Go's zero time when missing or unreadable. */
export function unixSeconds(text: string | undefined): number {
  if (text === undefined || text === '') return GO_ZERO_TIME_UNIX
  const m = RFC3339_PARTS_RE.exec(text)
  if (m === null) return GO_ZERO_TIME_UNIX
  const ms = Date.parse(`${m[1]}${m[3]!.toUpperCase()}`)
  return Number.isNaN(ms) ? GO_ZERO_TIME_UNIX : Math.floor(ms / 1000)
}

/** Go's time.Unix(s, 0).String() in the local zone: "2026-12-01 19:17:18 +0000 UTC". */
export function goTimeString(unixSeconds: number): string {
  const offset = localOffsetMinutes(unixSeconds * 1000)
  const { date, time } = wallClock(unixSeconds, offset)
  let zone = 'UTC'
  if (offset !== 0) {
    const name = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(new Date(unixSeconds * 1000)).find((p) => p.type === 'timeZoneName')
    zone = name?.value ?? offsetText(offset, false)
  }
  return `${date} ${time} ${offsetText(offset, false)} ${zone}`
}

/** Go's time.Unix(s, 0).Format(time.RFC3339) in the local zone: "2026-12-01T19:17:18Z". */
export function goRfc3339(unixSeconds: number): string {
  const offset = localOffsetMinutes(unixSeconds * 1000)
  const { date, time } = wallClock(unixSeconds, offset)
  return `${date}T${time}${offset === 0 ? 'Z' : offsetText(offset, true)}`
}
