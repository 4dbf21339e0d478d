/**
 * Pull progress through the Engine API (POST /images/create) against the
 * real distribution registry: docker's JSON messages per layer, in
 * dockerd 20.10's order (Already exists first; Pulling fs layer; Waiting
 * for a layer without a slot; Downloading with progressDetail
 * current/total; Verifying Checksum; Download complete; Pull complete),
 * the Digest and Status lines, and no layer lines when the image is up to
 * date. Then the docker CLI's own output (20.10 and 28, not on a terminal)
 * for the same pulls from strata serve and from a private dockerd 20.10:
 * the same lines, but for "Waiting", which depends on how many layers
 * download at once (dockerd 3, strata's store one per core or one at a
 * time on vfs), and "Verifying Checksum", which dockerd drops when its
 * next message comes soon after (see cliShape).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { Store } from '../src/store/index.js'
import { testDataRoot } from './helpers/archive-fixtures.js'
import { DOCKER_20, DOCKER_28, httpUnix, shortTempDir, startStrataServe } from './helpers/api-server.js'
import { requireDockerd, startDockerd } from './helpers/dockerd.js'
import { randomBytesSeeded } from './helpers/fixtures.js'
import { bytes, layerTar, makeImage } from './helpers/image-fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { REGISTRY, manifestOf, startRegistry } from './helpers/registry.js'
import { strata } from './helpers/strata-cli.js'

interface Message {
  status?: string
  id?: string
  progressDetail?: { current?: number; total?: number }
  progress?: string
  error?: string
}

/** Two images in a fresh registry: `:1` with three layers (the middle one 3 MiB of random bytes), `:2` on the same two lower layers plus one. */
async function seedRegistry(t: Parameters<typeof testDataRoot>[0], host: string): Promise<{ name: string }> {
  const root = testDataRoot(t, 'strata-test-pullp-seed-')
  const name = `${host}/test/progress`
  const store = await Store.open({ root, driver: 'vfs' })
  const base = layerTar({ 'a.txt': bytes(3000, 'a') })
  const big = layerTar({ 'big.bin': randomBytesSeeded(3 << 20, 7) })
  try {
    await makeImage(store, { created: '2024-01-02T03:04:05Z', layers: [base, big, layerTar({ 'c.txt': bytes(10, 'c') })], tags: [`${name}:1`] })
    await makeImage(store, { created: '2024-01-02T03:04:06Z', layers: [base, big, layerTar({ 'd.txt': bytes(20, 'd') })], tags: [`${name}:2`] })
  } finally {
    await store.close()
  }
  for (const tag of ['1', '2']) {
    const r = await strata(['push', `${name}:${tag}`], { root, driver: 'vfs' })
    assert.equal(r.code, 0, r.stderr)
  }
  return { name }
}

