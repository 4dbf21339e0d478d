/**
 * The container lifecycle without a daemon, through the library: a
 * monitor per started container (src/container/monitor) runs it with
 * runc, records State as dockerd does and writes docker's json-file log.
 *
 * - the reference article's walk-through on overlay2: create, start in
 *   the background, the process writes files, stop, the layer is
 *   unmounted, commit, a container of the committed image sees the writes;
 * - stop (the stop signal, SIGKILL after the timeout), kill -s, wait,
 *   restart, logs (entries as docker writes them, --tail, --since,
 *   --until, a torn last line, a cut file);
 * - restart policies, --rm of a detached run, racing starts, exec, top,
 *   pause/unpause;
 * - crashes: the monitor killed (-9), a simulated reboot (the container's
 *   processes, mounts and runc state gone): the record reconciled, nothing
 *   leaked, the container startable again; a monitor whose record was
 *   removed under it cleans up after itself.
 *
 * No sleeps decide anything: every wait is for a state (waitContainer,
 * a log line, a record field).
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { appendFile, readFile, rm, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test, type TestContext } from 'node:test'
import {
  commitContainer,
  createContainer,
  execContainer,
  getContainer,
  killContainer,
  reconciledContainers,
  parseLogTime,
  pauseContainer,
  readLogs,
  restartContainer,
  runContainer,
  startContainer,
  stopContainer,
  topContainer,
  waitContainer,
  type LogEntry,
} from '../src/container/index.js'
import { isMonitorInfoAlive, readMonitorInfo } from '../src/containerdb/index.js'
import { isStrataError } from '../src/errors/index.js'
import type { Store } from '../src/store/index.js'
import { MNT_DETACH, umount2 } from '../src/sys/index.js'
import { containerEnv, startToExit, type ContainerEnv } from './helpers/container-env.js'
import { IMAGE_TAG } from './helpers/docker-image.js'
import { mountsAtOrUnder, requireDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'

function canRun(t: TestContext): boolean {
  return requireRoot(t) && requireTool(t, 'runc', 'busybox', 'tar') && requireDockerd(t)
}

function codeIs(code: string) {
  return (err: unknown): boolean => isStrataError(err) && err.code === code
}

/** Follows the log until a stdout line equal to `line` comes (the container said it is ready). */
async function logLine(store: Store, id: string, line: string): Promise<void> {
  for await (const e of readLogs(store, id, { follow: true })) if (e.log === `${line}\n`) return
  throw new Error(`container ${id} stopped before printing ${line}`)
}

async function allLogs(store: Store, id: string, opts: Parameters<typeof readLogs>[2] = {}): Promise<LogEntry[]> {
  const out: LogEntry[] = []
  for await (const e of readLogs(store, id, opts)) out.push(e)
  return out
}

async function runcHasState(id: string): Promise<boolean> {
  return run('runc', ['state', id]).then(
    () => true,
    () => false,
  )
}

/** What a finished container must not leave: runc state, a bundle, a monitor, a driver mount of its layer, a mount count. */
async function assertReleased(env: ContainerEnv, id: string): Promise<void> {
  assert.equal(await runcHasState(id), false, 'no runc state left')
  assert.equal(existsSync(join(env.root, 'containers', id, 'bundle')), false, 'no bundle left')
  assert.equal(existsSync(join(env.root, 'containers', id, 'strata-monitor.json')), false, `no monitor file left: ${await readFile(join(env.root, 'containers', id, 'strata-monitor.json'), 'utf8').catch(() => '')} ${await readFile(join(env.root, 'containers', id, 'strata-monitor.log'), 'utf8').catch(() => '')} ${process.pid}`)
  const m = await env.store.layers.getMount(id)
  assert.equal(m.mountCount, 0, 'the layer is unmounted')
  assert.deepEqual(
    mountsAtOrUnder([env.root]).filter((p) => p.includes(m.mountId)),
    [],
    'no driver mount of the layer',
  )
}

const LOOP = 'trap "echo got TERM; exit 4" TERM; echo ready; while :; do sleep 0.1; done'

