/**
 * Containers with a terminal through the real `strata` binary on a real
 * pseudo-terminal (helpers/pty.ts): `run -it` gives the shell a pty whose
 * master the container's monitor holds (runc's --console-socket), sized
 * as the user's window and resized with it; Ctrl-P Ctrl-Q detaches and
 * leaves it running (exit 0, nothing printed: docker 20.10's behaviour,
 * checked by hand against dockerd); `attach` finds the same shell; its
 * exit code is the attach's and the record's; `logs` has the session.
 * Bad input in docker's words: attach to a stopped container, -it with
 * stdin that is not a terminal; a client killed mid-session leaves the
 * container running and the monitor without a leaked descriptor.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { test } from 'node:test'
import { containerEnv } from './helpers/container-env.js'
import { IMAGE_TAG } from './helpers/docker-image.js'
import { requireDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { onPty } from './helpers/pty.js'
import { STRATA_CLI } from './helpers/strata-cli.js'

/** The children of `pid` (the program a pty driver runs). */
function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    out.push(...readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '').map(Number))
  }
  return out
}

function monitorPid(root: string, id: string): number {
  return (JSON.parse(readFileSync(`${root}/containers/${id}/strata-monitor.json`, 'utf8')) as { pid: number }).pid
}

test('run -it: a real terminal, resize, Ctrl-P Ctrl-Q, attach again, exit code, logs; bad input', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'runc', 'busybox', 'python3') || !requireDockerd(t)) return
  const env = await containerEnv(t, 'overlay2')
  const cli = (...args: string[]): string[] => [process.execPath, STRATA_CLI, '--root', env.root, '-s', 'overlay2', ...args]
  const strata = (...args: string[]): { stdout: string; stderr: string; status: number | null } => {
    const r = spawnSync(cli(...args)[0]!, cli(...args).slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    return { stdout: r.stdout, stderr: r.stderr, status: r.status }
  }
  const ok = (...args: string[]): string => {
    const r = strata(...args)
    assert.equal(r.status, 0, `strata ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }

  const session = onPty(cli('run', '-it', '--name', 'sh1', IMAGE_TAG, 'sh'), { rows: 30, cols: 100 })
  t.after(() => session.kill())
  await session.waitFor(/\/ # /)
  session.type('echo mark$((6*7)); tty; stty size\r')
  // Raw mode end to end: the container's "\r\n" arrives as it is (no "\r\r\n" from the local terminal).
  await session.waitFor(/mark42\r\n\/dev\/pts\/[0-9]+\r\n30 100\r\n/)
  let from = session.output().length
  session.resize(40, 120)
  session.type('stty size\r')
  await session.waitFor(/40 120\r\n\/ # /, from)
  from = session.output().length
  session.type('\x10\x11')
  assert.equal(await session.exit, 0, session.output())
  assert.doesNotMatch(session.output().slice(from).replace(/\x1b\[[0-9;]*[a-zA-Z]/g, ''), /[a-z]/i, 'a detach prints nothing')
  assert.match(ok('ps', '--format', '{{.Names}} {{.Status}}'), /^sh1 Up /)
  const id = ok('inspect', '-f', '{{.Id}}', 'sh1').trim()
  assert.equal(ok('inspect', '-f', '{{.Config.Tty}} {{.Config.OpenStdin}}', 'sh1'), 'true true\n')

  // A client killed mid-session: the container runs on, the monitor keeps no descriptor of it.
  const monitor = monitorPid(env.root, id)
  const fds = readdirSync(`/proc/${monitor}/fd`).length
  const doomed = onPty(cli('attach', 'sh1'), { rows: 30, cols: 100 })
  t.after(() => doomed.kill())
  doomed.type('echo doomed$((2+2))\r')
  await doomed.waitFor(/doomed4\r\n/)
  const [attachPid] = childrenOf(doomed.pid)
  assert.ok(attachPid !== undefined)
  process.kill(attachPid, 'SIGKILL')
  await doomed.exit
  for (let i = 0; readdirSync(`/proc/${monitor}/fd`).length !== fds; i++) {
    assert.ok(i < 500, `the monitor holds ${readdirSync(`/proc/${monitor}/fd`).length} descriptors, ${fds} before the client`)
    await new Promise((r) => setTimeout(r, 10))
  }
  assert.match(ok('ps', '--format', '{{.Names}} {{.Status}}'), /^sh1 Up /)

  const again = onPty(cli('attach', 'sh1'), { rows: 30, cols: 100 })
  t.after(() => again.kill())
  again.type('echo back$((1+1))\r')
  await again.waitFor(/back2\r\n/)
  again.type('exit 3\r')
  assert.equal(await again.exit, 3, again.output())
  assert.match(ok('ps', '-a', '--format', '{{.Names}} {{.Status}}'), /^sh1 Exited \(3\) /)
  const logs = ok('logs', 'sh1')
  for (const seen of ['mark42\r\n', '30 100\r\n', '40 120\r\n', 'doomed4\r\n', 'back2\r\n']) assert.ok(logs.includes(seen), `logs have ${JSON.stringify(seen)}: ${JSON.stringify(logs)}`)
  assert.deepEqual(readdirSync('/run/strata/containers').filter((d) => d === id), [], 'the run dir is gone with the container')

  // Bad input, in docker's words.
  const stopped = strata('attach', 'sh1')
  assert.deepEqual([stopped.status, stopped.stderr], [1, 'You cannot attach to a stopped container, start it first\n'])
  const before = ok('ps', '-aq')
  const noTty = strata('run', '-it', IMAGE_TAG, 'sh')
  assert.deepEqual([noTty.status, noTty.stderr], [1, 'the input device is not a TTY\n'])
  assert.equal(ok('ps', '-aq'), before, 'nothing created')
  // -t alone needs no terminal on stdin; its output is the pty's.
  const tOnly = strata('run', '--rm', '-t', IMAGE_TAG, 'tty')
  assert.equal(tOnly.status, 0, tOnly.stderr)
  assert.match(tOnly.stdout, /^\/dev\/pts\/[0-9]+\r\n$/)

  // create -t, start -ai: the same terminal.
  ok('create', '-it', '--name', 'sh2', IMAGE_TAG, 'sh')
  const started = onPty(cli('start', '-ai', 'sh2'), { rows: 25, cols: 90 })
  t.after(() => started.kill())
  started.type('stty size; exit 5\r')
  await started.waitFor(/25 90\r\n/)
  assert.equal(await started.exit, 5, started.output())
})

test('exec -it (runc relays the terminal), exec -d (in the background, no output); bad input', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'runc', 'busybox', 'python3') || !requireDockerd(t)) return
  const env = await containerEnv(t, 'vfs')
  const cli = (...args: string[]): string[] => [process.execPath, STRATA_CLI, '--root', env.root, '-s', 'vfs', ...args]
  const strata = (...args: string[]): { stdout: string; stderr: string; status: number | null } => {
    const r = spawnSync(process.execPath, cli(...args).slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    return { stdout: r.stdout, stderr: r.stderr, status: r.status }
  }
  const ok = (...args: string[]): string => {
    const r = strata(...args)
    assert.equal(r.status, 0, `strata ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }
  ok('run', '-d', '--name', 'bg', IMAGE_TAG, 'sleep', '600')

  const session = onPty(cli('exec', '-it', 'bg', 'sh'), { rows: 33, cols: 101 })
  t.after(() => session.kill())
  await session.waitFor(/\/ # /)
  session.type('tty; stty size\r')
  await session.waitFor(/\/dev\/pts\/[0-9]+\r\n33 101\r\n/)
  const from = session.output().length
  session.resize(20, 70)
  session.type('stty size\r')
  await session.waitFor(/20 70\r\n/, from)
  session.type('exit 4\r')
  assert.equal(await session.exit, 4, session.output())

  const noTty = strata('exec', '-it', 'bg', 'sh')
  assert.deepEqual([noTty.status, noTty.stderr], [1, 'the input device is not a TTY\n'])

  const detached = strata('exec', '-d', 'bg', 'sh', '-c', 'echo made > /made')
  assert.deepEqual([detached.status, detached.stdout, detached.stderr], [0, '', ''])
  for (let i = 0; strata('exec', 'bg', 'cat', '/made').stdout !== 'made\n'; i++) {
    assert.ok(i < 500, 'exec -d never wrote its file')
    await new Promise((r) => setTimeout(r, 10))
  }
  const missing = strata('exec', '-d', 'bg', 'nope')
  assert.equal(missing.status, 1)
  assert.match(missing.stderr, /^Error response from daemon: OCI runtime exec failed: .*"nope": executable file not found in \$PATH: unknown\n$/)
  ok('rm', '-f', 'bg')
})
