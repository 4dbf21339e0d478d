/**
 * dockerode (npm) against `strata serve`, unmodified, through the
 * lifecycle a Node user drives: ping and version; images inspect, tag,
 * list, history; pull from a local distribution registry with its
 * progress followed (and again: up to date); a container created,
 * started, waited for, its logs apart by stream; a long one with exec
 * (hijacked, demuxed, its exit code inspected), putArchive / infoArchive /
 * getArchive, changes, rename, pause, unpause, stats, restart, kill,
 * start, stop; commit and export; save and load; df; container and image
 * prune; image remove; the event stream read while all of it happens; 404
 * and 501 answers. The same steps run against a private dockerd 20.10 on
 * the same registry image, and the two are compared (but for what differs
 * by nature: image IDs, which layers were already there, image counts).
 * Also: push with its progress, pulled into a second server.
 */
import assert from 'node:assert/strict'
import { PassThrough, type Readable } from 'node:stream'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import Docker from 'dockerode'
import { busyboxRootfsTar, importBusybox, pushBusyboxAs, shortTempDir, startStrataServe } from './helpers/api-server.js'
import { requireDockerd, startDockerd } from './helpers/dockerd.js'
import { layerTar } from './helpers/image-fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { REGISTRY, startRegistry } from './helpers/registry.js'

function canRun(t: TestContext): boolean {
  return requireRoot(t) && requireTool(t, 'busybox', 'tar', 'runc', REGISTRY)
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of stream as Readable) chunks.push(Buffer.from(c as Buffer))
  return Buffer.concat(chunks)
}

/** docker's stdcopy frames (1 stdout, 2 stderr, then a 4-byte length) apart. */
function demux(raw: Buffer): [string, string] {
  const out = ['', '']
  for (let i = 0; i + 8 <= raw.length; ) {
    const len = raw.readUInt32BE(i + 4)
    out[raw[i] === 2 ? 1 : 0] += raw.subarray(i + 8, i + 8 + len).toString()
    i += 8 + len
  }
  return [out[0]!, out[1]!]
}

function follow<T>(docker: Docker, stream: NodeJS.ReadableStream): Promise<T[]> {
  return new Promise((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null, res: T[]) => (err ? reject(err) : resolve(res))))
}

type Event = [string, string, string]

