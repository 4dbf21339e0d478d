/**
 * The two Engine API SDKs against `strata serve`, unmodified: docker-py
 * (Debian's python3-docker, in a python3 child process) and dockerode
 * (npm), through the image and container calls strata serves: ping,
 * version, list, inspect, tag, pull from a local registry with progress,
 * save and load, create, diff, commit, remove.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import Docker from 'dockerode'
import { importBusybox, shortTempDir, startStrataServe } from './helpers/api-server.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { REGISTRY, startRegistry } from './helpers/registry.js'
import { strata } from './helpers/strata-cli.js'

function canRun(t: TestContext): boolean {
  return requireRoot(t) && requireTool(t, 'busybox', 'tar', 'python3', REGISTRY)
}

const DOCKER_PY_SCRIPT = String.raw`
import docker, json, sys
c = docker.DockerClient(base_url=sys.argv[1], version='auto')
out = {'api': c.api.api_version, 'ping': c.ping(), 'version': c.version()['ApiVersion']}
img = c.images.get('busybox')
out['id'] = img.id
img.tag('pytag', '1')
out['tags'] = sorted(t for i in c.images.list() for t in i.tags)
out['history'] = len(img.history())
ct = c.containers.create('busybox', ['echo', 'hi'], name='py1', environment={'A': '1'}, labels={'from': 'py'})
ct.reload()
out['status'] = ct.status
out['name'] = ct.name
out['env'] = ct.attrs['Config']['Env']
out['diff'] = ct.diff()
out['listed'] = [x.name for x in c.containers.list(all=True, filters={'label': 'from=py'})]
new = ct.commit(repository='pycommit', tag='2', message='from docker-py', changes=['ENV PY=1'])
out['commit_env'] = c.images.get('pycommit:2').attrs['Config']['Env']
data = b''.join(img.save())
out['saved'] = len(data)
c.images.remove('pytag:1')
c.images.remove('pycommit:2')
out['loaded'] = [i.id for i in c.images.load(data)]
pulled = c.images.pull(sys.argv[2], tag='1')
out['pulled'] = pulled.id
ct.remove()
out['after'] = len(c.containers.list(all=True))
try:
    c.images.get('no-such-image')
    out['missing'] = 'found'
except docker.errors.ImageNotFound as e:
    out['missing'] = 'ImageNotFound'
try:
    c.volumes.create('v1')
except docker.errors.APIError as e:
    out['volume'] = [e.status_code, e.explanation]
print(json.dumps(out))
`

test('docker-py (python3-docker) against strata serve', async (t) => {
  if (!canRun(t)) return
  const registry = await startRegistry(t, shortTempDir(t, 'strata-api-reg-'))
  const s = await startStrataServe(t)
  const id = await importBusybox(t, s.root)
  // An image in the registry to pull: pushed there through the server by the docker CLI would need a second path; the strata CLI does it.
  assert.equal((await strata(['tag', 'busybox', `${registry}/py/bb:1`], { root: s.root })).code, 0)
  const pushed = await strata(['push', `${registry}/py/bb:1`], { root: s.root })
  assert.equal(pushed.code, 0, pushed.stderr)
  assert.equal((await strata(['rmi', `${registry}/py/bb:1`], { root: s.root })).code, 0)
  const { stdout } = await run('python3', ['-c', DOCKER_PY_SCRIPT, s.host, `${registry}/py/bb`], { env: s.clientEnv() })
  const out = JSON.parse(stdout.toString()) as Record<string, unknown>
  assert.equal(out.api, '1.41')
  assert.equal(out.ping, true)
  assert.equal(out.version, '1.41')
  assert.equal(out.id, id)
  assert.deepEqual(out.tags, ['busybox:latest', 'pytag:1'])
  assert.equal(out.history, 1)
  assert.equal(out.status, 'created')
  assert.equal(out.name, 'py1')
  assert.ok((out.env as string[]).includes('A=1'))
  assert.equal(out.diff, null)
  assert.deepEqual(out.listed, ['py1'])
  assert.ok((out.commit_env as string[]).includes('PY=1'))
  assert.ok((out.saved as number) > 1_000_000)
  assert.deepEqual(out.loaded, [id])
  assert.equal(out.pulled, id)
  assert.equal(out.after, 0)
  assert.equal(out.missing, 'ImageNotFound')
  assert.deepEqual(out.volume, [501, 'strata does not implement volumes'])
})

test('dockerode against strata serve', async (t) => {
  if (!canRun(t)) return
  const registry = await startRegistry(t, shortTempDir(t, 'strata-api-reg-'))
  const s = await startStrataServe(t)
  const id = await importBusybox(t, s.root)
  const docker = new Docker({ socketPath: s.socket })
  assert.equal((await docker.version()).ApiVersion, '1.41')
  assert.equal(String(await docker.ping()), 'OK')
  const images = await docker.listImages()
  assert.deepEqual(images.map((i) => i.RepoTags), [['busybox:latest']])
  const image = docker.getImage('busybox')
  assert.equal((await image.inspect()).Id, id)
  await image.tag({ repo: `${registry}/node/bb`, tag: '1' })

  // push, with the progress stream followed to its end
  const pushStream = await docker.getImage(`${registry}/node/bb:1`).push({ authconfig: {} })
  const pushEvents = await new Promise<Array<{ status?: string; aux?: { Digest: string } }>>((resolve, reject) => docker.modem.followProgress(pushStream, (err: Error | null, res: Array<{ status?: string; aux?: { Digest: string } }>) => (err ? reject(err) : resolve(res))))
  const digest = pushEvents.find((e) => e.aux !== undefined)?.aux?.Digest
  assert.match(String(digest), /^sha256:[0-9a-f]{64}$/)
  await docker.getImage(`${registry}/node/bb:1`).remove()

  // pull into a second server
  const s2 = await startStrataServe(t)
  const docker2 = new Docker({ socketPath: s2.socket })
  const pullStream = await docker2.pull(`${registry}/node/bb:1`)
  const pullEvents = await new Promise<Array<{ status?: string }>>((resolve, reject) => docker2.modem.followProgress(pullStream, (err: Error | null, res: Array<{ status?: string }>) => (err ? reject(err) : resolve(res))))
  assert.ok(pullEvents.some((e) => e.status === `Status: Downloaded newer image for ${registry}/node/bb:1`), JSON.stringify(pullEvents))
  assert.equal((await docker2.getImage(`${registry}/node/bb:1`).inspect()).Id, id)

  // save from one, load into the other
  const saved = await docker.getImage('busybox').get()
  const loadStream = await docker2.loadImage(saved as unknown as NodeJS.ReadableStream, { quiet: true })
  const loaded = await new Promise<Array<{ stream?: string }>>((resolve, reject) => docker2.modem.followProgress(loadStream, (err: Error | null, res: Array<{ stream?: string }>) => (err ? reject(err) : resolve(res))))
  assert.ok(loaded.some((e) => e.stream === 'Loaded image: busybox:latest\n'), JSON.stringify(loaded))

  // containers
  const container = await docker.createContainer({ Image: 'busybox', Cmd: ['echo', 'node'], name: 'node1', Env: ['N=1'] })
  const info = await container.inspect()
  assert.equal(info.Name, '/node1')
  assert.equal(info.State.Status, 'created')
  assert.deepEqual(info.Config.Cmd, ['echo', 'node'])
  const listed = await docker.listContainers({ all: true })
  assert.deepEqual(listed.map((c) => c.Names), [['/node1']])
  // dockerd answers `null` for no changes, which dockerode hands back unparsed.
  assert.equal(String(await container.changes()).trim(), 'null')
  const committed = (await container.commit({ repo: 'nodecommit', tag: '1', comment: 'from dockerode' })) as { Id: string }
  assert.match(committed.Id, /^sha256:[0-9a-f]{64}$/)
  await container.remove()
  assert.deepEqual(await docker.listContainers({ all: true }), [])
  await assert.rejects(docker.getContainer('node1').inspect(), (err: Error & { statusCode?: number }) => err.statusCode === 404)
  await assert.rejects(docker.createVolume({ Name: 'v' }), (err: Error & { statusCode?: number }) => err.statusCode === 501)
})
