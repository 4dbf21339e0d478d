/**
 * `strata push` and `strata pull` on a pseudo-terminal against the real
 * CNCF distribution registry on 127.0.0.1 (started here, stopped by its
 * PID): the per-layer phases docker shows. Push: "Pushing [bar] x/y"
 * with the layer's size as its total, then "Pushed". Pull, per layer and
 * in this order: "Downloading", "Verifying Checksum", "Download complete",
 * "Pull complete" (strata's download and apply are one pass, so those are
 * the steps it can honestly report).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { test } from 'node:test'
import { Store } from '../src/store/index.js'
import { testDataRoot } from './helpers/archive-fixtures.js'
import { layerTar, makeImage, bytes } from './helpers/image-fixtures.js'
import { requireRoot, requireTool } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { REGISTRY, startRegistry } from './helpers/registry.js'
import { strataOnTty } from './helpers/strata-cli.js'

/** Where each layer's status was drawn: `\x1b[2K\r<id>: <status>` is one drawing of a line. */
function drawings(output: string, id: string): string[] {
  const out: string[] = []
  const re = new RegExp(`\\x1b\\[2K\\r${id}: ([^\\r]*)\\r`, 'g')
  for (const m of output.matchAll(re)) out.push(m[1]!)
  return out
}

test('push and pull on a terminal: docker\'s per-layer phases, bars with totals', async (t) => {
  if (!requireRoot(t) || !requireTool(t, REGISTRY, 'script')) return
  const dir = tempDirFor(t, 'cli-registry-tty-')
  const host = await startRegistry(t, dir)
  const name = `${host}/test/tty:1`

  const pushRoot = testDataRoot(t, 'strata-test-tty-push-')
  const store = await Store.open({ root: pushRoot, driver: 'overlay2' })
  let diffIds: string[]
  try {
    // Random bytes: gzip leaves them their size, so the download has many chunks to draw.
    const made = await makeImage(store, {
      created: '2024-01-02T03:04:05Z',
      layers: [layerTar({ 'a.txt': bytes(3000, 'a') }), layerTar({ 'big.bin': randomBytes(4 << 20) })],
      tags: [name],
    })
    diffIds = made.diffIds
  } finally {
    await store.close()
  }

  const pushed = await strataOnTty(['push', name], { root: pushRoot, driver: 'overlay2', columns: 150 })
  assert.equal(pushed.code, 0, pushed.output)
  for (const [i, d] of diffIds.entries()) {
    const seen = drawings(pushed.output, d.slice(7, 19))
    // The small layer's tar (headers, padding) is past its 3000 bytes at the first count: as docker, no total then.
    const bar = i === 1 ? /^Pushing \[=*>\s*\] +[0-9.]+[kM]?B\/4\.194MB$/ : /^Pushing /
    assert.ok(seen.some((s) => bar.test(s)), `a Pushing bar for ${d}: ${JSON.stringify(seen)}`)
    assert.equal(seen.at(-1), 'Pushed', JSON.stringify(seen))
  }

  const pulled = await strataOnTty(['pull', name], { root: testDataRoot(t, 'strata-test-tty-pull-'), driver: 'overlay2', columns: 150 })
  assert.equal(pulled.code, 0, pulled.output)
  const blobs = [...pulled.output.matchAll(/\x1b\[2K\r([0-9a-f]{12}): /g)].map((m) => m[1]!)
  const layers = [...new Set(blobs)]
  assert.equal(layers.length, 2, pulled.output)
  for (const id of layers) {
    const seen = drawings(pulled.output, id)
    const at = (s: RegExp): number => seen.findIndex((x) => s.test(x))
    const steps = [/^Downloading /, /^Verifying Checksum$/, /^Download complete$/, /^Pull complete$/].map(at)
    assert.ok(steps.every((i) => i >= 0), `every phase for ${id}: ${JSON.stringify(seen)}`)
    assert.deepEqual([...steps].sort((a, b) => a - b), steps, `in order for ${id}: ${JSON.stringify(seen)}`)
    assert.equal(seen.at(-1), 'Pull complete', JSON.stringify(seen))
  }
  assert.match(pulled.output, new RegExp(`Status: Downloaded newer image for ${host.replace(/\./g, '\\.')}/test/tty:1\\r\\n`))

  // Pulled again: every layer is there.
  const again = await strataOnTty(['pull', name], { root: pushRoot, driver: 'overlay2', columns: 150 })
  assert.equal(again.code, 0, again.output)
  for (const id of layers) assert.equal(drawings(again.output, id).at(-1), 'Already exists', again.output)
})
