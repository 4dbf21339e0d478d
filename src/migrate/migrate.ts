/**
 * migrateDataRoot: the whole migration (types.ts is the contract), from
 * the first check to the switch, resumable at every point:
 *
 *   journal? ── done ──────────────▶ refuse (clean up first)
 *      │  └─── switching ──────────▶ finish the switch
 *      └ none/copying ─▶ preflight (Store.open: recovery, refusals, plan; dry run stops here)
 *                        ─▶ lock, journal "copying", stage opened
 *                        ─▶ leftovers of a crash removed (pending layers, stale staged ones)
 *                        ─▶ each layer, parents first, then each mount: copy, verify, stage
 *                        ─▶ under the data-root lock: checked at rest and unchanged, then switch
 *                        ─▶ (--prune-source) the source's trees deleted
 */
import { chmod, copyFile, lstat, mkdir, readFile, readdir, rm } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { isMonitorAlive, listRecords } from '../containerdb/index.js'
import { parseDigest, type Digest } from '../digest/index.js'
import { StrataError } from '../errors/index.js'
import { copyTree, defaultRegistry, openDriver, type GraphDriver } from '../graphdriver/index.js'
import { DataRootLock, pathExists } from '../fs/index.js'
import { LayerDbPaths, MOUNT_FILES, removeDriverLayers } from '../layer/index.js'
import { Store } from '../store/index.js'
import { applyLayerCopy, copyMount, type AppliedLayer, type CopyContext } from './copy.js'
import { clearPending, lockMigration, MigrationPaths, pendingIds, readJournal, writeJournal, type Journal } from './journal.js'
import { assertAtRest, assertNoLiveHolders, makePlan, readStaged, type Staged } from './plan.js'
import { cleanupFinished, switchTrees } from './switch.js'
import type { MigratePlan, MigrateOptions, MigrateResult } from './types.js'

/**
 * Copies the plan's layers not staged yet, in order, each one's verify
 * running while the next one is applied (two layers in flight at most).
 * When either fails, the other is undone too; returns how many were copied.
 */
async function copyLayers(ctx: CopyContext, plan: MigratePlan): Promise<number> {
  let copied = 0
  let verifying: Promise<void> | undefined
  const settle = async (applying: Promise<AppliedLayer | undefined>): Promise<AppliedLayer | undefined> => {
    const [applied, verified] = await Promise.allSettled([applying, verifying])
    if (verified.status === 'rejected') {
      if (applied.status === 'fulfilled') await applied.value?.undo()
      throw verified.reason
    }
    if (applied.status === 'rejected') throw applied.reason
    return applied.value
  }
  for (const [i, layer] of plan.layers.entries()) {
    if (ctx.stagedLayers.has(layer.chainId)) {
      ctx.onProgress({ kind: 'layer', index: i, total: plan.layers.length, chainId: layer.chainId, diffId: layer.diffId, step: 'staged', bytes: 0, totalBytes: layer.size })
      continue
    }
    const applied = await settle(applyLayerCopy(ctx, layer, i, plan.layers.length))
    const done = applied!.verify()
    // Observed by settle() or the final await; never an unhandled rejection meanwhile.
    done.catch(() => {})
    verifying = done
    copied++
  }
  await settle(Promise.resolve(undefined))
  return copied
}

/** How many times the switch re-plans when the root changed while layers were being copied. */
const SWITCH_ATTEMPTS = 3

/**
 * The driver whose metadata holds the root's layers and containers: the one
 * `image/<driver>/layerdb` with entries. Unlike the registry's choice for
 * opening a root, vfs counts here (a vfs root is what it is, even if
 * dockerd and strata only open it by name). None or several is
 * INVALID_ARGUMENT: the caller must name the source.
 */
async function currentDriver(root: string): Promise<string> {
  const found: string[] = []
  for (const name of defaultRegistry.names()) {
    const db = new LayerDbPaths(root, name)
    for (const dir of [db.sha256, db.mounts]) {
      const entries = await readdir(dir).catch(() => [] as string[])
      if (entries.length > 0) {
        found.push(name)
        break
      }
    }
  }
  if (found.length === 1) return found[0]!
  if (found.length === 0) throw new StrataError('INVALID_ARGUMENT', `"${root}" holds no layers of any storage driver strata knows: nothing to migrate`, { details: { root } })
  throw new StrataError('INVALID_ARGUMENT', `"${root}" holds layers of several storage drivers (${found.join(', ')}); name the one to migrate from`, {
    hint: `e.g. \`strata -s ${found[0]} migrate --to ...\``,
    details: { root, drivers: found },
  })
}

