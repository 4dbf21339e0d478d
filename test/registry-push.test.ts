/**
 * Registry v2 push against the real CNCF distribution registry (Debian's
 * docker-registry 2.8) on 127.0.0.1, started here and stopped by its PID,
 * behind a loopback proxy that logs every request (to count uploads).
 * Images made by strata's fixtures are pushed with pushImage; skopeo reads
 * them back (inspect, and copy to a docker-archive), strata pulls them into
 * a fresh store; pushed again they are only checked (HEAD), pushed to
 * another repository they are mounted across repositories.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { pushCommand } from '../src/cli/push.js'
import { parseGlobal } from '../src/cli/global.js'
import { pullImage, pushImage } from '../src/transport/registry/index.js'
import { sha256Of } from '../src/digest/index.js'
import { isStrataError } from '../src/errors/index.js'
import { Store } from '../src/store/index.js'
import { requireDockerd, startDockerd } from './helpers/dockerd.js'
import { dockerManifest, member, openTestStore, readTarFile, testDataRoot } from './helpers/archive-fixtures.js'
import { layerTar, makeImage, bytes } from './helpers/image-fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { manifestOf, REGISTRY, SKOPEO, startGrantingTokenService, startLoggingProxy, startRegistry } from './helpers/registry.js'

/** bcrypt of TEST_PASSWORD (cost 4): the registry's htpasswd accepts only bcrypt (as in registry-pull.test.ts). */
const TEST_USER = 'strata'
const TEST_PASSWORD = 'strata-test-pw'
const TEST_BCRYPT = '$2b$04$TnwuDl209UdNAySbOoB1Mu1z2IYh8ziU7F35eO/vucSp4vGPP42hC'

const uploads = (log: Array<{ method: string; path: string }>): number => log.filter((r) => r.method === 'PATCH' || (r.method === 'POST' && !r.path.includes('mount='))).length