/** The steps, against one server; what it answered, as plain data. */
async function lifecycle(docker: Docker, remote: string): Promise<Record<string, unknown> & { events: Event[] }> {
  const out: Record<string, unknown> = {}
  const events: Event[] = []
  const eventStream = (await docker.getEvents()) as unknown as Readable
  let pending = ''
  eventStream.on('data', (c: Buffer) => {
    pending += c.toString()
    let nl
    while ((nl = pending.indexOf('\n')) >= 0) {
      const e = JSON.parse(pending.slice(0, nl)) as { Type: string; Action: string; Actor: { Attributes: Record<string, string> } }
      events.push([e.Type, e.Action, e.Actor.Attributes.name ?? ''])
      pending = pending.slice(nl + 1)
    }
  })
  eventStream.on('error', () => {})
  await sleep(500)

  out.api = (await docker.version()).ApiVersion
  out.ping = String(await docker.ping())
  const image = docker.getImage('busybox')
  out.id = (await image.inspect()).Id
  await image.tag({ repo: 'nodetag', tag: '1' })
  out.tags = (await docker.listImages()).flatMap((i) => i.RepoTags ?? []).sort()
  out.history = (await image.history()).length

  const pulled = await follow<{ status?: string; id?: string }>(docker, await docker.pull(`${remote}:1`))
  out.pull_statuses = pulled.filter((m) => m.id === undefined || m.status!.startsWith('Pulling from')).map((m) => m.status)
  out.pull_layer_statuses = [...new Set(pulled.filter((m) => m.id !== undefined && !m.status!.startsWith('Pulling from')).map((m) => m.status))].sort()
  out.pulled = (await docker.getImage(`${remote}:1`).inspect()).Id
  out.pull_again = (await follow<{ status?: string }>(docker, await docker.pull(`${remote}:1`))).at(-1)?.status

  const ct = await docker.createContainer({ Image: 'busybox', Cmd: ['sh', '-c', 'echo out; echo err >&2; exit 3'], name: 'node-run', Env: ['A=1'], Labels: { from: 'node' } })
  const created = await ct.inspect()
  out.created = [created.State.Status, created.Name, created.Config.Env.includes('A=1')]
  await ct.start()
  out.wait = await ct.wait()
  out.logs = demux((await ct.logs({ stdout: true, stderr: true })) as unknown as Buffer)
  out.listed = (await docker.listContainers({ all: true, filters: { label: ['from=node'] } })).map((c) => c.Names)

  const lr = await docker.createContainer({ Image: 'busybox', Cmd: ['sleep', '300'], name: 'node-long' })
  await lr.start()
  out.long_status = (await lr.inspect()).State.Status
  const exec = await lr.exec({ Cmd: ['sh', '-c', 'echo a; echo b >&2; exit 2'], AttachStdout: true, AttachStderr: true })
  const execStream = await exec.start({ hijack: true, stdin: false })
  const so = new PassThrough()
  const se = new PassThrough()
  docker.modem.demuxStream(execStream, so, se)
  await new Promise((resolve) => execStream.on('end', resolve))
  so.end()
  se.end()
  out.exec = [(await collect(so)).toString(), (await collect(se)).toString(), (await exec.inspect()).ExitCode]

  await lr.putArchive(layerTar({ 'hello.txt': 'from dockerode\n' }), { path: '/tmp' })
  const info = JSON.parse(Buffer.from(String((await lr.infoArchive({ path: '/tmp/hello.txt' }) as { headers?: Record<string, string> }).headers?.['x-docker-container-path-stat'] ?? 'e30='), 'base64').toString()) as { name?: string; size?: number }
  out.info_archive = [info.name, info.size]
  const tar = await collect(await lr.getArchive({ path: '/tmp/hello.txt' }))
  out.get_archive = (await run('tar', ['-xOf', '-', 'hello.txt'], { input: tar })).stdout.toString()
  out.put_missing = await lr.putArchive(layerTar({ x: 'x' }), { path: '/no/such/dir' }).then(() => 'accepted', (e: { statusCode?: number }) => e.statusCode)
  out.changes = ((await lr.changes()) as Array<{ Path: string; Kind: number }>).map((c) => [c.Path, c.Kind]).sort()

  await lr.rename({ name: 'node-long2' })
  out.renamed = (await lr.inspect()).Name
  await lr.pause()
  out.paused = (await lr.inspect()).State.Status
  await lr.unpause()
  out.unpaused = (await lr.inspect()).State.Status
  const st = (await lr.stats({ stream: false })) as unknown as { name: string; pids_stats: { current?: number }; memory_stats: { usage?: number }; cpu_stats: { cpu_usage: { total_usage: number } }; preread: string }
  out.stats = [st.name, st.pids_stats.current, (st.memory_stats.usage ?? 0) > 0, st.cpu_stats.cpu_usage.total_usage > 0, st.preread !== '0001-01-01T00:00:00Z']
  const startedAt = (await lr.inspect()).State.StartedAt
  await lr.restart({ t: 1 })
  const restarted = await lr.inspect()
  out.restarted = [restarted.State.Status, restarted.State.StartedAt !== startedAt]
  await lr.kill({ signal: 'SIGKILL' })
  out.killed = ((await lr.wait()) as { StatusCode: number }).StatusCode
  await lr.start()
  await lr.stop({ t: 1 })
  const stopped = await lr.inspect()
  out.stopped = [stopped.State.Status, stopped.State.ExitCode]
  out.stop_again = await lr.stop().then(() => 'stopped', (e: { statusCode?: number }) => e.statusCode)

  const committed = (await lr.commit({ repo: 'nodecommit', tag: '1', comment: 'from dockerode', changes: 'ENV NODE=1' })) as { Id: string }
  const commitImage = await docker.getImage('nodecommit:1').inspect()
  out.commit = [committed.Id === commitImage.Id, commitImage.Config.Env.includes('NODE=1'), commitImage.Comment]
  const exported = await collect(await lr.export())
  const names = (await run('tar', ['-tf', '-'], { input: exported })).stdout.toString().split('\n')
  out.export = [names.includes('tmp/hello.txt'), names.includes('bin/busybox')]

  const saved = await collect(await image.get())
  out.saved = saved.length
  await docker.getImage('nodetag:1').remove()
  const loaded = await follow<{ stream?: string }>(docker, await docker.loadImage(PassThrough.from([saved]) as unknown as NodeJS.ReadableStream, { quiet: true }))
  out.loaded = loaded.map((m) => m.stream)

  const df = (await docker.df()) as { Containers: Array<{ Names: string[] }>; Images: unknown[] }
  out.df = [Object.keys(df).sort(), df.Images.length, df.Containers.map((c) => c.Names[0]).sort()]
  const pruned = (await docker.pruneContainers()) as { ContainersDeleted: string[] | null }
  out.containers_pruned = (pruned.ContainersDeleted ?? []).length
  out.after_prune = (await docker.listContainers({ all: true })).length
  await docker.getImage('nodecommit:1').remove()
  out.images_pruned = ((await docker.pruneImages()) as { ImagesDeleted: unknown }).ImagesDeleted
  await docker.getImage(`${remote}:1`).remove()
  out.missing_image = await docker.getImage('no-such-image').inspect().then(() => 'found', (e: { statusCode?: number }) => e.statusCode)
  out.missing_container = await docker.getContainer('no-such').inspect().then(() => 'found', (e: { statusCode?: number }) => e.statusCode)

  await sleep(1000)
  eventStream.destroy()
  return { ...out, events }
}

const COMPARED_EVENTS = new Set(['tag', 'pull', 'save', 'load', 'create', 'start', 'extract-to-dir', 'archive-path', 'rename', 'pause', 'unpause', 'kill', 'stop', 'restart', 'commit', 'export', 'destroy', 'prune'])

