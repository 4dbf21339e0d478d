/**
 * Rootfs import (`docker import`): a busybox root filesystem tar, given as
 * a stream as stdin would give it, becomes a one-layer image whose config
 * has the fields dockerd 20.10 writes, tagged as asked; `--change`
 * instructions land in the config as docker puts them there. Bad input is
 * refused before the tar is read.
 */
import assert from 'node:assert/strict'
import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { test } from 'node:test'
import { sha256Of } from '../src/digest/index.js'
import { isStrataError } from '../src/errors/index.js'
import { RFC3339_NANO_RE } from '../src/fs/index.js'
import { importRootfs, type ImportOptions, type LayerProgress } from '../src/transport/index.js'
import { assertStoreUnchanged, openTestStore, snapshotStore } from './helpers/archive-fixtures.js'
import { makeBusyboxRootfs } from './helpers/fixtures.js'
import { canRunLayerTests } from './helpers/layer-env.js'
import { run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'

/** container.Config as dockerd 20.10.24 wrote it for `docker import` with no changes (seen on a real dockerd). */
const EMPTY_CONFIG =
  '{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":null,"Image":"","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":null}'
/** ... and for `-c 'CMD ["/bin/sh"]' -c 'ENV A=b' -c 'EXPOSE 80' -c 'LABEL x=y' -c 'WORKDIR /tmp'`. */
const CHANGED_CONFIG =
  '{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":false,"AttachStderr":false,"ExposedPorts":{"80/tcp":{}},"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["A=b"],"Cmd":["/bin/sh"],"Image":"","Volumes":null,"WorkingDir":"/tmp","Entrypoint":null,"OnBuild":null,"Labels":{"x":"y"}}'

async function busyboxTar(dir: string): Promise<string> {
  const rootfs = join(dir, 'rootfs')
  await makeBusyboxRootfs(rootfs)
  const tar = join(dir, 'busybox.tar')
  await run('tar', ['--numeric-owner', '-C', rootfs, '-cf', tar, '.'])
  return tar
}

test('import: a busybox rootfs tar from a stream becomes a tagged one-layer image with docker\'s config', { timeout: 120_000 }, async (t) => {
  if (!canRunLayerTests(t)) return
  const dir = tempDirFor(t, 'transport-import-')
  const tar = await busyboxTar(dir)
  const store = await openTestStore(t)

  // Any Readable will do, as stdin: not a file stream the store could stat or seek.
  const stdin = Readable.from(createReadStream(tar), { objectMode: false })
  const events: LayerProgress[] = []
  const result = await importRootfs(store, stdin, { reference: 'busybox:imported', onProgress: (e) => events.push(e) })
  assert.equal(result.diffId, sha256Of(await readFile(tar)), 'the layer is the tar as given: its diffID is the tar\'s sha256')
  assert.equal(result.tagged, 'docker.io/library/busybox:imported')
  assert.equal(await store.references.get('busybox:imported'), result.id)
  assert.ok(events.some((e) => e.phase === 'copying' && e.current > 0))
  assert.ok(events.some((e) => e.phase === 'done' && e.diffId === result.diffId))

  const image = await store.images.get(result.id)
  const raw = image.raw.toString()
  const config = JSON.parse(raw) as Record<string, unknown>
  assert.deepEqual(Object.keys(config), ['architecture', 'comment', 'config', 'container_config', 'created', 'history', 'os', 'rootfs'], 'docker\'s fields, keys sorted as Go writes them')
  assert.equal(config.architecture, 'amd64')
  assert.equal(config.os, 'linux')
  assert.equal(config.comment, 'Imported from -')
  assert.match(config.created as string, RFC3339_NANO_RE)
  assert.ok((config.created as string).endsWith('Z'), 'created is UTC, as docker writes it')
  assert.deepEqual(config.history, [{ created: config.created, comment: 'Imported from -' }])
  assert.deepEqual(config.rootfs, { type: 'layers', diff_ids: [result.diffId] })
  assert.ok(raw.includes(`"config":${EMPTY_CONFIG},"container_config":${EMPTY_CONFIG}`), 'config and container_config are docker\'s empty Config, byte for byte')

  // The image works: a container on it sees the busybox tree.
  await store.layers.createMount('c1', store.layers.chainOf([result.diffId]))
  const rootfs = await store.layers.mount('c1')
  try {
    assert.match(await readFile(join(rootfs, 'etc/passwd'), 'utf8'), /^root:x:0:0:/)
    assert.ok((await readFile(join(rootfs, 'bin/busybox'))).length > 100_000, '/bin/busybox is there')
  } finally {
    await store.layers.unmount('c1')
    await store.layers.removeMount('c1')
  }
})

test('import: --change instructions and a message land in the config as docker writes them; the tag moves', { timeout: 120_000 }, async (t) => {
  if (!canRunLayerTests(t)) return
  const dir = tempDirFor(t, 'transport-import-changes-')
  const tar = await busyboxTar(dir)
  const store = await openTestStore(t)
  const first = await importRootfs(store, createReadStream(tar), { reference: 'imp:1', sourceName: tar })
  assert.equal(JSON.parse((await store.images.get(first.id)).raw.toString()).comment, `Imported from ${tar}`)
  const second = await importRootfs(store, createReadStream(tar), {
    reference: 'imp:1',
    message: 'hello',
    changes: ['CMD ["/bin/sh"]', 'ENV A=b', 'EXPOSE 80', 'LABEL x=y', 'WORKDIR /tmp'],
  })
  assert.notEqual(second.id, first.id)
  assert.equal(second.diffId, first.diffId, 'the same tar is the same layer')
  const raw = (await store.images.get(second.id)).raw.toString()
  assert.ok(raw.includes(`"config":${CHANGED_CONFIG},`), `the config is docker's for the same changes:\n${raw}`)
  assert.equal(JSON.parse(raw).comment, 'hello')
  assert.equal(await store.references.get('imp:1'), second.id, 'the tag moved to the new image, as docker import does')
  assert.equal((await store.layers.list()).length, 1)
})

test('import: a bad change or reference is refused before anything is read or stored', { timeout: 120_000 }, async (t) => {
  if (!canRunLayerTests(t)) return
  const store = await openTestStore(t)
  const before = await snapshotStore(store)
  const cases: Array<[ImportOptions, string, RegExp]> = [
    [{ changes: ['RUN echo hi'] }, 'INVALID_ARGUMENT', /run is not a valid change command/],
    [{ changes: ['EXPOSE eighty'] }, 'INVALID_ARGUMENT', /EXPOSE/],
    [{ reference: 'Not A Reference' }, 'INVALID_ARGUMENT', /Invalid reference/],
    [{ reference: `busybox@sha256:${'a'.repeat(64)}` }, 'INVALID_ARGUMENT', /digest reference/],
    [{ platform: { os: 'windows', architecture: 'amd64' } }, 'NOT_SUPPORTED', /windows/],
  ]
  for (const [opts, code, pattern] of cases) {
    let read = false
    const stream = new Readable({
      read() {
        read = true
        this.push(null)
      },
    })
    await assert.rejects(importRootfs(store, stream, opts), (err: unknown) => isStrataError(err) && err.code === code && pattern.test(err.message))
    assert.equal(read, false, 'the stream was not read')
    assert.ok(stream.destroyed, 'the stream was released')
  }
  await assertStoreUnchanged(store, before)
})
