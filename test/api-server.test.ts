/**
 * The Engine API server's own rules, over its unix socket with raw HTTP:
 * version negotiation and headers as dockerd sends them, errors as
 * {"message"} with dockerd's statuses, 501 for what strata does not do,
 * bad input (malformed JSON, a body too big, bad query values, unknown
 * parameters), a slowloris client, a client cut off mid-upload, 100
 * requests at once, and where and how it listens (socket mode and group,
 * a live socket is not stolen, TCP only on loopback).
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { startApiServer } from '../src/api/index.js'
import { Store } from '../src/store/index.js'
import { testDataRoot } from './helpers/archive-fixtures.js'
import { httpUnix, importBusybox, shortTempDir, startStrataServe } from './helpers/api-server.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { strata } from './helpers/strata-cli.js'

function canRun(t: import('node:test').TestContext): boolean {
  return requireRoot(t) && requireTool(t, 'busybox', 'tar')
}

test('version prefixes, dockerd headers and the version bounds', async (t) => {
  if (!canRun(t)) return
  const s = await startStrataServe(t)
  for (const method of ['GET', 'HEAD']) {
    const ping = await httpUnix(s.socket, method, '/_ping')
    assert.equal(ping.status, 200)
    assert.equal(ping.text, method === 'GET' ? 'OK' : '')
    assert.equal(ping.headers['api-version'], '1.41')
    assert.equal(ping.headers['docker-experimental'], 'false')
    assert.equal(ping.headers.ostype, 'linux')
    assert.match(String(ping.headers.server), /^strata\/\S+ \(linux\)$/)
    assert.equal(ping.headers['cache-control'], 'no-cache, no-store, must-revalidate')
  }
  for (const path of ['/version', '/v1.41/version', '/v1.12/version', '/v1.24/version']) {
    const r = await httpUnix(s.socket, 'GET', path)
    assert.equal(r.status, 200, path)
    const v = r.json<{ ApiVersion: string; MinAPIVersion: string; Os: string; Components: Array<{ Name: string }> }>()
    assert.equal(v.ApiVersion, '1.41')
    assert.equal(v.MinAPIVersion, '1.12')
    assert.equal(v.Os, 'linux')
    assert.equal(v.Components[0]!.Name, 'Engine')
  }
  const tooNew = await httpUnix(s.socket, 'GET', '/v1.99/version')
  assert.equal(tooNew.status, 400)
  assert.deepEqual(tooNew.json(), { message: 'client version 1.99 is too new. Maximum supported API version is 1.41' })
  assert.equal(tooNew.headers['api-version'], '1.41')
  const tooOld = await httpUnix(s.socket, 'GET', '/v1.5/info')
  assert.equal(tooOld.status, 400)
  assert.match(tooOld.json<{ message: string }>().message, /^client version 1.5 is too old. Minimum supported API version is 1.12/)
  const unknown = await httpUnix(s.socket, 'GET', '/v1.41/no/such/thing')
  assert.equal(unknown.status, 404)
  assert.deepEqual(unknown.json(), { message: 'page not found' })
  // Go's json.Encoder ends every document with a newline; clients do not care, byte-comparing tools do.
  assert.ok(unknown.text.endsWith('}\n'))
})

test('errors carry dockerd statuses; what strata does not do is 501, never a hang', async (t) => {
  if (!canRun(t)) return
  const s = await startStrataServe(t)
  await importBusybox(t, s.root)
  const missing = await httpUnix(s.socket, 'GET', '/v1.41/images/nope/json')
  assert.equal(missing.status, 404)
  assert.match(missing.json<{ message: string }>().message, /No such image: nope/)
  assert.equal((await httpUnix(s.socket, 'GET', '/v1.41/containers/nope/json')).status, 404)
  const badTag = await httpUnix(s.socket, 'POST', '/v1.41/images/busybox/tag?repo=Bad')
  assert.equal(badTag.status, 400)
  assert.match(badTag.json<{ message: string }>().message, /must be lowercase/)
  for (const [method, path, what] of [
    ['POST', '/v1.41/volumes/create', /volumes/],
    ['POST', '/v1.41/build', /image builds/],
    ['GET', '/v1.41/swarm', /swarm/],
    ['POST', '/v1.41/plugins/pull', /plugins/],
    ['POST', '/v1.41/networks/create', /user-defined networks/],
    ['GET', '/v1.41/images/search?term=x', /search/],
  ] as const) {
    const r = await httpUnix(s.socket, method, path, { timeoutMs: 5000 })
    assert.equal(r.status, 501, `${method} ${path}`)
    assert.match(r.json<{ message: string }>().message, /^strata does not implement /)
    assert.match(r.json<{ message: string }>().message, what)
  }
  // The two networks strata has: listed, inspected, not removable (403, dockerd's words).
  const networks = (await httpUnix(s.socket, 'GET', '/v1.41/networks')).json<Array<{ Name: string; Driver: string }>>()
  assert.deepEqual(networks.map((n) => [n.Name, n.Driver]), [['none', 'null'], ['host', 'host']])
  const rm = await httpUnix(s.socket, 'DELETE', '/v1.41/networks/none')
  assert.equal(rm.status, 403)
  assert.deepEqual(rm.json(), { message: 'none is a pre-defined network and cannot be removed' })
  // A container setting strata cannot honour is refused by name, and nothing is created.
  for (const [body, what] of [
    [{ Image: 'busybox', HostConfig: { Binds: ['/etc:/host-etc'] } }, /HostConfig.Binds/],
    [{ Image: 'busybox', HostConfig: { Privileged: true } }, /HostConfig.Privileged/],
    [{ Image: 'busybox', HostConfig: { Memory: 1 << 26 } }, /HostConfig.Memory/],
    [{ Image: 'busybox', HostConfig: { NetworkMode: 'mynet' } }, /network "mynet"/],
    [{ Image: 'busybox', Volumes: { '/data': {} } }, /container setting Volumes/],
  ] as const) {
    const r = await httpUnix(s.socket, 'POST', '/v1.41/containers/create', { body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } })
    assert.equal(r.status, 501, JSON.stringify(body))
    assert.match(r.json<{ message: string }>().message, what)
  }
  assert.deepEqual((await httpUnix(s.socket, 'GET', '/v1.41/containers/json?all=1')).json(), [])
})

test('bad input: malformed JSON, wrong content type, a body too big, bad query values; unknown parameters are ignored', async (t) => {
  if (!canRun(t)) return
  const s = await startStrataServe(t)
  await importBusybox(t, s.root)
  const json = { 'Content-Type': 'application/json' }
  const malformed = await httpUnix(s.socket, 'POST', '/v1.41/containers/create', { body: '{"Image": "busybox",', headers: json })
  assert.equal(malformed.status, 400)
  assert.match(malformed.json<{ message: string }>().message, /^invalid JSON in the request body/)
  const notObject = await httpUnix(s.socket, 'POST', '/v1.41/containers/create', { body: '["busybox"]', headers: json })
  assert.equal(notObject.status, 400)
  const wrongType = await httpUnix(s.socket, 'POST', '/v1.41/containers/create', { body: '{"Image":"busybox"}', headers: { 'Content-Type': 'text/plain' } })
  assert.equal(wrongType.status, 400)
  assert.deepEqual(wrongType.json(), { message: "Content-Type specified (text/plain) must be 'application/json'" })
  const badCmd = await httpUnix(s.socket, 'POST', '/v1.41/containers/create', { body: '{"Image":"busybox","Cmd":[1,2]}', headers: json })
  assert.equal(badCmd.status, 400)
  const huge = await httpUnix(s.socket, 'POST', '/v1.41/containers/create', { body: `{"Image":"busybox","Env":["${'x'.repeat(5 * 1024 * 1024)}"]}`, headers: json })
  assert.equal(huge.status, 413)
  const badFilter = await httpUnix(s.socket, 'GET', `/v1.41/images/json?filters=${encodeURIComponent('{"dangling":')}`)
  assert.equal(badFilter.status, 400)
  assert.match(badFilter.json<{ message: string }>().message, /^invalid filter/)
  const unknownFilter = await httpUnix(s.socket, 'GET', `/v1.41/images/json?filters=${encodeURIComponent('{"colour":["red"]}')}`)
  assert.equal(unknownFilter.status, 400)
  assert.deepEqual(unknownFilter.json(), { message: "invalid filter 'colour'" })
  const badLimit = await httpUnix(s.socket, 'GET', '/v1.41/containers/json?limit=lots')
  assert.equal(badLimit.status, 400)
  assert.match(badLimit.json<{ message: string }>().message, /"limit"/)
  const badSince = await httpUnix(s.socket, 'GET', '/v1.41/events?since=yesterday')
  assert.equal(badSince.status, 400)
  // The spec's open model: parameters a newer client adds are ignored.
  const extra = await httpUnix(s.socket, 'GET', '/v1.41/images/json?shared-size=1&manifests=1&whatever=2')
  assert.equal(extra.status, 200)
  assert.equal(extra.json<unknown[]>().length, 1)
  // Nothing was created by any of it, and the server still serves.
  assert.deepEqual((await httpUnix(s.socket, 'GET', '/v1.41/containers/json?all=1')).json(), [])
  assert.equal((await httpUnix(s.socket, 'GET', '/_ping')).status, 200)
})

test('a slowloris client is cut off after the header timeout while others are served', async (t) => {
  if (!canRun(t)) return
  const root = testDataRoot(t, 'strata-test-api-slow-')
  const dir = shortTempDir(t, 'strata-api-slow-')
  const socket = join(dir, 's.sock')
  const store = await Store.open({ root })
  t.after(() => store.close())
  const server = await startApiServer({ store, hosts: [`unix://${socket}`], headersTimeoutMs: 1000 })
  t.after(() => server.close())
  const slow = connect(socket)
  let closedAt: number | undefined
  let answer = ''
  slow.on('data', (c: Buffer) => (answer += c.toString()))
  slow.on('close', () => (closedAt = Date.now()))
  await new Promise<void>((resolve) => slow.once('connect', () => resolve()))
  const start = Date.now()
  slow.write('GET /_ping HTTP/1.1\r\nHost: docker\r\n')
  // One header line every 300 ms, never the blank line that ends them.
  const dripper = setInterval(() => slow.writable && slow.write(`X-Drip-${Date.now()}: 1\r\n`), 300)
  t.after(() => clearInterval(dripper))
  for (let i = 0; i < 5; i++) {
    assert.equal((await httpUnix(socket, 'GET', '/_ping', { timeoutMs: 2000 })).status, 200)
    await sleep(100)
  }
  while (closedAt === undefined && Date.now() - start < 10_000) await sleep(50)
  clearInterval(dripper)
  assert.ok(closedAt !== undefined, 'the slow client was never cut off')
  assert.ok(closedAt - start < 4000, `cut off after ${closedAt - start} ms`)
  assert.match(answer, /^HTTP\/1.1 408/)
})

test('a client that disconnects mid-load leaves nothing; a stalled upload fails; the server keeps serving', async (t) => {
  if (!canRun(t)) return
  const root = testDataRoot(t, 'strata-test-api-cut-')
  await importBusybox(t, root, 'source:1')
  const saved = await strata(['save', 'source:1'], { root })
  assert.equal(saved.code, 0, saved.stderr)
  const other = testDataRoot(t, 'strata-test-api-cut2-')
  const dir = shortTempDir(t, 'strata-api-cut-')
  const socket = join(dir, 's.sock')
  const store = await Store.open({ root: other })
  t.after(() => store.close())
  const server = await startApiServer({ store, hosts: [`unix://${socket}`], bodyTimeoutMs: 1000 })
  t.after(() => server.close())
  const archive = saved.stdout

  // Half the archive, then the connection is gone.
  const cut = connect(socket)
  await new Promise<void>((resolve) => cut.once('connect', () => resolve()))
  cut.write(`POST /v1.41/images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: ${archive.length}\r\n\r\n`)
  cut.write(archive.subarray(0, archive.length >> 1))
  await sleep(300)
  cut.destroy()
  // Half the archive, then silence with the connection open: the stall bound ends it.
  const stalled = connect(socket)
  let stalledAnswer = ''
  stalled.on('data', (c: Buffer) => (stalledAnswer += c.toString()))
  await new Promise<void>((resolve) => stalled.once('connect', () => resolve()))
  stalled.write(`POST /v1.41/images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: ${archive.length}\r\n\r\n`)
  stalled.write(archive.subarray(0, archive.length >> 1))
  const deadline = Date.now() + 10_000
  while (!/"error"|HTTP\/1.1 [45]\d\d/.test(stalledAnswer) && Date.now() < deadline) await sleep(50)
  stalled.destroy()
  assert.match(stalledAnswer, /stalled|408/)
  await sleep(300)

  assert.deepEqual(await store.images.list(), [])
  assert.deepEqual(await store.layers.list(), [])
  assert.deepEqual(await store.check(), [])
  // And a whole upload still loads.
  const ok = await httpUnix(socket, 'POST', '/v1.41/images/load?quiet=1', { body: archive, headers: { 'Content-Type': 'application/x-tar' } })
  assert.equal(ok.status, 200)
  assert.match(ok.text, /Loaded image: source:1/)
  assert.equal((await store.images.list()).length, 1)
})

test('100 concurrent requests are all answered', async (t) => {
  if (!canRun(t)) return
  const s = await startStrataServe(t)
  const id = await importBusybox(t, s.root)
  const paths = ['/_ping', '/v1.41/version', '/v1.41/info', '/v1.41/images/json', `/v1.41/images/${id}/json`, '/v1.41/images/busybox/history', '/v1.41/containers/json?all=1', '/v1.41/system/df', '/v1.41/networks', '/v1.41/images/nope/json']
  const results = await Promise.all(Array.from({ length: 100 }, (_, i) => httpUnix(s.socket, 'GET', paths[i % paths.length]!)))
  results.forEach((r, i) => assert.equal(r.status, paths[i % paths.length]!.includes('nope') ? 404 : 200, paths[i % paths.length]))
  assert.equal(results.filter((r) => r.headers['content-type'] === 'application/json').length, 90)
})

test('the socket is 0660 root:GROUP; a live socket is not taken over; TCP only on loopback', async (t) => {
  if (!canRun(t)) return
  const s = await startStrataServe(t, { args: ['--group', '4242'] })
  const st = statSync(s.socket)
  assert.equal(st.mode & 0o777, 0o660)
  assert.equal(st.uid, 0)
  assert.equal(st.gid, 4242)
  // A second server on the same socket refuses instead of stealing it.
  const second = await strata(['serve', '-H', s.host], { root: testDataRoot(t) })
  assert.equal(second.code, 1)
  assert.match(second.stderr, /another server is answering on it/)
  assert.equal((await httpUnix(s.socket, 'GET', '/_ping')).status, 200)
  const wide = await strata(['serve', '-H', 'tcp://0.0.0.0:2375'], { root: testDataRoot(t) })
  assert.equal(wide.code, 1)
  assert.match(wide.stderr, /serves TCP only on loopback/)
  const noGroup = await strata(['serve', '-H', `unix://${s.socket}.2`, '--group', 'no-such-group-here'], { root: testDataRoot(t) })
  assert.equal(noGroup.code, 1)
  assert.match(noGroup.stderr, /Group "no-such-group-here" does not exist/)
  // SIGTERM: a clean stop, the socket file is gone.
  assert.equal(await s.stop(), 0)
  assert.throws(() => statSync(s.socket), /ENOENT/)
})

test('TCP on loopback serves the same API', async (t) => {
  if (!canRun(t)) return
  const root = testDataRoot(t, 'strata-test-api-tcp-')
  const store = await Store.open({ root })
  t.after(() => store.close())
  const server = await startApiServer({ store, hosts: ['tcp://127.0.0.1:0'] })
  t.after(() => server.close())
  const host = server.hosts[0]!
  assert.match(host, /^tcp:\/\/127\.0\.0\.1:\d+$/)
  const res = await fetch(`http://${host.slice('tcp://'.length)}/v1.41/version`)
  assert.equal(res.status, 200)
  assert.equal(((await res.json()) as { ApiVersion: string }).ApiVersion, '1.41')
})
