/**
 * `--filter` of `images` and `ps`, and `ps -l/-n/-s`, side by side with
 * the docker 20.10 CLI on dockerd 20.10 (overlay2): the same busybox tar
 * imported into both, the same containers created in the same order (one
 * run to exit 0), then every filter gives the same names in the same
 * order, the same sizes, and the same refusals (docker's
 * "Error response from daemon: " is strata's "Error: ").
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { requireDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { sideBySide, type Outcome } from './helpers/side-by-side.js'

test('images and ps --filter, ps -l/-n/-s: what docker 20.10 lists, in its order, with its refusals', { timeout: 240_000 }, async (t) => {
  if (!requireRoot(t) || !requireDockerd(t) || !requireTool(t, 'runc', 'tar')) return
  const { tar, docker, strata } = await sideBySide(t, 'cli-filters-', 'overlay2')
  const both = (args: string[]): void => {
    for (const [who, cli] of [['docker', docker], ['strata', strata]] as const) {
      const r = cli(args)
      assert.equal(r.code, 0, `${who} ${args.join(' ')}: ${r.stderr}`)
    }
  }
  both(['import', tar, 'bb:1'])
  both(['create', '--name', 'c1', 'bb:1', 'sh', '-c', 'echo hi > /f'])
  both(['create', '--name', 'c2', '--label', 'k=v', 'bb:1', 'echo', 'x y', '$HOME', 'a"b', "it's", ''])
  both(['run', '--name', 'c3', 'bb:1', 'sh', '-c', 'echo 12345 > /f'])
  both(['commit', 'c3', 'bb:2'])
  both(['commit', 'c1'])

  // Images made within one second tie on Created, which dockerd leaves in no particular order: those lists are compared sorted.
  const same = (args: string[], sorted = false): void => {
    const order = (r: Outcome): Outcome => (sorted ? { ...r, stdout: r.stdout.split('\n').sort().join('\n') } : r)
    const want = order(docker(args))
    const got = order(strata(args))
    const what = args.join(' ')
    assert.equal(got.code, want.code, `${what}: exit status (docker: ${want.stderr})`)
    assert.equal(got.stdout, want.stdout, what)
    assert.equal(got.stderr.replace(/\nSee 'strata [a-z ]+ --help'\.\n$/, ''), want.stderr.replace(/^Error response from daemon: /, 'Error: ').replace(/\n\nUsage:[^]*$/, ''), what)
  }
  const names = ['--format', '{{.Names}}']
  for (const f of [
    [],
    ['--filter', 'before=c3'],
    ['-a', '--filter', 'before=c3'],
    ['-a', '--filter', 'since=c1'],
    ['--filter', 'exited=0'],
    ['-a', '--filter', 'exited=0'],
    ['-a', '--filter', 'exited=1'],
    ['--filter', 'status=exited'],
    ['-a', '--filter', 'status=created'],
    ['-a', '--filter', 'name=c'],
    ['-a', '--filter', 'name=^/c2$'],
    ['-a', '--filter', 'name=c1', '--filter', 'name=c2'],
    ['-a', '--filter', 'ancestor=bb'],
    ['-a', '--filter', 'ancestor=bb:1'],
    ['-a', '--filter', 'ancestor=bb:1', '--filter', 'ancestor=nope'],
    ['-a', '--filter', 'label=k'],
    ['-a', '--filter', 'label=k=v'],
    ['-a', '--filter', 'label=k=w'],
    ['-a', '--filter', 'LABEL = k=v '],
    ['-a', '--filter', 'since=c1', '-n', '1'],
    ['-n', '2'],
    ['-l'],
  ]) {
    same(['ps', ...f, ...names])
  }
  const c2 = docker(['ps', '-aq', '--filter', 'name=c2']).stdout.trim()
  assert.match(c2, /^[0-9a-f]{12}$/)
  // IDs differ between the two; the prefix of each one's own c2 finds c2.
  assert.equal(strata(['ps', '-a', '--filter', `id=${strata(['ps', '-aq', '--filter', 'name=c2']).stdout.trim().slice(0, 5)}`, ...names]).stdout, 'c2\n')
  for (const f of [['-a', '--filter', 'nope=1'], ['--filter', 'status=x'], ['-a', '--filter', 'exited=x'], ['-a', '--filter', 'before=nope']]) same(['ps', ...f, ...names])
  const refused = strata(['ps', '--filter', 'foo'])
  assert.equal(refused.code, docker(['ps', '--filter', 'foo']).code)
  assert.match(refused.stderr, /^invalid argument "foo" for "-f, --filter" flag: bad format of filter \(expected name=value\)\n/)

  // Sizes: the rw layer (6 bytes written by c3) and the virtual size.
  same(['ps', '-a', '-s', '--format', '{{.Names}} {{.Size}}'])
  same(['ps', '-a', '--format', '{{.Names}} {{.Size}}'])
  same(['ps', '-a', '--size=false', '--format', '{{.Names}} {{.Size}}'])
  // COMMAND as dockerd joins it (arguments with a space in single quotes) and the CLI quotes it.
  same(['ps', '-a', '--no-trunc', '--format', '{{.Names}} {{.Command}}'])
  same(['ps', '-a', '--format', '{{.Names}} {{.Command}}'])

  const repos = ['--format', '{{.Repository}}:{{.Tag}} {{.Size}}']
  for (const f of [
    ['--filter', 'dangling=true'],
    ['--filter', 'dangling=false'],
    ['--filter', 'before=bb:2'],
    ['--filter', 'since=bb:1'],
    ['--filter', 'reference=bb'],
    ['--filter', 'reference=bb:2'],
    ['--filter', 'reference=b*:*'],
    ['bb', '--filter', 'reference=nope'],
    ['--filter', 'label=a'],
    ['--filter', 'nope=1'],
    ['--filter', 'dangling=x'],
  ]) {
    same(['images', ...f, ...repos], true)
  }
})