function messages(text: string): Message[] {
  return text.split('\r\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Message)
}

/** The statuses one layer went through, runs of Downloading folded into one. */
function phases(all: Message[], id: string): string[] {
  const out: string[] = []
  for (const m of all.filter((x) => x.id === id)) if (!(m.status === 'Downloading' && out.at(-1) === 'Downloading')) out.push(m.status!)
  return out
}

test('POST /images/create streams docker\'s per-layer pull phases (vfs: one layer at a time)', async (t) => {
  if (!requireRoot(t) || !requireTool(t, REGISTRY)) return
  const host = await startRegistry(t, shortTempDir(t, 'strata-pullp-reg-'))
  const { name } = await seedRegistry(t, host)
  const manifest = (await manifestOf(host, 'test/progress', '1')).doc
  const ids = manifest.layers.map((l) => l.digest.slice(7, 19))
  const s = await startStrataServe(t, { driver: 'vfs' })

  const r1 = await httpUnix(s.socket, 'POST', `/v1.41/images/create?fromImage=${encodeURIComponent(name)}&tag=1`)
  assert.equal(r1.status, 200)
  const m1 = messages(r1.text)
  assert.deepEqual(m1[0], { status: 'Pulling from test/progress', id: '1' })
  // Every layer announced before any byte moves, bottom first.
  assert.deepEqual(m1.slice(1, 4).map((m) => [m.status, m.id, m.progressDetail]), ids.map((id) => ['Pulling fs layer', id, {}]))
  for (const [i, id] of ids.entries()) {
    // vfs applies one layer on the one below it: the upper ones wait while the bottom one downloads.
    const expected = [...(i === 0 ? [] : ['Waiting']), 'Downloading', 'Verifying Checksum', 'Download complete', 'Pull complete']
    assert.deepEqual(phases(m1, id).slice(1), expected, `layer ${id}: ${JSON.stringify(phases(m1, id))}`)
    const downloads = m1.filter((m) => m.id === id && m.status === 'Downloading')
    const size = manifest.layers[i]!.size
    for (const d of downloads) {
      assert.equal(d.progressDetail?.total, size)
      assert.ok(d.progressDetail!.current! > 0 && d.progressDetail!.current! <= size, JSON.stringify(d))
      assert.match(d.progress!, /^\[=*>\s*\] +[0-9.]+k?M?B\/[0-9.]+k?M?B$/)
    }
    assert.equal(downloads.at(-1)?.progressDetail?.current, size, 'the last count is the whole blob')
  }
  // The 3 MiB layer is counted more than once on its way, each count no smaller than the last.
  const big = m1.filter((m) => m.id === ids[1] && m.status === 'Downloading').map((m) => m.progressDetail!.current!)
  assert.ok(big.length > 1, JSON.stringify(big))
  assert.deepEqual([...big].sort((a, b) => a - b), big)
  const digest1 = `sha256:${createHash('sha256').update((await manifestOf(host, 'test/progress', '1')).bytes).digest('hex')}`
  assert.deepEqual(m1.slice(-2), [{ status: `Digest: ${digest1}` }, { status: `Status: Downloaded newer image for ${name}:1` }])

  // :2 shares the two lower layers: "Already exists" first, as dockerd checks them before pulling the rest.
  const ids2 = (await manifestOf(host, 'test/progress', '2')).doc.layers.map((l) => l.digest.slice(7, 19))
  const m2 = messages((await httpUnix(s.socket, 'POST', `/images/create?fromImage=${encodeURIComponent(`${name}:2`)}`)).text)
  assert.deepEqual(
    m2.slice(0, 4).map((m) => [m.status, m.id]),
    [['Pulling from test/progress', '2'], ['Already exists', ids2[0]], ['Already exists', ids2[1]], ['Pulling fs layer', ids2[2]]],
  )
  assert.deepEqual(phases(m2, ids2[2]!), ['Pulling fs layer', 'Downloading', 'Verifying Checksum', 'Download complete', 'Pull complete'])
  assert.equal(m2.at(-1)!.status, `Status: Downloaded newer image for ${name}:2`)

  // Again: up to date, and dockerd sends no layer lines then.
  const m3 = messages((await httpUnix(s.socket, 'POST', `/images/create?fromImage=${encodeURIComponent(`${name}:2`)}`)).text)
  assert.deepEqual(m3.map((m) => m.id === undefined ? m.status!.replace(/sha256:[0-9a-f]{64}/, 'D') : `${m.id} ${m.status}`), ['2 Pulling from test/progress', 'Digest: D', `Status: Image is up to date for ${name}:2`])
})

/**
 * The docker CLI's pull output with the per-layer lines grouped by layer
 * (layers download side by side, so their lines interleave). Dropped:
 * "Waiting" (how many layers download at once differs), and "Verifying
 * Checksum", which dockerd's transfer manager sends to a watcher only
 * when the watcher is not behind (it keeps the latest progress, so a small
 * layer's "Verifying Checksum" is overtaken by its "Download complete").
 */
function cliShape(stdout: string): { lines: string[]; layers: Record<string, string[]> } {
  const lines: string[] = []
  const layers: Record<string, string[]> = {}
  for (const line of stdout.split('\n').filter((l) => l !== '')) {
    const m = /^([0-9a-f]{12}): (.*)$/.exec(line)
    if (m === null) lines.push(line)
    else if (m[2] !== 'Waiting' && m[2] !== 'Verifying Checksum') (layers[m[1]!] ??= []).push(m[2]!)
  }
  return { lines, layers }
}

test('docker pull (20.10 and 28, not on a terminal) prints the same against strata serve as against dockerd 20.10', async (t) => {
  if (!requireRoot(t) || !requireTool(t, REGISTRY, DOCKER_28) || !requireDockerd(t)) return
  const host = await startRegistry(t, shortTempDir(t, 'strata-pullp-reg-'))
  const { name } = await seedRegistry(t, host)
  const dockerd = await startDockerd(t, { storageDriver: 'overlay2' })
  const pulls = [`${name}:1`, `${name}:2`, `${name}:2`]
  for (const [bin, driver] of [[DOCKER_20, 'overlay2'], [DOCKER_28, 'vfs']] as const) {
    const reference: string[] = []
    for (const ref of pulls) reference.push((await run(bin, ['-H', dockerd.host, 'pull', ref])).stdout.toString())
    await run(bin, ['-H', dockerd.host, 'rmi', `${name}:1`, `${name}:2`])
    assert.match(reference[0]!, /: Pull complete\n/)
    const s = await startStrataServe(t, { driver })
    for (const [i, ref] of pulls.entries()) {
      const out = (await s.docker(bin, ['pull', ref])).stdout.toString()
      assert.deepEqual(cliShape(out), cliShape(reference[i]!), `${bin} pull ${ref} (#${i + 1}):\n${out}\ndockerd:\n${reference[i]}`)
    }
    await s.stop()
  }
})
