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
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { test, type TestContext } from 'node:test'
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
