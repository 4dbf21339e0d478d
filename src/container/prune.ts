/**
 * `docker container prune`: removes every container that is not running,
 * as dockerd 20.10's ContainersPrune does, with its filters: `until`
 * (created before a time) and `label` / `label!` (`key` or `key=value`:
 * must match / must not). SpaceReclaimed is the size of the read-write
 * layers removed. A container that went meanwhile (another process
 * removed it) is skipped; one that started meanwhile is refused by
 * removeContainer and skipped too.
 */
import { isStrataError } from '../errors/index.js'
import type { Store } from '../store/index.js'
import { removeContainer } from './lifecycle.js'

export interface PruneContainersOptions {
  /** Only containers created before this time (Unix ms). */
  until?: number
  /** `key` or `key=value`: only containers with all of these labels. */
  labels?: string[]
  /** `key` or `key=value`: only containers with none of these labels. */
  notLabels?: string[]
}

/** docker's types.ContainersPruneReport. */
export interface ContainersPruneReport {
  ContainersDeleted: string[]
  SpaceReclaimed: number
}

function hasLabel(labels: Record<string, string>, spec: string): boolean {
  const eq = spec.indexOf('=')
  const key = eq < 0 ? spec : spec.slice(0, eq)
  return key in labels && (eq < 0 || labels[key] === spec.slice(eq + 1))
}

export async function pruneContainers(store: Store, opts: PruneContainersOptions = {}): Promise<ContainersPruneReport> {
  const report: ContainersPruneReport = { ContainersDeleted: [], SpaceReclaimed: 0 }
  for (const c of await store.containers.list()) {
    if (c.running) continue
    const labels = c.record.Config.Labels ?? {}
    if (opts.until !== undefined && !(Date.parse(c.record.Created) < opts.until)) continue
    if (!(opts.labels ?? []).every((l) => hasLabel(labels, l))) continue
    if ((opts.notLabels ?? []).some((l) => hasLabel(labels, l))) continue
    try {
      const size = await store.layers.mountSize(c.id).catch(() => 0)
      await removeContainer(store, c.id)
      report.ContainersDeleted.push(c.id)
      report.SpaceReclaimed += size
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND') || isStrataError(err, 'IN_USE')) continue
      throw err
    }
  }
  return report
}