/** Refusals that need no store: an unknown or unusable target, the target's trees already in the root, an old aside. */
async function assertCanStart(paths: MigrationPaths, from: string, to: string): Promise<void> {
  if (from === to) throw new StrataError('INVALID_ARGUMENT', `"${paths.root}" already uses ${to}`)
  const factory = defaultRegistry.factory(to)
  if (factory === undefined) throw new StrataError('INVALID_ARGUMENT', `Unknown storage driver "${to}" (known: ${defaultRegistry.names().join(', ')})`)
  const probe = await factory.probe(paths.root)
  if (!probe.ok) throw new StrataError('NOT_SUPPORTED', `Cannot migrate to ${to}: ${probe.reason ?? 'it cannot run here'}`)
  for (const p of [paths.home(paths.root, to), paths.metadata(paths.root, to)]) {
    if (await pathExists(p)) {
      throw new StrataError('INVALID_ARGUMENT', `"${paths.root}" already has ${to}'s tree "${p}"; a migration builds it afresh`, {
        hint: `if it holds nothing you need, remove it, then migrate`,
        details: { path: p },
      })
    }
  }
  if (await pathExists(paths.aside)) {
    throw new StrataError('INVALID_ARGUMENT', `An earlier migration of "${paths.root}" kept its old trees in "${paths.aside}"`, { hint: 'run `strata migrate --cleanup` first' })
  }
}

/** Preflight on the source root: recovery, the refusals of types.ts, and the plan. */
async function preflight(root: string, journal: { from: string; to: string; sourceOptions: Record<string, string> }, staged: Staged, resumed: boolean): Promise<MigratePlan> {
  const store = await Store.open({ root, driver: journal.from, driverOptions: journal.sourceOptions })
  try {
    await assertAtRest(store)
    return await makePlan({ store, to: journal.to, staged, resumed })
  } finally {
    await store.close()
  }
}

/** Removes what a crash left in the stage: pending target layers, half-written entries, and staged layers or mounts the source no longer has. */
async function tidyStage(ctx: CopyContext, plan: MigratePlan, staged: Staged): Promise<void> {
  const stale: string[] = []
  for (const id of await pendingIds(ctx.paths)) stale.push(id)
  const chains = new Set(plan.layers.map((l) => l.chainId))
  for (const [chain, id] of staged.layers) {
    if (chains.has(chain) && (await ctx.target.exists(id))) continue
    stale.push(id)
    await rm(ctx.stageDb.layerDir(chain), { recursive: true, force: true })
    staged.layers.delete(chain)
  }
  const names = new Set(plan.mounts.map((m) => m.name))
  for (const [name, id] of staged.mounts) {
    if (names.has(name) && (await ctx.target.exists(id))) continue
    stale.push(id, `${id}-init`)
    await rm(ctx.stageDb.mountDir(name), { recursive: true, force: true })
    staged.mounts.delete(name)
  }
  const outcome = await removeDriverLayers(ctx.target, stale)
  if (outcome.failed.length > 0) throw outcome.failed[0]!.error
  for (const id of await pendingIds(ctx.paths)) await clearPending(ctx.paths, id)
  await rm(ctx.stageDb.tmp, { recursive: true, force: true })
}

/** Whether the source root still holds exactly what was staged, checked at rest (under the data-root lock). */
async function unchangedAtRest(root: string, sourceDb: LayerDbPaths, staged: Staged): Promise<boolean> {
  await assertNoLiveHolders(sourceDb)
  const running = (await listRecords(root)).filter((r) => r.State.Running && isMonitorAlive(root, r.ID))
  if (running.length > 0) throw new StrataError('IN_USE', `Containers started during the migration: ${running.map((r) => r.Name.replace(/^\//, '')).join(', ')}`, { hint: 'stop them and run `strata migrate` again' })
  const chains = (await readdir(sourceDb.sha256)).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => parseDigest(n))
  const mounts = await readdir(sourceDb.mounts)
  for (const name of mounts) {
    const count = await readFile(join(sourceDb.mountDir(name), MOUNT_FILES.count), 'utf8').catch(() => '0')
    if (Number(count.trim()) > 0) throw new StrataError('IN_USE', `Container ${name} was mounted during the migration`, { hint: 'unmount it and run `strata migrate` again' })
  }
  return chains.length === staged.layers.size && chains.every((c) => staged.layers.has(c)) && mounts.length === staged.mounts.size && mounts.every((m) => staged.mounts.has(m))
}

