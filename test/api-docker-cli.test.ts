/**
 * The real docker CLIs against `strata serve`: 20.10 (/usr/bin/docker,
 * Debian's docker.io) and 28.x (/usr/local/bin/docker, which negotiates
 * down to 1.41), unmodified, through the image and container verbs that
 * strata serves: push to and pull from a local distribution registry,
 * images, inspect, history, tag, rmi, save | load, import, system df,
 * create, ps, inspect, diff, commit, export, rm, the lifecycle (run -d,
 * logs, stop, kill, wait, start, restart, rm -f), and `docker events`
 * watching it all. What the CLIs print is checked, and what the store
 * holds afterwards (through the strata CLI, a separate process on the
 * same data root).
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { test, type TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { DOCKER_20, DOCKER_28, busyboxRootfsTar, importBusybox, shortTempDir, startStrataServe, type StrataServe } from './helpers/api-server.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { REGISTRY, startRegistry } from './helpers/registry.js'
import { strata } from './helpers/strata-cli.js'

function canRun(t: TestContext, docker: string): boolean {
  if (!requireRoot(t) || !requireTool(t, 'busybox', 'tar', REGISTRY)) return false
  if (!existsSync(docker)) {
    if (process.env.CI !== undefined) assert.fail(`${docker} is missing`)
    t.skip(`${docker} is not installed`)
    return false
  }
  return true
}

/** `docker events --format '{{json .}}'` running in the background; lines() is what it printed so far. */
function watchEvents(t: TestContext, s: StrataServe, docker: string): { lines(): Array<{ Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> } }> } {
  const child = spawn(docker, ['events', '--format', '{{json .}}'], { env: s.clientEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (c: Buffer) => (out += c.toString()))
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGTERM')
  })
  return { lines: () => out.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> } }) }
}

