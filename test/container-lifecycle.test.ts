/**
 * Containers on the layer store, the walk-through on overlay2, vfs and
 * btrfs (on a loop device): create a container from the real 3-layer image
 * dockerd built, run a command in it with runc that adds a file, deletes a
 * file of a lower layer and replaces a directory; diff shows A/C/D; commit
 * makes an image whose merged view has the changes; export is the merged
 * tree with the init files; rm refuses a mounted container, then removes
 * record and layer. Also: commit of an unchanged container adds no layer
 * (docker's empty_layer history entry), names and prefixes resolve,
 * images in use are reported, and an image without a command is refused.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { lstat, mkdir, readFile, readdir, readlink } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test, type TestContext } from 'node:test'
import { readTar } from '../src/archive/index.js'
import {
  commitContainer,
  containerChanges,
  createContainer,
  exportContainer,
  mountContainer,
  removeContainer,
  startContainer,
  unmountContainer,
  EMPTY_LAYER_DIFF_ID,
} from '../src/container/index.js'
import { isStrataError } from '../src/errors/index.js'
import { IMAGE_TAG } from './helpers/docker-image.js'
import { containerEnv, startToExit, type ContainerEnv } from './helpers/container-env.js'
import { requireDockerd } from './helpers/dockerd.js'
import { createLoopFs } from './helpers/loopfs.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { isMonitorInfoAlive, readMonitorInfo } from '../src/containerdb/index.js'
import { DirLock } from '../src/fs/index.js'

const SCRIPT = 'echo hello > /data/new && rm /data/one && rm -rf /home && mkdir /home && echo x > /home/x && echo ran && exit 3'
/**
 * What `docker diff` says for SCRIPT, on every driver (overlay2 compares
 * the mounted trees too, as dockerd's has since 18.06): /home changed, its
 * old child deleted, the new one added.
 */
const EXPECTED_DIFF = ['C /data', 'A /data/new', 'D /data/one', 'C /home', 'D /home/new', 'A /home/x']

function codeIs(code: string) {
  return (err: unknown): boolean => isStrataError(err) && err.code === code
}

function canRun(t: TestContext): boolean {
  return requireRoot(t) && requireTool(t, 'runc', 'busybox', 'tar') && requireDockerd(t)
}

/** Starts a container and follows it to its exit: exit code and output. */
async function startCaptured(env: ContainerEnv, id: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return startToExit(env.store, id)
}

