/**
 * The devicemapper driver, tested where device-mapper exists: in the test
 * VM (test/helpers/vm.ts; this machine's kernel has no device-mapper).
 *
 * On the host, this file boots the VM once and runs itself inside it with
 * STRATA_IN_VM=1; the guest's TAP results come back through a shared
 * directory and are reported here, one subtest per guest test. In the
 * guest, it runs the driver conformance suite (-s devicemapper) and the
 * driver's own tests (test/helpers/devicemapper-cases.ts).
 *
 * Two sizes (STRATA_DM_SUITE): 'focused', the default and what `npm test`
 * runs, keeps the VM run within the guide's 10 minutes on a loaded machine
 * (the conformance core, the layout, a full pool, a transaction killed
 * midway, the cheap bad-input cases; everything else is reported as
 * skipped with the reason); 'full'
 * (scripts/vm/suite.sh, `npm run test:vm`) runs every conformance case,
 * every bad-input case, the CLI's info and check, and the compatibility
 * tests with dockerd 20.10's devicemapper (test/helpers/devicemapper-dockerd.ts).
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { openDevmapperGraph } from '../src/graphdriver/devicemapper/index.js'
import { devicemapperCases, DM_TEST_OPTIONS, FOCUS_SKIP_REASON, type DevmapperSuiteMode } from './helpers/devicemapper-cases.js'
import { devicemapperDockerdCases } from './helpers/devicemapper-dockerd.js'
import { driverConformance, type SuiteCase } from './helpers/driver-suite.js'
import { tempDirFor } from './helpers/tmp.js'
import { REPO_ROOT, parseTap, runInVm, vmUnavailable } from './helpers/vm.js'

const IN_VM = process.env.STRATA_IN_VM === '1'
const MODE: DevmapperSuiteMode = process.env.STRATA_DM_SUITE === 'full' ? 'full' : 'focused'
if (process.env.STRATA_DM_SUITE !== undefined && process.env.STRATA_DM_SUITE !== 'full' && process.env.STRATA_DM_SUITE !== 'focused') {
  throw new Error(`STRATA_DM_SUITE must be "focused" or "full", not "${process.env.STRATA_DM_SUITE}"`)
}

/**
 * The conformance cases of the focused run: creating, reading through a
 * snapshot, applying and diffing, changes, isolation of a child, the
 * reference counting and cleanup, and the error contract. Left for the full
 * run: deep-read (32 stacked devices, the slowest case), diff-base,
 * root-permission, diff-files-dir, persistent, diff-release, read-write-layer,
 * remove-dir-in-lower, rename, chown.
 */
const FOCUSED_CASES: readonly SuiteCase[] = [
  'create-empty',
  'base-modes',
  'snapshot-sees-parent',
  'diff-apply',
  'apply-layer',
  'apply-layer-fails',
  'changes',
  'child-write-parent-unchanged',
  'remove-in-use',
  'refcount',
  'cleanup',
  'status',
  'metadata',
  'exists',
  'create-existing',
  'create-missing-parent',
]

/** How long the VM may run: the focused run must stay within the guide's 10 minutes, boot included. */
const VM_TIMEOUT_SEC = MODE === 'focused' ? 10 * 60 : 40 * 60

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
    { skip: ['remove-with-children'], deepReadDepth: 32, ...(MODE === 'focused' ? { only: { cases: FOCUSED_CASES, reason: FOCUS_SKIP_REASON } } : {}) },
  )
  devicemapperCases(MODE)
  if (MODE === 'full') devicemapperDockerdCases()
} else {
  const skip = vmUnavailable()
  if (skip !== undefined && process.env.CI) throw new Error(`devicemapper tests: ${skip}; required in CI`)

  test(`devicemapper driver, in a VM with device-mapper (${MODE} run)`, { skip, timeout: (VM_TIMEOUT_SEC + 60) * 1000 }, async (t) => {
    const share = tempDirFor(t, 'dm-vm-')
    const tap = join(share, 'guest.tap')
    const self = join(REPO_ROOT, 'dist/test/graphdriver-devicemapper.test.js')
    const r = await runInVm(
      ['node', '--test', '--test-concurrency=1', '--test-reporter=tap', `--test-reporter-destination=${tap}`, '--test-reporter=dot', '--test-reporter-destination=stdout', self],
      // /etc/docker: dockerd writes its key.json there, and the guest's root is read-only.
      { shares: [share], env: { STRATA_IN_VM: '1', STRATA_DM_SUITE: MODE }, tmpfs: ['/etc/docker'], timeoutSec: VM_TIMEOUT_SEC },
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
