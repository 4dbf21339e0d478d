/**
 * skopeo 1.9 for interop tests: `copy` between transports (docker-archive:,
 * oci:, oci-archive:) with no signature policy lookup (--insecure-policy:
 * these are local files, nothing is pulled) and its temp files in a
 * directory the caller owns, not the system's /tmp.
 */
import type { TestContext } from 'node:test'
import { requireTool, run, type RunResult } from './peers.js'

export const SKOPEO = '/usr/bin/skopeo'

export function requireSkopeo(t: TestContext): boolean {
  return requireTool(t, SKOPEO)
}

/** `skopeo copy SRC DST`, temp files under `tmpDir`. */
export function skopeoCopy(src: string, dst: string, tmpDir: string): Promise<RunResult> {
  return run(SKOPEO, ['--insecure-policy', 'copy', '-q', src, dst], { env: { ...process.env, TMPDIR: tmpDir } })
}