async function imageWorkflow(t: TestContext, docker: string): Promise<void> {
  const registry = await startRegistry(t, shortTempDir(t, 'strata-api-reg-'))
  const s = await startStrataServe(t)
  const id = await importBusybox(t, s.root)
  const events = watchEvents(t, s, docker)
  await sleep(500)
  const d = (args: string[], input?: Buffer): Promise<string> => s.docker(docker, args, input).then((r) => r.stdout.toString())

  // images, inspect, history
  assert.match(await d(['images']), /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\nbusybox\s+latest\s+[0-9a-f]{12}\s/m)
  assert.equal((await d(['images', '-q', '--no-trunc'])).trim(), id)
  const inspect = JSON.parse(await d(['image', 'inspect', 'busybox'])) as Array<{ Id: string; RepoTags: string[]; Config: { Cmd: string[] }; RootFS: { Layers: string[] } }>
  assert.equal(inspect[0]!.Id, id)
  assert.deepEqual(inspect[0]!.RepoTags, ['busybox:latest'])
  assert.deepEqual(inspect[0]!.Config.Cmd, ['sh'])
  assert.equal(inspect[0]!.RootFS.Layers.length, 1)
  assert.equal((await d(['image', 'inspect', '-f', '{{.Id}}', 'busybox'])).trim(), id)
  assert.match(await d(['history', 'busybox']), /Imported from -/)

  // tag, push to the registry, rmi
  const remote = `${registry}/test/bb:1`
  await d(['tag', 'busybox', remote])
  const pushed = await d(['push', remote])
  assert.match(pushed, new RegExp(`The push refers to repository \\[${registry}/test/bb\\]`))
  assert.match(pushed, /[0-9a-f]{12}: Pushed/)
  assert.match(pushed, /1: digest: sha256:[0-9a-f]{64} size: \d+/)
  const untag = await d(['rmi', remote])
  assert.match(untag, new RegExp(`Untagged: ${registry}/test/bb:1`))
  assert.equal((await d(['images', '-q'])).trim().split('\n').length, 1)

  // pull into a second server on another data root: the layer is downloaded, not found.
  const s2 = await startStrataServe(t)
  const pulled = await s2.docker(docker, ['pull', remote]).then((r) => r.stdout.toString())
  assert.match(pulled, /1: Pulling from test\/bb/)
  assert.match(pulled, /[0-9a-f]{12}: Pull complete/)
  assert.match(pulled, /Digest: sha256:[0-9a-f]{64}/)
  assert.match(pulled, new RegExp(`Status: Downloaded newer image for ${registry}/test/bb:1`))
  const again = await s2.docker(docker, ['pull', remote]).then((r) => r.stdout.toString())
  assert.match(again, new RegExp(`Status: Image is up to date for ${registry}/test/bb:1`))
  assert.equal((await s2.docker(docker, ['images', '-q', '--no-trunc'])).stdout.toString().trim(), id)
  assert.match((await s2.docker(docker, ['images', '--digests'])).stdout.toString(), /sha256:[0-9a-f]{64}/)
  const missing = await s2.docker(docker, ['pull', `${registry}/test/none:1`]).then(
    () => assert.fail('pulling a missing image succeeded'),
    (err: Error) => err.message,
  )
  assert.match(missing, /not found|unknown/i)

  // save | load into the second server, under another name
  await d(['tag', 'busybox', 'saved:2'])
  const archive = (await s.docker(docker, ['save', 'saved:2'])).stdout
  assert.ok(archive.length > 1_000_000)
  assert.match(await s2.docker(docker, ['load'], archive).then((r) => r.stdout.toString()), /Loaded image: saved:2/)
  assert.match((await s2.docker(docker, ['images', 'saved'])).stdout.toString(), /saved\s+2\s/)

  // import, with a change and a message
  const imported = (await d(['import', '-c', 'ENV FROM_IMPORT=1', '-m', 'by docker import', '-', 'imported:3'], await busyboxRootfsTar(t))).trim()
  assert.match(imported, /^sha256:[0-9a-f]{64}$/)
  const env = JSON.parse(await d(['image', 'inspect', '-f', '{{json .Config.Env}}', 'imported:3'])) as string[]
  assert.deepEqual(env, ['FROM_IMPORT=1'])

  // system df sees the images
  // busybox and saved:2 are one image; imported:3 has its own config.
  assert.match(await d(['system', 'df']), /^Images\s+2\s+0\s/m)

  // rmi by ID with several tags needs -f, as dockerd says
  const conflict = await d(['rmi', id]).then(
    () => assert.fail('rmi of an image with several tags succeeded'),
    (err: Error) => err.message,
  )
  assert.match(conflict, /conflict: unable to delete [0-9a-f]{12} \(must be forced\)/)
  assert.match(await d(['rmi', '-f', id]), /Deleted: sha256:/)
  assert.doesNotMatch(await d(['images']), /busybox/)

  // The store, read by the strata CLI beside the server, holds what docker was told.
  const listed = await strata(['images', '--format', 'json'], { root: s.root })
  assert.equal(listed.code, 0, listed.stderr)
  assert.match(listed.text, /imported/)
  assert.doesNotMatch(listed.text, /busybox/)
  assert.deepEqual((await strata(['check'], { root: s.root })).code, 0)

  await sleep(1500)
  const seen = events.lines().map((e) => `${e.Type} ${e.Action}`)
  for (const wanted of ['image tag', 'image push', 'image untag', 'image save', 'image import', 'image delete']) {
    assert.ok(seen.includes(wanted), `docker events did not show "${wanted}": ${seen.join(', ')}`)
  }
}

