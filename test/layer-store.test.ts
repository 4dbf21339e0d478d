/**
 * The layer store on real drivers (vfs and overlay2), as root: registering
 * real GNU tars (a busybox rootfs, then a child with whiteouts, an opaque
 * dir and makeRichTree), layerdb's files byte for byte, the chainID rule,
 * byte-identical export, gzip input, duplicates, failures that leave no
 * trace, reference counting (children, images, handles in another
 * process) and check/repair. Every test has its own data root, removed
 * (after unmounting anything left) however the test ends.
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { chmod, lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { gunzipSync, gzipSync } from 'node:zlib'
import { after, before, describe, test, type TestContext } from 'node:test'
import { TarParser } from '../src/archive/tar/index.js'
import { TarSplitRecorder } from '../src/archive/tarsplit/index.js'
import { chainId, digestHex, sha256Of } from '../src/digest/index.js'
import { isStrataError } from '../src/errors/index.js'
import { LayerStore, listDriverLayerIds, type ChainID, type LayerHandle } from '../src/layer/index.js'
import { makeBusyboxRootfs, makeRichTree } from './helpers/fixtures.js'
import { run } from './helpers/peers.js'
import { snapshotTree } from './helpers/tree.js'
import { canRunLayerTests, collect, layerEnv, spawnStoreProcess, type LayerEnv } from './helpers/layer-env.js'

const TAR_CREATE = ['--format=posix', '--xattrs', '--xattrs-include=*', '--numeric-owner']
const DRIVERS = ['vfs', 'overlay2'] as const

// ---------------------------------------------------------------------------
// Fixtures: built once for the file.

interface Tars {
  dir: string
  base: string
  child: string
  baseGz: string
}
let tars: Tars | undefined

before(async () => {
  if (process.getuid?.() !== 0) return
  const dir = mkdtempSync(join(tmpdir(), 'strata-test-layer-tars-'))
  const base = join(dir, 'base')
  await makeBusyboxRootfs(base)
  // Something for the child's opaque directory to hide.
  await mkdir(join(base, 'var/lib/old'), { recursive: true })
  await writeFile(join(base, 'var/lib/old/a'), 'old a\n')
  await writeFile(join(base, 'var/lib/old/b'), 'old b\n')
  const child = join(dir, 'child')
  await mkdir(child)
  await makeRichTree(join(child, 'rich'))
  await mkdir(join(child, 'etc'))
  await writeFile(join(child, 'etc/.wh.hostname'), '') // deletes etc/hostname
  await mkdir(join(child, 'var/lib/old'), { recursive: true })
  await writeFile(join(child, 'var/lib/old/.wh..wh..opq'), '') // hides a and b
  await writeFile(join(child, 'var/lib/old/new'), 'new\n')
  for (const d of ['etc', 'var', 'var/lib', 'var/lib/old']) await chmod(join(child, d), 0o755)
  tars = { dir, base: join(dir, 'base.tar'), child: join(dir, 'child.tar'), baseGz: join(dir, 'base.tar.gz') }
  await run('tar', [...TAR_CREATE, '-cf', tars.base, '-C', base, '.'])
  await run('tar', [...TAR_CREATE, '-cf', tars.child, '-C', child, '.'])
  await writeFile(tars.baseGz, gzipSync(readFileSync(tars.base)))
  rmSync(base, { recursive: true, force: true })
  rmSync(child, { recursive: true, force: true })
})

after(() => {
  if (tars !== undefined) rmSync(tars.dir, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------
// Helpers

interface Env extends LayerEnv {
  store: LayerStore
}

/** A fresh data root with `name`'s driver and a store whose images are `env.images`; torn down when `t` ends. */
async function setup(t: TestContext, name: string): Promise<Env> {
  const env = await layerEnv(t, name)
  return { ...env, store: await env.open() }
}

async function register(env: Env, file: string, parent: ChainID | null): Promise<LayerHandle> {
  return (await env.store.register(createReadStream(file), parent)).layer
}

/** The tar-split lines our recorder makes for `tar` (what register must have stored). */
function tarSplitLines(tar: Buffer): string[] {
  const lines: string[] = []
  const parser = new TarParser(new TarSplitRecorder((l) => lines.push(l)))
  parser.write(tar)
  parser.end()
  return lines.join('').split('\n').filter((l) => l !== '')
}

async function modeOf(path: string): Promise<number> {
  return (await lstat(path)).mode & 0o7777
}

