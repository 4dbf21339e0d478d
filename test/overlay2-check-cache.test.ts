/**
 * The overlay2 host checks kept across processes (check-cache.ts): a kept
 * result is used for the same directory on the same filesystem, boot and
 * overlay parameters; anything else checks again. The checks themselves
 * are in graphdriver-overlay2.test.ts.
 */
import assert from 'node:assert/strict'
import { chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { cachedCheck } from '../src/graphdriver/overlay2/check-cache.js'
import { requireRoot } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'

/** A scratch cache dir in STRATA_CHECK_CACHE for the test, and a dir to check. */
function setup(t: TestContext): { cache: string; dir: string } {
  const work = tempDirFor(t, 'check-cache-')
  const cache = join(work, 'cache')
  const dir = join(work, 'dir')
  mkdirSync(dir)
  const before = process.env.STRATA_CHECK_CACHE
  process.env.STRATA_CHECK_CACHE = cache
  t.after(() => {
    if (before === undefined) delete process.env.STRATA_CHECK_CACHE
    else process.env.STRATA_CHECK_CACHE = before
  })
  return { cache, dir }
}

/** A check that counts its runs and answers `value`. */
function counting<T>(value: T): { run: () => Promise<T>; runs: () => number } {
  let n = 0
  return {
    run: async () => {
      n++
      return value
    },
    runs: () => n,
  }
}

test('a kept result is used again: the check runs once for the same dir', async (t) => {
  const { cache, dir } = setup(t)
  const c = counting('the kernel copies the opaque flag up')
  assert.equal(await cachedCheck('native-diff', dir, c.run, () => true), 'the kernel copies the opaque flag up')
  assert.equal(await cachedCheck('native-diff', dir, c.run, () => true), 'the kernel copies the opaque flag up')
  assert.equal(c.runs(), 1)
  assert.equal(readdirSync(cache).length, 1)
  // undefined (no problem) is a result too
  const none = counting<string | undefined>(undefined)
  assert.equal(await cachedCheck('other', dir, none.run, () => true), undefined)
  assert.equal(await cachedCheck('other', dir, none.run, () => true), undefined)
  assert.equal(none.runs(), 1)
})

test('what keep refuses (a failed probe) is checked again every time', async (t) => {
  const { cache, dir } = setup(t)
  const c = counting({ ok: false, reason: 'no overlay' })
  await cachedCheck('probe', dir, c.run, (r) => r.ok)
  await cachedCheck('probe', dir, c.run, (r) => r.ok)
  assert.equal(c.runs(), 2)
  assert.deepEqual(existsSync(cache) ? readdirSync(cache) : [], [])
})

test('another dir, another check kind: checked on its own', async (t) => {
  const { dir } = setup(t)
  const other = join(dir, 'sub')
  mkdirSync(other)
  const c = counting(1)
  await cachedCheck('probe', dir, c.run, () => true)
  await cachedCheck('probe', other, c.run, () => true)
  await cachedCheck('native-diff', dir, c.run, () => true)
  assert.equal(c.runs(), 3)
})

test('a corrupt or foreign kept file is not believed: the check runs', async (t) => {
  const { cache, dir } = setup(t)
  const c = counting('first')
  await cachedCheck('probe', dir, c.run, () => true)
  const [name] = readdirSync(cache)
  // A file whose key is not this check's (a planted result) is ignored.
  writeFileSync(join(cache, name!), JSON.stringify({ key: 'something else', value: 'planted' }))
  assert.equal(await cachedCheck('probe', dir, c.run, () => true), 'first')
  writeFileSync(join(cache, name!), '{ not json')
  assert.equal(await cachedCheck('probe', dir, c.run, () => true), 'first')
  assert.equal(c.runs(), 3)
})

test('a cache dir owned by another user is not trusted', async (t) => {
  if (!requireRoot(t)) return
  const { cache, dir } = setup(t)
  const c = counting('ours')
  await cachedCheck('probe', dir, c.run, () => true)
  chownSync(cache, 4321, 4321)
  await cachedCheck('probe', dir, c.run, () => true)
  assert.equal(c.runs(), 2)
})

test('STRATA_CHECK_CACHE empty turns the cache off', async (t) => {
  const { dir } = setup(t)
  process.env.STRATA_CHECK_CACHE = ''
  const c = counting(true)
  await cachedCheck('probe', dir, c.run, () => true)
  await cachedCheck('probe', dir, c.run, () => true)
  assert.equal(c.runs(), 2)
})
