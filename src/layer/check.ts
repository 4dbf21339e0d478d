/**
 * check: is every layer and mount what its metadata says?
 *
 * Layers: the files are well-formed and the chainID follows from parent and
 * diff (layer-metadata), the parent exists (layer-missing-parent), the
 * driver has the cache-id (layer-missing-driver-data), and the export
 * hashes to the diffID (layer-content). Mounts: the record reads
 * (mount-metadata), its parent exists (mount-missing-parent), its driver
 * layers exist (mount-metadata).
 *
 * With repair, what cannot be trusted is removed: a bad layer together
 * with every layer above it (their content is defined on top of it), and
 * every mount on a removed layer or with a bad record. A layer without
 * tar-split whose regenerated tar does not hash to its diffID is reported
 * but kept: dockerd keeps such layers and they may be fine. A layer or
 * mount a live process holds is not removed (reported, not repaired).
 * Removal never collects anything else (no GC of good ancestors).
 *
 * Beside other commands: the scan runs without the data-root lock (it
 * exports every layer), reading layers without a hold; every problem it
 * finds is re-checked under the lock before it is reported, so what a live
 * rmi, load or rm changed meanwhile is not taken for corruption. Orphan
 * layers (no image, mount, child or live holder) are found under the lock
 * and reported as warnings (layer-orphan); repair collects them.
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { parseDigest } from '../digest/index.js'
import { StrataError, isStrataError } from '../errors/index.js'
import type { StoreContext } from './context.js'
import { removeDriverLayer } from './driver-layers.js'
import { exportLayer } from './export.js'
import { DirLock, pathExists } from '../fs/index.js'
import { readCacheIdIfAny, readLayerInfo, readMountRecord, readParentIfAny } from './metadata.js'
import { removeMount } from './mounts.js'
import { HEX64_RE } from './paths.js'
import { childChainId } from './register.js'
import { collectGarbage, listDir, renameToRemoving, unreferencedLayers } from './refs.js'
import type { ChainID, CheckProblem, LayerInfo, MountInfo } from './types.js'

export interface CheckOptions {
  repair?: boolean
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Drains an export and says why it does not hash to the diffID, or undefined when it does. */
async function contentProblem(ctx: StoreContext, info: LayerInfo): Promise<{ message: string; trusted: boolean } | undefined> {
  let exp
  try {
    // No hold: it would stop a concurrent rmi's collection here and leave the layer orphaned.
    exp = await exportLayer(ctx, info.chainId, { hold: false })
  } catch (err) {
    return { message: `cannot export: ${msg(err)}`, trusted: false }
  }
  try {
    for await (const _ of exp.stream) {
      // only the hash matters
    }
    const v = await exp.verified
    if (v.matches) return undefined
    return { message: `regenerated tar (no tar-split) hashes to ${v.digest}, not the diffID ${info.diffId}`, trusted: true }
  } catch (err) {
    return { message: msg(err), trusted: false }
  }
}

/** What the phases of one check share: the problems found, the layers condemned, every layer's parent as read. */
interface CheckRun {
  problems: CheckProblem[]
  /** Layers to remove on repair, with the problem that condemned them (if they have their own). */
  bad: Map<ChainID, CheckProblem | undefined>
  parents: Map<ChainID, ChainID | null | undefined>
  /**
   * How to tell, under the data-root lock, that a problem found without it
   * is still there: a live rmi, load or rm changes the store while check
   * reads it, and what it removed meanwhile is no corruption.
   */
  confirms: Map<CheckProblem, () => Promise<boolean>>
}

/**
 * Records a problem of layer `chain`; `condemns`: the layer cannot be
 * trusted (repair removes it); `stillThere`: re-checks it under the lock.
 */
function report(run: CheckRun, chain: ChainID, kind: CheckProblem['kind'], message: string, stillThere: () => Promise<boolean>, condemns = true): void {
  const p: CheckProblem = { kind, subject: chain, message }
  run.problems.push(p)
  run.confirms.set(p, stillThere)
  if (condemns) run.bad.set(chain, p)
}

