/**
 * The container process verbs through the real `strata` binary, with
 * docker's output: run -d prints the ID and returns while the container
 * runs (its monitor outlives the command), ps shows docker's STATUS
 * (`Up …`, `Exited (N) … ago`, `Created`) and filters by status, logs
 * (-t, --tail), stop/kill/restart/start print the names given, wait the
 * exit code, exec and top reach the running container, rm -f removes a
 * running one; bad input (kill -s NOPE, kill of a stopped container,
 * --restart with --rm, a bad --filter) is refused in docker's words.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { containerEnv } from './helpers/container-env.js'
import { IMAGE_TAG } from './helpers/docker-image.js'
import { requireDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { STRATA_CLI } from './helpers/strata-cli.js'

// The command users run (the bundle): its monitor is the bundled one too.
const CLI = STRATA_CLI

test('strata run -d, ps, logs, exec, top, kill, stop, wait, start, restart, rm -f (vfs)', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'runc', 'busybox', 'tar') || !requireDockerd(t)) return
  const env = await containerEnv(t, 'vfs')
  const strata = (...args: string[]): { stdout: string; stderr: string; status: number | null } => {
    const r = spawnSync(process.execPath, [CLI, '--root', env.root, '-s', 'vfs', ...args], { encoding: 'utf8' })
    return { stdout: r.stdout, stderr: r.stderr, status: r.status }
  }
  const ok = (...args: string[]): string => {
    const r = strata(...args)
    assert.equal(r.status, 0, `strata ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }

  const id = ok('run', '-d', '--name', 'web', IMAGE_TAG, 'sh', '-c', 'echo hello; echo oops >&2; trap "exit 0" TERM; sleep 600 & wait').trim()
  assert.match(id, /^[a-f0-9]{64}$/)
  assert.match(ok('ps'), new RegExp(`^CONTAINER ID .*\\n${id.slice(0, 12)} .* Up (Less than a second|\\d+ seconds?) +web\\n$`))
  // The process runs on after `run -d` returned: its output arrives in the log.
  for (let i = 0; !ok('logs', 'web').includes('hello'); i++) assert.ok(i < 500, 'the output never came')
  const logs = strata('logs', 'web')
  assert.equal(logs.stdout, 'hello\n')
  assert.equal(logs.stderr, 'oops\n')
  assert.match(ok('logs', '-t', '--tail', '2', 'web'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z hello\n$/)
  assert.equal(ok('exec', '-e', 'A=b', '-w', '/data', 'web', 'sh', '-c', 'echo $A; pwd'), 'b\n/data\n')
  assert.equal(strata('exec', 'web', 'sh', '-c', 'exit 3').status, 3)
  assert.match(ok('top', 'web'), /^UID +PID +PPID +C +STIME +TTY +TIME +CMD\n(.*\n)*.*sleep 600\n$/)

  const badSignal = strata('kill', '-s', 'NOPE', 'web')
  assert.equal(badSignal.status, 1)
  assert.equal(badSignal.stderr, 'Error: Invalid signal: NOPE\n')
  assert.equal(ok('stop', 'web'), 'web\n')
  assert.equal(ok('wait', 'web'), '0\n')
  assert.match(ok('ps', '-a', '--filter', 'status=exited'), / Exited \(0\) (Less than a second|\d+ seconds?) ago +web\n$/)
  assert.equal(ok('ps', '--filter', 'status=running'), 'CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n')
  assert.equal(ok('stop', 'web'), 'web\n', 'stop of a stopped container: nothing to do, as docker')
  const killStopped = strata('kill', 'web')
  assert.equal(killStopped.status, 1)
  assert.match(killStopped.stderr, /^Error: Cannot kill container: web: Container [a-f0-9]{64} is not running\n$/)

  assert.equal(ok('start', 'web'), 'web\n')
  assert.match(ok('ps', '--format', '{{.Names}} {{.State}}'), /^web running\n$/)
  assert.equal(ok('restart', '-t', '0', 'web'), 'web\n')
  assert.equal(ok('rm', '-f', 'web'), 'web\n')
  assert.equal(ok('ps', '-aq'), '')

  // start -a of a container made with create; run attached passes the exit status.
  ok('create', '--name', 'once', IMAGE_TAG, 'sh', '-c', 'echo attached; exit 6')
  const attached = strata('start', '-a', 'once')
  assert.equal(attached.status, 6)
  assert.equal(attached.stdout, 'attached\n')
  assert.match(ok('ps', '-a', '--filter', 'status=exited', '--format', '{{.Status}}'), /^Exited \(6\) /)
  ok('create', '--name', 'fresh', IMAGE_TAG, 'true')
  assert.equal(ok('ps', '-a', '--filter', 'status=created', '--format', '{{.Names}} {{.Status}}'), 'fresh Created\n')
  const interactive = spawnSync(process.execPath, [CLI, '--root', env.root, '-s', 'vfs', 'run', '-i', '--rm', IMAGE_TAG, 'sh', '-c', 'tr a-z A-Z'], { input: 'piped in\n', encoding: 'utf8' })
  assert.equal(interactive.status, 0, interactive.stderr)
  assert.equal(interactive.stdout, 'PIPED IN\n', 'run -i feeds stdin through the monitor')

  const conflict = strata('run', '--rm', '--restart', 'always', IMAGE_TAG, 'true')
  assert.equal(conflict.status, 125)
  assert.match(conflict.stderr, /Conflicting options: --restart and --rm/)
  const badPolicy = strata('run', '--restart', 'sometimes', IMAGE_TAG, 'true')
  assert.equal(badPolicy.status, 1)
  assert.match(badPolicy.stderr, /invalid restart policy sometimes/)
  const badFilter = strata('ps', '--filter', 'status=sleeping')
  assert.equal(badFilter.status, 1)
  assert.match(badFilter.stderr, /Invalid filter 'status=sleeping'/)
  const notRunning = strata('exec', 'fresh', 'true')
  assert.equal(notRunning.status, 1)
  assert.match(notRunning.stderr, /is not running/)
})
