/**
 * Registry v2 pull against the real CNCF distribution registry (Debian's
 * docker-registry 2.8) on 127.0.0.1, started here and stopped by its PID.
 * Images are made with strata's own fixtures, saved as a docker-archive and
 * pushed with skopeo (which gzips the layers, as a registry push does);
 * then pulled with strata into fresh stores. A loopback proxy in front of
 * the registry serves one layer blob with a byte changed to check that a
 * corrupted blob fails the pull and leaves the store as it was.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer, request as httpRequest } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { pullCommand } from '../src/cli/pull.js'
import { parseGlobal } from '../src/cli/global.js'
import { MediaTypes, openImageDestination, saveImages } from '../src/transport/index.js'
import { pullImage, readRegistryAuth, parseAuthChallenge, isLoopbackRegistry } from '../src/transport/registry/index.js'
import { chainId, sha256Of, type Digest } from '../src/digest/index.js'
import { isStrataError } from '../src/errors/index.js'
import { Store } from '../src/store/index.js'
import { assertStoreUnchanged, openTestStore, snapshotStore, testDataRoot } from './helpers/archive-fixtures.js'
import { layerTar, makeImage, bytes, type MadeImage } from './helpers/image-fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { manifestOf, push, REGISTRY, SKOPEO, startCorruptingProxy, startGrantingTokenService, startLoggingProxy, startRegistry } from './helpers/registry.js'
import { STRATA_CLI } from './helpers/strata-cli.js'

const CLI = STRATA_CLI

/** bcrypt of TEST_PASSWORD (cost 4): the registry's htpasswd accepts only bcrypt. */
const TEST_USER = 'strata'
const TEST_PASSWORD = 'strata-test-pw'
const TEST_BCRYPT = '$2b$04$TnwuDl209UdNAySbOoB1Mu1z2IYh8ziU7F35eO/vucSp4vGPP42hC'

/** A docker config.json with credentials for `host`. */
function dockerConfigFor(dir: string, host: string): string {
  const path = join(dir, `config-${host.replace(/[^0-9a-z]/gi, '_')}.json`)
  writeFileSync(path, JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString('base64') } } }))
  return path
}