async function walkThrough(t: TestContext, env: ContainerEnv): Promise<void> {
  const { store } = env
  const c = await createContainer(store, IMAGE_TAG, { name: 'walk', cmd: ['sh', '-c', SCRIPT], env: ['FOO=bar'] })
  assert.match(c.id, /^[a-f0-9]{64}$/)
  assert.equal(c.name, 'walk')
  assert.equal(c.record.Image, env.imageId)
  assert.equal(c.record.Path, 'sh')
  assert.deepEqual(c.record.Args, ['-c', SCRIPT])
  assert.equal(c.record.Config.Hostname, c.id.slice(0, 12))
  assert.equal((await store.containers.get('walk')).id, c.id, 'found by name')
  assert.equal((await store.containers.get('/walk')).id, c.id, 'found by /name')
  assert.equal((await store.containers.get(c.id.slice(0, 7))).id, c.id, 'found by ID prefix')
  const onDisk = JSON.parse(await readFile(join(env.root, 'containers', c.id, 'config.v2.json'), 'utf8')) as Record<string, unknown>
  assert.equal(onDisk.Name, '/walk')
  assert.equal(onDisk.Driver, store.driver.name)
  assert.ok((await store.containers.usingImage(env.imageId)).length > 0, 'the image is in use by the container')
  await assert.rejects(createContainer(store, IMAGE_TAG, { name: 'walk', cmd: ['true'] }), codeIs('ALREADY_EXISTS'), 'names are unique')

  // The init layer has dockerd's empty files; their content is in the container's directory (bound over them at run), and diff lists neither.
  const rootfs = await mountContainer(store, 'walk')
  const dir = join(env.root, 'containers', c.id)
  for (const f of ['hostname', 'hosts', 'resolv.conf']) {
    assert.equal(await readFile(join(rootfs, 'etc', f), 'utf8'), '', `the init layer's /etc/${f} is empty`)
    assert.equal(((await lstat(join(rootfs, 'etc', f))).mode & 0o777).toString(8), '755')
  }
  assert.equal(await readFile(join(dir, 'hostname'), 'utf8'), `${c.id.slice(0, 12)}\n`)
  assert.match(await readFile(join(dir, 'hosts'), 'utf8'), /^127\.0\.0\.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n[^]*ff02::2\tip6-allrouters\n$/)
  assert.equal(((await lstat(join(dir, 'hosts'))).mode & 0o777).toString(8), '644')
  assert.match(await readFile(join(dir, 'resolv.conf'), 'utf8'), /nameserver /)
  assert.equal(await readlink(join(rootfs, 'etc/mtab')), '/proc/mounts')
  await unmountContainer(store, 'walk')
  assert.deepEqual(await containerChanges(store, 'walk'), [], 'a new container has no changes')

  // Run it: runc, exit code passed through, state recorded, unmounted afterwards.
  const ran = await startCaptured(env, c.id)
  assert.equal(ran.code, 3, `exit code passed through (stderr: ${ran.stderr})`)
  assert.equal(ran.stdout, 'ran\n')
  const after = await store.containers.get(c.id)
  assert.equal(after.running, false)
  assert.equal(after.record.State.ExitCode, 3)
  assert.notEqual(after.record.State.StartedAt, '0001-01-01T00:00:00Z')
  assert.equal((await store.layers.getMount(c.id)).mountCount, 0, 'unmounted after the run')

  const changes = (await containerChanges(store, 'walk')).map((ch) => `${ch.kind} ${ch.path}`)
  assert.deepEqual(changes, EXPECTED_DIFF)

  // Commit: a 4th layer, history, parent, tag; the new image's merged view has the changes.
  const commit = await commitContainer(store, 'walk', { reference: 'strata-test-committed:v1', message: 'walked', author: 'tester' })
  assert.equal(commit.addedLayer, true)
  const img = await store.images.get(commit.imageId)
  assert.deepEqual(img.config.rootfs.diff_ids, [...env.image.diffIds, commit.diffId])
  const last = img.config.history!.at(-1)!
  assert.equal(last.created_by, `sh -c ${SCRIPT}`)
  assert.equal(last.comment, 'walked')
  assert.equal(last.author, 'tester')
  assert.equal(img.config.author, 'tester')
  assert.equal(img.config.container, c.id)
  assert.deepEqual(img.config.config?.Env?.includes('FOO=bar'), true)
  assert.equal(img.parent, env.imageId, 'parent metadata is the container image')
  assert.equal(await store.references.get('strata-test-committed:v1'), commit.imageId)

  const child = await createContainer(store, 'strata-test-committed:v1', { cmd: ['true'] })
  const childRoot = await mountContainer(store, child.id)
  try {
    assert.equal(await readFile(join(childRoot, 'data/new'), 'utf8'), 'hello\n')
    await assert.rejects(lstat(join(childRoot, 'data/one')), { code: 'ENOENT' })
    assert.equal(await readFile(join(childRoot, 'data/two'), 'utf8'), 'two\n')
    assert.deepEqual(await readdir(join(childRoot, 'home')), ['x'])
    await assert.rejects(lstat(join(childRoot, 'etc/passwd')), { code: 'ENOENT' })
    assert.equal(await readFile(join(env.root, 'containers', child.id, 'hostname'), 'utf8'), `${child.id.slice(0, 12)}\n`, 'the child has its own hostname')
    assert.equal(await readFile(join(childRoot, 'etc/hostname'), 'utf8'), '', 'the parent\'s hostname was not committed')
  } finally {
    await unmountContainer(store, child.id)
  }

  // Export: the merged tree with the init layer's empty files (as docker export), without what was deleted.
  const names = new Map<string, string>()
  for await (const entry of readTar(await exportContainer(store, 'walk'))) {
    const chunks: Buffer[] = []
    for await (const ch of entry.body()) chunks.push(ch)
    names.set(entry.header.name.replace(/\/$/, ''), Buffer.concat(chunks).toString())
  }
  assert.equal(names.get('data/new'), 'hello\n')
  assert.equal(names.get('etc/hostname'), '')
  assert.ok(names.has('.dockerenv') && names.has('bin/busybox') && names.has('home/x'))
  assert.ok(!names.has('data/one') && !names.has('home/new') && !names.has('etc/passwd'))
  assert.ok(![...names.keys()].some((n) => n.includes('.wh.')), 'no whiteouts in an export')
  assert.equal((await store.layers.getMount(c.id)).mountCount, 0, 'export unmounted when its stream closed')

  // Remove: refused while mounted, then record and layer are gone.
  await mountContainer(store, 'walk')
  await assert.rejects(removeContainer(store, 'walk'), codeIs('IN_USE'))
  await removeContainer(store, 'walk', { force: true })
  await assert.rejects(store.containers.get('walk'), codeIs('NOT_FOUND'))
  await assert.rejects(store.layers.getMount(c.id), codeIs('NOT_FOUND'))
  await assert.rejects(lstat(join(env.root, 'containers', c.id)), { code: 'ENOENT' })
  await removeContainer(store, child.id)
  assert.equal((await store.containers.usingImage(env.imageId)).length > 0, false)
  assert.deepEqual(await store.layers.listMounts(), [])
}

