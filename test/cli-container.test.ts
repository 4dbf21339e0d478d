/**
 * The container verbs through the real `strata` binary (vfs, a data root
 * with the 3-layer test image): create prints the ID, ps lists (-a, -q,
 * --format json), start -a and run pass the container's output and exit
 * status through, diff prints A/C/D lines, commit prints the image ID and
 * tags it, mount prints a path that umount releases, export writes a tar
 * GNU tar can list, rm removes; bad usage exits as docker's (1 or 125),
 * failures 1 with a one-line message.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { containerEnv } from './helpers/container-env.js'
import { IMAGE_TAG } from './helpers/docker-image.js'
import { requireDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { STRATA_CLI } from './helpers/strata-cli.js'

const CLI = STRATA_CLI

test('strata create/ps/start/diff/commit/mount/export/run/rm (vfs)', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'runc', 'busybox', 'tar') || !requireDockerd(t)) return
  const env = await containerEnv(t, 'vfs')
  // The CLI opens the data root itself; the test's store stays open for the teardown.
  const strata = (...args: string[]): { stdout: string; stderr: string; status: number | null } => {
    const r = spawnSync(process.execPath, [CLI, '--root', env.root, '-s', 'vfs', ...args], { encoding: 'utf8' })
    return { stdout: r.stdout, stderr: r.stderr, status: r.status }
  }

  const created = strata('create', '--name', 'c1', '-e', 'GREETING=hi', IMAGE_TAG, 'sh', '-c', 'echo $GREETING > /greeting; rm /data/two; echo out; echo err >&2; exit 5')
  assert.equal(created.status, 0, created.stderr)
  const id = created.stdout.trim()
  assert.match(id, /^[a-f0-9]{64}$/)

  assert.equal(strata('ps').stdout, 'CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n', 'not running: not listed without -a (docker\'s header, columns at least 10 wide)')
  assert.equal(strata('ps', '-aq').stdout, `${id.slice(0, 12)}\n`)
  const json = JSON.parse(strata('ps', '-a', '--format', 'json').stdout) as Record<string, string>
  assert.equal(json.ID, id.slice(0, 12))
  assert.equal(json.Names, 'c1')
  assert.equal(json.State, 'created')
  assert.equal(json.Status, 'Created')
  assert.equal(json.Command, `"sh -c 'echo $GREETI…"`, "dockerd's quoting of an argument with a space, docker's Ellipsis: 19 characters and …")
  assert.equal(strata('ps', '-a', '--format', 'table {{.Names}}\t{{.State}}\t{{.Label "none"}}|{{len .Command}}').stdout, 'NAMES     STATE     none|7\nc1        created   |24\n')
  const badFormat = strata('ps', '--format', '{{.Nope}}')
  assert.equal(badFormat.status, 1)
  assert.equal(badFormat.stderr, 'failed to execute template: template: :1:2: executing "" at <.Nope>: can\'t evaluate field Nope in type *formatter.ContainerContext\n')

  const started = strata('start', '-a', 'c1')
  assert.equal(started.status, 5, 'the exit status is the container\'s')
  assert.equal(started.stdout, 'out\n')
  assert.equal(started.stderr, 'err\n')
  assert.match(strata('ps', '-a').stdout, /Exited \(5\) .* ago +c1\n/)

  assert.equal(strata('diff', 'c1').stdout, 'C /data\nD /data/two\nA /greeting\n')

  const committed = strata('commit', '-m', 'from the cli', 'c1', 'strata-cli:1')
  assert.equal(committed.status, 0, committed.stderr)
  assert.match(committed.stdout, /^sha256:[a-f0-9]{64}\n$/)
  assert.equal(await env.store.references.get('strata-cli:1'), committed.stdout.trim())

  const mounted = strata('mount', id.slice(0, 8))
  assert.equal(mounted.status, 0, mounted.stderr)
  assert.equal(readFileSync(join(mounted.stdout.trim(), 'greeting'), 'utf8'), 'hi\n')
  assert.equal(strata('rm', 'c1').status, 1, 'a mounted container is not removed without -f')
  assert.equal(strata('umount', 'c1').status, 0)

  const out = join(tempDirFor(t, 'cli-container-'), 'c1.tar')
  const exported = strata('export', '-o', out, 'c1')
  assert.equal(exported.status, 0, exported.stderr)
  const listed = (await run('tar', ['-tf', out])).stdout.toString().split('\n')
  assert.ok(listed.includes('greeting') && listed.includes('.dockerenv') && !listed.includes('data/two'))

  const ran = strata('run', '--rm', 'strata-cli:1', 'cat', '/greeting')
  assert.equal(ran.status, 0, ran.stderr)
  assert.equal(ran.stdout, 'hi\n')
  assert.equal(strata('run', '--rm', IMAGE_TAG, 'sh', '-c', 'exit 9').status, 9)

  // The image a container was created from is not removed without -f (docker's conflict), nor pruned.
  const refused = strata('rmi', IMAGE_TAG)
  assert.equal(refused.status, 1)
  assert.match(refused.stderr, new RegExp(`container ${id.slice(0, 12)} is using its referenced image`))
  assert.notEqual(await env.store.references.get(IMAGE_TAG), undefined, 'the tag is still there')

  assert.equal(strata('rm', 'c1').stdout, 'c1\n')
  assert.equal(existsSync(join(env.root, 'containers', id)), false)
  assert.equal(strata('ps', '-aq').stdout, '', 'run --rm left nothing')

  // Usage errors exit as docker's (a wrong argument count 1, a flag it refuses 125); failed operations 1 with a message naming the culprit.
  assert.equal(strata('create').status, 1)
  assert.match(strata('create').stderr, /^"strata create" requires at least 1 argument\.\nSee 'strata create --help'\.\n\nUsage:  strata create /)
  assert.equal(strata('start', '--attach=maybe', 'c1').status, 125)
  const gone = strata('start', 'c1')
  assert.equal(gone.status, 1)
  assert.match(gone.stderr, /No such container: c1/)
  const missing = strata('rm', 'nope')
  assert.equal(missing.status, 1)
  assert.match(missing.stderr, /No such container: nope/)
  const noCmd = strata('run', IMAGE_TAG)
  assert.equal(noCmd.status, 1)
  assert.match(noCmd.stderr, /No command specified/)
  assert.match(strata('run', '--help').stdout, /Usage: strata run/)
})
