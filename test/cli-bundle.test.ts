/**
 * The strata command's launcher (scripts/bundle-cli.mjs) and its V8 code
 * cache: whatever state the cache file is in (missing, damaged, garbage,
 * empty), the command runs and leaves a cache whose digest checks.
 * Damaged V8 code cache data is a fatal error inside V8 (it checks the
 * header, not the bytes), so this is the attack a torn or bit-rotted
 * cache file makes. Runs on a copy of the bundle beside the real one (the
 * same depth, so its paths resolve the same).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { Worker } from 'node:worker_threads'
import { encodeHeader, END_OF_ARCHIVE, padding } from '../src/archive/index.js'
import { STRATA_CLI } from './helpers/strata-cli.js'

/** A copy of the bundle dir as dist/src/bundle-test-<pid>-<n>, removed after the test. */
let copies = 0
function bundleCopy(t: TestContext): string {
  const dir = join(dirname(dirname(STRATA_CLI)), `bundle-test-${process.pid}-${copies++}`)
  cpSync(dirname(STRATA_CLI), dir, { recursive: true })
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function runVersion(dir: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(dir, 'strata.js'), '--version'], { encoding: 'utf8' })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** The cache file holds sha256(data) then data, and the digest checks. */
function assertCacheSound(dir: string): void {
  const kept = readFileSync(join(dir, 'cli.js.cache'))
  assert.ok(kept.length > 32, 'the cache holds data')
  assert.deepEqual(createHash('sha256').update(kept.subarray(32)).digest(), kept.subarray(0, 32), 'the digest matches the data')
}

const damages: Array<[string, (cache: string) => void]> = [
  ['missing', (cache) => rmSync(cache)],
  [
    'bytes flipped past its header (V8 would die in its deserializer)',
    (cache) => {
      const d = readFileSync(cache)
      for (let i = 2000; i < d.length; i += 997) d[i]! ^= 0x5a
      writeFileSync(cache, d)
    },
  ],
  [
    'the digest right but the data from elsewhere (V8 rejects it)',
    (cache) => {
      const data = Buffer.from('not a code cache at all, but long enough to look like one'.repeat(20))
      writeFileSync(cache, Buffer.concat([createHash('sha256').update(data).digest(), data]))
    },
  ],
  ['random bytes', (cache) => writeFileSync(cache, createHash('sha512').update('x').digest())],
  ['empty', (cache) => writeFileSync(cache, '')],
  ['truncated to its digest', (cache) => writeFileSync(cache, readFileSync(cache).subarray(0, 32))],
]

for (const [what, damage] of damages) {
  test(`a code cache ${what}: the command runs and writes a sound cache`, (t) => {
    const dir = bundleCopy(t)
    const cache = join(dir, 'cli.js.cache')
    assert.ok(existsSync(cache), 'the build wrote a cache')
    assertCacheSound(dir)
    damage(cache)
    const first = runVersion(dir)
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /^strata version \d+\.\d+\.\d+/)
    assertCacheSound(dir)
    // And the rewritten cache is one V8 takes: the next run works from it.
    const second = runVersion(dir)
    assert.equal(second.code, 0, second.stderr)
    assert.equal(second.stdout, first.stdout)
  })
}

/** One apply of a small layer through the bundle's worker launcher (apply-worker.js), as applyLayerOffThread starts it. */
async function applyThroughWorker(t: TestContext, dir: string): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'strata-worker-cache-'))
  t.after(() => rmSync(scratch, { recursive: true, force: true }))
  const content = Buffer.alloc(9000, 7)
  const tar = join(scratch, 'layer.tar')
  writeFileSync(tar, Buffer.concat([encodeHeader({ name: 'd/', type: 'dir', mode: 0o755 }), encodeHeader({ name: 'd/f', type: 'file', mode: 0o644, size: content.length }), content, padding(content.length), END_OF_ARCHIVE]))
  const target = join(scratch, 'target')
  mkdirSync(target)
  const worker = new Worker(join(dir, 'apply-worker.js'))
  try {
    const reply = await new Promise<{ t: string; error?: { message: string } }>((resolve, reject) => {
      worker.on('error', reject)
      worker.on('exit', (code) => reject(new Error(`the worker exited (code ${code})`)))
      worker.on('message', (msg: { t: string }) => {
        if (msg.t === 'done' || msg.t === 'failed') resolve(msg)
      })
      worker.postMessage({ t: 'start', id: 1, target, whiteouts: 'overlay', tarSplit: true, file: { path: tar, start: 0, progress: false } })
    })
    assert.equal(reply.t, 'done', reply.error?.message)
  } finally {
    await worker.terminate()
  }
  assert.deepEqual(readFileSync(join(target, 'd/f')), content)
}

for (const [what, damage] of damages) {
  test(`the apply worker's code cache ${what}: the worker applies and writes a sound cache`, async (t) => {
    const dir = bundleCopy(t)
    const cache = join(dir, 'apply-worker-main.js.cache')
    assert.ok(existsSync(cache), 'the build wrote a worker cache')
    damage(cache)
    await applyThroughWorker(t, dir)
    const kept = readFileSync(cache)
    assert.ok(kept.length > 32, 'the cache holds data')
    assert.deepEqual(createHash('sha256').update(kept.subarray(32)).digest(), kept.subarray(0, 32), 'the digest matches the data')
    // And V8 takes the rewritten cache: the next worker runs from it.
    await applyThroughWorker(t, dir)
  })
}