test('registry v2 pull from docker-registry', async (t) => {
  if (!requireRoot(t) || !requireTool(t, REGISTRY, SKOPEO, 'openssl')) return
  const dir = tempDirFor(t, 'registry-')
  const host = await startRegistry(t, dir)

  // Two images made by strata, pushed with skopeo: amd64 (3 layers) and an arm64 one for the index.
  const scratch = await openTestStore(t)
  const amd: MadeImage = await makeImage(scratch, {
    created: '2024-01-02T03:04:05Z',
    layers: [layerTar({ 'a.txt': bytes(3000, 'a') }), layerTar({ 'b.txt': bytes(70000, 'b') }), layerTar({ 'c.txt': bytes(5, 'c'), 'd.txt': 'dd' })],
    tags: ['test/img:1'],
  })
  const armLayer = layerTar({ 'arm.txt': 'arm64' })
  const arm = await makeImage(scratch, { created: '2024-01-02T03:04:05Z', layers: [armLayer], tags: ['test/img:arm'] })
  // makeImage writes amd64: rewrite the arm image's config with architecture arm64 (same layers).
  const armConfig = Buffer.from(JSON.stringify({ ...JSON.parse(arm.configBytes.toString()), architecture: 'arm64' }))
  const armImage = await scratch.images.create(armConfig)
  await scratch.references.addTag('test/img:arm', armImage.id, { force: true })
  const amdArchive = join(dir, 'amd.tar')
  const armArchive = join(dir, 'arm.tar')
  await saveImages(scratch, ['test/img:1'], openImageDestination(amdArchive, 'docker-archive'))
  await saveImages(scratch, ['test/img:arm'], openImageDestination(armArchive, 'docker-archive'))
  await push(amdArchive, `${host}/test/img:1`, dir)
  await push(armArchive, `${host}/test/img:arm`, dir)
  const amdManifest = await manifestOf(host, 'test/img', '1')
  const armManifest = await manifestOf(host, 'test/img', 'arm')
  const amdDigest = sha256Of(amdManifest.bytes)
  assert.equal(amdManifest.doc.config.digest, amd.id, 'skopeo kept the config bytes')

  // A multi-platform OCI index over both, put with the registry API.
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [
        { mediaType: MediaTypes.dockerManifest, digest: sha256Of(armManifest.bytes), size: armManifest.bytes.length, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
        { mediaType: MediaTypes.dockerManifest, digest: amdDigest, size: amdManifest.bytes.length, platform: { os: 'linux', architecture: 'amd64' } },
      ],
    }),
  )
  const put = await fetch(`http://${host}/v2/test/img/manifests/multi`, { method: 'PUT', headers: { 'content-type': MediaTypes.ociIndex }, body: index })
  assert.equal(put.status, 201, await put.text())
  const indexDigest = sha256Of(index)

  await t.test('pull by tag: same image ID and diffIDs, RepoDigest and distribution metadata recorded', async (t) => {
    const store = await openTestStore(t)
    const r = await pullImage(store, `${host}/test/img:1`)
    assert.equal(r.id, amd.id)
    assert.equal(r.digest, amdDigest)
    assert.equal(r.layersCreated, 3)
    const image = await store.images.get(r.id)
    assert.deepEqual(image.config.rootfs.diff_ids, amd.diffIds)
    assert.equal(await store.references.get(`${host}/test/img:1`), amd.id)
    assert.equal(await store.references.get(`${host}/test/img@${amdDigest}`), amd.id)
    // Distribution metadata: blob digest -> diffID, and the repository it came from.
    for (const [i, l] of amdManifest.doc.layers.entries()) {
      assert.equal(await store.distribution.diffIdFor(l.digest), amd.diffIds[i])
      const meta = await store.distribution.v2MetadataFor(amd.diffIds[i]!)
      assert.deepEqual(meta, [{ Digest: l.digest, SourceRepository: `${host}/test/img`, HMAC: '' }])
    }
    // Pulled again: nothing downloaded, "up to date".
    const again = await pullImage(store, `${host}/test/img:1`)
    assert.equal(again.updated, false)
    assert.equal(again.layersCreated, 0)
    assert.equal(again.layersExisting, 3)
  })

  await t.test('pull by digest: checked against the manifest bytes; no tag made', async (t) => {
    const store = await openTestStore(t)
    const r = await pullImage(store, `${host}/test/img@${amdDigest}`)
    assert.equal(r.id, amd.id)
    assert.equal(await store.references.get(`${host}/test/img@${amdDigest}`), amd.id)
    assert.equal(await store.references.get(`${host}/test/img:latest`), undefined)
    assert.equal((await store.references.all()).length, 1)
  })

  await t.test('pull by a digest the manifest does not hash to fails clearly and stores nothing', async (t) => {
    const store = await openTestStore(t)
    const before = await snapshotStore(store)
    // The arm manifest's bytes, asked for under the amd digest, cannot be served: the registry
    // addresses by digest, so ask for a digest that exists nowhere and for one of another image.
    const other = sha256Of('not a manifest')
    await assert.rejects(pullImage(store, `${host}/test/img@${other}`), (err: unknown) => {
      assert.ok(isStrataError(err, 'NOT_FOUND'), String(err))
      assert.match((err as Error).message, /MANIFEST_UNKNOWN/)
      assert.match((err as Error).message, new RegExp(other))
      return true
    })
    await assertStoreUnchanged(store, before)
    // A registry that serves other bytes than the digest asked for (here: the :1 manifest under
    // the arm manifest's digest): DIGEST_MISMATCH before anything is fetched.
    const armDigest = sha256Of(armManifest.bytes)
    const proxy = await startCorruptingProxy(t, host, { digest: 'none', offset: 0 }, { [`/v2/test/img/manifests/${armDigest}`]: '/v2/test/img/manifests/1' })
    await assert.rejects(pullImage(store, `${proxy}/test/img@${armDigest}`), (err: unknown) => {
      assert.ok(isStrataError(err, 'DIGEST_MISMATCH'), String(err))
      assert.match((err as Error).message, new RegExp(`hashes to ${amdDigest}, not to the digest asked for`))
      return true
    })
    await assertStoreUnchanged(store, before)
  })

  await t.test('a manifest list / OCI index resolves to this machine, or to --platform', async (t) => {
    const store = await openTestStore(t)
    const r = await pullImage(store, `${host}/test/img:multi`)
    assert.equal(r.id, amd.id)
    assert.equal(r.digest, indexDigest, 'the RepoDigest is the index digest, as dockerd 20.10 records it')
    assert.equal(r.manifestDigest, amdDigest)
    assert.equal(await store.references.get(`${host}/test/img@${indexDigest}`), amd.id)
    const a = await pullImage(store, `${host}/test/img:multi`, { platform: { os: 'linux', architecture: 'arm64' } })
    assert.equal(a.id, armImage.id)
    await assert.rejects(pullImage(store, `${host}/test/img:multi`, { platform: { os: 'linux', architecture: 's390x' } }), (err: unknown) => {
      assert.ok(isStrataError(err, 'NOT_FOUND'))
      assert.match((err as Error).message, /no matching manifest for linux\/s390x/)
      return true
    })
    // A single-platform image pulled with another --platform: refused, as dockerd 20.10 does.
    await assert.rejects(pullImage(store, `${host}/test/img:1`, { platform: { os: 'linux', architecture: 'arm64' } }), (err: unknown) => {
      assert.ok(isStrataError(err, 'NOT_FOUND'))
      assert.match((err as Error).message, /does not match the specified platform: wanted linux\/arm64, actual: linux\/amd64/)
      return true
    })
    // By the index digest.
    const byDigest = await pullImage(store, `${host}/test/img@${indexDigest}`)
    assert.equal(byDigest.id, amd.id)
  })

  await t.test('blobs redirected to another origin over HTTPS (a blob store) are followed without the registry\'s credentials', async (t) => {
    // The registry (a loopback proxy asking for basic auth) answers each layer blob with a 307 to
    // an HTTPS server on another port, as Docker Hub sends blobs to its CDN; that server's
    // self-signed certificate is trusted through NODE_EXTRA_CA_CERTS in the CLI's environment.
    const rdir = join(dir, 'redirect')
    mkdirSync(rdir)
    const key = join(rdir, 'key.pem')
    const cert = join(rdir, 'cert.pem')
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
    const [uhost, uport] = host.split(':')
    const seen: Array<{ path: string; authorization: string | undefined }> = []
    const blobs = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, (req, res) => {
      seen.push({ path: req.url ?? '', authorization: req.headers.authorization })
      const digest = /^\/store\/(sha256:[0-9a-f]{64})\?sig=x$/.exec(req.url ?? '')?.[1]
      if (digest === undefined) return void res.writeHead(404).end()
      httpRequest({ host: uhost, port: Number(uport), path: `/v2/test/img/blobs/${digest}` }, (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers)
        ures.pipe(res)
      }).end()
    })
    await new Promise<void>((resolve) => blobs.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise<void>((resolve) => blobs.close(() => resolve())))
    const blobPort = (blobs.address() as AddressInfo).port
    const layerDigests = new Set(amdManifest.doc.layers.map((l) => l.digest))
    const front = createServer((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from(`${TEST_USER}:${TEST_PASSWORD}`).toString('base64')}`) {
        return void res.writeHead(401, { 'www-authenticate': 'Basic realm="test"', 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
      }
      const digest = /\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.url ?? '')?.[1]
      if (req.method === 'GET' && digest !== undefined && layerDigests.has(digest)) {
        return void res.writeHead(307, { location: `https://127.0.0.1:${blobPort}/store/${digest}?sig=x` }).end()
      }
      const up = httpRequest({ host: uhost, port: Number(uport), method: req.method, path: req.url, headers: req.headers }, (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers)
        ures.pipe(res)
      })
      req.pipe(up)
    })
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise<void>((resolve) => front.close(() => resolve())))
    const fhost = `127.0.0.1:${(front.address() as AddressInfo).port}`
    mkdirSync(join(rdir, 'docker'))
    writeFileSync(join(rdir, 'docker', 'config.json'), readFileSync(dockerConfigFor(rdir, fhost)))
    const root = join(rdir, 'root')
    await run(process.execPath, [CLI, '--root', root, '-s', 'vfs', 'pull', '-q', `${fhost}/test/img:1`], {
      env: { ...process.env, DOCKER_CONFIG: join(rdir, 'docker'), NODE_EXTRA_CA_CERTS: cert },
    })
    assert.deepEqual(seen.map((s) => s.path).sort(), [...layerDigests].map((d) => `/store/${d}?sig=x`).sort())
    assert.ok(seen.every((s) => s.authorization === undefined), 'the registry\'s credentials went to the blob store')
    const store = await Store.open({ root, driver: 'vfs' })
    t.after(() => store.close())
    assert.equal((await store.references.get(`${fhost}/test/img:1`)), amd.id)
  })

  await t.test('a layer blob served corrupted fails with DIGEST_MISMATCH and the store is unchanged', async (t) => {
    const top = amdManifest.doc.layers[2]!
    // Byte 4 is the gzip header's MTIME: the layer still decompresses to the same tar, so only the
    // blob digest check can catch it.
    const proxy = await startCorruptingProxy(t, host, { digest: top.digest, offset: 4 })
    const store = await openTestStore(t)
    const before = await snapshotStore(store)
    await assert.rejects(pullImage(store, `${proxy}/test/img:1`), (err: unknown) => {
      assert.ok(isStrataError(err, 'DIGEST_MISMATCH'), String(err))
      assert.match((err as Error).message, new RegExp(top.digest))
      return true
    })
    await assertStoreUnchanged(store, before)
    // A byte changed in the middle of the compressed data: fails too (gzip or digest), store unchanged.
    const proxy2 = await startCorruptingProxy(t, host, { digest: top.digest, offset: Math.floor(top.size / 2) })
    await assert.rejects(pullImage(store, `${proxy2}/test/img:1`))
    await assertStoreUnchanged(store, before)
    // Through the honest registry the same store then pulls fine.
    assert.equal((await pullImage(store, `${host}/test/img:1`)).id, amd.id)
  })

  await t.test('an image of more layers than the layer store applies at once', async (t) => {
    const many = await makeImage(scratch, {
      created: '2024-01-02T03:04:05Z',
      layers: Array.from({ length: 9 }, (_, i) => layerTar({ [`f${i}.txt`]: bytes(1000 + i * 20000, String.fromCharCode(97 + i)) })),
      tags: ['test/many:1'],
    })
    const archive = join(dir, 'many.tar')
    await saveImages(scratch, ['test/many:1'], openImageDestination(archive, 'docker-archive'))
    await push(archive, `${host}/test/many:1`, dir)
    const store = await openTestStore(t)
    const r = await pullImage(store, `${host}/test/many:1`)
    assert.equal(r.id, many.id)
    assert.equal(r.layersCreated, 9)
    assert.deepEqual((await store.images.get(r.id)).config.rootfs.diff_ids, many.diffIds)
  })

  await t.test('basic auth (htpasswd registry): refused without credentials, pulled with docker config.json ones', async (t) => {
    const rdir = join(dir, 'basic')
    mkdirSync(rdir)
    writeFileSync(join(rdir, 'htpasswd'), `${TEST_USER}:${TEST_BCRYPT}\n`)
    const bhost = await startRegistry(t, rdir, [`auth: { htpasswd: { realm: strata-test, path: ${join(rdir, 'htpasswd')} } }`])
    await push(amdArchive, `${bhost}/test/img:1`, dir, `${TEST_USER}:${TEST_PASSWORD}`)
    const store = await openTestStore(t)
    const before = await snapshotStore(store)
    await assert.rejects(pullImage(store, `${bhost}/test/img:1`, { dockerConfig: join(rdir, 'none.json') }), (err: unknown) => {
      assert.ok(isStrataError(err, 'NOT_FOUND'), String(err))
      assert.match((err as Error).message, /denied by registry .*basic auth.*no credentials/)
      return true
    })
    await assertStoreUnchanged(store, before)
    const r = await pullImage(store, `${bhost}/test/img:1`, { dockerConfig: dockerConfigFor(rdir, bhost) })
    assert.equal(r.id, amd.id)
  })

  await t.test('bearer token auth (WWW-Authenticate challenge, token service with basic credentials)', async (t) => {
    const rdir = join(dir, 'token')
    mkdirSync(rdir)
    const tokens = await startGrantingTokenService(t, rdir, TEST_USER, TEST_PASSWORD)
    const thost = await startRegistry(t, rdir, [tokens.config])
    await push(amdArchive, `${thost}/test/img:1`, dir, `${TEST_USER}:${TEST_PASSWORD}`)
    const store = await openTestStore(t)
    const before = await snapshotStore(store)
    const refusedBefore = tokens.refused()
    await assert.rejects(pullImage(store, `${thost}/test/img:1`, { dockerConfig: join(rdir, 'none.json') }), (err: unknown) => {
      assert.ok(isStrataError(err, 'NOT_FOUND'), String(err))
      assert.match((err as Error).message, /token service .* answered 401/)
      return true
    })
    assert.equal(tokens.refused(), refusedBefore + 1)
    await assertStoreUnchanged(store, before)
    tokens.requests.length = 0
    const r = await pullImage(store, `${thost}/test/img:1`, { dockerConfig: dockerConfigFor(rdir, thost) })
    assert.equal(r.id, amd.id)
    assert.deepEqual(tokens.requests, [['repository:test/img:pull']], 'one token for the whole pull (cached per scope)')
  })

  await t.test('a pull killed midway resumes: the layers it completed are not downloaded again', async (t) => {
    // A proxy that never answers for the top layer's blob, so the pull hangs after the two below are in.
    const stalled = amdManifest.doc.layers[2]!.digest
    const held: Array<import('node:http').ServerResponse> = []
    const server = createServer((req, res) => {
      if (req.method === 'GET' && req.url === `/v2/test/img/blobs/${stalled}`) {
        held.push(res)
        return
      }
      const [uh, up] = host.split(':')
      const upstream = httpRequest({ host: uh, port: Number(up), method: req.method, path: req.url, headers: req.headers }, (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers)
        ures.pipe(res)
      })
      upstream.on('error', (e) => res.destroy(e))
      req.pipe(upstream)
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    t.after(() => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }))
    const proxy = `127.0.0.1:${(server.address() as AddressInfo).port}`

    const root = testDataRoot(t, 'strata-test-pull-cli-')
    const child = spawn(process.execPath, [CLI, '--root', root, '-s', 'overlay2', 'pull', '-q', `${proxy}/test/img:1`], { stdio: 'ignore' })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    t.after(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    })
    const secondChain = chainId(amd.diffIds.slice(0, 2) as Digest[])
    const committed = join(root, 'image', 'overlay2', 'layerdb', 'sha256', secondChain.slice(7), 'diff')
    const deadline = Date.now() + 60_000
    while (!existsSync(committed) || held.length === 0) {
      assert.ok(child.exitCode === null, `the pull ended (exit ${child.exitCode}) before it could be killed`)
      assert.ok(Date.now() < deadline, 'the two lower layers were not committed within 60 s')
      await new Promise((r) => setTimeout(r, 50))
    }
    child.kill('SIGKILL')
    await exited

    // Again, straight to the registry through a proxy that logs: only the top layer's blob is fetched.
    const logging = await startLoggingProxy(t, host)
    const store = await Store.open({ root })
    try {
      const r = await pullImage(store, `${logging.host}/test/img:1`)
      assert.equal(r.id, amd.id)
      assert.equal(r.layersExisting, 2)
      assert.equal(r.layersCreated, 1)
    } finally {
      await store.close()
    }
    const blobGets = logging.log.filter((e) => e.method === 'GET' && e.path.includes('/blobs/')).map((e) => e.path.slice(e.path.lastIndexOf('/') + 1))
    assert.deepEqual(blobGets.sort(), [amd.id, stalled].sort(), 'the config and the top layer only')
  })

  await t.test('strata pull (CLI verb): docker\'s lines', async (t) => {
    const root = testDataRoot(t, 'strata-test-pull-cli-')
    const { global } = parseGlobal(['--root', root, '-s', 'overlay2'], {})
    const written: string[] = []
    const io = { stdout: { isTTY: false, write: (s: string) => void written.push(s) }, stdinIsTTY: false }
    const out = await pullCommand([`${host}/test/img:1`], global, io)
    const text = written.join('') + (typeof out === 'string' ? out : out.stdout)
    const short = (d: string): string => d.slice(7, 19)
    assert.match(text, /^1: Pulling from test\/img\n/)
    for (const l of amdManifest.doc.layers) assert.match(text, new RegExp(`${short(l.digest)}: Pull complete\n`))
    assert.match(text, new RegExp(`Digest: ${amdDigest}\nStatus: Downloaded newer image for ${host}/test/img:1\n${host}/test/img:1\n$`))
    const store = await Store.open({ root, driver: 'overlay2' })
    try {
      assert.equal(await store.references.get(`${host}/test/img:1`), amd.id)
    } finally {
      await store.close()
    }
    written.length = 0
    const again = await pullCommand([`${host}/test/img:1`], global, io)
    const text2 = written.join('') + (typeof again === 'string' ? again : again.stdout)
    assert.match(text2, /Already exists\n/)
    assert.match(text2, /Status: Image is up to date for /)
    const quiet = await pullCommand(['-q', `${host}/test/img@${amdDigest}`], global, io)
    assert.equal(typeof quiet === 'string' ? quiet : quiet.stdout, `${host}/test/img@${amdDigest}\n`)
  })
})