/**
 * Everything under the data root that a failed operation must leave alone.
 * Not overlay2's `committed` markers: creating a child rewrites the
 * parent's (dockerd does too), and the tests' parents have one already.
 */
async function snapshotRoot(root: string): Promise<Map<string, unknown>> {
  return snapshotTree(root, { dirMtimes: false, ignore: (rel) => rel === 'strata.lock' || /^overlay2\/[^/]+\/committed$/.test(rel) })
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isStrataError(err), `expected a StrataError, got ${String(err)}`)
    assert.equal(err.code, code, err.message)
    return true
  })
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())))
}

// ---------------------------------------------------------------------------

for (const driverName of DRIVERS) {
  describe(`layer store on ${driverName}`, () => {
    test('register writes dockerd’s layerdb files, byte for byte, and the chainID rule holds', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const baseTar = readFileSync(tars!.base)
      const childTar = readFileSync(tars!.child)
      const baseRes = await env.store.register(createReadStream(tars!.base), null)
      const base = baseRes.layer
      env.defer(() => base.release())
      assert.equal(baseRes.created, true)
      assert.equal(baseRes.sourceRead, true)
      assert.equal(baseRes.compression, 'none')
      assert.equal(base.diffId, sha256Of(baseTar))
      assert.equal(base.chainId, base.diffId, 'chainID(1) = diffID(1)')
      assert.equal(baseRes.digest, base.diffId)
      assert.equal(baseRes.compressedSize, baseTar.length)
      assert.equal(base.parent, null)
      assert.match(base.cacheId, /^[a-f0-9]{64}$/)
      assert.ok(await env.driver.exists(base.cacheId))

      const child = (await env.store.register(createReadStream(tars!.child), base.chainId)).layer
      env.defer(() => child.release())
      assert.equal(child.diffId, sha256Of(childTar))
      assert.equal(child.chainId, sha256Of(`${base.chainId} ${child.diffId}`), 'chainID(n) = sha256(chainID(n-1) + " " + diffID(n))')
      assert.equal(child.chainId, chainId([base.diffId, child.diffId]))
      assert.equal(child.parent, base.chainId)

      const layerdb = join(env.root, 'image', driverName, 'layerdb')
      assert.equal(await modeOf(layerdb), 0o700)
      assert.equal(await modeOf(join(layerdb, 'sha256')), 0o755)
      for (const [layer, tar] of [
        [base, baseTar],
        [child, childTar],
      ] as const) {
        const dir = join(layerdb, 'sha256', digestHex(layer.chainId))
        assert.equal(await modeOf(dir), 0o700)
        const names = (await readdir(dir)).sort()
        assert.deepEqual(names, layer.parent === null ? ['cache-id', 'diff', 'size', 'tar-split.json.gz'] : ['cache-id', 'diff', 'parent', 'size', 'tar-split.json.gz'])
        for (const n of names) assert.equal(await modeOf(join(dir, n)), 0o644, n)
        assert.equal(await readFile(join(dir, 'diff'), 'utf8'), layer.diffId)
        assert.equal(await readFile(join(dir, 'cache-id'), 'utf8'), layer.cacheId)
        assert.equal(await readFile(join(dir, 'size'), 'utf8'), String(layer.size))
        if (layer.parent !== null) assert.equal(await readFile(join(dir, 'parent'), 'utf8'), layer.parent)
        const stored = gunzipSync(await readFile(join(dir, 'tar-split.json.gz'))).toString().split('\n').filter((l) => l !== '')
        assert.deepEqual(stored, tarSplitLines(tar))
        assert.deepEqual(await env.store.info(layer.chainId), { chainId: layer.chainId, diffId: layer.diffId, parent: layer.parent, cacheId: layer.cacheId, size: layer.size, hasTarSplit: true })
      }
      assert.ok(base.size > 0)
      assert.deepEqual(await readdir(join(layerdb, 'tmp')), [], 'no transaction left')
      assert.deepEqual(
        (await env.store.list()).map((l) => l.chainId).sort(),
        [base.chainId, child.chainId].sort(),
      )
      assert.deepEqual(await env.store.diffIdsOf(child.chainId), [base.diffId, child.diffId])
      assert.equal(env.store.chainOf([base.diffId, child.diffId]), child.chainId)
      assert.equal(await env.store.has(child.chainId), true)
      assert.equal(await env.store.has(sha256Of('nothing')), false)

      // The child's whiteouts took effect in the driver.
      const rootfs = await env.driver.get(child.cacheId)
      try {
        await assert.rejects(lstat(join(rootfs, 'etc/hostname')), { code: 'ENOENT' })
        assert.deepEqual((await readdir(join(rootfs, 'var/lib/old'))).sort(), ['new'])
        assert.equal(await readFile(join(rootfs, 'etc/passwd'), 'utf8'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n')
      } finally {
        await env.driver.put(child.cacheId)
      }
    })

    test('export is byte-identical to the registered tar, and gzip input gives the same diffID', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await register(env, tars!.base, null)
      env.defer(() => base.release())
      const child = await register(env, tars!.child, base.chainId)
      env.defer(() => child.release())
      for (const [layer, file] of [
        [base, tars!.base],
        [child, tars!.child],
      ] as const) {
        const exp = await env.store.export(layer.chainId)
        const out = join(env.root, 'export.tar')
        await writeFile(out, await collect(exp.stream))
        await run('cmp', [file, out])
        assert.deepEqual(await exp.verified, { digest: layer.diffId, matches: true, fromTarSplit: true })
      }

      const before = await listDriverLayerIds(env.driver)
      const gz = await env.store.register(createReadStream(tars!.baseGz), null)
      env.defer(() => gz.layer.release())
      assert.equal(gz.created, false, 'the same content is the same layer')
      assert.equal(gz.layer.chainId, base.chainId)
      assert.equal(gz.layer.cacheId, base.cacheId)
      assert.equal(gz.compression, 'gzip')
      assert.equal(gz.digest, sha256Of(readFileSync(tars!.baseGz)))
      assert.equal(gz.compressedSize, readFileSync(tars!.baseGz).length)
      assert.deepEqual(await listDriverLayerIds(env.driver), before, 'the duplicate left no driver layer')
      assert.deepEqual(await readdir(env.store.paths.tmp), [], 'the duplicate left no transaction')
    })

    test('two registrations of one layer at once: one creates it, the other gets it, nothing is left over', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const [a, b] = await Promise.all([
        env.store.register(createReadStream(tars!.base), null),
        env.store.register(createReadStream(tars!.baseGz), null),
      ])
      env.defer(() => a.layer.release())
      env.defer(() => b.layer.release())
      assert.deepEqual([a.created, b.created].sort(), [false, true])
      assert.equal(a.layer.chainId, b.layer.chainId)
      assert.equal(a.layer.cacheId, b.layer.cacheId)
      assert.deepEqual(await listDriverLayerIds(env.driver), [a.layer.cacheId])
      assert.deepEqual(await readdir(env.store.paths.tmp), [])
    })

    test('an export abandoned midway settles verified and drops its hold', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await register(env, tars!.base, null)
      env.images.add(base.chainId)
      await base.release()
      const exp = await env.store.export(base.chainId)
      for await (const chunk of exp.stream) {
        assert.ok((chunk as Buffer).length > 0)
        break // destroys the stream
      }
      await assert.rejects(exp.verified, /abandoned/)
      // Not read at all: the same.
      const unread = await env.store.export(base.chainId)
      unread.stream.destroy()
      await assert.rejects(unread.verified, /abandoned/)
      // Nobody holds the layer any more, and exporting did not collect it.
      assert.ok(await env.store.has(base.chainId))
      env.images.clear()
      assert.deepEqual(await env.store.collect(base.chainId), [base.chainId])
    })

    test('a known expectedDiffId skips the source unread', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await register(env, tars!.base, null)
      env.defer(() => base.release())
      let reads = 0
      const source = new Readable({
        read() {
          reads++
          this.destroy(new Error('must not be read'))
        },
      })
      const res = await env.store.register(source, null, { expectedDiffId: base.diffId })
      env.defer(() => res.layer.release())
      assert.equal(res.created, false)
      assert.equal(res.sourceRead, false)
      assert.equal(res.layer.chainId, base.chainId)
      assert.equal(reads, 0)
      assert.equal(source.destroyed, true)
    })

    test('failed registrations leave layerdb, tmp and the driver exactly as before', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await register(env, tars!.base, null)
      env.defer(() => base.release())
      // A first child, so overlay2's `committed` marker on the base already exists.
      const child = await register(env, tars!.child, base.chainId)
      env.defer(() => child.release())
      const before = await snapshotRoot(env.root)
      const childTar = readFileSync(tars!.child)

      // Truncated in the middle of an entry.
      await assert.rejects(env.store.register(Readable.from([childTar.subarray(0, Math.floor(childTar.length / 2) + 7)]), base.chainId))
      assert.deepEqual(await snapshotRoot(env.root), before, 'after a truncated tar')
      await assert.rejects(env.store.register(Readable.from([childTar.subarray(0, 700)]), null))
      assert.deepEqual(await snapshotRoot(env.root), before, 'after a truncated base tar')

      // Wrong expected diffID.
      let progress = 0
      await expectCode(
        env.store.register(createReadStream(tars!.child), base.chainId, { expectedDiffId: sha256Of('something else'), onProgress: (n) => (progress = n) }),
        'DIGEST_MISMATCH',
      )
      assert.equal(progress, childTar.length, 'onProgress saw every byte')
      assert.deepEqual(await snapshotRoot(env.root), before, 'after a wrong expectedDiffId')

      // Missing parent.
      const source = createReadStream(tars!.child)
      await expectCode(env.store.register(source, sha256Of('no such layer')), 'NOT_FOUND')
      assert.equal(source.destroyed, true)
      assert.deepEqual(await snapshotRoot(env.root), before, 'after a missing parent')

      // A source that fails.
      const failing = new Readable({ read() {} })
      failing.push(childTar.subarray(0, 4096))
      setTimeout(() => failing.destroy(new Error('network went away')), 50)
      await assert.rejects(env.store.register(failing, base.chainId), /network went away/)
      assert.deepEqual(await snapshotRoot(env.root), before, 'after a source error')

      // A source that fails while register() still looks up the parent (before it reads the
      // source): the error is the registration's, not an uncaught exception that kills the process.
      const failsAtOnce = new Readable({ read() {} })
      const pending = env.store.register(failsAtOnce, base.chainId)
      failsAtOnce.destroy(new Error('failed during the parent lookup'))
      await assert.rejects(pending, /failed during the parent lookup/)
      assert.deepEqual(await snapshotRoot(env.root), before, 'after a source that failed during the parent lookup')

      // Sources that failed, or were closed, before register() got them: an error, not a wait forever.
      for (const withProgress of [false, true]) {
        const failedEarly = new Readable({ read() {} })
        failedEarly.on('error', () => {})
        failedEarly.destroy(new Error('failed before register'))
        await new Promise((r) => setImmediate(r))
        const opts = withProgress ? { onProgress: () => {} } : {}
        await assert.rejects(env.store.register(failedEarly, base.chainId, opts), /failed before register/)
        const closedEarly = new Readable({ read() {} })
        closedEarly.destroy()
        await new Promise((r) => setImmediate(r))
        await assert.rejects(env.store.register(closedEarly, base.chainId, opts), /premature close/i)
      }
      assert.deepEqual(await snapshotRoot(env.root), before, 'after sources that failed early')
    })

    test('registerChain: a stack in one call, a slow source above a fast one, and all or nothing when a layer is bad', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const baseTar = readFileSync(tars!.base)
      const childTar = readFileSync(tars!.child)
      const before = await snapshotRoot(env.root)
      const delayed = (bytes: Buffer, ms: number) => async (): Promise<Readable> => {
        // The layer below may be applied and committed meanwhile (overlay2 applies them side by side).
        await new Promise((r) => setTimeout(r, ms))
        return Readable.from([bytes])
      }
      const layers = [
        { open: async () => Readable.from([baseTar]), expectedDiffId: sha256Of(baseTar) },
        { open: delayed(childTar, 500), expectedDiffId: sha256Of(childTar) },
      ]
      // A bad top layer: nothing of the call is kept, not even the good base.
      await expectCode(env.store.registerChain([layers[0]!, { ...layers[1]!, expectedDiffId: sha256Of('not the child') }], null), 'DIGEST_MISMATCH')
      assert.deepEqual(await snapshotRoot(env.root), before, 'after a chain whose top layer is bad')

      const results = await env.store.registerChain(layers, null)
      // In the env's cleanup, before its root goes (a t.after hook here would run after that, and its releases' lock
      // would make the removed root anew).
      env.defer(async () => {
        for (const r of [...results].reverse()) await r.layer.release()
      })
      assert.deepEqual(
        results.map((r) => [r.created, r.layer.chainId]),
        [
          [true, sha256Of(baseTar)],
          [true, chainId([sha256Of(baseTar), sha256Of(childTar)])],
        ],
      )
      assert.equal(results[1]!.layer.parent, results[0]!.layer.chainId)
    })

    test('registerChain: side by side, the largest source is opened first', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const baseTar = readFileSync(tars!.base)
      const childTar = readFileSync(tars!.child)
      const opened: number[] = []
      const layer = (i: number, bytes: Buffer, size: number) => ({
        open: async (): Promise<Readable> => {
          opened.push(i)
          return Readable.from([bytes])
        },
        expectedDiffId: sha256Of(bytes),
        size,
      })
      // Two slots, two layers: both start at once, the top one (said to be the larger) first.
      const results = await env.store.registerChain([layer(0, baseTar, 1), layer(1, childTar, 1000)], null, { concurrency: 2 })
      // In the env's cleanup, before its root goes (a t.after hook here would run after that, and its releases' lock
      // would make the removed root anew).
      env.defer(async () => {
        for (const r of [...results].reverse()) await r.layer.release()
      })
      // Drivers that apply on the parent's files (vfs copies it) go one by one, bottom-up.
      assert.deepEqual(opened, env.store.driver.parallelApply === true ? [1, 0] : [0, 1])
      assert.deepEqual(
        results.map((r) => r.layer.chainId),
        [sha256Of(baseTar), chainId([sha256Of(baseTar), sha256Of(childTar)])],
      )
    })

    test('a failed registration or mount leaves an unreferenced parent as it found it', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await register(env, tars!.base, null)
      env.images.add(base.chainId)
      await base.release()
      env.images.clear() // now nothing refers to it, as after a crash between layers and image
      await expectCode(env.store.register(createReadStream(tars!.child), base.chainId, { expectedDiffId: sha256Of('wrong') }), 'DIGEST_MISMATCH')
      assert.ok(await env.store.has(base.chainId), 'the failed registration did not collect its parent')
      await expectCode(env.store.createMount('bad name', base.chainId), 'INVALID_ARGUMENT')
      await env.store.createMount('ok', base.chainId)
      await expectCode(env.store.createMount('ok', base.chainId), 'ALREADY_EXISTS')
      await env.store.removeMount('ok')
      assert.equal(await env.store.has(base.chainId), false, 'removing the last mount on it collects it')
    })

    test('references: children and images keep layers, the last release deletes', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const sha256Dir = env.store.paths.sha256
      const base = await register(env, tars!.base, null)
      const child = await register(env, tars!.child, base.chainId)
      await base.release()
      await base.release() // a second release does nothing
      assert.ok(await env.store.has(base.chainId), 'the child keeps its parent')

      // An image on the child keeps both.
      env.images.add(child.chainId)
      await child.release()
      assert.ok(await env.store.has(child.chainId))
      assert.ok(await env.store.has(base.chainId))

      // A handle keeps a layer the image no longer does.
      const again = await env.store.get(child.chainId)
      env.images.clear()
      assert.deepEqual(await env.store.collect(child.chainId), [], 'held layers are not collected')
      assert.ok(await env.store.has(child.chainId))
      await again.release()
      assert.equal(await env.store.has(child.chainId), false, 'the last release deleted the child')
      assert.equal(await env.store.has(base.chainId), false, 'and then its parent')
      assert.deepEqual(await readdir(sha256Dir), [], 'no -removing directory left')
      assert.deepEqual(await listDriverLayerIds(env.driver), [], 'no driver data left')
      await expectCode(env.store.get(base.chainId), 'NOT_FOUND')
    })

    test('a handle held by another process prevents deletion', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await register(env, tars!.base, null)
      const { child, line } = spawnStoreProcess(
        env.root,
        driverName,
        `const h = await store.get(${JSON.stringify(base.chainId)})
         console.log('holding ' + h.cacheId)
         await new Promise((r) => process.stdin.on('end', r).resume())
         await h.release()
         console.log('released')`,
      )
      env.defer(() => {
        child.kill('SIGKILL')
      })
      assert.equal(await line(), `holding ${base.cacheId}`)
      await base.release()
      assert.ok(await env.store.has(base.chainId), 'the other process still holds it')
      assert.ok(await env.driver.exists(base.cacheId))

      // The other process lets go: its release deletes the layer.
      child.stdin!.end()
      assert.equal(await line(), 'released')
      await exited(child)
      assert.equal(await env.store.has(base.chainId), false)
      assert.equal(await env.driver.exists(base.cacheId), false)
    })

    test('a handle dies with its process', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await register(env, tars!.base, null)
      const { child, line } = spawnStoreProcess(
        env.root,
        driverName,
        `const h = await store.get(${JSON.stringify(base.chainId)})
         console.log('holding')
         await new Promise(() => {})`,
      )
      env.defer(() => {
        child.kill('SIGKILL')
      })
      assert.equal(await line(), 'holding')
      await base.release()
      assert.ok(await env.store.has(base.chainId))
      child.kill('SIGKILL')
      await exited(child)
      assert.deepEqual(await env.store.collect(base.chainId), [base.chainId])
      assert.equal(await env.driver.exists(base.cacheId), false)
    })

    test('check finds a tampered layer; repair removes it, the layers above it and their mounts', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await register(env, tars!.base, null)
      const child = await register(env, tars!.child, base.chainId)
      env.images.add(child.chainId)
      await env.store.createMount('c1', child.chainId)
      await base.release()
      await child.release()
      assert.deepEqual(await env.store.check(), [], 'a sound store has no problems')

      // Same size, other bytes: only the CRC-64 and the digest can tell.
      const passwd = join(await env.driver.diffFilesDir(base.cacheId), 'etc/passwd')
      const text = await readFile(passwd, 'utf8')
      await writeFile(passwd, text.replace('root:x', 'r00t:x'))

      const found = await env.store.check()
      assert.deepEqual(
        found.map((p) => [p.kind, p.subject]),
        [['layer-content', base.chainId]],
      )
      assert.match(found[0]!.message, /etc\/passwd|diffID/)
      assert.equal(found[0]!.repaired, undefined)
      assert.ok(await env.store.has(base.chainId), 'check without repair changes nothing')

      const repaired = await env.store.check({ repair: true })
      assert.deepEqual(
        repaired.map((p) => [p.kind, p.subject]),
        [
          ['layer-content', base.chainId],
          ['mount-missing-parent', 'c1'],
        ],
      )
      assert.match(repaired[0]!.repaired ?? '', new RegExp(`removed layer ${base.chainId} and the 1 layer\\(s\\) above it: ${child.chainId}`))
      assert.equal(repaired[1]!.repaired, 'removed mount "c1"')
      assert.deepEqual(await env.store.list(), [])
      assert.deepEqual(await env.store.listMounts(), [])
      assert.deepEqual(await listDriverLayerIds(env.driver), [])
      assert.deepEqual(await env.store.check(), [])
    })

    test('without tar-split, export goes through the driver and a mismatch is reported, not fatal', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await register(env, tars!.base, null)
      env.images.add(base.chainId)
      await base.release()
      const { rm } = await import('node:fs/promises')
      await rm(join(env.store.paths.layerDir(base.chainId), 'tar-split.json.gz'))
      assert.equal((await env.store.info(base.chainId)).hasTarSplit, false)
      const exp = await env.store.export(base.chainId)
      const tar = await collect(exp.stream)
      const v = await exp.verified
      assert.equal(v.fromTarSplit, false)
      assert.equal(v.digest, sha256Of(tar))
      assert.equal(v.matches, v.digest === base.diffId)
      // The regenerated tar carries the same files (what register applied), whatever its bytes.
      const { readTar } = await import('../src/archive/tar/index.js')
      const names: string[] = []
      for await (const e of readTar(Readable.from([tar]) as AsyncIterable<Buffer>)) {
        names.push(e.header.name.replace(/^\.?\//, '').replace(/\/$/, ''))
        for await (const _ of e.body()) {
          // skip content
        }
      }
      assert.ok(names.includes('bin/busybox') && names.includes('var/lib/old/a'), names.slice(0, 10).join(', '))
      const problems = await env.store.check({ repair: true })
      if (v.matches) {
        assert.deepEqual(problems, [])
      } else {
        assert.deepEqual(problems.map((p) => [p.kind, p.repaired]), [['layer-content', undefined]], 'reported, and kept')
      }
      assert.ok(await env.store.has(base.chainId))
    })

    test('check reports broken metadata and missing driver data', async (t) => {
      if (!canRunLayerTests(t)) return
      const env = await setup(t, driverName)
      const base = await register(env, tars!.base, null)
      env.images.add(base.chainId)
      await base.release()
      const dir = env.store.paths.layerDir(base.chainId)
      await writeFile(join(dir, 'size'), 'twelve')
      const p1 = await env.store.check()
      assert.deepEqual(p1.map((p) => p.kind), ['layer-metadata'])
      assert.match(p1[0]!.message, /size/)
      await writeFile(join(dir, 'size'), String(base.size))
      await env.driver.remove(base.cacheId)
      const p2 = await env.store.check({ repair: true })
      assert.deepEqual(p2.map((p) => [p.kind, p.repaired]), [['layer-missing-driver-data', `removed layer ${base.chainId}`]])
      assert.deepEqual(await readdir(env.store.paths.sha256), [])
    })
  })
}
