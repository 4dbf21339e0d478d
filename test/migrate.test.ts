/**
 * strata migrate, as a library call and through the CLI: every pair of
 * aufs, overlay2 and vfs (a root with the 3-layer image, a container that
 * ran and changed files, one that never ran) keeps its image IDs, chainIDs,
 * diffIDs, tags and containers, gets new cache-ids and mount-ids, shows the
 * same container filesystems and runs them; the dry run writes nothing;
 * what must be refused is; a migration killed with SIGKILL continues when
 * run again; a disk that fills up mid-way stops it with a clear error, and
 * it continues once there is space; the old trees stay until cleanup.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readdirSync, writeSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { createContainer, mountContainer, unmountContainer } from '../src/container/index.js'
import { END_OF_ARCHIVE, encodeHeader, padding } from '../src/archive/tar/index.js'
import { sha256Of, type Digest } from '../src/digest/index.js'
import { isStrataError, type StrataErrorCode } from '../src/errors/index.js'
import { topChainId } from '../src/image/index.js'
import { abortMigration, cleanupMigration, migrateDataRoot, migrationStatus, type MigrateProgress } from '../src/migrate/index.js'
import { listImages, Store } from '../src/store/index.js'
import { MNT_DETACH, mount, umount2 } from '../src/sys/index.js'
import { CHANGE_SCRIPT, CHANGED_OUTPUT } from './helpers/aufs-root.js'
import { loadImage, startToExit } from './helpers/container-env.js'
import { bootId, processStartTime } from '../src/containerdb/index.js'
import { IMAGE_TAG, readDockerArchive, threeLayerArchive } from './helpers/docker-image.js'
import { mountsAtOrUnder } from './helpers/dockerd.js'
import { makeImage } from './helpers/image-fixtures.js'
import { randomBytesSeeded } from './helpers/fixtures.js'
import { debootstrapTar } from './helpers/debootstrap.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { STRATA_CLI, strata, strataOnTty } from './helpers/strata-cli.js'
import { diffTrees, snapshotTree, type TreeEntry } from './helpers/tree.js'

const PREFIX = 'strata-test-migrate-'

/** A scratch dir; unmounted (failing the test if anything was left mounted) and removed when `t` ends. */
async function scratch(t: TestContext, base = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(base, PREFIX))
  t.after(async () => {
    const left = mountsAtOrUnder([dir])
    for (const m of left) umount2(m, MNT_DETACH)
    await rm(dir, { recursive: true, force: true })
    assert.deepEqual(left, [], `mounts left under ${dir}`)
  })
  return dir
}