export async function checkStore(ctx: StoreContext, opts: CheckOptions = {}): Promise<CheckProblem[]> {
  const run: CheckRun = { problems: [], bad: new Map(), parents: new Map(), confirms: new Map() }
  const present = new Set((await listDir(ctx.paths.sha256)).filter((n) => HEX64_RE.test(n)).map((n) => parseDigest(n)))
  const infos = await checkLayerMetadata(ctx, run, present)
  await checkLayerData(ctx, run, present, infos)
  const doomedMounts = await checkMounts(ctx, run, present)
  const orphans = await confirmUnderLock(ctx, run, doomedMounts)
  const doomed = layersAboveBad(run)
  if (opts.repair === true) await mountsOnDoomed(ctx, run, doomed, doomedMounts)
  const orphanProblems = reportOrphans(run, orphans, doomed)
  if (opts.repair !== true) return run.problems
  await repairMounts(ctx, doomedMounts)
  await repairLayers(ctx, run, doomed)
  await repairOrphans(ctx, orphanProblems)
  return run.problems
}

/** Phase 1, layer metadata: every layer's files read, and its chainID following from parent and diff. */
async function checkLayerMetadata(ctx: StoreContext, run: CheckRun, present: Set<ChainID>): Promise<Map<ChainID, LayerInfo>> {
  const infos = new Map<ChainID, LayerInfo>()
  for (const chain of present) {
    const dir = ctx.paths.layerDir(chain)
    run.parents.set(chain, await readParentIfAny(dir).catch(() => undefined))
    let info: LayerInfo
    try {
      info = await readLayerInfo(dir, chain)
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND')) continue // deleted meanwhile
      report(run, chain, 'layer-metadata', msg(err), async () => (await metadataProblem(dir, chain)) !== undefined)
      continue
    }
    const expected = childChainId(info.parent, info.diffId)
    if (expected !== chain) {
      report(run, chain, 'layer-metadata', `Layer ${chain}: its parent and diff files give the chainID ${expected}`, async () => (await metadataProblem(dir, chain)) !== undefined)
      continue
    }
    infos.set(chain, info)
  }
  return infos
}

/** Phase 2, layer data: the parent exists, the driver has the cache-id, the export hashes to the diffID. */
async function checkLayerData(ctx: StoreContext, run: CheckRun, present: Set<ChainID>, infos: Map<ChainID, LayerInfo>): Promise<void> {
  for (const [chain, info] of infos) {
    if (info.parent !== null && !present.has(info.parent)) {
      const parent = info.parent
      report(run, chain, 'layer-missing-parent', `Layer ${chain}: its parent ${parent} does not exist`, async () => (await sameLayer(ctx, info)) && !(await pathExists(ctx.paths.layerDir(parent))))
      continue
    }
    if (!(await ctx.driver.exists(info.cacheId))) {
      report(
        run,
        chain,
        'layer-missing-driver-data',
        `Layer ${chain}: the ${ctx.driver.name} driver has no layer ${info.cacheId}`,
        async () => (await sameLayer(ctx, info)) && !(await ctx.driver.exists(info.cacheId)),
      )
      continue
    }
    const content = await contentProblem(ctx, info)
    // Read without a hold (see contentProblem): an export that failed because the layer was deleted meanwhile is no problem.
    if (content !== undefined) report(run, chain, 'layer-content', `Layer ${chain}: ${content.message}`, () => sameLayer(ctx, info), !content.trusted)
  }
}

/** Phase 5: the bad layers and everything above them (their content is defined on top of a bad one). */
function layersAboveBad(run: CheckRun): Set<ChainID> {
  const children = new Map<ChainID, ChainID[]>()
  for (const [chain, parent] of run.parents) {
    if (parent) children.set(parent, [...(children.get(parent) ?? []), chain])
  }
  const doomed = new Set<ChainID>()
  const visit = (chain: ChainID): void => {
    if (doomed.has(chain)) return
    doomed.add(chain)
    for (const c of children.get(chain) ?? []) visit(c)
  }
  for (const chain of run.bad.keys()) visit(chain)
  return doomed
}

