/**
 * Restart policies as dockerd 20.10 reads and applies them
 * (runconfig/opts parseRestartPolicy, restartmanager.ShouldRestart):
 *
 * - `no` (or ""): never; `always`; `unless-stopped`; `on-failure[:N]`
 *   (only after a non-zero exit, at most N times when N > 0);
 * - a container stopped by hand (stop, kill: HasBeenManuallyStopped) is
 *   not restarted, whatever the policy, until it is started again;
 * - the delay starts at 100 ms and doubles after each restart up to one
 *   minute; a run that lasted 10 s or more resets it.
 *
 * Only while the host runs: nothing brings a container back after a
 * reboot, since no service starts strata then (dockerd restarts `always`
 * containers when it starts).
 */
import { StrataError } from '../../errors/index.js'

export interface RestartPolicy {
  Name: '' | 'no' | 'always' | 'unless-stopped' | 'on-failure'
  MaximumRetryCount: number
}

/** Parses `--restart` as docker's CLI does; INVALID_ARGUMENT with docker's words otherwise. */
export function parseRestartPolicy(text: string): RestartPolicy {
  if (text === '') return { Name: 'no', MaximumRetryCount: 0 }
  const parts = text.split(':')
  if (parts.length > 2) throw new StrataError('INVALID_ARGUMENT', `invalid restart policy format`)
  const [name, count] = parts as [string, string | undefined]
  switch (name) {
    case 'no':
    case 'always':
    case 'unless-stopped':
      if (count !== undefined) throw new StrataError('INVALID_ARGUMENT', `maximum retry count cannot be used with restart policy '${name}'`)
      return { Name: name, MaximumRetryCount: 0 }
    case 'on-failure': {
      if (count === undefined) return { Name: name, MaximumRetryCount: 0 }
      if (!/^[0-9]+$/.test(count)) throw new StrataError('INVALID_ARGUMENT', `maximum retry count must be an integer`)
      return { Name: name, MaximumRetryCount: Number(count) }
    }
    default:
      throw new StrataError('INVALID_ARGUMENT', `invalid restart policy ${name}`)
  }
}

export const RESTART_DELAY_MS = 100
export const RESTART_DELAY_MAX_MS = 60_000

/** What the monitor remembers between runs (restartmanager's state). */
export interface RestartState {
  /** Restarts made so far by this monitor (the on-failure count). */
  count: number
  /** The delay before the next restart, 0 before the first. */
  delayMs: number
}

/**
 * Whether to run the container again after an exit, and after how long.
 * `ranMs` is how long the run lasted. Updates `state` as restartmanager does.
 */
export function shouldRestart(policy: RestartPolicy, state: RestartState, exitCode: number, manuallyStopped: boolean, ranMs: number): { restart: boolean; delayMs: number } {
  if (policy.Name === '' || policy.Name === 'no' || manuallyStopped) return { restart: false, delayMs: 0 }
  if (ranMs >= 10_000) state.delayMs = 0
  state.delayMs = state.delayMs === 0 ? RESTART_DELAY_MS : Math.min(state.delayMs * 2, RESTART_DELAY_MAX_MS)
  let restart = false
  if (policy.Name === 'always' || policy.Name === 'unless-stopped') restart = true
  else if (policy.Name === 'on-failure') {
    const max = policy.MaximumRetryCount
    if (max === 0 || state.count < max) restart = exitCode !== 0
  }
  if (restart) state.count++
  return { restart, delayMs: state.delayMs }
}
