/** The strata command as a user runs it: exit codes, messages, driver choice, the archive verbs. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { makeBusyboxRootfs } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { STRATA_CLI } from './helpers/strata-cli.js'

const CLI = STRATA_CLI

function strata(args: string[], env: NodeJS.ProcessEnv = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, STRATA_ROOT: '', STRATA_DRIVER: '', ...env } })
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
}

test("usage errors in docker's words and exit statuses", () => {
  const cases: Array<[string[], number, string]> = [
    [['no-such-verb'], 1, "strata: 'no-such-verb' is not a strata command.\nSee 'strata --help'\n"],
    [['--root'], 125, "flag needs an argument: --root\nSee 'strata --help'.\n"],
    [['--nope', 'images'], 125, "unknown flag: --nope\nSee 'strata --help'.\n"],
    [['--storage-opt', 'novalue', 'info'], 125, 'invalid argument "novalue" for "--storage-opt" flag: takes KEY=VALUE\nSee \'strata --help\'.\n'],
    [['archive', 'apply', '/tmp'], 125, 'required flag(s) "input" not set\nSee \'strata archive apply --help\'.\n'],
    [['archive', 'nope'], 1, "strata: 'nope' is not a strata archive command.\nSee 'strata archive --help'\n"],
  ]
  for (const [args, code, stderr] of cases) {
    const r = strata(args)
    assert.equal(r.stderr, stderr, args.join(' '))
    assert.equal(r.code, code, args.join(' '))
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
  assert.match(def.stdout, /^Containers: 0\n Running: 0\n Paused: 0\n Stopped: 0\nImages: 0\nStorage Driver: overlay2\n Backing Filesystem: extfs\n Supports d_type: true\n/)
  assert.match(def.stdout, new RegExp(`Data Root: ${dir}/a\\n`))
  const vfs = strata(['info', '--format', 'json'], { STRATA_ROOT: `${dir}/b`, STRATA_DRIVER: 'vfs' })
  assert.equal(vfs.code, 0, vfs.stderr)
  const info = JSON.parse(vfs.stdout) as Record<string, unknown>
  assert.deepEqual(
    { ...info, KernelVersion: undefined, OperatingSystem: undefined, Architecture: undefined, NCPU: undefined, MemTotal: undefined, Name: undefined },
    { Containers: 0, ContainersRunning: 0, ContainersPaused: 0, ContainersStopped: 0, Images: 0, Driver: 'vfs', DriverStatus: [], OSType: 'linux', DockerRootDir: `${dir}/b`, DataRoot: `${dir}/b`, KernelVersion: undefined, OperatingSystem: undefined, Architecture: undefined, NCPU: undefined, MemTotal: undefined, Name: undefined },
  )
  assert.equal(typeof info.NCPU, 'number')
  assert.equal(strata(['info', '--format', '{{.Driver}} {{.Images}} {{.NCPU | printf "%T"}}'], { STRATA_ROOT: `${dir}/b`, STRATA_DRIVER: 'vfs' }).stdout, 'vfs 0 int\n')
  const btrfs = strata(['--root', `${dir}/c`, '-s', 'btrfs', 'info'])
  assert.equal(btrfs.code, 1)
  assert.match(btrfs.stderr, /storage driver "btrfs" cannot run on .*not btrfs/)
  const unknown = strata(['--root', `${dir}/d`, '--storage-driver=zfs', 'info'])
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /Unknown storage driver "zfs" \(known: overlay2, btrfs, vfs, devicemapper, aufs\)/)
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

test('layer import/ls/inspect/export/rm and check: a layer goes in, comes out byte for byte, and check sees tampering', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'busybox')) return
  const dir = tempDirFor(t, 'cli-layer-')
  const root = `${dir}/root`
  const rootfs = `${dir}/rootfs`
  mkdirSync(rootfs)
  await makeBusyboxRootfs(rootfs)
  await run('tar', ['--numeric-owner', '-C', rootfs, '-cf', `${dir}/base.tar`, '.'])
  mkdirSync(`${dir}/top`)
  await run('sh', ['-c', `echo hi > ${dir}/top/hello && tar --numeric-owner -C ${dir}/top -czf ${dir}/top.tar.gz .`])
  const env = { STRATA_ROOT: root, STRATA_DRIVER: 'vfs' }

  const base = strata(['layer', 'import', `${dir}/base.tar`], env)
  assert.equal(base.code, 0, base.stderr)
  const baseChain = base.stdout.trim()
  assert.match(baseChain, /^sha256:[a-f0-9]{64}$/)
  const top = strata(['layer', 'import', '--parent', baseChain.slice(7, 19), `${dir}/top.tar.gz`], env)
  assert.equal(top.code, 0, top.stderr)
  const topChain = top.stdout.trim()

  const ls = strata(['layer', 'ls', '--format', 'json'], env)
  assert.equal(ls.code, 0, ls.stderr)
  const rows = ls.stdout.trim().split('\n').map((l) => JSON.parse(l) as { ChainID: string; Parent: string; TarSplit: boolean })
  assert.deepEqual(rows.map((r) => r.ChainID).sort(), [baseChain, topChain].sort())
  assert.equal(rows.find((r) => r.ChainID === topChain)!.Parent, baseChain)
  assert.match(strata(['layer', 'ls'], env).stdout, /^CHAIN ID +DIFF ID +PARENT +SIZE +TAR-SPLIT\n/)
  const inspected = JSON.parse(strata(['layer', 'inspect', topChain], env).stdout) as Array<{ GraphDriver: { Name: string } }>
  assert.equal(inspected[0]!.GraphDriver.Name, 'vfs')

  const out = strata(['layer', 'export', '-o', `${dir}/base.out.tar`, baseChain], env)
  assert.equal(out.code, 0, out.stderr)
  assert.ok(readFileSync(`${dir}/base.out.tar`).equals(readFileSync(`${dir}/base.tar`)), 'exported byte for byte')

  // A layer imported alone is an orphan (no image, container or child refers to it): a warning, not a failure.
  const sound = strata(['check'], env)
  assert.equal(sound.code, 0, sound.stderr)
  assert.equal(sound.stdout, `layer-orphan ${topChain}: Layer ${topChain}: no image, container or child layer refers to it\n`)
  // Tamper with a file of the top layer: check fails (exit 1) naming the layer; --repair removes it.
  const info = JSON.parse(strata(['layer', 'inspect', topChain], env).stdout) as Array<{ CacheID: string }>
  await run('sh', ['-c', `echo HI > ${root}/vfs/dir/${info[0]!.CacheID}/hello`])
  const bad = strata(['check'], env)
  assert.equal(bad.code, 1)
  assert.match(bad.stdout, new RegExp(`layer-content ${topChain}`))
  assert.match(bad.stderr, /check found 1 problem/)
  const repaired = strata(['check', '--repair'], env)
  assert.equal(repaired.code, 0, repaired.stdout + repaired.stderr)
  assert.match(repaired.stdout, /repaired: /)
  assert.deepEqual(strata(['layer', 'ls', '--format', 'json'], env).stdout.trim().split('\n').map((l) => (JSON.parse(l) as { ChainID: string }).ChainID), [baseChain])

  // rm: the base goes (nothing refers to it); an unknown layer is exit 1.
  const rm = strata(['layer', 'rm', baseChain], env)
  assert.equal(rm.code, 0, rm.stderr)
  assert.equal(rm.stdout, `Deleted: ${baseChain}\n`)
  const missing = strata(['layer', 'rm', baseChain], env)
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /^Error: /)
})