async function containerWorkflow(t: TestContext, docker: string): Promise<void> {
  const s = await startStrataServe(t)
  const imageId = await importBusybox(t, s.root)
  const events = watchEvents(t, s, docker)
  await sleep(500)
  const d = (args: string[]): Promise<string> => s.docker(docker, args).then((r) => r.stdout.toString())

  const id = (await d(['create', '--name', 'web', '-e', 'A=1', '-w', '/tmp', '--label', 'k=v', 'busybox', 'echo', 'hi'])).trim()
  assert.match(id, /^[0-9a-f]{64}$/)
  assert.match(await d(['ps', '-a']), /^[0-9a-f]{12}\s+busybox\s+"echo hi"\s+.*Created\s+web$/m)
  assert.equal((await d(['ps', '-q'])).trim(), '')
  assert.equal((await d(['ps', '-aq', '--filter', 'label=k=v'])).trim(), id.slice(0, 12))
  assert.equal((await d(['ps', '-aq', '--filter', 'status=running'])).trim(), '')
  const inspect = JSON.parse(await d(['inspect', 'web'])) as Array<{ Id: string; Name: string; Image: string; State: { Status: string }; Config: { Env: string[]; WorkingDir: string; Labels: Record<string, string> }; GraphDriver: { Name: string } }>
  const c = inspect[0]!
  assert.equal(c.Id, id)
  assert.equal(c.Name, '/web')
  assert.equal(c.Image, imageId)
  assert.equal(c.State.Status, 'created')
  assert.ok(c.Config.Env.includes('A=1'))
  assert.equal(c.Config.WorkingDir, '/tmp')
  assert.deepEqual(c.Config.Labels, { k: 'v' })
  assert.equal(c.GraphDriver.Name, 'overlay2')
  assert.equal((await d(['inspect', '-f', '{{.State.Status}} {{.Config.Cmd}}', id.slice(0, 8)])).trim(), 'created [echo hi]')

  // A change made in the container's filesystem (through the strata CLI's mount): docker diff sees it, commit keeps it.
  const mounted = await strata(['mount', 'web'], { root: s.root })
  assert.equal(mounted.code, 0, mounted.stderr)
  const { writeFile } = await import('node:fs/promises')
  await writeFile(`${mounted.text.trim()}/added.txt`, 'from the test\n')
  assert.equal((await strata(['umount', 'web'], { root: s.root })).code, 0)
  assert.equal((await d(['diff', 'web'])).trim(), 'A /added.txt')
  const committed = (await d(['commit', '-m', 'add a file', '-c', 'ENV COMMITTED=yes', 'web', 'snap:1'])).trim()
  assert.match(committed, /^sha256:[0-9a-f]{64}$/)
  const snapEnv = JSON.parse(await d(['image', 'inspect', '-f', '{{json .Config.Env}}', 'snap:1'])) as string[]
  assert.ok(snapEnv.includes('COMMITTED=yes'))
  assert.match(await d(['history', 'snap:1']), /add a file/)

  // export: the whole filesystem as a tar, with the added file.
  const exported = (await s.docker(docker, ['export', 'web'])).stdout
  const { run } = await import('./helpers/peers.js')
  const names = (await run('tar', ['-t'], { input: exported })).stdout.toString().split('\n')
  assert.ok(names.includes('added.txt') && names.includes('bin/busybox'), names.slice(0, 10).join(' '))

  // A name in use is a conflict; rm removes; rmi of an image a container uses is refused.
  const taken = await d(['create', '--name', 'web', 'busybox']).then(
    () => assert.fail('a second container named web was created'),
    (err: Error) => err.message,
  )
  assert.match(taken, /Conflict\. The container name "\/web" is already in use/)
  const inUse = await d(['rmi', 'busybox']).then(
    () => '',
    (err: Error) => err.message,
  )
  assert.ok(inUse === '' || /conflict/.test(inUse))
  assert.equal((await d(['rm', 'web'])).trim(), 'web')
  assert.equal((await d(['ps', '-aq'])).trim(), '')
  const gone = await d(['inspect', 'web']).then(
    () => 'found',
    (err: Error) => err.message,
  )
  assert.match(gone, /No such object: web|No such container: web/)
  assert.equal((await strata(['ps', '-a', '--format', 'json'], { root: s.root })).text.trim(), '')

  // container prune, with docker's label! filter, then all that is left.
  const keep = (await d(['create', '--label', 'keep=1', 'busybox', 'true'])).trim()
  const drop = (await d(['create', 'busybox', 'true'])).trim()
  const pruned = await d(['container', 'prune', '-f', '--filter', 'label!=keep'])
  assert.match(pruned, new RegExp(`Deleted Containers:\\n${drop}\\n`))
  assert.doesNotMatch(pruned, new RegExp(keep))
  assert.equal((await d(['ps', '-aq', '--no-trunc'])).trim(), keep)
  assert.match(await d(['container', 'prune', '-f']), new RegExp(keep))
  assert.equal((await d(['ps', '-aq'])).trim(), '')

  await sleep(1500)
  const seen = events.lines().map((e) => `${e.Type} ${e.Action}`)
  for (const wanted of ['container create', 'container commit', 'container destroy', 'container prune']) {
    assert.ok(seen.includes(wanted), `docker events did not show "${wanted}": ${seen.join(', ')}`)
  }
}