/** Phase 3, mounts: the record reads, its layer exists, its driver layers exist. Returns the mounts to remove on repair. */
async function checkMounts(ctx: StoreContext, run: CheckRun, present: Set<ChainID>): Promise<Map<string, CheckProblem>> {
  const doomedMounts = new Map<string, CheckProblem>()
  const condemn = (p: CheckProblem, stillThere: () => Promise<boolean>): void => {
    run.problems.push(p)
    run.confirms.set(p, stillThere)
    doomedMounts.set(p.subject, p)
  }
  for (const name of await listDir(ctx.paths.mounts)) {
    const dir = join(ctx.paths.mounts, name)
    let info: MountInfo
    try {
      info = await readMountRecord(dir, name)
    } catch (err) {
      if (!isStrataError(err, 'NOT_FOUND')) {
        condemn({ kind: 'mount-metadata', subject: name, message: msg(err) }, () => readMountRecord(dir, name).then(() => false, (e: unknown) => !isStrataError(e, 'NOT_FOUND')))
      }
      continue
    }
    if (info.parent !== null && !present.has(info.parent)) {
      const parent = info.parent
      condemn({ kind: 'mount-missing-parent', subject: name, message: `Mount "${name}": its layer ${parent} does not exist` }, async () => (await sameMount(dir, info)) && !(await pathExists(ctx.paths.layerDir(parent))))
      continue
    }
    const missing: string[] = []
    for (const id of [info.mountId, info.initId]) if (id !== null && !(await ctx.driver.exists(id))) missing.push(id)
    if (missing.length > 0) {
      condemn(
        { kind: 'mount-metadata', subject: name, message: `Mount "${name}": the ${ctx.driver.name} driver has no layer ${missing.join(', ')}` },
        async () => (await sameMount(dir, info)) && (await Promise.all(missing.map((id) => ctx.driver.exists(id)))).some((e) => !e),
      )
    }
  }
  return doomedMounts
}

/**
 * Phase 4, under the data-root lock: what phases 1-3 found without it is
 * re-checked (what a live operation changed meanwhile is dropped), and the
 * orphan layers are found, where no operation is between two of its steps.
 */
async function confirmUnderLock(ctx: StoreContext, run: CheckRun, doomedMounts: Map<string, CheckProblem>): Promise<ChainID[]> {
  return ctx.lock.withLock(async () => {
    for (const [p, stillThere] of run.confirms) {
      if (await stillThere()) continue
      run.problems.splice(run.problems.indexOf(p), 1)
      for (const [k, v] of run.bad) if (v === p) run.bad.delete(k)
      for (const [k, v] of doomedMounts) if (v === p) doomedMounts.delete(k)
    }
    return unreferencedLayers(ctx)
  })
}

/** Phase 5b (repair): the mounts on a layer repair removes go with it. */
async function mountsOnDoomed(ctx: StoreContext, run: CheckRun, doomed: Set<ChainID>, doomedMounts: Map<string, CheckProblem>): Promise<void> {
  for (const name of await listDir(ctx.paths.mounts)) {
    if (doomedMounts.has(name)) continue
    const info = await readMountRecord(join(ctx.paths.mounts, name), name).catch(() => undefined)
    if (info === undefined || info.parent === null || !doomed.has(info.parent)) continue
    const p: CheckProblem = { kind: 'mount-missing-parent', subject: name, message: `Mount "${name}": its layer ${info.parent} cannot be trusted` }
    run.problems.push(p)
    doomedMounts.set(name, p)
  }
}

/**
 * Phase 5c: layers nothing refers to (no image, no container, no child
 * layer, no live holder). `layer import` makes them on purpose, and a
 * layer a reader held while its image was removed stays behind: a warning.
 */
function reportOrphans(run: CheckRun, orphans: ChainID[], doomed: Set<ChainID>): CheckProblem[] {
  const out: CheckProblem[] = []
  for (const chain of orphans) {
    if (doomed.has(chain)) continue
    const p: CheckProblem = { kind: 'layer-orphan', subject: chain, message: `Layer ${chain}: no image, container or child layer refers to it`, severity: 'warning' }
    run.problems.push(p)
    out.push(p)
  }
  return out
}

/** Phase 8 (repair): orphans collected; the collection re-decides under the lock, so a layer taken into use meanwhile stays. */
async function repairOrphans(ctx: StoreContext, orphans: CheckProblem[]): Promise<void> {
  for (const p of orphans) {
    const chain = p.subject as ChainID
    try {
      const collected = await collectGarbage(ctx, chain)
      if (collected.includes(chain)) p.repaired = collected.length === 1 ? 'removed the layer' : `removed the layer and ${collected.length - 1} unreferenced ancestor(s): ${collected.slice(1).join(', ')}`
    } catch (err) {
      p.message += ` (repair failed: ${msg(err)})`
    }
  }
}

