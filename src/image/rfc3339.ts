/**
 * Timestamps in the exact form of Go's time.Now().Format(time.RFC3339Nano),
 * which is what dockerd writes to imagedb/metadata/.../lastUpdated:
 * local time with the zone's offset (`Z` when the offset is zero, else
 * `+01:00`), and nanoseconds with trailing zeros trimmed (no dot at all when
 * they are all zero), e.g. `2026-11-23T18:41:31.006541983Z`.
 */

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

/**
 * Formats `epochNs` as RFC3339Nano in a zone `offsetMinutes` east of UTC
 * (default: the local zone at that instant).
 * @example formatRfc3339Nano(1795459291006541983n, 0) // '2026-11-23T18:41:31.006541983Z'
 */
export function formatRfc3339Nano(epochNs: bigint, offsetMinutes?: number): string {
  const secondsUtc = epochNs / 1_000_000_000n - (epochNs % 1_000_000_000n < 0n ? 1n : 0n)
  const nanos = Number(epochNs - secondsUtc * 1_000_000_000n)
  const offset = offsetMinutes ?? localOffsetMinutes(Number(secondsUtc) * 1000)
  // Wall-clock fields of the zone: shift the instant by the offset and read it as UTC.
  const wall = new Date((Number(secondsUtc) + offset * 60) * 1000)
  let out =
    `${pad(wall.getUTCFullYear(), 4)}-${pad(wall.getUTCMonth() + 1, 2)}-${pad(wall.getUTCDate(), 2)}` +
    `T${pad(wall.getUTCHours(), 2)}:${pad(wall.getUTCMinutes(), 2)}:${pad(wall.getUTCSeconds(), 2)}`
  if (nanos !== 0) out += `.${pad(nanos, 9).replace(/0+$/, '')}`
  if (offset === 0) return `${out}Z`
  const abs = Math.abs(offset)
  return `${out}${offset < 0 ? '-' : '+'}${pad(Math.floor(abs / 60), 2)}:${pad(abs % 60, 2)}`
}

/** Go's RFC3339Nano layout as a pattern, for checking what a file holds. */
export const RFC3339_NANO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/
