/**
 * docker-py (Debian's python3-docker) against `strata serve`, unmodified,
 * through the lifecycle a Python user drives (test/peers/docker-py/
 * lifecycle.py): ping and version; images get, tag, list, history; pull
 * from a local distribution registry (and again: up to date); a container
 * created, started, waited for, its logs apart by stream; a long one with
 * exec (plain and demuxed), put_archive / get_archive (and a missing
 * directory), diff, rename, pause, unpause, stats, restart, kill, start,
 * stop; commit and export; save and load; system df; container and image
 * prune; rmi; the events stream read while all of it happens. The same
 * script runs against a private dockerd 20.10 on the same registry image,
 * and what the two answered is compared (but for what differs by nature:
 * image IDs, which layers were already there, image counts).
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { busyboxRootfsTar, importBusybox, pushBusyboxAs, shortTempDir, startStrataServe } from './helpers/api-server.js'
import { requireDockerd, startDockerd } from './helpers/dockerd.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { REGISTRY, startRegistry } from './helpers/registry.js'

const SCRIPT = fileURLToPath(new URL('../../test/peers/docker-py/lifecycle.py', import.meta.url))
/** Debian's python3 (with python3-docker) when it is there: the client the issue names. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'

type Out = Record<string, unknown> & { events: Array<[string, string, string]> }

async function runScript(host: string, remote: string, env?: NodeJS.ProcessEnv): Promise<Out> {
  const { stdout } = await run(PYTHON, [SCRIPT, host, remote], env === undefined ? {} : { env })
  return JSON.parse(stdout.toString()) as Out
}

/** Events both servers log the same way (die comes from strata's monitor at its own moment; dockerd's untag/delete split and its volumes differ; image IDs differ). */
const COMPARED_EVENTS = new Set(['tag', 'pull', 'save', 'load', 'create', 'start', 'extract-to-dir', 'archive-path', 'rename', 'pause', 'unpause', 'kill', 'stop', 'restart', 'commit', 'export', 'destroy', 'prune'])

function comparable(events: Array<[string, string, string]>): string[] {
  return events
    .filter(([type, action]) => type !== 'volume' && (COMPARED_EVENTS.has(action) || action.startsWith('exec_')))
    .map((e) => e.join(' ').replace(/sha256:[0-9a-f]{64}/g, 'IMAGE'))
}

test('docker-py (python3-docker) through strata serve: the lifecycle, as against dockerd 20.10', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'busybox', 'tar', 'runc', 'python3', REGISTRY) || !requireDockerd(t)) return
  const registry = await startRegistry(t, shortTempDir(t, 'strata-api-reg-'))
  const s = await startStrataServe(t)
  const id = await importBusybox(t, s.root)
  // The registry's image is strata's busybox, pushed by the strata CLI.
  const remote = `${registry}/py/bb`
  await pushBusyboxAs(s.root, remote)

  const out = await runScript(s.host, remote, s.clientEnv())
  assert.equal(out.api, '1.41')
  assert.equal(out.ping, true)
  assert.equal(out.id, id)
  assert.deepEqual(out.tags, ['busybox:latest', 'pytag:1'])
  assert.deepEqual(out.pull_layer_statuses, ['Already exists'], 'the registry image is busybox: its layer is there')
  assert.equal(out.pulled, id)
  assert.deepEqual(out.loaded, [id])
  assert.ok((out.saved as number) > 1_000_000)
  assert.deepEqual(out.wait, { StatusCode: 3, Error: null })
  assert.deepEqual(out.logs, ['out\n', 'err\n'])
  assert.deepEqual(out.exec, [2, 'hi\nthere\n'])
  assert.deepEqual(out.exec_demux, ['a\n', 'b\n'])
  assert.deepEqual(out.get_archive, ['hello.txt', 15, '0o100640', 'from docker-py\n'])
  assert.deepEqual(out.diff, [['/tmp', 0], ['/tmp/hello.txt', 1]])
  assert.deepEqual(out.stats, ['/py-long2', 1, true, true, true])
  assert.deepEqual(out.killed, 137)
  assert.deepEqual(out.volume, [501, 'strata does not implement volumes'])
  const actions = out.events.map((e) => e[1])
  for (const wanted of ['pull', 'create', 'exec_die', 'extract-to-dir', 'archive-path', 'rename', 'pause', 'unpause', 'restart', 'commit', 'export', 'save', 'load', 'destroy', 'prune']) {
    assert.ok(actions.includes(wanted), `the event stream showed ${wanted}: ${JSON.stringify(out.events)}`)
  }
  await s.stop()

  // The same script against dockerd 20.10, with busybox imported from the same rootfs.
  const dockerd = await startDockerd(t, { storageDriver: 'overlay2' })
  await dockerd.docker(['import', '-c', 'CMD ["sh"]', '-', 'busybox:latest'], await busyboxRootfsTar(t))
  const ref = await runScript(dockerd.host, remote)
  await dockerd.stop()
  for (const key of Object.keys(ref)) {
    if (['id', 'pulled', 'loaded', 'saved', 'pull_layer_statuses', 'df', 'events', 'volume'].includes(key)) continue
    assert.deepEqual(out[key], ref[key], `${key}: strata ${JSON.stringify(out[key])}, dockerd ${JSON.stringify(ref[key])}`)
  }
  const [dfKeys, , dfContainers] = out.df as [string[], number, string[]]
  assert.deepEqual([dfKeys, dfContainers], [(ref.df as unknown[])[0], (ref.df as unknown[])[2]])
  assert.deepEqual(comparable(out.events), comparable(ref.events))
})
