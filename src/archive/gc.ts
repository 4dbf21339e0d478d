/**
 * Bounded memory whatever the input (issue 22: a 2 GB layer of zeros
 * loaded from stdin peaked at 805 MB RSS, later 216 MB on overlay2).
 * Every chunk that streams through a thread is a fresh ArrayBuffer outside
 * the V8 heap, and V8 starts a collection only after tens of MB of such
 * external memory have piled up, per isolate (its external allocation
 * limit): a fast-flowing, highly compressible layer grows the process by
 * that much in each thread. Collecting every GC_EVERY bytes keeps that
 * garbage small.
 *
 * The collection is a minor one (a scavenge of the young generation,
 * well under a millisecond): a chunk lives for a few milliseconds, from
 * its read to its hand-over or its parse, far shorter than the time
 * between two of V8's own scavenges, so it dies young and a scavenge frees
 * its memory. A full collection (mark-compact of the whole heap: 10-35 ms
 * of the main thread, whose heap holds the CLI, plus V8's concurrent
 * marking on other cores) runs every MAJOR_EVERY-th time only, for the
 * chunks that lived long enough to be promoted. A pull of the bench's
 * 200 MB image into tmpfs: 3.68 → 3.36 s of CPU (mean of 8 alternating
 * runs each, load 3.5-4.2), all of the main thread's forced full
 * collections but one gone.
 *
 * gc() is reached without --expose-gc on the command line (a Worker does
 * not accept that flag in its execArgv): the flag is set at run time and
 * gc read from a fresh context, per isolate (main thread or worker).
 *
 * API: `collectEvery(bytes)`, called with the bytes just handed on.
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

export const GC_EVERY = 16 << 20
/** Every how many collections one is a full one (128 MB of chunks). */
export const MAJOR_EVERY = 8

let since = 0
let count = 0
let gcFn: ((opts: { type: 'minor' | 'major' }) => void) | undefined | null = null

export function collectEvery(bytes: number): void {
  since += bytes
  if (since < GC_EVERY) return
  since = 0
  if (gcFn === null) {
    try {
      setFlagsFromString('--expose-gc')
      gcFn = runInNewContext('gc') as (opts: { type: 'minor' | 'major' }) => void
    } catch {
      gcFn = undefined
    }
  }
  count++
  gcFn?.({ type: count % MAJOR_EVERY === 0 ? 'major' : 'minor' })
}
