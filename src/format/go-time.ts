/**
 * time.Time as JSON carries it (RFC 3339 text) and as a template prints it
 * (Time.String: "2006-01-02 15:04:05.999999999 -0700 MST"). A value parsed
 * from "…Z" is in UTC; one with a numeric offset is in a fixed zone without
 * a name, which Go prints as the offset again ("+0100 +0100").
 */
import { namedType, STRING, structOf, INT64 } from './go-types.js'
import type { StructType } from './types.js'

interface TimeParts {
  date: string
  clock: string
  /** Fraction of a second, digits after the point without trailing zeros ('' for none). */
  frac: string
  /** Offset from UTC in minutes; undefined for "Z". */
  offset: number | undefined
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/

function parse(text: unknown): TimeParts {
  const m = typeof text === 'string' ? RFC3339.exec(text) : null
  if (m === null) return { date: '0001-01-01', clock: '00:00:00', frac: '', offset: undefined }
  const zone = m[4]!
  const offset = zone === 'Z' ? undefined : (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)))
  return { date: m[1]!, clock: m[2]!, frac: (m[3] ?? '').replace(/0+$/, ''), offset }
}

function offsetText(minutes: number, colon: boolean): string {
  const a = Math.abs(minutes)
  return `${minutes < 0 ? '-' : '+'}${String(Math.floor(a / 60)).padStart(2, '0')}${colon ? ':' : ''}${String(a % 60).padStart(2, '0')}`
}

/**
 * The zone name Go gives a parsed numeric offset: the local zone's name
 * when the local zone has that offset at that instant, else the offset.
 */
function zoneName(t: TimeParts, offset: number): string {
  const instant = new Date(Date.parse(`${t.date}T${t.clock}Z`) - offset * 60_000)
  if (Number.isNaN(instant.getTime()) || -instant.getTimezoneOffset() !== offset) return offsetText(offset, false)
  if (offset === 0 && (process.env.TZ === undefined || process.env.TZ === '' || process.env.TZ === 'UTC')) return 'UTC'
  const part = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(instant).find((p) => p.type === 'timeZoneName')
  return part?.value ?? offsetText(offset, false)
}

/** Time.String() of an RFC 3339 payload. */
export function timeString(payload: unknown): string {
  const t = parse(payload)
  const frac = t.frac === '' ? '' : `.${t.frac}`
  const zone = t.offset === undefined ? '+0000 UTC' : `${offsetText(t.offset, false)} ${zoneName(t, t.offset)}`
  return `${t.date} ${t.clock}${frac} ${zone}`
}

/** Time.MarshalJSON: RFC 3339 with nanoseconds, trailing zeros dropped. */
export function timeJSON(payload: unknown): string {
  const t = parse(payload)
  const frac = t.frac === '' ? '' : `.${t.frac.slice(0, 9)}`
  return `"${t.date}T${t.clock}${frac}${t.offset === undefined ? 'Z' : offsetText(t.offset, true)}"`
}

/** Seconds since the Unix epoch (Time.Unix). */
function unixSeconds(payload: unknown): bigint {
  const t = parse(payload)
  const ms = Date.parse(`${t.date}T${t.clock}Z`)
  return BigInt(Math.floor(ms / 1000)) - BigInt((t.offset ?? 0) * 60)
}

/** time.Time: a struct with unexported fields, a Stringer, written to JSON as RFC 3339. */
export const TIME: StructType = namedType('time.Time', structOf([]), {
  String: { params: [], result: STRING, call: (recv) => timeString(recv) },
  Unix: { params: [], result: INT64, call: (recv) => unixSeconds(recv) },
})
TIME.marshalJSON = timeJSON
