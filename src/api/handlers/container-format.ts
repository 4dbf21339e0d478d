/**
 * Containers as GET /containers/json lists them (docker's types.Container),
 * from the container records the library returns: the command as docker
 * joins it, State and Status in docker's words (src/container's
 * stateName/stateStatus), the one network strata gives (`none`).
 */
import type { Store } from '../../store/index.js'
import { containerSummary, type ContainerSummary } from '../../container/index.js'

export { commandLine, containerSummary, type ContainerSummary } from '../../container/index.js'

export interface SummaryOptions {
  /** Include containers that are not running (docker ps -a). */
  all?: boolean
}

/** The containers of the store, newest first, as the list endpoint shows them. */
export async function containerSummaries(store: Store, opts: SummaryOptions = {}): Promise<ContainerSummary[]> {
  const now = Date.now()
  return (await store.containers.list()).filter((c) => opts.all === true || c.running).map((c) => containerSummary(c, now))
}