/** Under the data-root lock: the layer is still there, the same one (same cache-id). */
async function sameLayer(ctx: StoreContext, info: LayerInfo): Promise<boolean> {
  try {
    return (await readLayerInfo(ctx.paths.layerDir(info.chainId), info.chainId)).cacheId === info.cacheId
  } catch (err) {
    if (isStrataError(err, 'NOT_FOUND')) return false
    if (isStrataError(err, 'CORRUPT')) return true
    throw err
  }
}

/** Under the data-root lock: the mount record is still there, the same one. */
async function sameMount(dir: string, info: MountInfo): Promise<boolean> {
  try {
    return (await readMountRecord(dir, info.name)).mountId === info.mountId
  } catch (err) {
    if (isStrataError(err, 'NOT_FOUND')) return false
    if (isStrataError(err, 'CORRUPT')) return true
    throw err
  }
}

/** What is wrong with a layer's metadata files, or undefined (also when the layer is gone). */
async function metadataProblem(dir: string, chain: ChainID): Promise<string | undefined> {
  try {
    const info = await readLayerInfo(dir, chain)
    const expected = childChainId(info.parent, info.diffId)
    return expected === chain ? undefined : `its parent and diff files give the chainID ${expected}`
  } catch (err) {
    if (isStrataError(err, 'NOT_FOUND')) return undefined
    return msg(err)
  }
}

/** Phase 6 (repair): the condemned mounts removed. */
async function repairMounts(ctx: StoreContext, doomedMounts: Map<string, CheckProblem>): Promise<void> {
  for (const [name, p] of doomedMounts) {
    try {
      await removeMount(ctx, name, { force: true, collect: false })
      p.repaired = `removed mount "${name}"`
    } catch (err) {
      p.message += ` (repair failed: ${msg(err)})`
    }
  }
}

/** Phase 7 (repair): the doomed layers removed, children before parents; each bad layer's problem says what went. */
async function repairLayers(ctx: StoreContext, run: CheckRun, doomed: Set<ChainID>): Promise<void> {
  const { parents } = run
  const depth = (chain: ChainID): number => {
    let d = 0
    for (let c: ChainID | null | undefined = parents.get(chain); c && d <= parents.size; c = parents.get(c)) d++
    return d
  }
  const order = [...doomed].sort((a, b) => depth(b) - depth(a))
  const removed: ChainID[] = []
  const failedLayers = new Map<ChainID, string>()
  for (const chain of order) {
    try {
      await forceRemoveLayer(ctx, chain)
      removed.push(chain)
    } catch (err) {
      failedLayers.set(chain, msg(err))
    }
  }
  for (const [chain, p] of run.bad) {
    if (p === undefined) continue
    const fail = failedLayers.get(chain)
    if (fail !== undefined) {
      p.message += ` (repair failed: ${fail})`
      continue
    }
    const gone = [...doomed].filter((c) => c !== chain && isAbove(parents, c, chain) && removed.includes(c))
    p.repaired = gone.length === 0 ? `removed layer ${chain}` : `removed layer ${chain} and the ${gone.length} layer(s) above it: ${gone.join(', ')}`
  }
}

function isAbove(parents: Map<ChainID, ChainID | null | undefined>, chain: ChainID, ancestor: ChainID): boolean {
  let c = parents.get(chain)
  for (let n = 0; c && n <= parents.size; n++, c = parents.get(c)) if (c === ancestor) return true
  return false
}

/** Removes a layer whatever refers to it (repair), unless a live process holds it. */
async function forceRemoveLayer(ctx: StoreContext, chain: ChainID): Promise<void> {
  const taken = await ctx.lock.withLock(async () => {
    const dir = ctx.paths.layerDir(chain)
    let lock: DirLock | undefined
    try {
      lock = DirLock.tryAcquire(dir, 'exclusive')
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND')) return undefined
      throw err
    }
    if (lock === undefined) throw new StrataError('IN_USE', `Layer ${chain} is in use by another process`, { details: { chainId: chain } })
    try {
      const cacheId = await readCacheIdIfAny(dir)
      return { lock, cacheId, removing: await renameToRemoving(ctx, chain, dir) }
    } catch (err) {
      lock.close()
      throw err
    }
  })
  if (taken === undefined) return
  try {
    if (taken.cacheId !== undefined) await removeDriverLayer(ctx.driver, taken.cacheId)
    await rm(taken.removing, { recursive: true, force: true })
  } finally {
    taken.lock.close()
  }
}