/** The lifecycle through the API: run -d, ps, logs, kill -s, stop, wait, start, restart, rm -f, and their events. */
async function lifecycleWorkflow(t: TestContext, docker: string): Promise<void> {
  const s = await startStrataServe(t)
  await importBusybox(t, s.root)
  const events = watchEvents(t, s, docker)
  await sleep(500)
  const d = (args: string[]): Promise<string> => s.docker(docker, args).then((r) => r.stdout.toString())
  const failure = (args: string[]): Promise<string> =>
    d(args).then(
      () => assert.fail(`docker ${args.join(' ')} succeeded`),
      (err: Error) => err.message,
    )

  const id = (await d(['run', '-d', '--name', 'svc', 'busybox', 'sh', '-c', 'echo started; trap "echo bye; exit 0" TERM; sleep 600 & wait'])).trim()
  assert.match(id, /^[0-9a-f]{64}$/)
  assert.match(await d(['ps']), /^CONTAINER ID .*\n[0-9a-f]{12} +busybox .* Up .* svc\n$/)
  for (let i = 0; !(await d(['logs', 'svc'])).includes('started'); i++) assert.ok(i < 200, 'no output from the container')
  assert.match(await d(['logs', '-t', 'svc']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z started\n$/)
  assert.match(await failure(['kill', '-s', 'NOPE', 'svc']), /Invalid signal: NOPE/)
  assert.equal((await d(['stop', 'svc'])).trim(), 'svc')
  assert.equal((await d(['wait', 'svc'])).trim(), '0')
  assert.equal(await d(['logs', 'svc']), 'started\nbye\n')
  assert.match(await d(['ps', '-a', '--format', '{{.Status}}']), /^Exited \(0\) .* ago\n$/)
  assert.equal((await d(['stop', 'svc'])).trim(), 'svc', 'stop of a stopped container: 304, the CLI prints the name')
  assert.match(await failure(['kill', 'svc']), /is not running/)
  assert.equal((await d(['start', 'svc'])).trim(), 'svc')
  assert.equal((await d(['inspect', '-f', '{{.State.Running}}', 'svc'])).trim(), 'true')
  assert.equal((await d(['restart', '-t', '1', 'svc'])).trim(), 'svc')
  assert.equal((await d(['kill', 'svc'])).trim(), 'svc')
  assert.equal((await d(['wait', 'svc'])).trim(), '137')
  await d(['start', 'svc'])
  assert.equal((await d(['rm', '-f', 'svc'])).trim(), 'svc')
  assert.equal((await d(['ps', '-aq'])).trim(), '')

  await sleep(1500)
  const seen = events.lines().map((e) => `${e.Type} ${e.Action}`)
  for (const wanted of ['container start', 'container stop', 'container kill', 'container restart']) {
    assert.ok(seen.includes(wanted), `docker events did not show "${wanted}": ${seen.join(', ')}`)
  }
}

test('docker 20.10: images through strata serve (registry push/pull, save|load, import, df, rmi, events)', async (t) => {
  if (!canRun(t, DOCKER_20)) return
  await imageWorkflow(t, DOCKER_20)
})

test('docker 28: images through strata serve (registry push/pull, save|load, import, df, rmi, events)', async (t) => {
  if (!canRun(t, DOCKER_28)) return
  await imageWorkflow(t, DOCKER_28)
})

test('docker 20.10: containers through strata serve (create, ps, inspect, diff, commit, export, rm, events)', async (t) => {
  if (!canRun(t, DOCKER_20)) return
  await containerWorkflow(t, DOCKER_20)
})

test('docker 28: containers through strata serve (create, ps, inspect, diff, commit, export, rm, events)', async (t) => {
  if (!canRun(t, DOCKER_28)) return
  await containerWorkflow(t, DOCKER_28)
})

test('docker 20.10: the container lifecycle through strata serve (run -d, logs, stop, kill, wait, start, restart, rm -f)', async (t) => {
  if (!canRun(t, DOCKER_20)) return
  await lifecycleWorkflow(t, DOCKER_20)
})

test('docker 28: the container lifecycle through strata serve (run -d, logs, stop, kill, wait, start, restart, rm -f)', async (t) => {
  if (!canRun(t, DOCKER_28)) return
  await lifecycleWorkflow(t, DOCKER_28)
})
