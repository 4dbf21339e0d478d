/**
 * A container's state in words, as docker's container.State shows it:
 * StateString() (`created`, `running`, `exited`, ... : the API's
 * `State` in GET /containers/json and `docker ps --filter status=`) and
 * String() (`Up 3 seconds`, `Exited (1) 2 minutes ago`, `Created`: the
 * STATUS column), with go-units' HumanDuration wording.
 */
import type { ContainerState } from './types.js'
import { GO_ZERO_TIME } from '../fs/index.js'

/** go-units HumanDuration: "Less than a second", "1 second", "About a minute", "3 hours", "2 weeks", ... */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000)
  if (seconds < 1) return 'Less than a second'
  if (seconds === 1) return '1 second'
  if (seconds < 60) return `${seconds} seconds`
  const minutes = Math.floor(ms / 60_000)
  if (minutes === 1) return 'About a minute'
  if (minutes < 60) return `${minutes} minutes`
  const hours = Math.round(ms / 3_600_000)
  if (hours === 1) return 'About an hour'
  if (hours < 48) return `${hours} hours`
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`
  return `${Math.floor(ms / 3_600_000 / 24 / 365)} years`
}

function timeMs(rfc3339: string): number | undefined {
  if (rfc3339 === '' || rfc3339 === GO_ZERO_TIME) return undefined
  const ms = Date.parse(rfc3339)
  return Number.isNaN(ms) ? undefined : ms
}

/** docker's State.StateString(): created, running, paused, restarting, removing, exited or dead. `running` is the checked liveness (Container.running). */
export function stateName(state: ContainerState, running: boolean): string {
  if (running) {
    if (state.Paused) return 'paused'
    if (state.Restarting) return 'restarting'
    return 'running'
  }
  if (state.RemovalInProgress) return 'removing'
  if (state.Dead) return 'dead'
  if (timeMs(state.StartedAt) === undefined) return 'created'
  return 'exited'
}

/** docker's State.String(): the STATUS column ("Up 2 minutes", "Exited (0) 5 seconds ago", "Created"). */
export function stateStatus(state: ContainerState, running: boolean, now = Date.now()): string {
  const started = timeMs(state.StartedAt)
  if (running) {
    const up = `Up ${humanDuration(now - (started ?? now))}`
    if (state.Paused) return `${up} (Paused)`
    if (state.Restarting) return `Restarting (${state.ExitCode}) ${humanDuration(now - (timeMs(state.FinishedAt) ?? now))} ago`
    return up
  }
  if (state.RemovalInProgress) return 'Removal In Progress'
  if (state.Dead) return 'Dead'
  if (started === undefined) return 'Created'
  const finished = timeMs(state.FinishedAt)
  if (finished === undefined) return ''
  return `Exited (${state.ExitCode}) ${humanDuration(now - finished)} ago`
}