const DRIVERS = ['overlay2', 'vfs'] as const

for (const driver of DRIVERS) {
  test(`walk-through on ${driver}: create, run (runc), diff, commit, export, rm`, async (t) => {
    if (!canRun(t)) return
    await walkThrough(t, await containerEnv(t, driver))
  })
}

test('walk-through on btrfs (loop device)', async (t) => {
  if (!canRun(t) || !requireTool(t, 'mkfs.btrfs', 'losetup', 'btrfs')) return
  const fs = await createLoopFs('btrfs', 1024 * 1024 * 1024)
  t.after(() => fs.dispose())
  await walkThrough(t, await containerEnv(t, 'btrfs', join(fs.dir, 'root')))
})

describe('container edge cases (vfs)', () => {
  test('commit of an unchanged container adds no layer (empty_layer history entry)', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    const layersBefore = (await env.store.layers.list()).map((l) => l.chainId)
    const c = await createContainer(env.store, IMAGE_TAG, { cmd: ['sh'] })
    const commit = await commitContainer(env.store, c.id, { changes: ['CMD ["echo", "hi"]', 'ENV A=1 B="two words"', 'WORKDIR /data', 'LABEL x=y'] })
    assert.equal(commit.addedLayer, false)
    assert.equal(commit.diffId, EMPTY_LAYER_DIFF_ID)
    const img = await env.store.images.get(commit.imageId)
    assert.deepEqual(img.config.rootfs.diff_ids, env.image.diffIds)
    assert.equal(img.config.history!.at(-1)!.empty_layer, true)
    assert.deepEqual(img.config.config?.Cmd, ['echo', 'hi'])
    assert.ok(img.config.config?.Env?.includes('B=two words'))
    assert.equal(img.config.config?.WorkingDir, '/data')
    assert.deepEqual(img.config.config?.Labels, { x: 'y' })
    assert.deepEqual(img.config.container_config?.Cmd, ['sh'])
    assert.deepEqual((await env.store.layers.list()).map((l) => l.chainId), layersBefore, 'the empty layer was not kept')
    await assert.rejects(commitContainer(env.store, c.id, { changes: ['RUN true'] }), codeIs('INVALID_ARGUMENT'))
  })

  test('bad input: no command, unknown image, bad name, ambiguous or unknown container', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    await assert.rejects(createContainer(env.store, IMAGE_TAG), /No command specified/)
    await assert.rejects(createContainer(env.store, 'no-such-image:1', { cmd: ['true'] }), codeIs('NOT_FOUND'))
    await assert.rejects(createContainer(env.store, IMAGE_TAG, { cmd: ['true'], name: 'bad name!' }), codeIs('INVALID_ARGUMENT'))
    assert.deepEqual(await env.store.layers.listMounts(), [], 'failed creates leave no mount behind')
    await assert.rejects(env.store.containers.get('nothing'), codeIs('NOT_FOUND'))
    const a = await createContainer(env.store, IMAGE_TAG, { cmd: ['true'] })
    assert.match(a.name, /^[a-z]+_[a-z]+[0-9]?$/, 'a docker-like generated name')
    assert.equal((await env.store.containers.list()).length, 1)
    // A run in which the command does not exist fails inside runc: a non-zero exit, nothing left mounted.
    const b = await createContainer(env.store, IMAGE_TAG, { cmd: ['/no/such/binary'] })
    const ran = await startCaptured(env, b.id)
    assert.notEqual(ran.code, 0)
    assert.equal((await env.store.layers.getMount(b.id)).mountCount, 0)
  })

  test('a running container: listed as running, a second start does nothing, rm refused, rm -f kills it and removes it', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    const c = await createContainer(env.store, IMAGE_TAG, { name: 'sleeper', cmd: ['sleep', '60'] })
    // startContainer returns once the process runs: no polling for it.
    const started = await startContainer(env.store, c.id)
    assert.equal(started.alreadyRunning, false)
    assert.ok(started.pid > 0)
    const listed = await env.store.containers.list()
    assert.equal(listed.length, 1)
    assert.equal(listed[0]!.running, true, 'running while its monitor runs it')
    assert.equal(listed[0]!.record.State.Pid, started.pid, 'State.Pid is the container init, as dockerd records it')
    assert.deepEqual(await startContainer(env.store, c.id), { id: c.id, alreadyRunning: true, pid: started.pid })
    await assert.rejects(removeContainer(env.store, 'sleeper'), codeIs('IN_USE'))
    // rm -f: killed, its monitor records the exit and unmounts, then record and layer go.
    const monitor = readMonitorInfo(env.root, c.id)!
    await removeContainer(env.store, 'sleeper', { force: true })
    assert.equal(existsSync(`/proc/${started.pid}`), false, 'the process is gone')
    assert.equal(isMonitorInfoAlive(monitor), false, 'the monitor is gone')
    assert.ok((await run('runc', ['state', c.id]).catch((e: unknown) => e)) instanceof Error, 'no runc state left')
    assert.deepEqual(await env.store.containers.list(), [])
    assert.deepEqual(await env.store.layers.listMounts(), [])
  })

  test('what a crashed create or remove left is cleaned up by the next create; a live create is left alone', async (t) => {
    if (!canRun(t)) return
    const env = await containerEnv(t, 'vfs')
    const top = env.store.layers.chainOf(env.image.diffIds)
    const dead = 'a'.repeat(64)
    const orphan = 'b'.repeat(64)
    const live = 'c'.repeat(64)
    // A create that died after its mount (temp record unlocked), a remove that died, and a mount with no record at all.
    await env.store.layers.createMount(dead, top)
    await mkdir(join(env.root, 'containers', `.tmp-${dead}`), { recursive: true })
    await env.store.layers.createMount(orphan, top)
    await mkdir(join(env.root, 'containers', `.tmp-rm-${'d'.repeat(64)}`))
    // A create in progress: its temp record is locked.
    await env.store.layers.createMount(live, top)
    await mkdir(join(env.root, 'containers', `.tmp-${live}`))
    const lock = DirLock.tryAcquire(join(env.root, 'containers', `.tmp-${live}`), 'shared')!
    try {
      const report = await env.store.containers.recover()
      assert.deepEqual(report.tempRecords.sort(), [`.tmp-${dead}`, `.tmp-rm-${'d'.repeat(64)}`])
      assert.deepEqual(report.orphanMounts, [orphan])
      assert.deepEqual((await env.store.layers.listMounts()).map((m) => m.name), [live])
      assert.deepEqual(await readdir(join(env.root, 'containers')), [`.tmp-${live}`])
    } finally {
      lock.close()
    }
    // Once the creator is gone, the next create takes it away.
    await createContainer(env.store, IMAGE_TAG, { cmd: ['true'] })
    assert.equal((await env.store.layers.listMounts()).length, 1)
    assert.equal((await readdir(join(env.root, 'containers'))).length, 1)
  })
})
