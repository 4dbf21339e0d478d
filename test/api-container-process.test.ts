/**
 * The docker CLI 20.10 (/usr/bin/docker, Debian's docker.io) running
 * containers through `strata serve`: run -d, logs (streams, --tail, -t,
 * -f), ps STATUS, exec, top, stop, wait, start, restart, kill, rm; and
 * attached runs (`docker run --rm busybox echo hello` prints hello, exits
 * with the container's status, and leaves no container), with the
 * events dockerd logs for them. The containers run under strata's
 * monitor, so the strata CLI on the same data root sees them too.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { DOCKER_20, DOCKER_28, importBusybox, dockerOn, startStrataServe, type StrataServe } from './helpers/api-server.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { strata } from './helpers/strata-cli.js'

function canRun(t: TestContext, bin = DOCKER_20): boolean {
  if (!requireRoot(t) || !requireTool(t, 'busybox', 'tar', 'runc')) return false
  if (!existsSync(bin)) {
    if (process.env.CI !== undefined) assert.fail(`${bin} is missing`)
    t.skip(`${bin} is not installed`)
    return false
  }
  return true
}

function watchEvents(t: TestContext, s: StrataServe): () => string[] {
  const child = spawn(DOCKER_20, ['events', '--format', '{{.Type}} {{.Action}} {{.Actor.Attributes.name}}'], { env: s.clientEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGTERM')
  })
  return () => out.split('\n').filter((l) => l !== '')
}

test('docker 20.10 through strata serve: run -d, logs, ps, exec, top, stop, wait, start, restart, kill, rm', async (t) => {
  if (!canRun(t)) return
  const s = await startStrataServe(t)
  await importBusybox(t, s.root)
  const events = watchEvents(t, s)
  await sleep(500)
  const ok = async (args: string[]): Promise<string> => {
    const r = await dockerOn(s, args)
    assert.equal(r.code, 0, `docker ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }

  const id = (await ok(['run', '-d', '--name', 'c1', 'busybox', 'sh', '-c', 'echo hi; echo oops >&2; exec sleep 100'])).trim()
  assert.match(id, /^[0-9a-f]{64}$/)
  assert.match(await ok(['ps']), /^[0-9a-f]{12}\s+busybox\s+"sh -c 'echo hi; ech…"\s+.*\s+Up (Less than a second|\d+ seconds?)\s+c1$/m)
  assert.equal((await ok(['inspect', '-f', '{{.State.Status}} {{.State.Running}}', 'c1'])).trim(), 'running true')

  // logs: the two streams apart (stdcopy), --tail, -t; the strata CLI reads the same log.
  let logs = { code: 0 as number | null, stdout: '', stderr: '' }
  for (let i = 0; i < 100 && (logs.stdout === '' || logs.stderr === ''); i++) {
    logs = await dockerOn(s, ['logs', 'c1'])
    if (logs.stdout === '' || logs.stderr === '') await sleep(100)
  }
  assert.equal(logs.code, 0)
  assert.equal(logs.stdout, 'hi\n')
  assert.equal(logs.stderr, 'oops\n')
  // The monitor reads stdout and stderr from two pipes, so which line it
  // logged last is a race (dockerd's too): --tail 1 must give the log file's last entry.
  const logLines = (await readFile(join(s.root, 'containers', id, `${id}-json.log`), 'utf8')).trimEnd().split('\n')
  const lastLogged = (JSON.parse(logLines[logLines.length - 1]!) as { log: string }).log
  const tail = await dockerOn(s, ['logs', '--tail', '1', 'c1'])
  assert.equal(tail.stdout + tail.stderr, lastLogged)
  assert.match(await ok(['logs', '-t', 'c1']), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z hi\n$/)
  assert.equal((await strata(['logs', 'c1'], { root: s.root })).text, 'hi\n')

  // exec and top, in the running container.
  assert.equal((await ok(['exec', 'c1', 'cat', '/etc/hostname'])).trim(), id.slice(0, 12))
  const execFail = await dockerOn(s, ['exec', 'c1', 'sh', '-c', 'echo to-err >&2; exit 5'])
  assert.equal(execFail.code, 5)
  assert.equal(execFail.stderr, 'to-err\n')
  assert.match(await ok(['top', 'c1']), /sleep 100/)

  // logs -f ends when the container stops; stop (sleep as PID 1 ignores SIGTERM: killed after -t 1), wait gives its status.
  const follow = dockerOn(s, ['logs', '-f', 'c1'])
  assert.equal((await ok(['stop', '-t', '1', 'c1'])).trim(), 'c1')
  const followed = await follow
  assert.equal(followed.code, 0)
  assert.equal(followed.stdout, 'hi\n')
  assert.equal((await ok(['wait', 'c1'])).trim(), '137')
  assert.match(await ok(['ps', '-a']), /\s+Exited \(137\) (Less than a second|\d+ seconds?) ago\s+c1$/m)
  assert.equal((await ok(['ps', '-q'])).trim(), '')
  assert.equal((await strata(['ps', '-a', '--format', '{{.Status}}'], { root: s.root })).text.split(' ')[0], 'Exited')

  // start again (the log grows), restart, kill, rm.
  assert.equal((await ok(['start', 'c1'])).trim(), 'c1')
  assert.equal((await ok(['inspect', '-f', '{{.State.Running}}', 'c1'])).trim(), 'true')
  assert.equal((await ok(['restart', '-t', '0', 'c1'])).trim(), 'c1')
  assert.equal((await ok(['inspect', '-f', '{{.State.Running}} {{.RestartCount}}', 'c1'])).trim().split(' ')[0], 'true')
  assert.equal((await ok(['kill', '-s', 'KILL', 'c1'])).trim(), 'c1')
  assert.equal((await ok(['wait', 'c1'])).trim(), '137')
  const notRunning = await dockerOn(s, ['kill', 'c1'])
  assert.notEqual(notRunning.code, 0)
  assert.match(notRunning.stderr, /is not running/)
  assert.match(await ok(['logs', 'c1']), /^hi\nhi\nhi\n$/)
  assert.equal((await ok(['rm', 'c1'])).trim(), 'c1')
  assert.equal((await ok(['ps', '-aq'])).trim(), '')

  await sleep(1000)
  const seen = events()
  for (const wanted of ['container create c1', 'container start c1', 'container kill c1', 'container die c1', 'container stop c1', 'container restart c1', 'container destroy c1']) {
    assert.ok(seen.includes(wanted), `docker events did not show "${wanted}": ${seen.join(', ')}`)
  }
})

test('docker 20.10 through strata serve: attached runs print the output and exit with the container status; --rm leaves nothing', async (t) => {
  if (!canRun(t)) return
  const s = await startStrataServe(t)
  await importBusybox(t, s.root)

  const hello = await dockerOn(s, ['run', '--rm', 'busybox', 'echo', 'hello'])
  assert.equal(hello.code, 0, hello.stderr)
  assert.equal(hello.stdout, 'hello\n')
  const three = await dockerOn(s, ['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3'])
  assert.equal(three.code, 3, three.stderr)
  assert.equal(three.stdout, 'out\n')
  assert.equal(three.stderr, 'err\n')
  // AutoRemove: the monitor removed both (docker's wait for "removed" returned).
  assert.equal((await dockerOn(s, ['ps', '-aq'])).stdout.trim(), '')

  // Without --rm: the container stays, exited with its status, and its log holds what was printed.
  const kept = await dockerOn(s, ['run', '--name', 'kept', 'busybox', 'sh', '-c', 'echo kept; exit 7'])
  assert.equal(kept.code, 7, kept.stderr)
  assert.equal(kept.stdout, 'kept\n')
  assert.equal((await dockerOn(s, ['inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'kept'])).stdout.trim(), 'exited 7')
  assert.equal((await dockerOn(s, ['logs', 'kept'])).stdout, 'kept\n')
  // start -a: attached to a second run, from its start on.
  const again = await dockerOn(s, ['start', '-a', 'kept'])
  assert.equal(again.code, 7, again.stderr)
  assert.equal(again.stdout, 'kept\n')
  const missing = await dockerOn(s, ['run', '--rm', 'busybox', 'no-such-command'])
  assert.equal(missing.code, 127, missing.stderr)
  assert.match(missing.stderr, /no-such-command/)
  // A start that failed: its monitor removes the --rm container once it has recorded the failure.
  let left = 'x'
  for (let i = 0; i < 200 && left !== 'kept'; i++) {
    left = (await dockerOn(s, ['ps', '-a', '--format', '{{.Names}}'])).stdout.trim()
    if (left !== 'kept') await sleep(100)
  }
  assert.equal(left, 'kept')
})

test('docker 28 through strata serve: run --rm prints the output and exits with the status; exec', async (t) => {
  if (!canRun(t, DOCKER_28)) return
  const s = await startStrataServe(t)
  await importBusybox(t, s.root)
  const three = await dockerOn(s, ['run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3'], DOCKER_28)
  assert.equal(three.code, 3, three.stderr)
  assert.equal(three.stdout, 'out\n')
  assert.equal(three.stderr, 'err\n')
  const id = (await dockerOn(s, ['run', '-d', '--name', 'c28', 'busybox', 'sleep', '100'], DOCKER_28)).stdout.trim()
  const hostname = await dockerOn(s, ['exec', 'c28', 'cat', '/etc/hostname'], DOCKER_28)
  assert.equal(hostname.code, 0, hostname.stderr)
  assert.equal(hostname.stdout.trim(), id.slice(0, 12))
  assert.equal((await dockerOn(s, ['rm', '-f', 'c28'], DOCKER_28)).code, 0)
})
