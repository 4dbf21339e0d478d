/**
 * The lifecycle's records are dockerd 20.10's: containers strata created,
 * ran, stopped and failed to start on an overlay2 data root are listed by
 * a dockerd started on that root with the same state and status, their
 * json-file logs read by `docker logs`, and dockerd starts them; a
 * container dockerd ran there is listed by strata afterwards with the
 * same status, and its log read by strata.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createContainer, listContainers, readLogs, startContainer, stopContainer, waitContainer } from '../src/container/index.js'
import { containerEnv, startToExit } from './helpers/container-env.js'
import { IMAGE_TAG } from './helpers/docker-image.js'
import { requireDockerd, startDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool } from './helpers/peers.js'

/** A status with its durations blanked ("Exited (3) 5 seconds ago" → "Exited (3) _ ago"): the two listings are made seconds apart. */
function statusShape(status: string): string {
  return status.replace(/(Up|\)) (Less than a second|About a minute|About an hour|\d+ \w+)/, '$1 _')
}

test('dockerd 20.10 on a strata root: same states and statuses, docker logs reads strata\'s logs, docker starts them; strata lists and reads dockerd\'s', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'runc', 'busybox', 'tar') || !requireDockerd(t)) return
  const env = await containerEnv(t, 'overlay2')
  const { store } = env
  const ex3 = await createContainer(store, IMAGE_TAG, { name: 'ex3', cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'] })
  assert.equal((await startToExit(store, ex3.id)).code, 3)
  const stopped = await createContainer(store, IMAGE_TAG, { name: 'stopped', cmd: ['sleep', '600'] })
  await startContainer(store, stopped.id)
  await stopContainer(store, stopped.id, { timeout: 0 })
  await createContainer(store, IMAGE_TAG, { name: 'fresh', cmd: ['true'] })
  const failed = await createContainer(store, IMAGE_TAG, { name: 'failed', cmd: ['/no/such/binary'] })
  await assert.rejects(startContainer(store, failed.id))
  const ours = new Map((await listContainers(store, { all: true })).map((c) => [c.Names[0]!.slice(1), `${c.State}|${statusShape(c.Status)}`]))
  assert.deepEqual(Object.fromEntries(ours), {
    ex3: 'exited|Exited (3) _ ago',
    stopped: 'exited|Exited (137) _ ago',
    fresh: 'created|Created',
    failed: 'created|Created',
  })

  const dockerd = await startDockerd(t, { storageDriver: 'overlay2', dataRoot: env.root })
  try {
    const listed = (await dockerd.docker(['ps', '-a', '--format', '{{.Names}}|{{.State}}|{{.Status}}'])).stdout.toString().trim().split('\n')
    const theirs = new Map(listed.map((l) => {
      const [name, state, status] = l.split('|') as [string, string, string]
      return [name, `${state}|${statusShape(status)}`]
    }))
    assert.deepEqual(Object.fromEntries(theirs), Object.fromEntries(ours), 'docker ps -a lists them as strata does')
    const inspected = JSON.parse((await dockerd.docker(['inspect', 'ex3'])).stdout.toString()) as Array<{ State: { ExitCode: number; StartedAt: string }; LogPath: string }>
    assert.equal(inspected[0]!.State.ExitCode, 3)
    assert.equal(inspected[0]!.LogPath, `${env.root}/containers/${ex3.id}/${ex3.id}-json.log`)
    const logs = await dockerd.docker(['logs', 'ex3'])
    assert.equal(logs.stdout.toString(), 'out\n')
    assert.equal(logs.stderr, 'err\n')
    await dockerd.docker(['start', 'ex3'])
    assert.equal((await dockerd.docker(['wait', 'ex3'])).stdout.toString(), '3\n', 'dockerd starts a container strata made')
    assert.equal((await dockerd.docker(['logs', 'ex3'])).stdout.toString(), 'out\nout\n', 'and appends to the same log')
    await dockerd.docker(['run', '--name', 'byd', '--network', 'none', IMAGE_TAG, 'sh', '-c', 'echo from dockerd; exit 5']).catch(() => {})
  } finally {
    await dockerd.stop()
  }

  const after = new Map((await listContainers(store, { all: true })).map((c) => [c.Names[0]!.slice(1), `${c.State}|${statusShape(c.Status)}`]))
  assert.equal(after.get('byd'), 'exited|Exited (5) _ ago', 'strata lists the container dockerd ran')
  assert.equal(after.get('ex3'), 'exited|Exited (3) _ ago')
  const byd = await store.containers.get('byd')
  const lines: string[] = []
  for await (const e of readLogs(store, byd.id)) lines.push(`${e.stream}:${e.log}`)
  assert.deepEqual(lines, ['stdout:from dockerd\n'], "strata reads dockerd's json-file log")
  assert.equal((await waitContainer(store, 'byd')).exitCode, 5)
  // And runs it again itself.
  const again = await startToExit(store, byd.id)
  assert.equal(again.code, 5)
  assert.equal(again.stdout, 'from dockerd\n')
})
