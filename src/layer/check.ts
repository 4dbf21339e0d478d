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
 */
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { parseDigest } from '../digest/index.js'
import { StrataError, isStrataError } from '../errors/index.js'
import type { StoreContext } from './context.js'
import { removeDriverLayer } from './driver-layers.js'
import { exportLayer } from './export.js'
import { DirLock } from '../fs/index.js'
import { readCacheIdIfAny, readLayerInfo, readMountRecord, readParentIfAny } from './metadata.js'
import { removeMount } from './mounts.js'
import { HEX64_RE } from './paths.js'
import { childChainId } from './register.js'
import { listDir, renameToRemoving } from './refs.js'
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
    exp = await exportLayer(ctx, info.chainId)
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

export async function checkStore(ctx: StoreContext, opts: CheckOptions = {}): Promise<CheckProblem[]> {
  const problems: CheckProblem[] = []
  /** Layers to remove on repair, with the problem that condemned them (if they have their own). */
  const bad = new Map<ChainID, CheckProblem | undefined>()
  const parents = new Map<ChainID, ChainID | null | undefined>()

  const layerNames = (await listDir(ctx.paths.sha256)).filter((n) => HEX64_RE.test(n))
  const present = new Set(layerNames.map((n) => parseDigest(n)))
  const infos = new Map<ChainID, LayerInfo>()

  for (const chain of present) {
    const dir = ctx.paths.layerDir(chain)
    parents.set(chain, await readParentIfAny(dir).catch(() => undefined))
    let info: LayerInfo
    try {
      info = await readLayerInfo(dir, chain)
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND')) continue // deleted meanwhile
      const p: CheckProblem = { kind: 'layer-metadata', subject: chain, message: msg(err) }
      problems.push(p)
      bad.set(chain, p)
      continue
    }
    const expected = childChainId(info.parent, info.diffId)
    if (expected !== chain) {
      const p: CheckProblem = { kind: 'layer-metadata', subject: chain, message: `Layer ${chain}: its parent and diff files give the chainID ${expected}` }
      problems.push(p)
      bad.set(chain, p)
      continue
    }
    infos.set(chain, info)
  }

  for (const [chain, info] of infos) {
    if (info.parent !== null && !present.has(info.parent)) {
      const p: CheckProblem = { kind: 'layer-missing-parent', subject: chain, message: `Layer ${chain}: its parent ${info.parent} does not exist` }
      problems.push(p)
      bad.set(chain, p)
      continue
    }
    if (!(await ctx.driver.exists(info.cacheId))) {
      const p: CheckProblem = {
        kind: 'layer-missing-driver-data',
        subject: chain,
        message: `Layer ${chain}: the ${ctx.driver.name} driver has no layer ${info.cacheId}`,
      }
      problems.push(p)
      bad.set(chain, p)
      continue
    }
    const content = await contentProblem(ctx, info)
    if (content !== undefined) {
      const p: CheckProblem = { kind: 'layer-content', subject: chain, message: `Layer ${chain}: ${content.message}` }
      problems.push(p)
      if (!content.trusted) bad.set(chain, p)
    }
  }

  // Everything above a bad layer goes with it.
  const children = new Map<ChainID, ChainID[]>()
  for (const [chain, parent] of parents) {
    if (parent) children.set(parent, [...(children.get(parent) ?? []), chain])
  }
  const doomed = new Set<ChainID>()
  const visit = (chain: ChainID): void => {
    if (doomed.has(chain)) return
    doomed.add(chain)
    for (const c of children.get(chain) ?? []) visit(c)
  }
  for (const chain of bad.keys()) visit(chain)

  // Mounts.
  const doomedMounts = new Map<string, CheckProblem>()
  for (const name of await listDir(ctx.paths.mounts)) {
    let info: MountInfo
    try {
      info = await readMountRecord(join(ctx.paths.mounts, name), name)
    } catch (err) {
      if (isStrataError(err, 'NOT_FOUND')) continue
      const p: CheckProblem = { kind: 'mount-metadata', subject: name, message: msg(err) }
      problems.push(p)
      doomedMounts.set(name, p)
      continue
    }
    if (info.parent !== null && !present.has(info.parent)) {
      const p: CheckProblem = { kind: 'mount-missing-parent', subject: name, message: `Mount "${name}": its layer ${info.parent} does not exist` }
      problems.push(p)
      doomedMounts.set(name, p)
      continue
    }
    const missing: string[] = []
    for (const id of [info.mountId, info.initId]) if (id !== null && !(await ctx.driver.exists(id))) missing.push(id)
    if (missing.length > 0) {
      const p: CheckProblem = { kind: 'mount-metadata', subject: name, message: `Mount "${name}": the ${ctx.driver.name} driver has no layer ${missing.join(', ')}` }
      problems.push(p)
      doomedMounts.set(name, p)
      continue
    }
    if (opts.repair === true && info.parent !== null && doomed.has(info.parent)) {
      const p: CheckProblem = { kind: 'mount-missing-parent', subject: name, message: `Mount "${name}": its layer ${info.parent} cannot be trusted` }
      problems.push(p)
      doomedMounts.set(name, p)
    }
  }

  if (opts.repair !== true) return problems

  for (const [name, p] of doomedMounts) {
    try {
      await removeMount(ctx, name, { force: true, collect: false })
      p.repaired = `removed mount "${name}"`
    } catch (err) {
      p.message += ` (repair failed: ${msg(err)})`
    }
  }

  // Children before parents: deepest first.
  const depth = (chain: ChainID): number => {
    let d = 0
    for (let c: ChainID | null | undefined = parents.get(chain); c && d <= present.size; c = parents.get(c)) d++
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
  for (const [chain, p] of bad) {
    if (p === undefined) continue
    const above = [...doomed].filter((c) => c !== chain && isAbove(parents, c, chain))
    const fail = failedLayers.get(chain)
    if (fail !== undefined) {
      p.message += ` (repair failed: ${fail})`
      continue
    }
    const gone = above.filter((c) => removed.includes(c))
    p.repaired = gone.length === 0 ? `removed layer ${chain}` : `removed layer ${chain} and the ${gone.length} layer(s) above it: ${gone.join(', ')}`
  }
  return problems
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
