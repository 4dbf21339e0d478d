/**
 * What a migration moves, and whether it may start: the source root opened
 * as a Store (which runs its crash recovery first), its layers and mounts
 * listed, the refusals of types.ts checked, what earlier runs staged
 * subtracted, and the space and time the rest needs estimated.
 */
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { assembleTar, directoryFileGetter, readTarSplit } from '../archive/index.js'
import type { Digest } from '../digest/index.js'
import { StrataError, isErrno } from '../errors/index.js'
import type { GraphDriver } from '../graphdriver/index.js'
import { DirLock } from '../fs/index.js'
import { LAYER_FILES, LayerDbPaths, type LayerInfo, type MountInfo } from '../layer/index.js'
import { Store } from '../store/index.js'
import { statfs } from '../sys/index.js'
import { holdFiles } from './copy.js'
import type { MigratePlan, PlannedLayer, PlannedMount } from './types.js'

const HEX64 = /^[a-f0-9]{64}$/

/** What the stage already holds: staged layers (chainID → target id) and mounts (name → mount id). */
export interface Staged {
  layers: Map<Digest, string>
  mounts: Map<string, string>
}

/** Reads what is staged in `stageDb` (a layerdb under the stage). */
export async function readStaged(stageDb: LayerDbPaths): Promise<Staged> {
  const layers = new Map<Digest, string>()
  for (const name of await listNames(stageDb.sha256)) {
    if (!HEX64.test(name)) continue
    const id = (await readFile(join(stageDb.sha256, name, LAYER_FILES.cacheId), 'utf8').catch(() => '')).trim()
    if (id !== '') layers.set(`sha256:${name}` as Digest, id)
  }
  const mounts = new Map<string, string>()
  for (const name of await listNames(stageDb.mounts)) {
    const id = (await readFile(join(stageDb.mounts, name, 'mount-id'), 'utf8').catch(() => '')).trim()
    if (id !== '') mounts.set(name, id)
  }
  return { layers, mounts }
}

async function listNames(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort()
  } catch (err) {
    if (isErrno(err, 'ENOENT', 'ENOTDIR')) return []
    throw err
  }
}

/** Layers ordered parents first (a parent missing from the list is CORRUPT: its child could not be rebuilt). */
export function parentsFirst(layers: readonly LayerInfo[]): LayerInfo[] {
  const byChain = new Map(layers.map((l) => [l.chainId, l]))
  const out: LayerInfo[] = []
  const done = new Set<string>()
  const visit = (l: LayerInfo, depth: number): void => {
    if (done.has(l.chainId)) return
    if (depth > 10_000) throw new StrataError('CORRUPT', `Layer ${l.chainId} has a parent loop`)
    if (l.parent !== null) {
      const p = byChain.get(l.parent)
      if (p === undefined) throw new StrataError('CORRUPT', `Layer ${l.chainId} names parent ${l.parent}, which is not in the layer store`, { hint: 'run `strata check --repair` first', details: { chainId: l.chainId, parent: l.parent } })
      visit(p, depth + 1)
    }
    done.add(l.chainId)
    out.push(l)
  }
  for (const l of layers) visit(l, 0)
  return out
}

/**
 * IN_USE unless the source is at rest: no running container, no outstanding
 * `strata mount`, nothing of the driver mounted, no layer or transaction
 * held by a live strata process. CORRUPT when layerdb holds entries too
 * damaged to list (they would be left behind).
 */
export async function assertAtRest(store: Store): Promise<void> {
  const running = (await store.containers.list()).filter((c) => c.running)
  if (running.length > 0) {
    throw new StrataError('IN_USE', `Cannot migrate "${store.root}" while containers run: ${running.map((c) => c.name).join(', ')}`, {
      hint: 'stop them first',
      details: { containers: running.map((c) => c.id) },
    })
  }
  const mounts = await store.layers.listMounts()
  const mounted = mounts.filter((m) => m.mountCount > 0)
  if (mounted.length > 0) {
    throw new StrataError('IN_USE', `Cannot migrate "${store.root}" while containers are mounted: ${mounted.map((m) => m.name).join(', ')}`, {
      hint: 'unmount them first (`strata umount`)',
      details: { mounts: mounted.map((m) => m.name) },
    })
  }
  const driverMounts = await store.driver.mountedLayers()
  if (driverMounts.length > 0) {
    throw new StrataError('IN_USE', `Cannot migrate "${store.root}": ${driverMounts.length} of its ${store.driver.name} layers are mounted (${driverMounts[0]}...)`, {
      details: { layers: driverMounts },
    })
  }
  await assertNoLiveHolders(store.layers.paths)
  const listed = (await store.layers.list()).length
  const dirs = (await listNames(store.layers.paths.sha256)).filter((n) => HEX64.test(n)).length
  if (listed !== dirs || (await listNames(store.layers.paths.mounts)).length !== mounts.length) {
    throw new StrataError('CORRUPT', `"${store.root}" has layerdb entries too damaged to migrate (${dirs - listed} layers, or mounts)`, {
      hint: 'run `strata check --repair` first',
    })
  }
}

