/**
 * Fault injection for tests: the data root's durable steps (write, fsync,
 * rename, mount, umount) call faultPoint() first, and a test can make the
 * N-th such call fail with an errno (ENOSPC, EIO, EINTR) to see that the
 * operation around it is rolled back or completed, never left half-done.
 *
 * Off unless a test sets a plan: then each call costs one comparison.
 * Nothing in the product sets a plan.
 */
import { SysError } from './libc.js'

/** The kinds of step a fault can hit. */
export type FaultSite = 'write' | 'fsync' | 'rename' | 'mount' | 'umount'

export interface FaultPlan {
  /** Fail the call with this 1-based index (counted over the sites below); 0 counts only. */
  failAt: number
  errno: 'ENOSPC' | 'EIO' | 'EINTR'
  /** Which sites count (all when omitted). */
  sites?: readonly FaultSite[]
}

export interface FaultRecord {
  /** Calls counted so far, in order, as `site path`. */
  readonly calls: string[]
  /** The call that was failed, if any. */
  failed?: string
}

const ERRNO = { ENOSPC: 28, EIO: 5, EINTR: 4 } as const

let plan: FaultPlan | undefined
let record: FaultRecord | undefined

/** Starts a plan (tests only); returns the record it fills. setFaultPlan(undefined) stops it. */
export function setFaultPlan(next: FaultPlan | undefined): FaultRecord | undefined {
  plan = next
  record = next === undefined ? undefined : { calls: [] }
  return record
}

/** Called before a durable step on `path`; throws the planned SysError when this is the call to fail. */
export function faultPoint(site: FaultSite, path: string): void {
  if (plan === undefined) return
  if (plan.sites !== undefined && !plan.sites.includes(site)) return
  record!.calls.push(`${site} ${path}`)
  if (record!.calls.length === plan.failAt) {
    record!.failed = `${site} ${path}`
    throw new SysError(site, ERRNO[plan.errno], path)
  }
}
