/**
 * umoci 0.4.7 for interop tests: unpacking an OCI layout into a runtime
 * bundle (`<bundle>/rootfs`, owners kept since the tests run as root).
 */
import type { TestContext } from 'node:test'
import { requireTool, run, type RunResult } from './peers.js'

export const UMOCI = '/usr/bin/umoci'

export function requireUmoci(t: TestContext): boolean {
  return requireTool(t, UMOCI)
}

/** `umoci unpack --image LAYOUT:TAG BUNDLE`; the tree is then `BUNDLE/rootfs`. */
export function umociUnpack(layout: string, tag: string, bundle: string): Promise<RunResult> {
  return run(UMOCI, ['unpack', '--image', `${layout}:${tag}`, bundle])
}
