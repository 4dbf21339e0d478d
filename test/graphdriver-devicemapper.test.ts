/**
 * The devicemapper driver, tested where device-mapper exists: in the test
 * VM (test/helpers/vm.ts; this machine's kernel has no device-mapper).
 *
 * On the host, this file boots the VM once and runs itself inside it with
 * STRATA_IN_VM=1; the guest's TAP results come back through a shared
 * directory and are reported here, one subtest per guest test. In the
 * guest, it runs the driver conformance suite (-s devicemapper) and the
 * driver's own tests (test/helpers/devicemapper-cases.ts).
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { openDevmapperGraph } from '../src/graphdriver/devicemapper/index.js'
import { devicemapperCases, DM_TEST_OPTIONS } from './helpers/devicemapper-cases.js'
import { driverConformance } from './helpers/driver-suite.js'
import { tempDirFor } from './helpers/tmp.js'
import { REPO_ROOT, parseTap, runInVm, vmUnavailable } from './helpers/vm.js'

const IN_VM = process.env.STRATA_IN_VM === '1'

if (IN_VM) {
  driverConformance(
    'devicemapper',
    async () => {
      const root = await mkdtemp('/tmp/strata-dm-suite-')
      // ext4: under emulation its mount takes a fifth of xfs's (dockerd's default is xfs; the layout tests use both).
      const driver = await openDevmapperGraph({ root, options: DM_TEST_OPTIONS })
      return {
        driver,
        root,
        teardown: async () => {
          await driver.shutdown()
          await rm(root, { recursive: true, force: true })
        },
      }
    },
    // Thin snapshots do not depend on their origin and dockerd records no parent: the layer store refuses instead (as with vfs).
    // deep-read: 32 layers, not 128 (each is an independent thin device, depth means nothing to the driver, and a
    // layer costs ~1.5 s of mounts under emulation).
    { skip: ['remove-with-children'], deepReadDepth: 32 },
  )
  devicemapperCases()
} else {
  const skip = vmUnavailable()
  if (skip !== undefined && process.env.CI) throw new Error(`devicemapper tests: ${skip}; required in CI`)

  test('devicemapper driver, in a VM with device-mapper', { skip, timeout: 25 * 60 * 1000 }, async (t) => {
    const share = tempDirFor(t, 'dm-vm-')
    const tap = join(share, 'guest.tap')
    const self = join(REPO_ROOT, 'dist/test/graphdriver-devicemapper.test.js')
    const r = await runInVm(
      ['node', '--test', '--test-concurrency=1', '--test-reporter=tap', `--test-reporter-destination=${tap}`, '--test-reporter=dot', '--test-reporter-destination=stdout', self],
      { shares: [share], env: { STRATA_IN_VM: '1' }, timeoutSec: 20 * 60 },
    )
    t.diagnostic(`VM run (boot + tests): ${r.seconds.toFixed(1)} s, exit ${r.code}`)
    let results
    try {
      results = parseTap(await readFile(tap, 'utf8'))
    } catch (err) {
      assert.fail(`the guest wrote no TAP results (exit ${r.code}):\n${r.output.slice(-4000)}\n${(err as Error).message}`)
    }
    assert.ok(results.length > 0, `no test ran in the guest:\n${r.output.slice(-4000)}`)
    for (const res of results) {
      await t.test(res.path.join(' > '), { skip: res.skip ?? false }, () => {
        if (!res.ok) assert.fail(`failed in the guest:\n${res.detail}`)
      })
    }
    assert.equal(r.code, 0, `the guest's test run failed:\n${r.output.slice(-4000)}`)
  })
}