/**
 * Migrates the data root `opts.root` to the driver `opts.to` (see
 * types.ts), or with `dryRun` only plans it. Returns the plan (dry run) or
 * what was done.
 */
export async function migrateDataRoot(opts: MigrateOptions & { dryRun: true }): Promise<MigratePlan>
export async function migrateDataRoot(opts: MigrateOptions): Promise<MigrateResult>
export async function migrateDataRoot(opts: MigrateOptions): Promise<MigrateResult | MigratePlan> {
  const started = Date.now()
  const root = resolve(opts.root)
  const paths = new MigrationPaths(root)
  const journal = await openJournal(paths, root, opts)
  const resumed = await pathExists(paths.journal)
  if (journal.state === 'switching') {
    if (opts.dryRun === true) throw new StrataError('INVALID_ARGUMENT', `The migration of "${root}" to ${journal.to} is half-way through its switch; run it to finish`)
    const release = await lockMigration(paths)
    try {
      await new DataRootLock(root).withLock(() => switchTrees(paths, journal))
    } finally {
      release()
    }
    return finish(paths, opts, emptyPlan(root, journal), 0, 0, started)
  }

  const stageDb = new LayerDbPaths(paths.stage, journal.to)
  const staged = resumed ? await readStaged(stageDb) : { layers: new Map<Digest, string>(), mounts: new Map<string, string>() }
  const plan = await preflight(root, journal, staged, resumed)
  if (opts.dryRun === true) return plan
  if (plan.spaceNeeded > plan.spaceFree) {
    throw new StrataError('NOT_SUPPORTED', `Not enough space to migrate "${root}" to ${journal.to}: about ${mib(plan.spaceNeeded)} needed, ${mib(plan.spaceFree)} free`, {
      hint: 'free some space, or see what moves with --dry-run',
      details: { needed: plan.spaceNeeded, free: plan.spaceFree },
    })
  }
  const done = await copyAndSwitch(root, paths, journal, plan, staged, opts.onProgress ?? (() => {}))
  return finish(paths, opts, done.plan, done.layersCopied, done.mountsCopied, started)
}

/** The migration's journal: the one a previous run left (it must be for the same drivers, and unfinished), or a fresh one, not yet written. */
async function openJournal(paths: MigrationPaths, root: string, opts: MigrateOptions): Promise<Journal> {
  const journal = await readJournal(paths)
  if (journal === undefined) {
    const from = opts.from ?? (await currentDriver(root))
    await assertCanStart(paths, from, opts.to)
    const now = new Date().toISOString()
    return { version: 1, from, to: opts.to, state: 'copying', startedAt: now, updatedAt: now, sourceOptions: opts.sourceOptions ?? {}, targetOptions: opts.targetOptions ?? {} }
  }
  if (journal.to !== opts.to || (opts.from !== undefined && opts.from !== journal.from)) {
    throw new StrataError('INVALID_ARGUMENT', `"${root}" has a ${journal.state === 'done' ? 'finished' : 'unfinished'} migration from ${journal.from} to ${journal.to}`, {
      hint: journal.state === 'done' ? 'run `strata migrate --cleanup` before another migration' : `finish it with \`strata migrate --to ${journal.to}\`${journal.state === 'copying' ? ' or drop it with `strata migrate --abort`' : ''}`,
    })
  }
  if (journal.state === 'done') {
    throw new StrataError('INVALID_ARGUMENT', `"${root}" was migrated from ${journal.from} to ${journal.to} already; its ${journal.from} trees are kept in "${paths.aside}"`, {
      hint: '`strata migrate --cleanup` deletes them',
    })
  }
  return journal
}

/**
 * Copying, then the switch, under the migration's lock: every layer and
 * mount not staged yet is copied into the stage, and the trees are
 * switched under the data-root lock once the root is found unchanged; a
 * root that changed meanwhile is planned and copied again (up to
 * SWITCH_ATTEMPTS times).
 */
