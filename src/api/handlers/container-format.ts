/**
 * Containers as GET /containers/json lists them (docker's types.Container),
 * from the container records the library returns: the command as docker
 * joins it, State and Status in docker's words (src/container's
 * stateName/stateStatus), the one network strata gives (`none`).
 */
import type { Store } from '../../store/index.js'
import { stateName, stateStatus, type Container } from '../../containerdb/index.js'

/** docker's types.Container (API 1.41 field names and order). */
export interface ContainerSummary {
  Id: string
  Names: string[]
  Image: string
  ImageID: string
  Command: string
  Created: number
  Ports: never[]
  SizeRw?: number
  SizeRootFs?: number
  Labels: Record<string, string>
  State: string
  Status: string
  HostConfig: { NetworkMode: string }
  NetworkSettings: { Networks: Record<string, unknown> }
  Mounts: never[]
}

/** `Path Args...` joined with spaces, as dockerd's list does. */
export function commandLine(c: Container): string {
  return [c.record.Path, ...c.record.Args].join(' ')
}

export function containerSummary(c: Container, now = Date.now()): ContainerSummary {
  const created = Date.parse(c.record.Created)
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Image: c.record.Config.Image ?? c.record.Image,
    ImageID: c.record.Image,
    Command: commandLine(c),
    Created: Number.isNaN(created) ? 0 : Math.floor(created / 1000),
    Ports: [],
    Labels: c.record.Config.Labels ?? {},
    State: stateName(c.record.State, c.running),
    Status: stateStatus(c.record.State, c.running, now),
    HostConfig: { NetworkMode: 'none' },
    NetworkSettings: { Networks: {} },
    Mounts: [],
  }
}

export interface SummaryOptions {
  /** Include containers that are not running (docker ps -a). */
  all?: boolean
}

/** The containers of the store, newest first, as the list endpoint shows them. */
export async function containerSummaries(store: Store, opts: SummaryOptions = {}): Promise<ContainerSummary[]> {
  const now = Date.now()
  return (await store.containers.list()).filter((c) => opts.all === true || c.running).map((c) => containerSummary(c, now))
}