async function expectError(what: Promise<unknown>, code: StrataErrorCode, ...mentions: string[]): Promise<void> {
  await assert.rejects(what, (err: unknown) => {
    assert.ok(isStrataError(err), `expected a StrataError ${code}, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    for (const m of mentions) assert.ok(err.message.includes(m), `the message should name "${m}": ${err.message}`)
    return true
  })
}

/** A container's filesystem for comparison across drivers: link counts and inode groups left out (copy-up breaks hardlinks, fuse-overlayfs counts lazily). */
async function viewOf(store: Store, id: string): Promise<Map<string, TreeEntry>> {
  const rootfs = await mountContainer(store, id)
  try {
    const snap = await snapshotTree(rootfs, { ignore: (rel) => rel === '.' })
    for (const e of snap.values()) {
      e.nlink = 0
      delete e.inodeGroup
    }
    return snap
  } finally {
    await unmountContainer(store, id)
  }
}

/** What must survive a migration, read from an open store. */
interface Facts {
  images: Array<[string, string[]]>
  layers: Array<{ chainId: Digest; diffId: Digest; parent: Digest | null; cacheId: string }>
  containers: string[]
  views: Map<string, Map<string, TreeEntry>>
  mountIds: Map<string, string>
}

async function factsOf(store: Store): Promise<Facts> {
  const views = new Map<string, Map<string, TreeEntry>>()
  const mountIds = new Map<string, string>()
  const containers = (await store.containers.list()).map((c) => c.id).sort()
  for (const id of containers) {
    views.set(id, await viewOf(store, id))
    mountIds.set(id, (await store.layers.getMount(id)).mountId)
  }
  return {
    images: (await listImages(store)).map((i) => [i.Id, i.RepoTags] as [string, string[]]),
    layers: (await store.layers.list()).map((l) => ({ chainId: l.chainId, diffId: l.diffId, parent: l.parent, cacheId: l.cacheId })),
    containers,
    views,
    mountIds,
  }
}

/** A root on `driver` with the 3-layer image, a container that ran CHANGE_SCRIPT and one that never ran. */
async function rootWithContainers(t: TestContext, driver: string, base?: string): Promise<{ root: string; changed: string; before: Facts }> {
  const root = join(await scratch(t, base), 'root')
  const image = await readDockerArchive(await threeLayerArchive(t))
  const store = await Store.open({ root, driver })
  try {
    await loadImage(store, image)
    const changed = await createContainer(store, IMAGE_TAG, { name: 'changed', cmd: ['sh', '-c', CHANGE_SCRIPT] })
    assert.equal((await startToExit(store, changed.id)).code, 0)
    await createContainer(store, IMAGE_TAG, { name: 'fresh', cmd: ['cat', '/data/one'] })
    return { root, changed: changed.id, before: await factsOf(store) }
  } finally {
    await run('runc', ['delete', '--force', (await store.containers.list())[0]?.id ?? 'none']).catch(() => {})
    await store.close()
  }
}

/** Everything types.ts promises about a finished migration from `before` to the store now on `to`. */
async function assertMigrated(root: string, to: string, before: Facts, changed: string): Promise<void> {
  const store = await Store.open({ root, driver: to })
  try {
    assert.equal(store.driver.name, to)
    const after = await factsOf(store)
    assert.deepEqual(after.images, before.images, 'image IDs and tags are unchanged')
    assert.deepEqual(after.layers.map((l) => [l.chainId, l.diffId, l.parent]), before.layers.map((l) => [l.chainId, l.diffId, l.parent]), 'chainIDs, diffIDs and parents are unchanged')
    for (const [i, l] of after.layers.entries()) assert.notEqual(l.cacheId, before.layers[i]!.cacheId, 'every layer has a new cache-id')
    assert.deepEqual(after.containers, before.containers)
    for (const id of after.containers) {
      assert.notEqual(after.mountIds.get(id), before.mountIds.get(id), 'every mount has a new mount-id')
      assert.deepEqual(diffTrees(after.views.get(id)!, before.views.get(id)!), [], `container ${id} shows the same files`)
      const record = JSON.parse(await readFile(join(root, 'containers', id, 'config.v2.json'), 'utf8')) as { Driver: string }
      assert.equal(record.Driver, to, "the container record names the new driver, as dockerd requires")
    }
    for (const l of after.layers) {
      const { stream, verified } = await store.layers.export(l.chainId)
      const chunks: Buffer[] = []
      for await (const c of stream) chunks.push(c as Buffer)
      assert.equal(sha256Of(Buffer.concat(chunks)), l.diffId)
      assert.equal((await verified).fromTarSplit, true)
    }
    assert.deepEqual(await store.check(), [])
    let out = ''
    const ran = await startToExit(store, changed)
    out += ran.stdout
    assert.equal(ran.code, 0)
    assert.equal(out, CHANGED_OUTPUT, 'the container runs on the new driver and finds its changes')
  } finally {
    await run('runc', ['delete', '--force', changed]).catch(() => {})
    await store.close()
  }
}

const needs = (t: TestContext): boolean => requireRoot(t) && requireTool(t, 'fuse-overlayfs', 'runc', 'busybox', 'tar')

describe('strata migrate between drivers (library)', () => {
  const pairs: Array<[string, string]> = [
    ['aufs', 'overlay2'],
    ['aufs', 'vfs'],
    ['overlay2', 'aufs'],
    ['overlay2', 'vfs'],
    ['vfs', 'overlay2'],
    ['vfs', 'aufs'],
  ]
  for (const [from, to] of pairs) {
    test(`${from} → ${to}: IDs, tags and containers kept, layers verified, containers run; the old trees stay until cleanup`, async (t) => {
      if (!needs(t)) return
      const { root, changed, before } = await rootWithContainers(t, from)
      const events: MigrateProgress[] = []
      const result = await migrateDataRoot({ root, to, onProgress: (e) => events.push(e) })
      assert.equal(result.layersCopied, 3)
      assert.equal(result.mountsCopied, 2)
      assert.equal(result.plan.from, from)
      assert.deepEqual(events.filter((e) => e.kind === 'layer' && e.step === 'done').length, 3, 'a done event per layer')
      assert.ok(events.some((e) => e.kind === 'switch'))
      assert.equal((await migrationStatus(root))?.state, 'done')
      assert.ok(existsSync(join(root, 'strata-migrate', 'source', from)), "the old driver's tree is kept aside")
      assert.ok(!existsSync(join(root, from)) && !existsSync(join(root, 'image', from)), "and out of the root")
      await assertMigrated(root, to, before, changed)
      await expectError(migrateDataRoot({ root, to }), 'INVALID_ARGUMENT', 'already', 'kept')
      const { removed } = await cleanupMigration(root)
      assert.ok(removed.includes(join(root, 'strata-migrate')))
      assert.ok(!existsSync(join(root, 'strata-migrate')))
      assert.deepEqual(await cleanupMigration(root), { removed: [] })
    })
  }
})

/** Writes `path` until its filesystem has no byte left (ENOSPC ends it, quietly). */
function fillUp(path: string): void {
  const fd = openSync(path, 'a')
  try {
    for (let chunk = 1 << 20; chunk >= 512; ) {
      try {
        writeSync(fd, Buffer.alloc(chunk))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
        chunk >>= 1
      }
    }
  } finally {
    closeSync(fd)
  }
}

describe('strata migrate: plans, refusals, crashes', () => {
  test('--dry-run lists what moves, the space and time it needs, and writes nothing', async (t) => {
    if (!needs(t)) return
    const { root } = await rootWithContainers(t, 'aufs')
    const listing = (): string[] => readdirSync(root).sort()
    const before = listing()
    const plan = await migrateDataRoot({ root, to: 'overlay2', dryRun: true })
    assert.deepEqual(listing(), before, 'nothing was written')
    assert.equal(plan.from, 'aufs')
    assert.equal(plan.layers.length, 3)
    assert.equal(plan.mounts.length, 2)
    assert.ok(plan.layers.every((l) => !l.staged))
    assert.ok(plan.spaceNeeded >= plan.layers.reduce((s, l) => s + l.size, 0), 'the space covers the layers')
    assert.ok(plan.spaceFree > 0)
    const vfs = await migrateDataRoot({ root, to: 'vfs', dryRun: true })
    assert.ok(vfs.spaceNeeded > plan.spaceNeeded, 'vfs needs a full copy per layer')
    const cli = await strata(['migrate', '--to', 'overlay2', '--dry-run'], { root })
    assert.equal(cli.code, 0, cli.stderr)
    assert.match(cli.text, /from aufs to overlay2 \(dry run\)/)
    assert.match(cli.text, /3 layers, 2 containers; space needed: about /)
    assert.deepEqual(listing(), before)
    // On a terminal, the real thing draws a bar per layer and per container.
    const tty = await strataOnTty(['migrate', '--to', 'overlay2', '--prune-source'], { root, columns: 150 })
    assert.equal(tty.code, 0, tty.output)
    for (const l of plan.layers) assert.ok(tty.output.includes(`${l.diffId.slice(7, 19)}: Migrating [`), `a bar for layer ${l.diffId}: ${tty.output}`)
    assert.match(tty.output, /Migrated .* from aufs to overlay2: 3 layers and 2 containers copied and verified/)
    assert.match(tty.output, /The aufs trees were deleted/)
  })

  test('refused: a running container, a mounted one, the same driver, an unknown one, a target tree in the way, two drivers\' trees', async (t) => {
    if (!needs(t)) return
    const { root, changed } = await rootWithContainers(t, 'aufs')
    // A container whose monitor is alive: its record says Running, and its monitor file names a live process (PID, start time, boot).
    const sleeper = spawn('sh', ['-c', 'sleep 60', changed], { stdio: 'ignore' })
    t.after(() => sleeper.kill('SIGKILL'))
    const config = join(root, 'containers', changed, 'config.v2.json')
    const original = await readFile(config, 'utf8')
    const running = JSON.parse(original) as { State: { Running: boolean; Pid: number } }
    running.State.Running = true
    running.State.Pid = sleeper.pid!
    await writeFile(config, JSON.stringify(running))
    const monitorFile = join(root, 'containers', changed, 'strata-monitor.json')
    await writeFile(monitorFile, JSON.stringify({ pid: sleeper.pid!, startTime: processStartTime(sleeper.pid!), bootId: bootId() }))
    await expectError(migrateDataRoot({ root, to: 'overlay2' }), 'IN_USE', 'containers run', 'changed')
    await writeFile(config, original)
    await rm(monitorFile)
    sleeper.kill('SIGKILL')

    const store = await Store.open({ root })
    await mountContainer(store, changed)
    await store.close()
    await expectError(migrateDataRoot({ root, to: 'overlay2' }), 'IN_USE', 'mounted')
    const again = await Store.open({ root })
    await unmountContainer(again, changed)
    await again.close()

    await expectError(migrateDataRoot({ root, to: 'aufs' }), 'INVALID_ARGUMENT', 'already uses aufs')
    await expectError(migrateDataRoot({ root, to: 'zfs' }), 'INVALID_ARGUMENT', 'zfs')
    await mkdir(join(root, 'image', 'overlay2'), { recursive: true })
    await expectError(migrateDataRoot({ root, to: 'overlay2' }), 'INVALID_ARGUMENT', join(root, 'image', 'overlay2'))
    await mkdir(join(root, 'image', 'overlay2', 'layerdb', 'sha256', 'a'.repeat(64)), { recursive: true })
    await expectError(migrateDataRoot({ root, to: 'vfs' }), 'INVALID_ARGUMENT', 'several storage drivers', 'aufs', 'overlay2')
    await rm(join(root, 'image', 'overlay2'), { recursive: true })
    assert.ok(!existsSync(join(root, 'strata-migrate')), 'no refusal left anything behind')
  })

  test('a migration stopped half-way through its switch keeps every other strata process out until it is finished', async (t) => {
    if (!needs(t)) return
    const { root, changed, before } = await rootWithContainers(t, 'aufs')
    // Staged and verified, but stopped at the switch: an error thrown from the switch's progress event.
    await assert.rejects(migrateDataRoot({ root, to: 'overlay2', onProgress: (e) => {
      if (e.kind === 'switch') throw new Error('stopped at the switch')
    } }), /stopped at the switch/)
    const journal = JSON.parse(await readFile(join(root, 'strata-migrate', 'journal.json'), 'utf8')) as { state: string }
    assert.equal(journal.state, 'copying', 'the switch had not begun: the root is still the source\'s')
    // As a kill in the middle of the switch leaves it: the journal says switching, the old home is already aside.
    journal.state = 'switching'
    await writeFile(join(root, 'strata-migrate', 'journal.json'), JSON.stringify(journal))
    await mkdir(join(root, 'strata-migrate', 'source', 'image'), { recursive: true })
    await rename(join(root, 'aufs'), join(root, 'strata-migrate', 'source', 'aufs'))
    await expectError(Store.open({ root }), 'IN_USE', 'stopped while switching')
    const cli = await strata(['images'], { root })
    assert.equal(cli.code, 1)
    assert.match(cli.stderr, /hint: run `strata migrate --to overlay2` to finish it/)
    const result = await migrateDataRoot({ root, to: 'overlay2' })
    assert.equal(result.layersCopied, 0)
    await assertMigrated(root, 'overlay2', before, changed)
  })

  test('--abort drops an unfinished migration and leaves the root as it was', async (t) => {
    if (!needs(t)) return
    const { root, changed, before } = await rootWithContainers(t, 'overlay2')
    await assert.rejects(migrateDataRoot({ root, to: 'aufs', onProgress: (e) => {
      if (e.kind === 'mount' && e.step === 'done') throw new Error('stop')
    } }), /stop/)
    assert.equal((await migrationStatus(root))?.state, 'copying')
    const cli = await strata(['migrate', '--abort'], { root })
    assert.equal(cli.code, 0, cli.stderr)
    assert.ok(!existsSync(join(root, 'strata-migrate')))
    assert.deepEqual(readdirSync(join(root)).filter((n) => n === 'aufs'), [])
    const store = await Store.open({ root })
    try {
      assert.equal(store.driver.name, 'overlay2')
      assert.deepEqual((await factsOf(store)).layers, before.layers)
    } finally {
      await store.close()
    }
    void changed
  })

  test('killed with SIGKILL mid-way, `strata migrate` run again continues and finishes', async (t) => {
    if (!needs(t)) return
    const debian = await debootstrapTar()
    const root = join(await scratch(t), 'root')
    const store = await Store.open({ root, driver: 'aufs' })
    try {
      await makeImage(store, {
        layers: [await readFile(debian), tarWith('etc/second', 'two\n'), tarWith('etc/third', 'three\n')],
        created: '2024-01-01T00:00:00Z',
        tags: ['debian-3:latest'],
      })
    } finally {
      await store.close()
    }
    const before = await (async () => {
      const s = await Store.open({ root })
      try {
        return await factsOf(s)
      } finally {
        await s.close()
      }
    })()
    // Killed while the big base layer is being copied (its target layer pending, nothing staged yet).
    const child = spawn(process.execPath, [STRATA_CLI, '--root', root, 'migrate', '--to', 'overlay2', '-q'], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
    const pending = join(root, 'strata-migrate', 'pending')
    const deadline = Date.now() + 60_000
    while (!(existsSync(pending) && readdirSync(pending).length > 0)) {
      assert.ok(Date.now() < deadline, `the migration never started copying: ${stderr}`)
      await sleep(5)
    }
    await sleep(300)
    child.kill('SIGKILL')
    assert.equal(await exited, null, 'killed, not finished')
    assert.equal((await migrationStatus(root))?.state, 'copying')
    assert.ok(readdirSync(pending).length > 0, 'a pending target layer was left behind')
    // The root is still the source's, usable by other commands.
    const images = await strata(['images', '-q'], { root })
    assert.equal(images.code, 0, images.stderr)
    const resumed = await strata(['migrate', '--to', 'overlay2'], { root })
    assert.equal(resumed.code, 0, resumed.stderr)
    assert.match(resumed.text, /Migrated .* from aufs to overlay2: 3 layers and 0 containers copied and verified/)
    const s = await Store.open({ root })
    try {
      assert.equal(s.driver.name, 'overlay2')
      const after = await factsOf(s)
      assert.deepEqual(after.images, before.images)
      assert.deepEqual(after.layers.map((l) => l.diffId), before.layers.map((l) => l.diffId))
      assert.deepEqual(await s.check(), [])
      // Nothing of the killed run is left in the target driver: only the three layers.
      assert.equal(readdirSync(join(root, 'overlay2')).filter((n) => /^[a-f0-9]{64}$/.test(n)).length, 3)
    } finally {
      await s.close()
    }
    const cleanup = await strata(['system', 'migrate', '--cleanup'], { root })
    assert.equal(cleanup.code, 0, cleanup.stderr)
    assert.ok(!existsSync(join(root, 'strata-migrate')))
  })

  test('a migrated copy that does not rebuild to its diffID is refused before anything is staged, and the root stays as it was', async (t) => {
    if (!needs(t)) return
    const dir = await scratch(t)
    const root = join(dir, 'root')
    const store = await Store.open({ root, driver: 'aufs' })
    let imageId: string
    try {
      const made = await makeImage(store, {
        layers: [tarWith('big', randomBytesSeeded(1 << 20, 3)), tarWith('bigger', randomBytesSeeded(1 << 20, 4))],
        created: '2024-01-01T00:00:00Z',
        tags: ['big:latest'],
      })
      imageId = made.id
    } finally {
      await store.close()
    }
    // The target's copy of the first layer is changed by one byte between its apply and its verify.
    const vfsHome = join(root, 'strata-migrate', 'stage', 'vfs', 'dir')
    const failure = await migrateDataRoot({ root, to: 'vfs', onProgress: (e) => {
      if (e.kind !== 'layer' || e.index !== 0 || e.step !== 'verify') return
      for (const id of readdirSync(vfsHome)) {
        const file = join(vfsHome, id, 'big')
        if (!existsSync(file)) continue
        const fd = openSync(file, 'r+')
        writeSync(fd, Buffer.from([0x5a]), 0, 1, 1000)
        closeSync(fd)
      }
    } }).then(() => undefined, (err: unknown) => err)
    assert.ok(isStrataError(failure), `the migration fails with a StrataError: ${String(failure)}`)
    // tar-split's CRC-64 of the file catches it before the diffID does.
    assert.equal(failure.code, 'CORRUPT', failure.message)
    assert.match(failure.message, /the migrated copy of layer sha256:[a-f0-9]{64} \(1 of 2\) in vfs: file "big" changed/)
    assert.deepEqual(readdirSync(join(root, 'strata-migrate', 'stage', 'image', 'vfs', 'layerdb', 'sha256')), [], 'nothing staged')
    await abortMigration(root)
    const s = await Store.open({ root })
    try {
      assert.equal(s.driver.name, 'aufs')
      assert.deepEqual((await listImages(s)).map((i) => i.Id), [imageId])
    } finally {
      await s.close()
    }
  })

  test('a disk that fills up mid-migration stops it with a clear error; with space again it continues where it stopped', async (t) => {
    if (!needs(t)) return
    const dir = await scratch(t)
    const fs = join(dir, 'small')
    await mkdir(fs)
    mount('tmpfs', fs, 'tmpfs', 0, 'size=96m,mode=0755')
    // Unmounted here, before scratch's own check that nothing is left mounted.
    try {
      const root = join(fs, 'root')
      const store = await Store.open({ root, driver: 'aufs' })
      let imageId: string
      try {
        const made = await makeImage(store, {
          layers: [tarWith('big', randomBytesSeeded(16 << 20, 1)), tarWith('bigger', randomBytesSeeded(12 << 20, 2))],
          created: '2024-01-01T00:00:00Z',
          tags: ['big:latest'],
        })
        imageId = made.id
      } finally {
        await store.close()
      }
      // vfs needs a full copy per layer: 16 + 28 MiB. Once the first layer is staged, a filler takes every
      // byte left, so the second fails: in its apply if that still runs (the migration applies a layer
      // while it verifies the one below), or else when its verify stages it, which comes after.
      const filler = join(fs, 'filler')
      const failure = await migrateDataRoot({ root, to: 'vfs', onProgress: (e) => {
        if (e.kind === 'layer' && e.index === 0 && e.step === 'done') fillUp(filler)
      } }).then(() => undefined, (err: unknown) => err)
      assert.ok(isStrataError(failure), `the migration fails with a StrataError: ${String(failure)}`)
      assert.match(failure.message, /Migrating layer sha256:[a-f0-9]{64} \(2 of 2\) failed: no space left on the device/)
      assert.match(failure.hint ?? '', /run the same `strata migrate` again/)
      assert.equal((await migrationStatus(root))?.state, 'copying')
      assert.equal(readdirSync(join(root, 'strata-migrate', 'stage', 'image', 'vfs', 'layerdb', 'sha256')).length, 1, 'the first layer stays staged')
      await rm(filler)
      const events: MigrateProgress[] = []
      const result = await migrateDataRoot({ root, to: 'vfs', pruneSource: true, onProgress: (e) => events.push(e) })
      assert.equal(result.layersCopied, 1, 'only the second layer is copied again')
      assert.ok(events.some((e) => e.kind === 'layer' && e.index === 0 && e.step === 'staged'))
      assert.equal(result.sourceKeptAt, undefined)
      assert.ok(!existsSync(join(root, 'strata-migrate')))
      const s = await Store.open({ root, driver: 'vfs' })
      try {
        assert.deepEqual((await listImages(s)).map((i) => i.Id), [imageId])
        const top = topChainId((await s.images.get(imageId)).config)!
        const { stream, verified } = await s.layers.export(top)
        for await (const _ of stream) void _
        assert.equal((await verified).matches, true)
      } finally {
        await s.close()
      }
    } finally {
      umount2(fs, MNT_DETACH)
    }
  })
})

/** A layer tar of one regular file. */
function tarWith(name: string, content: string | Buffer): Buffer {
  const body = Buffer.isBuffer(content) ? content : Buffer.from(content)
  return Buffer.concat([encodeHeader({ name, type: 'file', mode: 0o644, size: body.length, mtime: { sec: 1700000000, nsec: 0 } }), body, padding(body.length), END_OF_ARCHIVE])
}