test('the article walk-through on overlay2: create, start -d, the process writes, stop unmounts, commit, a new container sees the writes', async (t) => {
  if (!canRun(t)) return
  const env = await containerEnv(t, 'overlay2')
  const { store } = env
  const c = await createContainer(store, IMAGE_TAG, {
    name: 'article',
    cmd: ['sh', '-c', 'mkdir -p /work && echo written > /work/file && dd if=/dev/zero of=/work/big bs=1M count=4 2>/dev/null && rm /data/one && echo done; exec sleep 600'],
  })
  const started = await startContainer(store, c.id)
  assert.equal(started.alreadyRunning, false)
  assert.equal((await store.layers.getMount(c.id)).mountCount, 1, 'mounted while it runs')
  await logLine(store, c.id, 'done')
  const running = await getContainer(store, 'article')
  assert.equal(running.running, true)
  assert.equal(running.record.State.Pid, started.pid)

  const stopped = await stopContainer(store, 'article', { timeout: 1 })
  assert.equal(stopped.wasRunning, true)
  const after = await getContainer(store, 'article')
  assert.equal(after.running, false)
  // sleep as PID 1 has no handler for SIGTERM: the kernel ignores it, SIGKILL ends it.
  assert.equal(after.record.State.ExitCode, 137)
  assert.equal(after.record.State.Pid, 0)
  await assertReleased(env, c.id)

  const commit = await commitContainer(store, 'article', { reference: 'article:committed' })
  assert.equal(commit.addedLayer, true)
  const child = await createContainer(store, 'article:committed', { cmd: ['sh', '-c', 'cat /work/file; wc -c < /work/big; ls /data'] })
  const ran = await startToExit(store, child.id)
  assert.equal(ran.code, 0, ran.stderr)
  assert.equal(ran.stdout, 'written\n4194304\ntwo\n', 'the new container sees the writes and the deletion')
})