/** IN_USE when a live strata process holds a layer of `db` or has a transaction open in it. */
export async function assertNoLiveHolders(db: LayerDbPaths): Promise<void> {
  for (const name of await listNames(db.sha256)) {
    if (HEX64.test(name) && DirLock.isHeld(join(db.sha256, name))) {
      throw new StrataError('IN_USE', `Layer sha256:${name} is in use by another strata process`, { hint: 'wait for it to finish', details: { chainId: `sha256:${name}` } })
    }
  }
  for (const name of await listNames(db.tmp)) {
    if (DirLock.isHeld(join(db.tmp, name))) {
      throw new StrataError('IN_USE', `Another strata process is writing to the layer store ("${join(db.tmp, name)}")`, { hint: 'wait for it to finish' })
    }
  }
}

/** Bytes per second the source reads at: its largest layer rebuilt from tar-split for up to 1 s or 128 MiB. */
async function measureReadRate(driver: GraphDriver, db: LayerDbPaths, layers: readonly PlannedLayer[]): Promise<number> {
  const sample = [...layers].filter((l) => !l.staged).sort((a, b) => b.size - a.size)[0]
  if (sample === undefined) return 0
  const tarSplit = join(db.layerDir(sample.chainId), LAYER_FILES.tarSplit)
  const started = process.hrtime.bigint()
  let bytes = 0
  try {
    const files = await holdFiles(driver, sample.cacheId)
    try {
      for await (const chunk of assembleTar(readTarSplit(tarSplit), directoryFileGetter(files.dir))) {
        bytes += chunk.length
        if (bytes >= 128 << 20 || process.hrtime.bigint() - started > 1_000_000_000n) break
      }
    } finally {
      await files.release()
    }
  } catch {
    return 0 // no tar-split, or unreadable: no estimate rather than a failed plan
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return seconds > 0 ? bytes / seconds : 0
}

export interface PlanInputs {
  store: Store
  to: string
  staged: Staged
  resumed: boolean
}

/**
 * The plan: every layer (parents first) and mount of the source, which are
 * staged already, and estimates for the rest. Space: a full copy per layer
 * (its whole chain) when the target is vfs, its own size otherwise, plus
 * each container's changes (and, for vfs, a copy of its image), with 5%
 * and 64 KiB per layer of slack. Time: the bytes to move over the measured
 * read rate, three times (read, write, verify).
 */
export async function makePlan({ store, to, staged, resumed }: PlanInputs): Promise<MigratePlan> {
  const infos = parentsFirst(await store.layers.list())
  const byChain = new Map(infos.map((l) => [l.chainId, l]))
  const chainSize = (c: Digest | null): number => {
    let total = 0
    for (let cur = c; cur !== null; cur = byChain.get(cur)?.parent ?? null) total += byChain.get(cur)?.size ?? 0
    return total
  }
  const layers: PlannedLayer[] = infos.map((l) => ({
    chainId: l.chainId,
    diffId: l.diffId,
    parent: l.parent,
    cacheId: l.cacheId,
    size: l.size,
    staged: staged.layers.has(l.chainId),
  }))
  const mounts: PlannedMount[] = []
  for (const m of await store.layers.listMounts()) mounts.push({ ...(await mountPlan(store, m, byChain)), staged: staged.mounts.has(m.name) })
  const vfs = to === 'vfs'
  let needed = 0
  for (const l of layers) if (!l.staged) needed += (vfs ? chainSize(l.chainId) : l.size) + 65536
  for (const m of mounts) if (!m.staged) needed += m.size + (vfs ? 2 * chainSize(m.parent) : 0) + 65536
  needed = Math.ceil(needed * 1.05)
  const fs = statfs(store.root)
  const rate = await measureReadRate(store.driver, store.layers.paths, layers)
  const toMove = layers.filter((l) => !l.staged).reduce((s, l) => s + l.size, 0) + mounts.filter((m) => !m.staged).reduce((s, m) => s + m.size, 0)
  return {
    root: store.root,
    from: store.driver.name,
    to,
    layers,
    mounts,
    containers: (await store.containers.list()).length,
    spaceNeeded: needed,
    spaceFree: Number(fs.blocksAvailable) * fs.blockSize,
    estimatedSeconds: rate > 0 ? Math.ceil((3 * toMove) / rate) : 0,
    resumed,
  }
}

/** A mount in the plan, sized by the source driver's diffSize of its two layers. */
async function mountPlan(store: Store, m: MountInfo, byChain: Map<Digest, LayerInfo>): Promise<Omit<PlannedMount, 'staged'>> {
  const parentCache = m.parent === null ? null : (byChain.get(m.parent)?.cacheId ?? null)
  if (m.parent !== null && parentCache === null) {
    throw new StrataError('CORRUPT', `Mount "${m.name}" sits on layer ${m.parent}, which is not in the layer store`, { hint: 'run `strata check --repair` first', details: { name: m.name } })
  }
  let size = await store.driver.diffSize(m.mountId, m.initId ?? parentCache)
  if (m.initId !== null) size += await store.driver.diffSize(m.initId, parentCache)
  return { name: m.name, mountId: m.mountId, initId: m.initId, parent: m.parent, size }
}
