/**
 * The test VM (scripts/vm/run.sh, test/helpers/vm.ts): the command's exit
 * status and output come back, a shared directory carries files out, the
 * guest kernel has device-mapper, and a command that overruns its timeout
 * gets its VM killed (no qemu left behind).
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { runInVm, runShellInVm, vmUnavailable } from './helpers/vm.js'
import { tempDirFor } from './helpers/tmp.js'

const skip = vmUnavailable()
if (skip !== undefined && process.env.CI) throw new Error(`vm runner tests: ${skip}; required in CI`)

/** PIDs of qemu processes running now. */
function qemuPids(): Set<string> {
  try {
    return new Set(execFileSync('pgrep', ['-x', 'qemu-system-x86'], { encoding: 'utf8' }).split('\n').filter((l) => l !== ''))
  } catch {
    return new Set()
  }
}

test('vm: exit status, output, a read-write share and device-mapper in the guest', { skip }, async (t) => {
  const share = tempDirFor(t, 'vm-share-')
  const script = [
    'echo "kernel $(uname -r)"',
    'modprobe -a dm-thin-pool loop',
    'test -c /dev/mapper/control && echo "dm control present"',
    'grep -q thin-pool /proc/misc /proc/devices 2>/dev/null; dmsetup targets | grep -o "^thin-pool"',
    `echo "written in the guest" > ${share}/out.txt`,
    'echo "to stderr" >&2',
    'exit 7',
  ].join('\n')
  const r = await runShellInVm(script, { shares: [share], timeoutSec: 300 })
  assert.equal(r.code, 7, r.output)
  assert.match(r.output, /^kernel 6\./m)
  assert.match(r.output, /^dm control present$/m)
  assert.match(r.output, /^thin-pool$/m)
  assert.match(r.output, /^to stderr$/m)
  assert.equal(await readFile(join(share, 'out.txt'), 'utf8'), 'written in the guest\n')
  t.diagnostic(`boot + command: ${r.seconds.toFixed(1)} s`)
})

test('vm: a command past its timeout is killed with its VM (status 124)', { skip }, async () => {
  const before = qemuPids()
  const r = await runInVm(['sleep', '600'], { timeoutSec: 20 })
  assert.equal(r.code, 124, r.output)
  assert.match(r.output, /did not finish within 20s/)
  const left = [...qemuPids()].filter((p) => !before.has(p))
  assert.deepEqual(left, [], 'a qemu process survived the timeout')
})
