/**
 * strata's own version (package.json's), for the `Server` header and
 * GET /version: the server reports what it is, as podman's service does,
 * and the API version it speaks separately (types.ts API_VERSION).
 */
import { readFileSync } from 'node:fs'

let cached: string | undefined

/** package.json's version, read once (the file sits three levels above dist/src/api/). */
export function strataVersion(): string {
  if (cached !== undefined) return cached
  try {
    const doc = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown }
    cached = typeof doc.version === 'string' ? doc.version : 'unknown'
  } catch {
    cached = 'unknown'
  }
  return cached
}