test('registry v2 push to docker-registry', async (t) => {
  if (!requireRoot(t) || !requireTool(t, REGISTRY, SKOPEO, 'openssl')) return
  const dir = tempDirFor(t, 'registry-push-')
  const registry = await startRegistry(t, dir)
  const { host, log } = await startLoggingProxy(t, registry)

  const store = await openTestStore(t)
  // A few MiB of incompressible bytes, so the upload streams in many chunks.
  const big = randomBytes(3 << 20)
  const made = await makeImage(store, {
    created: '2024-01-02T03:04:05Z',
    layers: [layerTar({ 'a.txt': bytes(3000, 'a') }), layerTar({ 'big.bin': big }), layerTar({ 'c.txt': bytes(5, 'c'), 'd.txt': 'dd' })],
    tags: [`${host}/test/push:1`],
  })

  const events: string[] = []
  const first = await pushImage(store, `${host}/test/push:1`, {
    onResolved: (info) => events.push(`resolved ${info.repository} ${info.tag}`),
    onProgress: (e) => {
      if (e.phase === 'done') events.push(`${e.layer} ${e.result.status}`)
    },
  })

  await t.test('first push: every layer uploaded (gzip, one PATCH each), manifest digest checked, RepoDigest and metadata recorded', async () => {
    assert.equal(events[0], `resolved ${host}/test/push 1`)
    assert.deepEqual(events.slice(1).sort(), ['0 pushed', '1 pushed', '2 pushed'])
    assert.deepEqual(first.layers.map((l) => l.status), ['pushed', 'pushed', 'pushed'])
    assert.deepEqual(first.layers.map((l) => l.diffId), made.diffIds)
    assert.equal(first.configDigest, made.id)
    assert.equal(first.id, made.id)
    assert.equal(log.filter((r) => r.method === 'PATCH').length, 3)
    const { bytes: stored, doc } = await manifestOf(registry, 'test/push', '1')
    assert.deepEqual(stored, first.manifest)
    assert.equal(sha256Of(stored), first.digest)
    assert.equal(first.size, stored.length)
    assert.equal(doc.config.digest, made.id)
    assert.deepEqual(doc.layers.map((l) => l.digest), first.layers.map((l) => l.digest))
    assert.equal(JSON.parse(stored.toString()).mediaType, 'application/vnd.docker.distribution.manifest.v2+json')
    // Blobs are gzip (magic 1f 8b) and as big as the manifest says.
    for (const l of doc.layers) {
      const res = await fetch(`http://${registry}/v2/test/push/blobs/${l.digest}`)
      const blob = Buffer.from(await res.arrayBuffer())
      assert.equal(blob.length, l.size)
      assert.equal(sha256Of(blob), l.digest)
      assert.deepEqual([...blob.subarray(0, 2)], [0x1f, 0x8b])
    }
    assert.equal(first.repoDigest, `${host}/test/push@${first.digest}`)
    assert.equal(await store.references.get(first.repoDigest), made.id)
    for (const l of first.layers) {
      assert.equal(await store.distribution.diffIdFor(l.digest), l.diffId)
      assert.deepEqual(await store.distribution.v2MetadataFor(l.diffId), [{ Digest: l.digest, SourceRepository: `${host}/test/push`, HMAC: '' }])
    }
  })

  await t.test('skopeo reads it: inspect digest, and a docker-archive copy with the same config and diffIDs', async () => {
    const tmp = join(dir, 'skopeo-tmp')
    mkdirSync(tmp, { recursive: true })
    const env = { ...process.env, TMPDIR: tmp }
    const inspect = await run(SKOPEO, ['inspect', '--tls-verify=false', `docker://${host}/test/push:1`], { env })
    const info = JSON.parse(inspect.stdout.toString()) as { Digest: string; Layers: string[] }
    assert.equal(info.Digest, first.digest)
    assert.deepEqual(info.Layers, first.layers.map((l) => l.digest))
    const archive = join(dir, 'from-registry.tar')
    await run(SKOPEO, ['--insecure-policy', 'copy', '-q', '--src-tls-verify=false', `docker://${host}/test/push:1`, `docker-archive:${archive}:test/push:1`], { env })
    const entries = await readTarFile(archive)
    const [m] = dockerManifest(entries)
    assert.equal(sha256Of(member(entries, m!.Config).data!), made.id)
    // skopeo's docker-archive holds the layers uncompressed: each hashes to its diffID.
    assert.deepEqual(m!.Layers.map((name) => sha256Of(member(entries, name).data!)), made.diffIds)
  })

  await t.test('strata pulls it back into a fresh store: same image ID, same manifest digest', async (t) => {
    const other = await openTestStore(t)
    const r = await pullImage(other, `${host}/test/push:1`)
    assert.equal(r.id, made.id)
    assert.equal(r.manifestDigest, first.digest)
    assert.deepEqual(r.layerDigests, first.layers.map((l) => l.digest))
  })

  await t.test('pushed again: every layer already exists (HEAD only, nothing uploaded), same digest', async () => {
    const mark = log.length
    const again = await pushImage(store, `${host}/test/push:1`)
    const since = log.slice(mark)
    assert.deepEqual(again.layers.map((l) => l.status), ['exists', 'exists', 'exists'])
    assert.deepEqual(again.layers.map((l) => l.size), first.layers.map((l) => l.size))
    assert.equal(uploads(since), 0, JSON.stringify(since))
    assert.equal(again.digest, first.digest)
  })

  await t.test('pushed to another repository: layers mounted across repositories, not uploaded', async () => {
    await store.references.addTag(`${host}/test/other:2`, made.id)
    const mark = log.length
    const lines: string[] = []
    const r = await pushImage(store, `${host}/test/other:2`, { onProgress: (e) => void (e.phase === 'done' && lines.push(e.result.status)) })
    const since = log.slice(mark)
    assert.deepEqual(r.layers.map((l) => [l.status, l.from]), [['mounted', 'test/push'], ['mounted', 'test/push'], ['mounted', 'test/push']])
    assert.equal(since.filter((x) => x.method === 'POST' && x.path.includes('mount=') && x.status === 201).length, 3, JSON.stringify(since))
    // Only the config (a blob of its own, no metadata to mount it by) is uploaded, in a single PUT.
    assert.equal(since.filter((x) => x.method === 'PATCH').length, 0, JSON.stringify(since))
    assert.equal(uploads(since), 1, JSON.stringify(since))
    assert.ok(since.some((x) => x.method === 'PUT' && x.path.includes(`digest=${encodeURIComponent(made.id)}`)))
    // Same layers, same config: the same manifest.
    assert.equal(r.digest, first.digest)
    const { doc } = await manifestOf(registry, 'test/other', '2')
    assert.deepEqual(doc.layers.map((l) => l.digest), first.layers.map((l) => l.digest))
    // Recorded for the new repository too, so its next push only checks.
    const meta = await store.distribution.v2MetadataFor(made.diffIds[0]!)
    assert.deepEqual(meta.map((m) => m.SourceRepository), [`${host}/test/push`, `${host}/test/other`])
  })

  await t.test('a layer the registry lost is uploaded again (HEAD 404 → upload)', async () => {
    await store.references.addTag(`${host}/test/third:1`, made.id)
    // Metadata says test/third has the blobs; it has not (HEAD 404). Mounting from test/push or test/other
    // would work: their entries are removed, so the only candidate left is a repository without the blob.
    for (const l of first.layers) {
      for (const repo of ['test/push', 'test/other']) {
        await store.distribution.removeMetadata({ Digest: l.digest, SourceRepository: `${host}/${repo}`, HMAC: '' })
      }
      // A repository that never had the blob: the mount is answered 202 (an upload session), which is cancelled.
      await store.distribution.addMapping(l.digest, l.diffId, `${host}/test/ghost`)
      await store.distribution.addMapping(l.digest, l.diffId, `${host}/test/third`)
    }
    const mark = log.length
    const r = await pushImage(store, `${host}/test/third:1`)
    assert.deepEqual(r.layers.map((l) => l.status), ['pushed', 'pushed', 'pushed'])
    const since = log.slice(mark)
    assert.equal(since.filter((x) => x.method === 'PATCH').length, 3)
    assert.equal(since.filter((x) => x.method === 'HEAD' && x.path.startsWith('/v2/test/third/blobs/') && x.status === 404).length, 4, JSON.stringify(since))
    assert.equal(since.filter((x) => x.method === 'POST' && x.path.includes('from=test%2Fghost') && x.status === 202).length, 3, JSON.stringify(since))
    assert.equal(since.filter((x) => x.method === 'DELETE' && x.status === 204).length, 3, JSON.stringify(since))
    // The same gzip bytes: the same blobs and manifest.
    assert.equal(r.digest, first.digest)
  })

  await t.test('errors: unknown image, digest reference', async () => {
    await assert.rejects(pushImage(store, `${host}/test/none:1`), (err: unknown) => isStrataError(err, 'NOT_FOUND') && (err as Error).message === `An image does not exist locally with the tag: ${host}/test/none`)
    await assert.rejects(pushImage(store, `${host}/test/push@${first.digest}`), (err: unknown) => isStrataError(err, 'INVALID_ARGUMENT'))
  })

  await t.test('basic auth (htpasswd registry): refused without credentials, pushed with docker config.json ones', async (t) => {
    const rdir = join(dir, 'basic')
    mkdirSync(rdir)
    writeFileSync(join(rdir, 'htpasswd'), `${TEST_USER}:${TEST_BCRYPT}\n`)
    const bhost = await startRegistry(t, rdir, [`auth: { htpasswd: { realm: strata-test, path: ${join(rdir, 'htpasswd')} } }`])
    await store.references.addTag(`${bhost}/test/auth:1`, made.id)
    await assert.rejects(pushImage(store, `${bhost}/test/auth:1`, { dockerConfig: join(rdir, 'none.json') }), (err: unknown) => {
      assert.ok(isStrataError(err, 'NOT_FOUND'), String(err))
      assert.match((err as Error).message, /denied by registry .*basic auth.*no credentials/)
      return true
    })
    const config = join(rdir, 'config.json')
    writeFileSync(config, JSON.stringify({ auths: { [bhost]: { auth: Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString('base64') } } }))
    const r = await pushImage(store, `${bhost}/test/auth:1`, { dockerConfig: config })
    assert.deepEqual(r.layers.map((l) => l.status), ['pushed', 'pushed', 'pushed'])
    assert.equal(r.digest, first.digest)
    const again = await pushImage(store, `${bhost}/test/auth:1`, { dockerConfig: config })
    assert.deepEqual(again.layers.map((l) => l.status), ['exists', 'exists', 'exists'])
    const res = await fetch(`http://${bhost}/v2/test/auth/manifests/1`, {
      headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json', authorization: `Basic ${Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString('base64')}` },
    })
    assert.equal(res.status, 200)
    assert.equal(sha256Of(Buffer.from(await res.arrayBuffer())), first.digest)
  })

  await t.test('bearer token auth: push and push scopes, a mount asks for pull on the source repository too', async (t) => {
    const rdir = join(dir, 'token')
    mkdirSync(rdir)
    const tokens = await startGrantingTokenService(t, rdir, TEST_USER, TEST_PASSWORD)
    const thost = await startRegistry(t, rdir, [tokens.config])
    const config = join(rdir, 'config.json')
    writeFileSync(config, JSON.stringify({ auths: { [thost]: { auth: Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString('base64') } } }))
    await store.references.addTag(`${thost}/test/tok:1`, made.id)
    await store.references.addTag(`${thost}/test/tok2:1`, made.id)
    await assert.rejects(pushImage(store, `${thost}/test/tok:1`, { dockerConfig: join(rdir, 'none.json') }), (err: unknown) => {
      assert.ok(isStrataError(err, 'NOT_FOUND'), String(err))
      assert.match((err as Error).message, /denied by registry .*token service/)
      return true
    })
    const r = await pushImage(store, `${thost}/test/tok:1`, { dockerConfig: config })
    assert.deepEqual(r.layers.map((l) => l.status), ['pushed', 'pushed', 'pushed'])
    assert.equal(r.digest, first.digest)
    assert.ok(tokens.requests.every((s) => s.length >= 1 && s[0] === 'repository:test/tok:pull,push' || s[0] === 'repository:test/tok2:pull,push'), JSON.stringify(tokens.requests))
    const m = await pushImage(store, `${thost}/test/tok2:1`, { dockerConfig: config })
    assert.deepEqual(m.layers.map((l) => [l.status, l.from]), [['mounted', 'test/tok'], ['mounted', 'test/tok'], ['mounted', 'test/tok']])
    assert.ok(tokens.requests.some((s) => s.length === 2 && s[0] === 'repository:test/tok2:pull,push' && s[1] === 'repository:test/tok:pull'), JSON.stringify(tokens.requests))
    const again = await pushImage(store, `${thost}/test/tok2:1`, { dockerConfig: config })
    assert.deepEqual(again.layers.map((l) => l.status), ['exists', 'exists', 'exists'])
  })

  await t.test('a damaged layer fails the push (DIGEST_MISMATCH), its upload is cancelled and no manifest is put', async (t) => {
    const bad = await openTestStore(t)
    const img = await makeImage(bad, { created: '2024-01-02T03:04:05Z', layers: [layerTar({ 'ok.txt': 'fine' }), layerTar({ 'x.txt': 'hello, world' })], tags: [`${host}/test/damaged:1`] })
    const diffRoot = join(bad.root, 'overlay2')
    const victims = readdirSync(diffRoot)
      .map((d) => join(diffRoot, d, 'diff', 'x.txt'))
      .filter((p) => existsSync(p))
    assert.equal(victims.length, 1)
    writeFileSync(victims[0]!, 'HELLO, WORLD')
    const mark = log.length
    await assert.rejects(pushImage(bad, `${host}/test/damaged:1`, { concurrency: 1 }), (err: unknown) => {
      assert.ok(isStrataError(err, 'DIGEST_MISMATCH'), String(err))
      assert.match((err as Error).message, /x\.txt|damaged|mismatch/i)
      return true
    })
    const since = log.slice(mark)
    assert.ok(since.some((x) => x.method === 'DELETE' && x.path.includes('/v2/test/damaged/blobs/uploads/')), JSON.stringify(since))
    assert.ok(!since.some((x) => x.method === 'PUT' && x.path.includes('/manifests/')), JSON.stringify(since))
    const res = await fetch(`http://${registry}/v2/test/damaged/manifests/1`, { method: 'HEAD' })
    assert.equal(res.status, 404)
    assert.equal(await bad.references.get(`${host}/test/damaged:1`), img.id)
    assert.deepEqual(await bad.distribution.v2MetadataFor(img.diffIds[1]!), [])
    // The layer that went up before the failure is recorded: a retry only checks it.
    assert.deepEqual((await bad.distribution.v2MetadataFor(img.diffIds[0]!)).map((m) => m.SourceRepository), [`${host}/test/damaged`])
  })

  await t.test('strata push (CLI verb): docker\'s lines', async (t) => {
    const root = testDataRoot(t, 'strata-test-push-cli-')
    const cli = await Store.open({ root, driver: 'overlay2' })
    try {
      await makeImage(cli, {
        created: '2024-01-02T03:04:05Z',
        layers: [layerTar({ 'a.txt': bytes(3000, 'a') }), layerTar({ 'big.bin': big }), layerTar({ 'c.txt': bytes(5, 'c'), 'd.txt': 'dd' })],
        tags: [`${host}/test/cli:1`],
      })
      // The first layer is known to be in test/push (as after a pull from there): mounted.
      await cli.distribution.addMapping(first.layers[0]!.digest, made.diffIds[0]!, `${host}/test/push`)
    } finally {
      await cli.close()
    }
    const { global } = parseGlobal(['--root', root, '-s', 'overlay2'], {})
    const written: string[] = []
    const io = { stdout: { isTTY: false, write: (s: string) => void written.push(s) }, stdinIsTTY: false }
    const out = await pushCommand([`${host}/test/cli:1`], global, io)
    const text = written.join('') + (typeof out === 'string' ? out : out.stdout)
    const short = (d: string): string => d.slice(7, 19)
    assert.match(text, new RegExp(`^The push refers to repository \\[${host}/test/cli\\]\n`))
    assert.match(text, new RegExp(`${short(made.diffIds[0]!)}: Mounted from test/push\n`))
    assert.match(text, new RegExp(`${short(made.diffIds[1]!)}: Pushed\n`))
    assert.match(text, new RegExp(`${short(made.diffIds[2]!)}: Pushed\n`))
    assert.match(text, new RegExp(`\n1: digest: ${first.digest} size: ${first.size}\n$`))
    written.length = 0
    const again = await pushCommand([`${host}/test/cli:1`], global, io)
    const text2 = written.join('') + (typeof again === 'string' ? again : again.stdout)
    assert.equal(text2.match(/: Layer already exists\n/g)?.length, 3, text2)
    const quiet = await pushCommand(['-q', `${host}/test/cli:1`], global, io)
    assert.equal(typeof quiet === 'string' ? quiet : quiet.stdout, `${host}/test/cli:1\n`)
    // On a terminal: a line per layer, rewritten in place (Preparing, then its final status).
    const tty: string[] = []
    const ttyIo = { stdout: { isTTY: true, columns: 120, write: (s: string) => void tty.push(s) }, stdinIsTTY: false }
    const drawn = await pushCommand([`${host}/test/cli:1`], global, ttyIo)
    const screen = tty.join('')
    assert.equal(screen.match(/\n/g)?.length, 1 + 3, JSON.stringify(screen))
    for (const d of made.diffIds) {
      assert.ok(screen.includes(`\x1b[2K\r${short(d)}: Preparing\r`), JSON.stringify(screen))
      assert.ok(screen.includes(`\x1b[2K\r${short(d)}: Layer already exists\r`), JSON.stringify(screen))
    }
    assert.equal(typeof drawn === 'string' ? drawn : drawn.stdout, `1: digest: ${first.digest} size: ${first.size}\n`)
  })
})

