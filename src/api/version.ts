/**
 * API versions: the `/v1.NN/` path prefix, comparison, and dockerd's
 * bounds check (its version middleware): a version above the server's is
 * "too new", below the minimum "too old", both 400.
 */
import { API_VERSION, MIN_API_VERSION } from './types.js'
import { ApiError } from './errors.js'

const PREFIX_RE = /^\/v(\d+(?:\.\d+)*)(\/.*)$/

/** Splits `/v1.40/images/json` into `1.40` and `/images/json`; an unversioned path keeps its path and gets no version. */
export function splitVersion(path: string): { version: string | undefined; path: string } {
  const m = PREFIX_RE.exec(path)
  if (m === null) return { version: undefined, path }
  return { version: m[1]!, path: m[2]! }
}

/** Compares dotted versions numerically ("1.9" < "1.12"); missing parts count as 0. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0)
    if (d !== 0) return d < 0 ? -1 : 1
  }
  return 0
}

/** True when `version` is at least `min` (e.g. `versionAtLeast(ctx.version, '1.30')`). */
export function versionAtLeast(version: string, min: string): boolean {
  return compareVersions(version, min) >= 0
}

/** The version a request speaks: the one its path names, checked against the bounds, else API_VERSION. */
export function requestVersion(named: string | undefined): string {
  if (named === undefined || named === '') return API_VERSION
  if (compareVersions(named, API_VERSION) > 0) {
    throw new ApiError(400, `client version ${named} is too new. Maximum supported API version is ${API_VERSION}`)
  }
  if (compareVersions(named, MIN_API_VERSION) < 0) {
    throw new ApiError(400, `client version ${named} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`)
  }
  return named
}