async function copyAndSwitch(
  root: string,
  paths: MigrationPaths,
  journal: Journal,
  firstPlan: MigratePlan,
  staged: Staged,
  onProgress: NonNullable<MigrateOptions['onProgress']>,
): Promise<{ plan: MigratePlan; layersCopied: number; mountsCopied: number }> {
  const sourceDb = new LayerDbPaths(root, journal.from)
  const stageDb = new LayerDbPaths(paths.stage, journal.to)
  let plan = firstPlan
  const release = await lockMigration(paths)
  let source: GraphDriver | undefined
  let target: GraphDriver | undefined
  const copied = { layersCopied: 0, mountsCopied: 0 }
  try {
    await writeJournal(paths, journal)
    await mkdir(paths.stage, { recursive: true, mode: 0o700 })
    source = await openDriver(root, journal.from, journal.sourceOptions)
    target = await openDriver(paths.stage, journal.to, journal.targetOptions)
    await mkdir(stageDb.sha256, { recursive: true, mode: 0o755 })
    await mkdir(stageDb.mounts, { recursive: true, mode: 0o755 })
    await copyImageMetadata(paths, journal)
    const ctx: CopyContext = { paths, source, target, sourceDb, stageDb, stagedLayers: staged.layers, appliedLayers: new Map(), onProgress }
    for (let attempt = 1; ; attempt++) {
      await tidyStage(ctx, plan, staged)
      await copyUnstaged(ctx, plan, staged, copied)
      await source.cleanup()
      await target.cleanup()
      const switched = await new DataRootLock(root).withLock(async () => {
        if (!(await unchangedAtRest(root, sourceDb, staged))) return false
        onProgress({ kind: 'switch' })
        await switchTrees(paths, journal)
        return true
      })
      if (switched) break
      if (attempt >= SWITCH_ATTEMPTS) throw new StrataError('IN_USE', `"${root}" kept changing while it was being migrated`, { hint: 'stop what writes to it, then run `strata migrate` again' })
      plan = await preflight(root, journal, staged, true)
    }
  } finally {
    await source?.cleanup().catch(() => {})
    await target?.cleanup().catch(() => {})
    release()
  }
  return { plan, ...copied }
}

/** The plan's layers, then its mounts, copied into the stage unless staged already (counted in `copied`). */
async function copyUnstaged(
  ctx: CopyContext,
  plan: MigratePlan,
  staged: Staged,
  copied: { layersCopied: number; mountsCopied: number },
): Promise<void> {
  const { onProgress } = ctx
  copied.layersCopied += await copyLayers(ctx, plan)
  for (const [i, mount] of plan.mounts.entries()) {
    if (staged.mounts.has(mount.name)) {
      onProgress({ kind: 'mount', index: i, total: plan.mounts.length, name: mount.name, step: 'staged', bytes: 0, totalBytes: mount.size })
      continue
    }
    staged.mounts.set(mount.name, await copyMount(ctx, mount, i, plan.mounts.length))
    copied.mountsCopied++
  }
}

async function finish(paths: MigrationPaths, opts: MigrateOptions, plan: MigratePlan, layersCopied: number, mountsCopied: number, started: number): Promise<MigrateResult> {
  let sourceKeptAt: string | undefined = paths.aside
  if (opts.pruneSource === true) {
    await cleanupFinished(paths)
    sourceKeptAt = undefined
  }
  return { plan, layersCopied, mountsCopied, sourceKeptAt, seconds: (Date.now() - started) / 1000 }
}

function emptyPlan(root: string, journal: Journal): MigratePlan {
  return { root, from: journal.from, to: journal.to, layers: [], mounts: [], containers: 0, spaceNeeded: 0, spaceFree: 0, estimatedSeconds: 0, resumed: true }
}

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`
}

/**
 * Copies the source's image metadata that does not depend on the driver
 * (imagedb, repositories.json, distribution) into the stage, as it is;
 * done again on every run, so changes since an earlier run are taken too.
 */
async function copyImageMetadata(paths: MigrationPaths, journal: Journal): Promise<void> {
  const src = paths.metadata(paths.root, journal.from)
  const dst = paths.metadata(paths.stage, journal.to)
  for (const name of await readdir(src)) {
    if (name === 'layerdb') continue
    await rm(join(dst, name), { recursive: true, force: true })
    const st = await lstat(join(src, name))
    if (st.isDirectory()) await copyTree(join(src, name), join(dst, name))
    else {
      await copyFile(join(src, name), join(dst, name))
      await chmod(join(dst, name), st.mode & 0o7777)
    }
  }
}