test('registry auth pieces: challenge parsing, loopback rule, docker config.json', async (t) => {
  assert.deepEqual(parseAuthChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
  })
  assert.deepEqual(parseAuthChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } })
  assert.equal(isLoopbackRegistry('localhost:5000'), true)
  assert.equal(isLoopbackRegistry('127.0.0.1:5000'), true)
  assert.equal(isLoopbackRegistry('[::1]:5000'), true)
  assert.equal(isLoopbackRegistry('registry.example.com:5000'), false)
  assert.equal(isLoopbackRegistry('docker.io'), false)
  const dir = tempDirFor(t, 'docker-config-')
  const path = join(dir, 'config.json')
  writeFileSync(
    path,
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hubpass').toString('base64') },
        'registry.example.com:5000': { auth: Buffer.from('u:p:with:colons').toString('base64') },
      },
      credHelpers: { 'gcr.io': 'gcloud' },
    }),
  )
  assert.deepEqual(await readRegistryAuth('docker.io', path), { credentials: { username: 'hubuser', password: 'hubpass' } })
  assert.deepEqual(await readRegistryAuth('registry.example.com:5000', path), { credentials: { username: 'u', password: 'p:with:colons' } })
  assert.deepEqual(await readRegistryAuth('gcr.io', path), { helper: 'gcloud' })
  assert.deepEqual(await readRegistryAuth('other.io', join(dir, 'missing.json')), {})
})
