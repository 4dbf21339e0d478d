/**
 * A registry dying mid-pull (issue 22): the connection is reset in the
 * middle of a layer blob (a loopback proxy in front of a real
 * docker-registry sends part of the blob, then a TCP RST). The pull fails
 * saying what failed (connection reset while downloading which blob, N of
 * M bytes) and that nothing was kept; the store holds no layer of it and
 * checks clean; a pull through the registry itself then works.
 */
import assert from 'node:assert/strict'
import { createServer, request as httpRequest, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { Store } from '../src/store/index.js'
import { openImageDestination, saveImages } from '../src/transport/index.js'
import { randomBytesSeeded } from './helpers/fixtures.js'
import { layerTar, makeImage } from './helpers/image-fixtures.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { manifestOf, push, REGISTRY, SKOPEO, startRegistry } from './helpers/registry.js'
import { strata } from './helpers/strata-cli.js'
import { tempDirFor } from './helpers/tmp.js'

/** A proxy that passes everything on, but resets the connection after `after` bytes of blob `digest`. */
async function startDyingProxy(t: TestContext, upstream: string, digest: string, after: number): Promise<string> {
  const [uhost, uport] = upstream.split(':')
  const server: Server = createServer((req, res) => {
    const up = httpRequest({ host: uhost, port: Number(uport), method: req.method, path: req.url, headers: req.headers }, (ures) => {
      res.writeHead(ures.statusCode ?? 502, ures.headers)
      if (!(req.method === 'GET' && req.url?.endsWith(`/blobs/${digest}`) && ures.statusCode === 200)) {
        ures.pipe(res)
        return
      }
      let sent = 0
      ures.on('data', (c: Buffer) => {
        if (sent >= after) return
        const part = c.subarray(0, after - sent)
        sent += part.length
        res.write(part)
        if (sent >= after) {
          ures.destroy()
          // Flushed, then a TCP RST: what a registry host that dies looks like.
          setTimeout(() => res.socket?.resetAndDestroy(), 50)
        }
      })
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return `127.0.0.1:${(server.address() as AddressInfo).port}`
}

test('registry dying mid-pull: the error says what failed and that nothing was kept', { timeout: 300_000 }, async (t) => {
  if (!requireRoot(t) || !requireTool(t, REGISTRY, SKOPEO)) return
  const dir = tempDirFor(t, 'registry-dying-')
  const host = await startRegistry(t, dir)
  const src = await Store.open({ root: join(dir, 'src'), driver: 'vfs' })
  try {
    await makeImage(src, {
      layers: [layerTar({ small: 'x' }), layerTar({ big: randomBytesSeeded(4 << 20, 3) })],
      created: '2024-01-01T00:00:00Z',
      tags: ['test/img:1'],
    })
    await saveImages(src, ['test/img:1'], openImageDestination(join(dir, 'img.tar'), 'docker-archive'))
  } finally {
    await src.close()
  }
  await push(join(dir, 'img.tar'), `${host}/test/img:1`, dir)
  const { doc } = await manifestOf(host, 'test/img', '1')
  const big = doc.layers.reduce((a, b) => (b.size > a.size ? b : a))
  const proxy = await startDyingProxy(t, host, big.digest, 64 << 10)

  const root = join(dir, 'root')
  const r = await strata(['pull', '-q', `${proxy}/test/img:1`], { root, driver: 'vfs' })
  assert.equal(r.code, 1, r.stderr)
  assert.match(r.stderr, new RegExp(`connection reset while downloading layer blob ${big.digest} of ${proxy}/test/img from ${proxy} \\((\\d+) of ${big.size} bytes received\\); nothing of the pull was kept`))
  assert.doesNotMatch(r.stderr, /terminated/)
  t.diagnostic(r.stderr.trim())
  const ls = await strata(['layer', 'ls', '--format', 'json'], { root, driver: 'vfs' })
  assert.equal(ls.code, 0, ls.stderr)
  assert.equal(ls.text, '', 'no layer of the pull is left')
  const check = await strata(['check'], { root, driver: 'vfs' })
  assert.equal(check.text, 'No problems found\n', check.stderr)
  const ok = await strata(['pull', '-q', `${host}/test/img:1`], { root, driver: 'vfs' })
  assert.equal(ok.code, 0, ok.stderr)
})