/** Events both servers log the same way (die comes from strata's monitor at its own moment; dockerd's untag/delete split differs; image IDs differ). */
function comparable(events: Event[]): string[] {
  return events.filter(([type, action]) => type !== 'volume' && (COMPARED_EVENTS.has(action) || action.startsWith('exec_'))).map((e) => e.join(' ').replace(/sha256:[0-9a-f]{64}/g, 'IMAGE'))
}

test('dockerode through strata serve: the lifecycle, as against dockerd 20.10', async (t) => {
  if (!canRun(t) || !requireDockerd(t)) return
  const registry = await startRegistry(t, shortTempDir(t, 'strata-api-reg-'))
  const s = await startStrataServe(t)
  const id = await importBusybox(t, s.root)
  const remote = `${registry}/node/bb`
  await pushBusyboxAs(s.root, remote)

  const out = await lifecycle(new Docker({ socketPath: s.socket }), remote)
  assert.equal(out.api, '1.41')
  assert.equal(out.id, id)
  assert.deepEqual(out.tags, ['busybox:latest', 'nodetag:1'])
  assert.deepEqual(out.pull_layer_statuses, ['Already exists'])
  assert.equal(out.pulled, id)
  assert.deepEqual(out.wait, { Error: null, StatusCode: 3 })
  assert.deepEqual(out.logs, ['out\n', 'err\n'])
  assert.deepEqual(out.exec, ['a\n', 'b\n', 2])
  assert.deepEqual(out.info_archive, ['hello.txt', 15])
  assert.equal(out.get_archive, 'from dockerode\n')
  assert.deepEqual(out.stats, ['/node-long2', 1, true, true, true])
  assert.deepEqual(out.loaded, ['Loaded image: busybox:latest\n'])
  const actions = out.events.map((e) => e[1])
  for (const wanted of ['pull', 'create', 'exec_die', 'extract-to-dir', 'archive-path', 'rename', 'pause', 'unpause', 'restart', 'commit', 'export', 'save', 'load', 'destroy', 'prune']) {
    assert.ok(actions.includes(wanted), `the event stream showed ${wanted}: ${JSON.stringify(out.events)}`)
  }
  await s.stop()

  const dockerd = await startDockerd(t, { storageDriver: 'overlay2' })
  await dockerd.docker(['import', '-c', 'CMD ["sh"]', '-', 'busybox:latest'], await busyboxRootfsTar(t))
  const ref = await lifecycle(new Docker({ socketPath: dockerd.host.replace(/^unix:\/\//, '') }), remote)
  await dockerd.stop()
  for (const key of Object.keys(ref)) {
    if (['id', 'pulled', 'saved', 'pull_layer_statuses', 'df', 'events'].includes(key)) continue
    assert.deepEqual(out[key], ref[key], `${key}: strata ${JSON.stringify(out[key])}, dockerd ${JSON.stringify(ref[key])}`)
  }
  const [dfKeys, , dfContainers] = out.df as [string[], number, string[]]
  assert.deepEqual([dfKeys, dfContainers], [(ref.df as unknown[])[0], (ref.df as unknown[])[2]])
  assert.deepEqual(comparable(out.events), comparable(ref.events))
})

test('dockerode: push with its progress, pulled into a second server; volumes are 501', async (t) => {
  if (!canRun(t)) return
  const registry = await startRegistry(t, shortTempDir(t, 'strata-api-reg-'))
  const s = await startStrataServe(t)
  const id = await importBusybox(t, s.root)
  const docker = new Docker({ socketPath: s.socket })
  await docker.getImage('busybox').tag({ repo: `${registry}/node/bb`, tag: '1' })
  const pushEvents = await follow<{ status?: string; aux?: { Digest: string } }>(docker, await docker.getImage(`${registry}/node/bb:1`).push({ authconfig: {} }))
  assert.match(String(pushEvents.find((e) => e.aux !== undefined)?.aux?.Digest), /^sha256:[0-9a-f]{64}$/)
  assert.ok(pushEvents.some((e) => e.status === 'Pushed'), JSON.stringify(pushEvents))

  const s2 = await startStrataServe(t)
  const docker2 = new Docker({ socketPath: s2.socket })
  const pullEvents = await follow<{ status?: string }>(docker2, await docker2.pull(`${registry}/node/bb:1`))
  assert.ok(pullEvents.some((e) => e.status === `Status: Downloaded newer image for ${registry}/node/bb:1`), JSON.stringify(pullEvents))
  assert.deepEqual([...new Set(pullEvents.filter((e) => (e as { id?: string }).id !== undefined && e.status !== 'Pulling from node/bb' && e.status !== 'Downloading').map((e) => e.status))], ['Pulling fs layer', 'Verifying Checksum', 'Download complete', 'Pull complete'])
  assert.equal((await docker2.getImage(`${registry}/node/bb:1`).inspect()).Id, id)
  await assert.rejects(docker.createVolume({ Name: 'v' }), (err: Error & { statusCode?: number }) => err.statusCode === 501)
})
