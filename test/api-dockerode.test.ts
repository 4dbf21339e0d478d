/**
 * dockerode (npm) against `strata serve`, unmodified: version, ping,
 * images, tag, push with its progress stream, pull into a second server,
 * save from one and load into the other, containers create, inspect,
 * list, changes, commit, remove, and a 501 for volumes.
 */
import assert from 'node:assert/strict'
import { test, type TestContext } from 'node:test'
import Docker from 'dockerode'
import { importBusybox, shortTempDir, startStrataServe } from './helpers/api-server.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { REGISTRY, startRegistry } from './helpers/registry.js'

function canRun(t: TestContext): boolean {
  return requireRoot(t) && requireTool(t, 'busybox', 'tar', REGISTRY)
}

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
