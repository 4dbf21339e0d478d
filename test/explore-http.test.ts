/**
 * The explorer's HTTP API and CLI: real servers on loopback ports, real
 * requests. Refusals are tested as the attacks they stop: a DNS-rebinding
 * page (a foreign Host header), a peer on another address (a client in a
 * network namespace of the test's own, over a veth pair), writes.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer, request, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { connect } from 'node:net'
import { test, type TestContext } from 'node:test'
import { Explorer, type DirListing, type ExploreImage, type ImageAnalysis, type ImageComparison, type SearchResult } from '../src/explore/index.js'
import { createExploreHandler, startExploreServer, type ExploreServer } from '../src/explore-server/index.js'
import { Store } from '../src/store/index.js'
import { openTestStore, testDataRoot } from './helpers/archive-fixtures.js'
import { EXPECTED, FIXTURE_TAG, makeFixtureImage } from './helpers/explore-fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { STRATA_CLI, strata } from './helpers/strata-cli.js'

interface Reply {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

function get(url: string, opts: { host?: string; method?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.host === undefined ? {} : { Host: opts.host } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }))
    })
    req.on('error', reject)
    req.end()
  })
}

async function json<T>(url: string): Promise<T> {
  const r = await get(url)
  assert.equal(r.status, 200, `${url}: ${r.body}`)
  assert.match(String(r.headers['content-type']), /^application\/json/)
  return JSON.parse(r.body) as T
}

async function fixtureServer(t: TestContext): Promise<{ store: Store; server: ExploreServer }> {
  const store = await openTestStore(t)
  await makeFixtureImage(t, store)
  const server = await startExploreServer({ explorer: new Explorer(store) })
  t.after(() => server.close())
  return { store, server }
}

test('the API answers images, layers, counts, listings, search, path history and comparison as the library does', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const { server } = await fixtureServer(t)
  const base = `${server.url}api`
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/)
  const images = await json<Array<{ id: string; tags: string[] }>>(`${base}/images`)
  assert.deepEqual(images.map((i) => i.tags), [[FIXTURE_TAG]])
  const id = images[0]!.id
  const byTag = await json<ExploreImage>(`${base}/images/${encodeURIComponent(FIXTURE_TAG)}`)
  assert.equal(byTag.id, id)
  assert.equal(byTag.layers.length, 3)
  assert.equal(byTag.layers[1]!.createdBy, '/bin/sh -c rm /.profile /data/keep.txt && rm -rf /opt/app && ...', 'empty history steps are skipped when matching layers')
  const analysis = await json<ImageAnalysis>(`${base}/images/${encodeURIComponent(id)}/analysis`)
  assert.deepEqual(analysis.layers.map(({ added, modified, removed, wastedBytes }) => ({ added, modified, removed, wastedBytes })), EXPECTED.layers)
  assert.equal(analysis.efficiency.wastedBytes, EXPECTED.efficiency.wastedBytes)

  const app = await json<DirListing>(`${base}/images/${encodeURIComponent(id)}/layers/1/dir?path=${encodeURIComponent('/opt/app')}`)
  assert.deepEqual(app.entries.map((e) => `${e.name}:${e.mark}`), ['a.txt:removed', 'b.txt:removed', 'c.txt:removed', 'new.txt:added'])
  // A long listing comes a page at a time.
  const page = await json<DirListing>(`${base}/images/${encodeURIComponent(id)}/layers/1/dir?path=${encodeURIComponent('/opt/app')}&offset=1&limit=2`)
  assert.deepEqual([page.total, page.offset, page.entries.map((e) => e.name)], [4, 1, ['b.txt', 'c.txt']])
  const changes = await json<DirListing>(`${base}/images/${encodeURIComponent(id)}/layers/2/dir?path=/&changes=1`)
  assert.deepEqual(changes.entries.map((e) => e.name), ['etc'])
  const big = await json<DirListing>(`${base}/images/${encodeURIComponent(id)}/layers/1/dir?path=/data&min=1000`)
  assert.deepEqual(big.entries.map((e) => e.name), ['big.bin'])
  const found = await json<SearchResult>(`${base}/images/${encodeURIComponent(id)}/layers/0/search?q=bashrc`)
  assert.deepEqual(found.entries.map((e) => e.path), ['/home/user/.bashrc'])
  const history = await json<{ versions: Array<{ layer: number; kind: string }> }>(`${base}/images/${encodeURIComponent(id)}/path?path=/.profile`)
  assert.deepEqual(history.versions.map((v) => `${v.layer}:${v.kind}`), ['0:file', '1:whiteout'])
  const self = await json<ImageComparison>(`${base}/compare?a=${encodeURIComponent(id)}&b=${encodeURIComponent(FIXTURE_TAG)}`)
  assert.equal(self.sharedLayers.length, 3)
  assert.deepEqual(self.counts, { onlyA: 0, onlyB: 0, changed: 0 })

  // Errors: clear, JSON, with the right status.
  const missing = await get(`${base}/images/nosuchimage`)
  assert.equal(missing.status, 404)
  assert.match(JSON.parse(missing.body).error.message, /No such image: nosuchimage/)
  const badLayer = await get(`${base}/images/${encodeURIComponent(id)}/layers/7/dir?path=/`)
  assert.equal(badLayer.status, 400)
  assert.match(JSON.parse(badLayer.body).error.message, /Layer 7 is out of range: the image has 3 layer\(s\)/)
  assert.equal((await get(`${base}/images/${encodeURIComponent(id)}/layers/x/dir`)).status, 400)
  assert.equal((await get(`${base}/images/${encodeURIComponent(id)}/layers/1/dir?path=/nowhere`)).status, 404)
  assert.equal((await get(`${base}/nothing-here`)).status, 404)
  assert.equal((await get(`${base}/images/%E0%A4%A`)).status, 400, 'a malformed escape is a bad request, not a crash')
  assert.equal((await get(`${base}/images/${encodeURIComponent(id)}/layers/1/dir?path=/&min=-4`)).status, 400)
})

test('DNS rebinding: a Host header other than localhost, 127.0.0.1 or [::1] is refused', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const { server } = await fixtureServer(t)
  const url = `${server.url}api/images`
  for (const host of ['evil.example', 'localhost.evil.example', `evil.example:${server.port}`, '127.0.0.1.nip.io', '10.0.0.1']) {
    const r = await get(url, { host })
    assert.equal(r.status, 403, `Host: ${host}`)
    assert.match(r.body, /is not localhost, 127\.0\.0\.1 or \[::1\]/)
  }
  for (const host of [`localhost:${server.port}`, `127.0.0.1:${server.port}`, 'LOCALHOST', `[::1]:${server.port}`]) assert.equal((await get(url, { host })).status, 200, `Host: ${host}`)
  // An HTTP/1.0 request may leave Host out: refused too.
  const raw = await new Promise<string>((resolve, reject) => {
    const sock = connect(server.port, '127.0.0.1', () => sock.end('GET /api/images HTTP/1.0\r\n\r\n'))
    const chunks: Buffer[] = []
    sock.on('data', (c: Buffer) => chunks.push(c))
    sock.on('end', () => resolve(Buffer.concat(chunks).toString()))
    sock.on('error', reject)
  })
  assert.match(raw, /^HTTP\/1\.1 403/)
})

test('read-only: POST, PUT and DELETE are refused and change nothing', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const { store, server } = await fixtureServer(t)
  const before = (await store.images.list()).length
  for (const method of ['POST', 'PUT', 'DELETE']) {
    const r = await get(`${server.url}api/images/${encodeURIComponent(FIXTURE_TAG)}`, { method })
    assert.equal(r.status, 405, method)
    assert.equal(r.headers.allow, 'GET, HEAD')
  }
  assert.equal((await store.images.list()).length, before)
  const head = await get(`${server.url}api/images`, { method: 'HEAD' })
  assert.equal(head.status, 200)
  assert.equal(head.body, '')
})

test('a peer on another address is refused: a client in a network namespace over a veth pair', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'ip')) return
  const store = await openTestStore(t)
  await makeFixtureImage(t, store)
  // The handler mounted in a server that listens on a non-loopback address of the test's own veth pair.
  const ns = `strata-explore-${process.pid}`
  const host = `sx${process.pid % 100000}a`
  const peer = `sx${process.pid % 100000}b`
  const octet = (process.pid % 200) + 20
  const [hostAddr, peerAddr] = [`10.251.${octet}.1`, `10.251.${octet}.2`]
  t.after(async () => {
    await run('ip', ['link', 'del', host]).catch(() => {})
    await run('ip', ['netns', 'del', ns]).catch(() => {})
  })
  await run('ip', ['netns', 'add', ns])
  await run('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer, 'netns', ns])
  await run('ip', ['addr', 'add', `${hostAddr}/30`, 'dev', host])
  await run('ip', ['link', 'set', host, 'up'])
  await run('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${peerAddr}/30`, 'dev', peer])
  await run('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', peer, 'up'])
  const handler = createExploreHandler({ explorer: new Explorer(store) })
  const server = createServer((req, res) => void handler(req, res).then((done) => done || res.writeHead(404).end()))
  await new Promise<void>((resolve) => server.listen(0, hostAddr, resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const port = (server.address() as AddressInfo).port
  const client = `require('http').get({ host: '${hostAddr}', port: ${port}, path: '/api/images', headers: { Host: 'localhost' }, timeout: 5000 }, (res) => { let b = ''; res.on('data', (c) => (b += c)); res.on('end', () => console.log(res.statusCode + ' ' + b)) }).on('error', (e) => console.log('error ' + e.message))`
  const { stdout } = await run('ip', ['netns', 'exec', ns, process.execPath, '-e', client])
  assert.match(stdout.toString(), new RegExp(`^403 Refused: the explorer answers this machine only, not ${peerAddr.replaceAll('.', '\\.')}`))
})

test('mounted under a prefix: /ui redirects to /ui/, the API answers under it, other paths are left to the host server', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const store = await openTestStore(t)
  await makeFixtureImage(t, store)
  const handler = createExploreHandler({ explorer: new Explorer(store), prefix: '/ui' })
  const server = createServer((req, res) => void handler(req, res).then((done) => done || res.writeHead(418).end('host server')))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const redirect = await get(`${base}/ui`)
  assert.equal(redirect.status, 308)
  assert.equal(redirect.headers.location, '/ui/')
  const images = JSON.parse((await get(`${base}/ui/api/images`)).body) as Array<{ tags: string[] }>
  assert.deepEqual(images.map((i) => i.tags), [[FIXTURE_TAG]])
  assert.equal((await get(`${base}/v1.41/images/json`)).status, 418)
  assert.equal((await get(`${base}/uix/api/images`)).status, 418)
  const page = await get(`${base}/ui/`)
  assert.equal(page.status, 200, 'the page is built by npm run build (vite build web)')
  assert.match(page.body, /<div id="app"><\/div>/)
  assert.match(page.body, /src="\.\/assets\/index-[\w-]+\.js"/, 'assets are referenced relatively, so they resolve under the prefix')
  const script = page.body.match(/src="\.\/(assets\/index-[\w-]+\.js)"/)![1]!
  const js = await get(`${base}/ui/${script}`)
  assert.equal(js.status, 200)
  assert.match(String(js.headers['cache-control']), /immutable/)
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'/)
  // A climbing path resolves outside the prefix first: it is the host server's, never a file of ours.
  assert.equal((await get(`${base}/ui/../../etc/passwd`)).status, 418)
  assert.equal((await get(`${base}/ui/assets/%2e%2e%2f%2e%2e%2fpackage.json`)).status, 404)
})

test('strata explore prints its URL, serves until SIGINT and exits 0; strata image layers and history --layers print the counts', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const root = testDataRoot(t)
  const store = await Store.open({ root, driver: 'overlay2' })
  try {
    await makeFixtureImage(t, store)
  } finally {
    await store.close()
  }
  const child = spawn(process.execPath, [STRATA_CLI, '--root', root, '-s', 'overlay2', 'explore', FIXTURE_TAG], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => child.kill('SIGKILL'))
  let out = ''
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString()
      const m = out.match(/at (http:\/\/127\.0\.0\.1:\d+\/#image=sha256%3A[0-9a-f]{64})\n/)
      if (m !== null) resolve(m[1]!)
    })
    child.on('exit', (code) => reject(new Error(`strata explore exited ${code}: ${out}`)))
  })
  const images = JSON.parse((await get(`${url.split('#')[0]}api/images`)).body) as Array<{ tags: string[] }>
  assert.deepEqual(images[0]!.tags, [FIXTURE_TAG])
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  child.kill('SIGINT')
  assert.equal(await exited, 0)

  const table = await strata(['image', 'layers', FIXTURE_TAG], { root, driver: 'overlay2' })
  assert.equal(table.code, 0, table.stderr)
  const lines = table.text.split('\n')
  assert.match(lines[0]!, /^LAYER\s+SIZE\s+ADDED\s+MODIFIED\s+REMOVED\s+WASTED\s+CREATED BY$/)
  assert.match(lines[2]!, /^1\s+\S+\s+5\s+3\s+5\s+65\.9kB\s+rm \/\.profile/)
  assert.match(table.text, /Efficiency \(as dive computes it\): 50\.6%\s+wasted 131kB/)
  const doc = JSON.parse((await strata(['history', '--layers', '--format', 'json', FIXTURE_TAG], { root, driver: 'overlay2' })).text) as { Layers: Array<{ Added: number; Modified: number; Removed: number; WastedBytes: number }> }
  assert.deepEqual(doc.Layers.map((l) => ({ added: l.Added, modified: l.Modified, removed: l.Removed, wastedBytes: l.WastedBytes })), EXPECTED.layers)
  const missing = await strata(['image', 'layers', 'nosuch'], { root, driver: 'overlay2' })
  assert.equal(missing.code, 1)
  assert.match(missing.stderr, /No such image: nosuch/)
  const badPort = await strata(['explore', '--port', '99999'], { root, driver: 'overlay2' })
  assert.equal(badPort.code, 125)
})