describe('container process (vfs)', () => {
  test('stop: the stop signal, then SIGKILL after the timeout; State, log and release as dockerd', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    const { store } = env
    const c = await createContainer(store, IMAGE_TAG, { cmd: ['sh', '-c', `echo to-stderr >&2; ${LOOP}`] })
    await startContainer(store, c.id)
    await logLine(store, c.id, 'ready')
    await stopContainer(store, c.id)
    const s = (await getContainer(store, c.id)).record.State
    assert.equal(s.ExitCode, 4, 'the trap ran: SIGTERM came first')
    assert.equal(s.Running, false)
    assert.match(s.StartedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/)
    assert.ok(s.FinishedAt >= s.StartedAt)
    await assertReleased(env, c.id)
    const record = JSON.parse(await readFile(join(env.root, 'containers', c.id, 'config.v2.json'), 'utf8')) as Record<string, unknown>
    assert.equal(record.LogPath, join(env.root, 'containers', c.id, `${c.id}-json.log`))
    assert.equal(record.HasBeenStartedBefore, true)
    assert.equal(record.HasBeenManuallyStopped, true)

    // The log file as docker's json-file driver writes it.
    const lines = (await readFile(join(env.root, 'containers', c.id, `${c.id}-json.log`), 'utf8')).split('\n')
    assert.equal(lines.pop(), '')
    const shape = /^\{"log":"(.*)","stream":"(stdout|stderr)","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"\}$/
    // Two pipes: their relative order is the kernel's, each one's own order is kept.
    const entries = lines.map((l) => shape.exec(l)?.slice(1, 3))
    assert.deepEqual(
      entries.filter((e) => e?.[1] === 'stdout'),
      [
        ['ready\\n', 'stdout'],
        ['got TERM\\n', 'stdout'],
      ],
    )
    assert.deepEqual(
      entries.filter((e) => e?.[1] !== 'stdout'),
      [['to-stderr\\n', 'stderr']],
    )

    // No handler: SIGKILL after the timeout; stop of a stopped container does nothing.
    const d = await createContainer(store, IMAGE_TAG, { cmd: ['sh', '-c', 'echo ready; while :; do sleep 0.1; done'] })
    await startContainer(store, d.id)
    await logLine(store, d.id, 'ready')
    await stopContainer(store, d.id, { timeout: 0 })
    assert.equal((await getContainer(store, d.id)).record.State.ExitCode, 137)
    assert.deepEqual(await stopContainer(store, d.id), { id: d.id, wasRunning: false })
    await assertReleased(env, d.id)
  })

  test('kill -s, wait, restart; bad input: kill of a stopped container, an unknown signal, an unknown container', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    const { store } = env
    const c = await createContainer(store, IMAGE_TAG, { name: 'kk', cmd: ['sh', '-c', 'trap "echo usr1" USR1; echo ready; while :; do sleep 0.1; done'] })
    await startContainer(store, c.id)
    await logLine(store, c.id, 'ready')
    await assert.rejects(killContainer(store, 'kk', 'NOPE'), (e: unknown) => isStrataError(e, 'INVALID_ARGUMENT') && e.message === 'Invalid signal: NOPE')
    await killContainer(store, 'kk', 'usr1')
    await logLine(store, c.id, 'usr1')
    assert.equal((await getContainer(store, 'kk')).running, true, 'a trapped signal does not stop it')
    const waiting = waitContainer(store, 'kk')
    await killContainer(store, 'kk', 'SIGKILL')
    assert.deepEqual(await waiting, { exitCode: 137, error: '' })
    assert.deepEqual(await waitContainer(store, 'kk'), { exitCode: 137, error: '' }, 'wait on a stopped container returns at once')
    await assert.rejects(killContainer(store, 'kk'), (e: unknown) => isStrataError(e, 'IN_USE') && /is not running/.test(e.message))
    await assert.rejects(stopContainer(store, 'nope'), codeIs('NOT_FOUND'))

    // restart: a stopped container starts; a running one is stopped first.
    await restartContainer(store, 'kk', { timeout: 0 })
    await logLine(store, c.id, 'ready')
    const first = (await getContainer(store, 'kk')).record.State.StartedAt
    await restartContainer(store, 'kk', { timeout: 0 })
    const again = await getContainer(store, 'kk')
    assert.equal(again.running, true)
    assert.notEqual(again.record.State.StartedAt, first)
    await stopContainer(store, 'kk', { timeout: 0 })
    await assertReleased(env, c.id)

    // An abortable wait (the Engine API's client may go away).
    const sleeper = await createContainer(store, IMAGE_TAG, { cmd: ['sleep', '600'] })
    await startContainer(store, sleeper.id)
    const abort = new AbortController()
    const w = waitContainer(store, sleeper.id, { signal: abort.signal })
    abort.abort()
    await assert.rejects(w, { name: 'AbortError' })
    await stopContainer(store, sleeper.id, { timeout: 0 })
  })

  test('restart policies: on-failure:2 runs three times, always ends with a stop, unless-stopped; --rm of a detached run', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    const { store } = env
    const f = await createContainer(store, IMAGE_TAG, { cmd: ['sh', '-c', 'echo run; exit 3'], restartPolicy: { Name: 'on-failure', MaximumRetryCount: 2 } })
    await startContainer(store, f.id)
    assert.equal((await waitContainer(store, f.id, { condition: 'next-exit' })).exitCode, 3)
    // next-exit may see a restart's gap: wait until the monitor is done with it.
    await waitUntil(store, f.id, (c) => !c.running && c.record.RestartCount === 2)
    assert.equal((await allLogs(store, f.id)).filter((e) => e.log === 'run\n').length, 3)
    await assertReleased(env, f.id)

    const a = await createContainer(store, IMAGE_TAG, { cmd: ['sh', '-c', 'echo run; exit 0'], restartPolicy: { Name: 'always', MaximumRetryCount: 0 } })
    await startContainer(store, a.id)
    await waitUntil(store, a.id, (c) => c.record.RestartCount >= 2)
    await stopContainer(store, a.id, { timeout: 0 })
    const stopped = await getContainer(store, a.id)
    assert.equal(stopped.running, false, 'a stop by hand ends "always"')
    assert.equal(stopped.record.State.Restarting, false)
    await assertReleased(env, a.id)

    const u = await createContainer(store, IMAGE_TAG, { cmd: ['sh', '-c', 'echo ready; sleep 600'], restartPolicy: { Name: 'unless-stopped', MaximumRetryCount: 0 } })
    await startContainer(store, u.id)
    await logLine(store, u.id, 'ready')
    await killContainer(store, u.id)
    assert.equal((await waitContainer(store, u.id)).exitCode, 137)
    assert.equal((await getContainer(store, u.id)).record.RestartCount, 0, 'killed by hand: not restarted')

    await assert.rejects(createContainer(store, IMAGE_TAG, { cmd: ['true'], autoRemove: true, restartPolicy: { Name: 'always', MaximumRetryCount: 0 } }), codeIs('INVALID_ARGUMENT'))
    const { id } = await runContainer(store, IMAGE_TAG, { cmd: ['true'], detach: true, rm: true })
    await waitContainer(store, id, { condition: 'removed' })
    await assert.rejects(store.containers.get(id), codeIs('NOT_FOUND'))
    await assert.rejects(store.layers.getMount(id), codeIs('NOT_FOUND'), 'its layer went with it')
  })

  test('two racing starts: one starts it, the other finds it running; a failed start leaves it Created with 127', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    const { store } = env
    const c = await createContainer(store, IMAGE_TAG, { cmd: ['sleep', '600'] })
    const results = await Promise.all([startContainer(store, c.id), startContainer(store, c.id)])
    assert.deepEqual(results.map((r) => r.alreadyRunning).sort(), [false, true])
    assert.equal(results[0]!.pid, results[1]!.pid)
    assert.equal((await store.layers.getMount(c.id)).mountCount, 1, 'mounted once')
    await stopContainer(store, c.id, { timeout: 0 })
    await assertReleased(env, c.id)

    const bad = await createContainer(store, IMAGE_TAG, { cmd: ['/no/such/binary'] })
    await assert.rejects(startContainer(store, bad.id), (e: unknown) => isStrataError(e) && /no such file or directory/.test(e.message) && e.details.exitCode === 127)
    const s = (await getContainer(store, bad.id)).record.State
    assert.equal(s.ExitCode, 127)
    assert.match(s.Error, /OCI runtime create failed: .*\/no\/such\/binary/)
    assert.equal(s.StartedAt, '0001-01-01T00:00:00Z', 'never started: docker shows it Created')
    await assertReleased(env, bad.id)
  })

  test('logs: --tail, --since, --until, a torn last line and a cut file are read without error', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    const { store } = env
    const c = await createContainer(store, IMAGE_TAG, { cmd: ['true'] })
    const path = join(env.root, 'containers', c.id, `${c.id}-json.log`)
    const entry = (log: string, stream: string, time: string): string => `${JSON.stringify({ log, stream, time })}\n`
    await writeFile(
      path,
      entry('one\n', 'stdout', '2026-01-01T00:00:01.5Z') +
        entry('two\n', 'stderr', '2026-01-01T00:00:02Z') +
        'not json at all\n' +
        entry('three\n', 'stdout', '2026-01-01T00:00:03.000000001Z') +
        '{"log":"torn',
    )
    const texts = (es: LogEntry[]): string[] => es.map((e) => `${e.stream}:${e.log}`)
    assert.deepEqual(texts(await allLogs(store, c.id)), ['stdout:one\n', 'stderr:two\n', 'stdout:three\n'])
    assert.deepEqual(texts(await allLogs(store, c.id, { tail: 1 })), ['stdout:three\n'])
    assert.deepEqual(texts(await allLogs(store, c.id, { tail: 0 })), [])
    assert.deepEqual(texts(await allLogs(store, c.id, { sinceNs: parseLogTime('2026-01-01T00:00:02Z') })), ['stderr:two\n', 'stdout:three\n'])
    assert.deepEqual(texts(await allLogs(store, c.id, { untilNs: parseLogTime('2026-01-01T00:00:01.9Z') })), ['stdout:one\n'])
    assert.deepEqual(texts(await allLogs(store, c.id, { untilNs: parseLogTime('1767225602') })), ['stdout:one\n', 'stderr:two\n'], 'until is inclusive, as docker\'s')
    assert.deepEqual(texts(await allLogs(store, c.id, { stderr: false })), ['stdout:one\n', 'stdout:three\n'])
    assert.equal(parseLogTime('10m', 1_000_000), 1_000_000n * 1_000_000n - 600n * 1_000_000_000n)
    assert.throws(() => parseLogTime('yesterday'), /failed to parse value as time or duration: "yesterday"/)
    // Cut mid-entry: the whole entries before the cut are read.
    await truncate(path, 30)
    assert.deepEqual(texts(await allLogs(store, c.id)), [])
    await appendFile(path, '\n' + entry('after\n', 'stdout', '2026-01-01T00:00:04Z'))
    assert.deepEqual(texts(await allLogs(store, c.id)), ['stdout:after\n'])
    // A real run appends to the same log.
    await rm(path)
    const ran = await startToExit(store, c.id)
    assert.equal(ran.code, 0)
    assert.deepEqual(await allLogs(store, c.id), [])
  })

  test('exec (-e, -w, -u), top, pause/unpause', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    const { store } = env
    const c = await createContainer(store, IMAGE_TAG, { cmd: ['sh', '-c', 'echo ready; exec sleep 600'], env: ['FROM_IMAGE=1'] })
    await assert.rejects(execContainer(store, c.id, { cmd: ['true'] }), codeIs('IN_USE'), 'not running')
    await startContainer(store, c.id)
    await logLine(store, c.id, 'ready')
    let out = ''
    const code = await execContainer(store, c.id, {
      cmd: ['sh', '-c', 'echo $FROM_IMAGE $EXTRA; pwd; id -u; exit 7'],
      env: ['EXTRA=x'],
      workingDir: '/data',
      user: '1000:1000',
      stdio: 'pipe',
      onSpawn: (child) => child.stdout?.on('data', (b: Buffer) => (out += b.toString())),
    })
    assert.equal(code, 7)
    assert.equal(out, '1 x\n/data\n1000\n')
    const top = await topContainer(store, c.id)
    assert.deepEqual(top.Titles, ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'])
    assert.ok(top.Processes.some((p) => p.at(-1) === 'sleep 600'), JSON.stringify(top.Processes))

    try {
      await pauseContainer(store, c.id, true)
    } catch (err) {
      if (isStrataError(err, 'NOT_SUPPORTED')) {
        t.diagnostic(`pause not possible here: ${err.message}`)
        await stopContainer(store, c.id, { timeout: 0 })
        return
      }
      throw err
    }
    const paused = await getContainer(store, c.id)
    assert.equal(paused.record.State.Paused, true)
    await assert.rejects(pauseContainer(store, c.id, true), /already paused/)
    await assert.rejects(execContainer(store, c.id, { cmd: ['true'] }), /paused/)
    await pauseContainer(store, c.id, false)
    await assert.rejects(pauseContainer(store, c.id, false), /is not paused/)
    assert.equal((await execContainer(store, c.id, { cmd: ['true'], stdio: 'pipe' })), 0, 'thawed')
    // A stop of a paused container thaws it for the signal.
    await pauseContainer(store, c.id, true)
    await stopContainer(store, c.id, { timeout: 0 })
    assert.equal((await getContainer(store, c.id)).record.State.Paused, false)
    await assertReleased(env, c.id)
  })

  test('crash: the monitor killed with -9: the container is killed and reconciled (137), nothing leaked, it starts again', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    const { store } = env
    const c = await createContainer(store, IMAGE_TAG, { cmd: ['sh', '-c', 'echo ready; exec sleep 600'] })
    const { pid } = await startContainer(store, c.id)
    await logLine(store, c.id, 'ready')
    const monitor = readMonitorInfo(env.root, c.id)!
    process.kill(monitor.pid, 'SIGKILL')
    while (isMonitorInfoAlive(monitor)) await new Promise((r) => setTimeout(r, 10))
    const [listed] = await reconciledContainers(store)
    assert.equal(listed!.running, false)
    assert.equal(listed!.record.State.Running, false)
    assert.equal(listed!.record.State.ExitCode, 137)
    assert.match(listed!.record.State.Error, /monitor \(pid \d+\) is gone/)
    assert.equal(existsSync(`/proc/${pid}`), false, 'the orphaned process was killed')
    await assertReleased(env, c.id)
    const ran = await startToExit(store, (await createContainer(store, IMAGE_TAG, { cmd: ['echo', 'fine'] })).id)
    assert.equal(ran.stdout, 'fine\n')
    await startContainer(store, c.id)
    await logLine(store, c.id, 'ready')
    await stopContainer(store, c.id, { timeout: 0 })
  })

  test('simulated reboot: processes, mounts and runc state gone: Exited (255), startable again', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    const { store } = env
    const c = await createContainer(store, IMAGE_TAG, { cmd: ['sh', '-c', 'echo ready; exec sleep 600'] })
    await startContainer(store, c.id)
    await logLine(store, c.id, 'ready')
    // The machine goes down: every process dies at once, /run is a fresh tmpfs, nothing is mounted.
    const monitor = readMonitorInfo(env.root, c.id)!
    const init = (await getContainer(store, c.id)).record.State.Pid
    process.kill(monitor.pid, 'SIGKILL')
    await run('runc', ['kill', '--all', c.id, 'KILL']).catch(() => {})
    while (isMonitorInfoAlive(monitor) || existsSync(`/proc/${init}`)) await new Promise((r) => setTimeout(r, 10))
    await rm(join('/run/runc', c.id), { recursive: true, force: true })
    const m = await store.layers.getMount(c.id)
    for (const p of mountsAtOrUnder([env.root])) if (p.includes(m.mountId)) umount2(p, MNT_DETACH)

    const after = await getContainer(store, c.id)
    assert.equal(after.running, false)
    assert.equal(after.record.State.ExitCode, 255, 'nothing was left to kill: the status is unknown')
    await assertReleased(env, c.id)
    const again = await startContainer(store, c.id)
    assert.equal(again.alreadyRunning, false)
    await logLine(store, c.id, 'ready')
    await stopContainer(store, c.id, { timeout: 0 })
    await assertReleased(env, c.id)
  })

  test('a monitor whose container was removed under it: it cleans up what is left and goes', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    const { store } = env
    const c = await createContainer(store, IMAGE_TAG, { cmd: ['sh', '-c', 'echo ready; exec sleep 600'] })
    await startContainer(store, c.id)
    await logLine(store, c.id, 'ready')
    const monitor = readMonitorInfo(env.root, c.id)!
    const m = await store.layers.getMount(c.id)
    // Removed by hand, behind strata's back.
    await rm(join(env.root, 'containers', c.id), { recursive: true, force: true })
    await run('runc', ['kill', c.id, 'KILL'])
    while (isMonitorInfoAlive(monitor)) await new Promise((r) => setTimeout(r, 10))
    assert.equal(await runcHasState(c.id), false)
    assert.equal((await store.layers.getMount(c.id)).mountCount, 0, 'the monitor unmounted the layer')
    assert.deepEqual(
      mountsAtOrUnder([env.root]).filter((p) => p.includes(m.mountId)),
      [],
    )
    // The orphaned layer goes with the next create's recovery.
    await createContainer(store, IMAGE_TAG, { cmd: ['true'] })
    await assert.rejects(store.layers.getMount(c.id), codeIs('NOT_FOUND'))
  })
})

/** Waits (on the record's changes) until `ok` holds for the container. */
async function waitUntil(store: Store, id: string, ok: (c: Awaited<ReturnType<typeof getContainer>>) => boolean): Promise<void> {
  for (;;) {
    const c = await getContainer(store, id)
    if (ok(c)) return
    await new Promise((r) => setTimeout(r, 20))
  }
}