test('registry v2 push: dockerd 20.10 pulls what strata pushed (same image ID and digest), and its own push of it gives the same manifest', async (t) => {
  if (!requireRoot(t) || !requireTool(t, REGISTRY) || !requireDockerd(t)) return
  const dir = tempDirFor(t, 'registry-push-dockerd-')
  const host = await startRegistry(t, dir)
  const store = await openTestStore(t)
  const made = await makeImage(store, {
    created: '2024-01-02T03:04:05Z',
    layers: [layerTar({ 'a.txt': bytes(3000, 'a') }), layerTar({ 'big.bin': randomBytes(1 << 20) })],
    tags: [`${host}/test/push:1`],
  })
  const pushed = await pushImage(store, `${host}/test/push:1`)
  const dockerd = await startDockerd(t, { storageDriver: 'overlay2' })
  await dockerd.docker(['pull', '-q', `${host}/test/push:1`])
  const inspect = JSON.parse((await dockerd.docker(['image', 'inspect', `${host}/test/push:1`])).stdout.toString()) as Array<{ Id: string; RepoDigests: string[]; RootFS: { Layers: string[] } }>
  assert.equal(inspect[0]!.Id, made.id)
  assert.deepEqual(inspect[0]!.RepoDigests, [`${host}/test/push@${pushed.digest}`])
  assert.deepEqual(inspect[0]!.RootFS.Layers, made.diffIds)
  // dockerd pushes it to another repository: it mounts the blobs it pulled and writes the same manifest bytes.
  await dockerd.docker(['tag', `${host}/test/push:1`, `${host}/test/bydocker:1`])
  const out = (await dockerd.docker(['push', `${host}/test/bydocker:1`])).stdout.toString()
  assert.match(out, new RegExp(`1: digest: ${pushed.digest} size: ${pushed.size}`), out)
  assert.match(out, /Mounted from test\/push/, out)
})
