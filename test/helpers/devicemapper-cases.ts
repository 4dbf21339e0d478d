/**
 * The devicemapper driver's own tests, run inside the test VM by
 * test/graphdriver-devicemapper.test.ts (they need device-mapper): the
 * on-disk layout against dockerd's, the pool cross-checked with dmsetup,
 * and bad input (missing or foreign pools, damaged metadata, a full pool,
 * a process killed inside a transaction).
 */
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { statSync } from 'node:fs'
import { mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { isStrataError } from '../../src/errors/index.js'
import { openDevmapperGraph, type DevmapperGraph } from '../../src/graphdriver/devicemapper/index.js'
import { devicePrefix } from '../../src/graphdriver/devicemapper/layout.js'
import { dmCreateDevice, dmDeviceInfo, dmLoadTable, dmRemoveDevice, dmResume } from '../../src/sys/index.js'
import { strata } from './strata-cli.js'

/**
 * Small enough for the guest's /tmp: 4 GB sparse data, 512 MiB thin devices.
 * The base size matters under emulation: mkfs.ext4 with dockerd's
 * arguments (no lazy init) writes the whole inode table and journal, about
 * 100 MB for 2 GB and a quarter of that for 512 MiB, on every fresh root.
 * (xfs needs 300 MB at least.)
 */
export const DM_TEST_OPTIONS: Record<string, string> = {
  'dm.loopdatasize': '4G',
  'dm.loopmetadatasize': '256M',
  'dm.basesize': '512M',
  'dm.fs': 'ext4',
}
const BASE_SIZE = 512 * 1024 ** 2

function dmsetup(...args: string[]): string {
  return execFileSync('dmsetup', args, { encoding: 'utf8' })
}

/** Devices and pools whose names start with the data root's prefix, removed (devices first), so nothing outlives the test. */
export function removePoolOf(root: string): void {
  let st
  try {
    st = statSync(join(root, 'devicemapper'), { bigint: true })
  } catch {
    return
  }
  // The home's device and inode, as DeviceSet names them (new_encode_dev's split of st_dev).
  const prefix = devicePrefix(Number((st.dev >> 8n) & 0xfffn), Number((st.dev & 0xffn) | ((st.dev >> 12n) & 0xfff00n)), st.ino)
  const names = spawnSync('dmsetup', ['ls'], { encoding: 'utf8' }).stdout.split('\n').map((l) => l.split(/\s+/)[0] ?? '').filter((n) => n.startsWith(`${prefix}-`))
  for (const n of names.filter((n) => !n.endsWith('-pool'))) spawnSync('dmsetup', ['remove', '--force', n])
  for (const n of names.filter((n) => n.endsWith('-pool'))) spawnSync('dmsetup', ['remove', n])
}

/** A fresh data root and driver for one test, always shut down (pool removed) and deleted. */
async function withRoot<T>(options: Record<string, string>, fn: (d: DevmapperGraph, root: string) => Promise<T>): Promise<T> {
  const root = await mkdtemp('/tmp/strata-dm-')
  let d: DevmapperGraph | undefined
  try {
    d = await openDevmapperGraph({ root, options })
    return await fn(d, root)
  } finally {
    await d?.shutdown().catch(() => {})
    await rm(root, { recursive: true, force: true })
  }
}

function assertCode(code: string, mention?: string): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(isStrataError(err), `expected a StrataError, got ${String(err)}`)
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`)
    if (mention !== undefined) assert.ok(err.message.includes(mention), `the message should name "${mention}": ${err.message}`)
    return true
  }
}

/**
 * Which cases run: 'focused' is what `npm test` runs on every change (the
 * layout, a full pool, a killed transaction, and the bad-input cases that
 * cost a second or two: missing pools and metadata); 'full' (scripts/vm/suite.sh, `npm run
 * test:vm`) runs them all. Cases outside the focus are skipped with a
 * reason saying where they run.
 */
export type DevmapperSuiteMode = 'focused' | 'full'

export const FOCUS_SKIP_REASON = 'not in the focused VM run of npm test; npm run test:vm (scripts/vm/suite.sh) runs it'

/** Every file under `dir` with its size and content hash (a data root's state, to show a refused open wrote nothing). */
async function treeState(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(e.parentPath, e.name)
    const st = await stat(path)
    out.push(`${path.slice(dir.length)} ${st.mode.toString(8)} ${e.isFile() ? `${st.size} ${st.blocks}` : ''} ${e.isFile() && st.size < 1 << 20 ? (await readFile(path)).toString('base64') : ''}`)
  }
  return out.sort()
}

export function devicemapperCases(mode: DevmapperSuiteMode = 'full'): void {
  /** A case of the full run only. */
  const fullOnly = { skip: mode === 'full' ? false : FOCUS_SKIP_REASON }
  describe('devicemapper layout and pool', () => {
    test("a fresh root is laid out as dockerd's: loop files, metadata JSON, pool and devices named from the home's dev and inode", async () => {
      // xfs here, dockerd's default (the other tests use ext4, whose mounts are faster under emulation).
      await withRoot({ ...DM_TEST_OPTIONS, 'dm.fs': 'xfs' }, async (d, root) => {
        const home = join(root, 'devicemapper')
        assert.equal((await stat(home)).mode & 0o777, 0o700)
        assert.equal((await stat(join(home, 'devicemapper'))).mode & 0o777, 0o700)
        const data = await stat(join(home, 'devicemapper/data'))
        assert.equal(data.size, 4 * 1024 ** 3)
        assert.ok(data.blocks * 512 < data.size, 'the data file is sparse')
        assert.equal(data.mode & 0o777, 0o600)
        assert.equal((await stat(join(home, 'devicemapper/metadata'))).size, 256 * 1024 ** 2)
        const st = await stat(home, { bigint: true })
        const major = Number((st.dev >> 8n) & 0xfffn)
        const minor = Number((st.dev & 0xffn) | ((st.dev >> 12n) & 0xfff00n))
        const prefix = `docker-${major}:${minor}-${st.ino}`
        assert.equal(d.driver.deviceSet.poolName, `${prefix}-pool`)
        // dmsetup sees the same pool: a thin-pool on the two loop devices, transaction id 1 (the base device).
        const table = dmsetup('table', `${prefix}-pool`).trim().split(/\s+/)
        assert.equal(table[2], 'thin-pool')
        assert.equal(dmsetup('status', `${prefix}-pool`).trim().split(/\s+/)[3], '1')
        const meta = JSON.parse(await readFile(join(home, 'metadata/base'), 'utf8')) as Record<string, unknown>
        assert.deepEqual(Object.keys(meta), ['device_id', 'size', 'transaction_id', 'initialized', 'deleted'])
        assert.deepEqual(meta, { device_id: 1, size: BASE_SIZE, transaction_id: 1, initialized: true, deleted: false })
        const set = JSON.parse(await readFile(join(home, 'metadata/deviceset-metadata'), 'utf8')) as Record<string, unknown>
        assert.deepEqual(Object.keys(set), ['next_device_id', 'BaseDeviceUUID', 'BaseDeviceFilesystem'])
        assert.equal(set.BaseDeviceFilesystem, 'xfs')
        assert.match(String(set.BaseDeviceUUID), /^[0-9a-f-]{36}$/)
        assert.deepEqual(JSON.parse(await readFile(join(home, 'metadata/transaction-metadata'), 'utf8')), { open_transaction_id: 1, device_hash: '', device_id: 1 })

        await d.create('layer1', null)
        await d.create('layer2', 'layer1')
        assert.deepEqual(JSON.parse(await readFile(join(home, 'metadata/layer2'), 'utf8')), { device_id: 3, size: BASE_SIZE, transaction_id: 3, initialized: false, deleted: false })
        const dir = await d.get('layer2')
        assert.equal(dir, join(home, 'mnt/layer2/rootfs'))
        assert.equal(await readFile(join(home, 'mnt/layer2/id'), 'utf8'), 'layer2')
        assert.deepEqual(dmsetup('status', `${prefix}-layer2`).trim().split(/\s+/).slice(2, 3), ['thin'])
        assert.deepEqual(await d.getMetadata('layer2'), { DeviceId: '3', DeviceSize: String(BASE_SIZE), DeviceName: `${prefix}-layer2` })
        assert.deepEqual(await d.mountedLayers(), ['layer2'])
        await d.put('layer2')
        // Unmounted: the mount point is gone and the device deactivated, as dockerd 20.10's Put.
        await assert.rejects(stat(join(home, 'mnt/layer2')), { code: 'ENOENT' })
        assert.ok(!dmsetup('ls').includes(`${prefix}-layer2`), dmsetup('ls'))
        const status = Object.fromEntries(await d.status())
        assert.equal(status['Pool Name'], `${prefix}-pool`)
        assert.equal(status['Backing Filesystem'], 'xfs')
        assert.equal(status['Data loop file'], join(home, 'devicemapper/data'))
        assert.equal(status['Base Device Size'], '536.9MB')
        await d.remove('layer2')
        await d.remove('layer1')
        assert.deepEqual((await readdir(join(home, 'metadata'))).filter((n) => !n.startsWith('.')).sort(), ['base', 'deviceset-metadata', 'transaction-metadata'])
      })
    })

    test('create refuses bad ids, unknown storage options and a missing parent; nothing is left behind', fullOnly, async () => {
      await withRoot(DM_TEST_OPTIONS, async (d) => {
        for (const bad of ['', 'base', 'deviceset-metadata', '.tmpx', 'a/b', '..']) {
          await assert.rejects(d.create(bad, null), assertCode('INVALID_ARGUMENT'), JSON.stringify(bad))
        }
        await assert.rejects(d.create('x', null, { storageOpt: { foo: '1' } }), assertCode('INVALID_ARGUMENT', 'foo'))
        await assert.rejects(d.create('x', 'nope'), assertCode('NOT_FOUND', 'nope'))
        assert.equal(await d.exists('x'), false)
      })
    })
  })

  describe('devicemapper through the strata CLI', () => {
    test('strata info shows the pool and its usage as docker info does; strata check verifies the pool against the metadata files', fullOnly, async () => {
      const root = await mkdtemp('/tmp/strata-dm-cli-')
      const opts = Object.entries(DM_TEST_OPTIONS).flatMap(([k, v]) => ['--storage-opt', `${k}=${v}`])
      try {
        const info = await strata([...opts, 'info'], { root, driver: 'devicemapper' })
        assert.equal(info.code, 0, info.stderr)
        assert.match(info.text, /^Storage Driver: devicemapper$/m)
        for (const line of [/^ Pool Name: docker-\d+:\d+-\d+-pool$/m, /^ Pool Blocksize: 65\.54kB$/m, /^ Base Device Size: 536\.9MB$/m, /^ Backing Filesystem: ext4$/m, /^ Data file: \/dev\/loop\d+$/m, /^ Data Space Used: [\d.]+[kMG]?B$/m, /^ Data Space Total: 4\.295GB$/m, /^ Metadata Space Total: 268\.4MB$/m, /^ Data loop file: .*\/devicemapper\/devicemapper\/data$/m, /^ Deferred Removal Enabled: (true|false)$/m]) {
          assert.match(info.text, line)
        }
        const json = await strata([...opts, 'info', '--format', '{{json .DriverStatus}}'], { root, driver: 'devicemapper' })
        const status = new Map(JSON.parse(json.text) as Array<[string, string]>)
        assert.equal(status.get('Backing Filesystem'), 'ext4')
        const clean = await strata([...opts, 'check'], { root, driver: 'devicemapper' })
        assert.deepEqual([clean.code, clean.text], [0, 'No problems found\n'], clean.stderr)
        // A device the metadata records but the pool does not have: check names it, exits 1, repairs nothing.
        const home = join(root, 'devicemapper')
        const base = JSON.parse(await readFile(join(home, 'metadata/base'), 'utf8')) as { size: number }
        await writeFile(join(home, 'metadata/ghost'), JSON.stringify({ device_id: 4242, size: base.size, transaction_id: 1, initialized: true, deleted: false }))
        const bad = await strata([...opts, 'check'], { root, driver: 'devicemapper' })
        assert.equal(bad.code, 1, bad.text + bad.stderr)
        assert.match(bad.text, /^driver ghost: .*4242/m)
        assert.match(bad.stderr, /check found 1 problem/)
        assert.equal(await readFile(join(home, 'metadata/ghost'), 'utf8'), JSON.stringify({ device_id: 4242, size: base.size, transaction_id: 1, initialized: true, deleted: false }))
      } finally {
        removePoolOf(root)
        await rm(root, { recursive: true, force: true })
      }
    })
  })

  describe('devicemapper bad input', () => {
    test('a dm.thinpooldev that does not exist: NOT_FOUND naming it, and nothing written to the data root', async () => {
      const root = await mkdtemp('/tmp/strata-dm-')
      try {
        await assert.rejects(openDevmapperGraph({ root, options: { ...DM_TEST_OPTIONS, 'dm.thinpooldev': '/dev/mapper/no-such-pool' } }), assertCode('NOT_FOUND', 'no-such-pool'))
        assert.deepEqual(await readdir(root), [])
      } finally {
        await rm(root, { recursive: true, force: true })
      }
    })

    test('a dm.thinpooldev that is not a thin pool, and one another data root owns: refused by name', fullOnly, async () => {
      const dir = await mkdtemp('/tmp/strata-dm-pool-')
      const pool = `strata-test-pool-${randomBytes(4).toString('hex')}`
      const linear = `${pool}-linear`
      try {
        await truncate(join(dir, 'data'), 512 * 1024 ** 2).catch(async () => {
          await writeFile(join(dir, 'data'), '')
          await truncate(join(dir, 'data'), 512 * 1024 ** 2)
        })
        await writeFile(join(dir, 'meta'), '')
        await truncate(join(dir, 'meta'), 64 * 1024 ** 2)
        const data = execFileSync('losetup', ['-f', '--show', join(dir, 'data')], { encoding: 'utf8' }).trim()
        const meta = execFileSync('losetup', ['-f', '--show', join(dir, 'meta')], { encoding: 'utf8' }).trim()
        try {
          dmsetup('create', pool, '--table', `0 ${(512 * 1024 ** 2) / 512} thin-pool ${meta} ${data} 128 32768`)
          dmsetup('create', linear, '--table', `0 2048 linear ${data} 0`)
          await withRoot({ ...DM_TEST_OPTIONS, 'dm.thinpooldev': linear }, async () => assert.fail('opened a linear device as a pool')).catch(assertCode('INVALID_ARGUMENT', linear))
          // The first root takes the empty pool; a second root finds it in use.
          const rootA = await mkdtemp('/tmp/strata-dm-')
          const a = await openDevmapperGraph({ root: rootA, options: { ...DM_TEST_OPTIONS, 'dm.thinpooldev': pool } })
          try {
            await a.create('layer', null)
            const rootB = await mkdtemp('/tmp/strata-dm-')
            await assert.rejects(openDevmapperGraph({ root: rootB, options: { ...DM_TEST_OPTIONS, 'dm.thinpooldev': pool } }), assertCode('IN_USE', pool))
            await rm(rootB, { recursive: true, force: true })
            assert.equal(await a.exists('layer'), true, 'the owner lost its layer')
            await a.remove('layer')
          } finally {
            await a.shutdown()
            await rm(rootA, { recursive: true, force: true })
          }
        } finally {
          spawnSync('dmsetup', ['remove', linear])
          spawnSync('dmsetup', ['remove', pool])
          spawnSync('losetup', ['-d', data])
          spawnSync('losetup', ['-d', meta])
        }
      } finally {
        await rm(dir, { recursive: true, force: true })
      }
    })

    test("a base device whose filesystem is gone (unformatted): CORRUPT naming the pool on open", fullOnly, async () => {
      const root = await mkdtemp('/tmp/strata-dm-')
      try {
        const d = await openDevmapperGraph({ root, options: DM_TEST_OPTIONS })
        const base = `${d.driver.deviceSet.prefix}-base`
        const pool = d.driver.deviceSet.poolName
        const id = JSON.parse(await readFile(join(d.home, 'metadata/base'), 'utf8')).device_id as number
        // Wipe the filesystem's first blocks through a device of our own on the same thin id.
        await d.cleanup()
        const wipe = `${base}-wipe`
        const poolDev = dmDeviceInfo(pool)!
        dmCreateDevice(wipe)
        dmLoadTable(wipe, [{ start: 0n, length: 4194304n, type: 'thin', params: `${poolDev.major}:${poolDev.minor} ${id}` }])
        dmResume(wipe)
        execFileSync('dd', ['if=/dev/zero', `of=/dev/mapper/${wipe}`, 'bs=64k', 'count=16', 'oflag=direct'], { stdio: 'ignore' })
        dmRemoveDevice(wipe)
        await assert.rejects(openDevmapperGraph({ root, options: DM_TEST_OPTIONS }), assertCode('CORRUPT', pool))
        spawnSync('dmsetup', ['remove', base])
        dmRemoveDevice(pool)
      } finally {
        await rm(root, { recursive: true, force: true })
      }
    })

    test('a loop-lvm root whose data loop file is gone: NOT_FOUND naming the pool and the file; nothing in the root changes', async () => {
      const root = await mkdtemp('/tmp/strata-dm-')
      try {
        const d = await openDevmapperGraph({ root, options: DM_TEST_OPTIONS })
        await d.create('layer', null)
        const pool = d.driver.deviceSet.poolName
        await d.shutdown()
        assert.equal(dmDeviceInfo(pool), undefined, 'shutdown removed the pool')
        const data = join(d.home, 'devicemapper/data')
        await rm(data)
        const before = await treeState(root)
        await assert.rejects(openDevmapperGraph({ root, options: DM_TEST_OPTIONS }), (err: unknown) => {
          assertCode('NOT_FOUND', pool)(err)
          assert.ok((err as Error).message.includes(data), (err as Error).message)
          return true
        })
        assert.deepEqual(await treeState(root), before, 'the refused open changed the data root')
        assert.equal(dmDeviceInfo(pool), undefined, 'the refused open left a pool behind')
      } finally {
        removePoolOf(root)
        await rm(root, { recursive: true, force: true })
      }
    })

    test("a device's metadata file missing or corrupt: NOT_FOUND / CORRUPT naming it, check reports it, other layers unharmed", async () => {
      await withRoot(DM_TEST_OPTIONS, async (d) => {
        await d.create('good', null)
        await d.create('gone', 'good')
        await d.create('bad', 'good')
        await rm(join(d.home, 'metadata/gone'))
        assert.equal(await d.exists('gone'), false)
        await assert.rejects(d.get('gone'), assertCode('NOT_FOUND', 'gone'))
        await writeFile(join(d.home, 'metadata/bad'), '{"device_id": "x"')
        await assert.rejects(d.get('bad'), assertCode('CORRUPT', 'metadata/bad'))
        const problems = await d.check()
        assert.deepEqual(problems.map((p) => `${p.kind} ${p.subject}`), ['device-metadata bad'])
        const dir = await d.get('good')
        assert.ok(dir.endsWith('/rootfs'))
        await d.put('good')
        await rm(join(d.home, 'metadata/bad'))
      })
    })

    test('a full pool (error_if_no_space): the apply fails naming the pool and its usage; removing the layer gives the space back', async () => {
      // 64 MB of pool (the base device's ext4 takes about 25 of them) and a 96 MiB file: the smallest that fills it,
      // since every block written costs under emulation.
      await withRoot({ ...DM_TEST_OPTIONS, 'dm.loopdatasize': '64M', 'dm.min_free_space': '0%' }, async (d) => {
        await d.create('keep', null)
        const keep = await d.get('keep')
        await writeFile(join(keep, 'kept'), 'kept\n')
        await d.put('keep')
        const before = d.driver.deviceSet.poolStatus().dataUsed
        await d.create('big', 'keep')
        // A 96 MiB file in one tar: more than the pool holds.
        const header = Buffer.alloc(512)
        header.write('big.bin', 0)
        header.write('0000644\0', 100)
        header.write('0000000\0', 108)
        header.write('0000000\0', 116)
        header.write((96 * 1024 * 1024).toString(8).padStart(11, '0') + '\0', 124)
        header.write('00000000000\0', 136)
        header.write('        ', 148)
        header.write('0', 156)
        header.write('ustar\0', 257)
        header.write('00', 263)
        let sum = 0
        for (const b of header) sum += b
        header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
        async function* tar(): AsyncGenerator<Buffer> {
          yield header
          const chunk = randomBytes(1024 * 1024)
          for (let i = 0; i < 96; i++) yield chunk
          yield Buffer.alloc(1024)
        }
        const pool = d.driver.deviceSet.poolName
        await assert.rejects(d.applyLayer('big', 'keep', Readable.from(tar())), (err: unknown) => {
          assertCode('SYSCALL', pool)(err)
          assert.match((err as Error).message, /out of space: data [\d.]+ GiB of [\d.]+ GiB used/)
          return true
        })
        await d.remove('big')
        assert.equal(await d.exists('big'), false)
        const after = d.driver.deviceSet.poolStatus()
        assert.ok(after.dataUsed <= before + 16, `the pool still holds the failed layer's blocks: ${after.dataUsed} used, ${before} before`)
        assert.equal(await readFile(join(await d.get('keep'), 'kept'), 'utf8'), 'kept\n')
        await d.put('keep')
        assert.deepEqual(await d.check(), [])
      })
    })

    test('kill -9 between the pool message and the metadata write: the next open rolls the transaction back', async () => {
      await withRoot(DM_TEST_OPTIONS, async (d, root) => {
        await d.create('parent', null)
        const deviceset = d.driver.deviceSet
        const txBefore = deviceset.poolStatus().transactionId
        const child = fileURLToPath(new URL('./devicemapper-child.js', import.meta.url))
        const r = spawnSync(process.execPath, [child, root, JSON.stringify(DM_TEST_OPTIONS), 'crashed', 'parent'], { env: { ...process.env, STRATA_DM_FAILPOINT: 'after-pool-message' }, encoding: 'utf8' })
        assert.equal(r.signal, 'SIGKILL', `the child was not killed at the failpoint: ${r.status} ${r.stderr}`)
        // The pool has the new thin device; nothing else knows it.
        const tx = JSON.parse(await readFile(join(d.home, 'metadata/transaction-metadata'), 'utf8')) as { open_transaction_id: number; device_hash: string; device_id: number }
        assert.deepEqual([tx.open_transaction_id, tx.device_hash], [txBefore + 1, 'crashed'])
        assert.equal(deviceset.poolStatus().transactionId, txBefore)
        await assert.rejects(stat(join(d.home, 'metadata/crashed')), { code: 'ENOENT' })
        assert.deepEqual((await d.check()).map((p) => p.kind), ['transaction'])
        // The next open repairs: the thin id is deleted from the pool (a create_thin of it succeeds again).
        const again = await openDevmapperGraph({ root, options: DM_TEST_OPTIONS })
        await assert.rejects(stat(join(d.home, 'metadata/transaction-metadata')), { code: 'ENOENT' })
        assert.deepEqual(await again.check(), [])
        dmsetup('message', deviceset.poolName, '0', `create_thin ${tx.device_id}`)
        dmsetup('message', deviceset.poolName, '0', `delete ${tx.device_id}`)
        await again.create('crashed', 'parent')
        assert.equal(await again.exists('crashed'), true)
        assert.equal(await again.exists('parent'), true)
        await again.remove('crashed')
        await again.cleanup()
      })
    })
  })
}
