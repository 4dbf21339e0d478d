/** The strata command as a user runs it: exit codes, messages, driver choice, the archive verbs. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { makeBusyboxRootfs } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url))

function strata(args: string[], env: NodeJS.ProcessEnv = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '', ...env } })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

test('usage errors exit 2 with a one-line message', () => {
  for (const args of [['no-such-verb'], ['--root'], ['--storage-opt', 'novalue', 'info'], ['archive', 'apply', '/tmp']]) {
    const r = strata(args)
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`)
    assert.match(r.stderr, /^strata: .+\n$/)
  }
  const help = strata(['--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /--storage-driver/)
})

test('info picks overlay2 on ext4 by default, honours -s and STRATA_DRIVER, explains a driver that cannot run', (t) => {
  if (!requireRoot(t)) return
  const dir = tempDirFor(t, 'cli-info-')
  const def = strata(['--root', `${dir}/a`, 'info'])
  assert.equal(def.code, 0, def.stderr)
  assert.match(def.stdout, /^Storage Driver: overlay2\n Backing Filesystem: extfs\n Supports d_type: true\n/)
  assert.match(def.stdout, new RegExp(`Data Root: ${dir}/a\\n`))
  const vfs = strata(['info', '--format', 'json'], { STRATA_ROOT: `${dir}/b`, STRATA_DRIVER: 'vfs' })
  assert.equal(vfs.code, 0, vfs.stderr)
  assert.deepEqual(JSON.parse(vfs.stdout), { Driver: 'vfs', DriverStatus: [], DataRoot: `${dir}/b` })
  const btrfs = strata(['--root', `${dir}/c`, '-s', 'btrfs', 'info'])
  assert.equal(btrfs.code, 1)
  assert.match(btrfs.stderr, /storage driver "btrfs" cannot run on .*not btrfs/)
  const unknown = strata(['--root', `${dir}/d`, '--storage-driver=zfs', 'info'])
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /Unknown storage driver "zfs" \(known: overlay2, btrfs, vfs\)/)
})

test('archive apply then assemble gives back the layer byte for byte; a non-tar fails with exit 1', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'gzip')) return
  const dir = tempDirFor(t, 'cli-archive-')
  await makeBusyboxRootfs(`${dir}/rootfs`)
  await run('tar', ['--format=posix', '--numeric-owner', '-czf', `${dir}/layer.tar.gz`, '-C', `${dir}/rootfs`, '.'])
  mkdirSync(`${dir}/out`)
  const applied = strata(['archive', 'apply', '-i', `${dir}/layer.tar.gz`, '--tar-split', `${dir}/ts.json.gz`, `${dir}/out`])
  assert.equal(applied.code, 0, applied.stderr)
  const result = JSON.parse(applied.stdout) as { diffId: string; compression: string }
  assert.equal(result.compression, 'gzip')
  const rebuilt = strata(['archive', 'assemble', '--tar-split', `${dir}/ts.json.gz`, '--diff-id', result.diffId, '-o', `${dir}/rebuilt.tar`, `${dir}/out`])
  assert.equal(rebuilt.code, 0, rebuilt.stderr)
  const { stdout: original } = await run('gzip', ['-dc', `${dir}/layer.tar.gz`])
  assert.ok(readFileSync(`${dir}/rebuilt.tar`).equals(original), 'rebuilt tar equals the original')
  const bad = strata(['archive', 'apply', '-i', '/etc/hostname', `${dir}/out`])
  assert.equal(bad.code, 1)
  assert.match(bad.stderr, /not a tar archive/i)
})
