/**
 * The data root's plumbing (src/fs) and the drivers' shared reference
 * counter: one atomic write with moby's temp names, the one sweep of what
 * interrupted writes leave, the in-process keyed lock, and Go's time and
 * JSON formats. (Locks across processes are proven in layer-metadata,
 * store-crash and the sharing tests.)
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { isStrataError } from '../src/errors/index.js'
import {
  GO_ZERO_TIME_UNIX,
  KeyedLock,
  TEMP_PREFIX,
  atomicWriteFile,
  goJsonText,
  goRfc3339Nano,
  isTempName,
  pathExists,
  readTextIfExists,
  sweepTempFiles,
  tempPathFor,
  unixSeconds,
} from '../src/fs/index.js'
import { RefCounter } from '../src/graphdriver/refcount.js'
import { tempDirFor } from './helpers/tmp.js'

test('atomicWriteFile replaces a file with the exact mode, whatever the umask, leaving no temp file', async (t) => {
  const dir = tempDirFor(t, 'fs-atomic-')
  const path = join(dir, 'repositories.json')
  await writeFile(path, 'old')
  const umask = process.umask(0o077)
  try {
    await atomicWriteFile(path, 'new', 0o644)
  } finally {
    process.umask(umask)
  }
  assert.equal(await readFile(path, 'utf8'), 'new')
  assert.equal((await stat(path)).mode & 0o7777, 0o644)
  assert.deepEqual(await readdir(dir), ['repositories.json'])
})

test('a failed atomic write leaves the old file and no temp file', async (t) => {
  const dir = tempDirFor(t, 'fs-atomic-fail-')
  const path = join(dir, 'target')
  await mkdir(path) // rename of a file over a directory fails (EISDIR)
  await assert.rejects(atomicWriteFile(path, 'x', 0o600), /EISDIR|EEXIST|ENOTEMPTY/)
  assert.deepEqual(await readdir(dir), ['target'])
  assert.ok((await stat(path)).isDirectory())
})

test('temp names: moby’s AtomicWriteFile pattern, beside the target', () => {
  const tmp = tempPathFor('/var/lib/strata/image/vfs/repositories.json')
  assert.match(tmp, /^\/var\/lib\/strata\/image\/vfs\/\.tmp-repositories\.json\d+$/)
  assert.notEqual(tmp, tempPathFor('/var/lib/strata/image/vfs/repositories.json'))
  assert.ok(isTempName('.tmp-repositories.json123'))
  assert.ok(!isTempName('repositories.json'))
  assert.equal(TEMP_PREFIX, '.tmp-')
})

test('sweepTempFiles removes interrupted writes’ temp files, not staged directories or other files', async (t) => {
  const dir = tempDirFor(t, 'fs-sweep-')
  await writeFile(join(dir, 'mount-count'), '1')
  await writeFile(join(dir, '.tmp-mount-count12345'), 'half')
  await writeFile(join(dir, '.tmp-lastUpdated999'), '')
  await mkdir(join(dir, '.tmp-0123abcd')) // a module's staged directory: its owner recovers it
  const removed = await sweepTempFiles(dir)
  assert.deepEqual(removed.sort(), [join(dir, '.tmp-lastUpdated999'), join(dir, '.tmp-mount-count12345')])
  assert.deepEqual((await readdir(dir)).sort(), ['.tmp-0123abcd', 'mount-count'])
  assert.deepEqual(await sweepTempFiles(join(dir, 'missing')), [])
})

test('pathExists and readTextIfExists: missing (or under a file) is absent, not an error', async (t) => {
  const dir = tempDirFor(t, 'fs-exists-')
  await writeFile(join(dir, 'f'), 'text')
  assert.equal(await pathExists(join(dir, 'f')), true)
  assert.equal(await pathExists(join(dir, 'nope')), false)
  assert.equal(await pathExists(join(dir, 'f', 'below-a-file')), false, 'ENOTDIR is absent')
  assert.equal(await readTextIfExists(join(dir, 'f')), 'text')
  assert.equal(await readTextIfExists(join(dir, 'nope')), undefined)
})

test('KeyedLock: one holder per key in arrival order, other keys side by side, several keys without deadlock', async () => {
  const lock = new KeyedLock()
  const log: string[] = []
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
  const job = (keys: string | string[], name: string, ms: number): Promise<void> =>
    lock.withLock(keys, async () => {
      log.push(`${name}+`)
      await sleep(ms)
      log.push(`${name}-`)
    })
  await Promise.all([job('a', 'a1', 20), job('a', 'a2', 1), job('b', 'b1', 5)])
  assert.deepEqual(log.filter((e) => e.startsWith('a')), ['a1+', 'a1-', 'a2+', 'a2-'], 'same key: serial, in order')
  assert.ok(log.indexOf('b1-') < log.indexOf('a1-'), 'another key does not wait')

  // Opposite orders of the same two keys would deadlock if taken as given.
  log.length = 0
  await Promise.all([job(['x', 'y'], 'xy', 5), job(['y', 'x'], 'yx', 5)])
  assert.equal(log.length, 4)
  assert.equal(lock.isLocked('x'), false, 'nothing is kept for a free key')

  // A failing holder releases; settled() waits for holders present at the call.
  await assert.rejects(lock.withLock('a', async () => Promise.reject(new Error('boom'))), /boom/)
  const release = await lock.acquire('a')
  let settled = false
  const done = lock.settled().then(() => (settled = true))
  await sleep(5)
  assert.equal(settled, false)
  release()
  release() // twice is harmless
  await done
  assert.equal(lock.isLocked('a'), false)
})

test('RefCounter: counts gets, refuses a put without a get and a remove of a held layer, keeps mount state', () => {
  const refs = new RefCounter<{ mounted: boolean }>('overlay2', { held: 'mounted' })
  assert.equal(refs.increment('l1', { mounted: true }).count, 1)
  assert.equal(refs.increment('l1', { mounted: false }).mounted, true, 'state is set by the first get only')
  assert.throws(() => refs.refuseRemoveIfHeld('l1'), (err: unknown) => isStrataError(err, 'IN_USE') && /"l1" is mounted \(2 gets without a put\).*overlay2/.test(err.message))
  assert.equal(refs.decrement('l1').count, 1)
  assert.equal(refs.decrement('l1').count, 0)
  assert.equal(refs.peek('l1'), undefined, 'forgotten at zero')
  assert.throws(() => refs.decrement('l1'), (err: unknown) => isStrataError(err, 'INVALID_ARGUMENT') && /"l1" is not mounted: put without a matching get/.test(err.message))
  refs.refuseRemoveIfHeld('l1')
  refs.increment('l2')
  assert.deepEqual(refs.entries().map(([id]) => id), ['l2'])
  refs.clear()
  assert.equal(refs.count('l2'), 0)
})

test('RefCounter.releaseAll: unmounts what this instance owns, forgets everything, reports every failure', async () => {
  const refs = new RefCounter<{ adopted: boolean }>('overlay2', { held: 'mounted' })
  refs.increment('own', { adopted: false })
  refs.increment('theirs', { adopted: true })
  refs.increment('stuck', { adopted: false })
  refs.increment('stuck2', { adopted: false })
  const unmounted: string[] = []
  await assert.rejects(
    refs.releaseAll(
      (ref) => !ref.adopted,
      async (id) => {
        unmounted.push(id)
        if (id.startsWith('stuck')) throw new Error(`${id} is busy`)
      },
    ),
    (err: unknown) => isStrataError(err, 'SYSCALL') && err.message === 'overlay2 cleanup: stuck is busy; stuck2 is busy',
  )
  assert.deepEqual(unmounted, ['own', 'stuck', 'stuck2'], 'every owned mount tried, the adopted one left alone')
  assert.deepEqual(refs.entries(), [], 'everything forgotten')
  await refs.releaseAll(() => true, async () => assert.fail('nothing left to unmount'))
})

test('Go times: re-marshalled RFC3339Nano, Unix seconds, and the local zone as Go prints it', () => {
  assert.equal(goRfc3339Nano('2026-01-02T03:04:05.120000000+00:00'), '2026-01-02T03:04:05.12Z')
  assert.equal(goRfc3339Nano('2026-01-02T03:04:05.1234567891-05:00'), '2026-01-02T03:04:05.123456789-05:00')
  assert.equal(goRfc3339Nano('yesterday'), undefined)
  assert.equal(goRfc3339Nano(undefined), undefined)
  assert.equal(unixSeconds('1970-01-01T00:01:40.9Z'), 100)
  assert.equal(unixSeconds('1970-01-01T01:01:40+01:00'), 100)
  assert.equal(unixSeconds(undefined), GO_ZERO_TIME_UNIX)
  assert.equal(unixSeconds('garbage'), GO_ZERO_TIME_UNIX)

  // The zone is the process's: run the formatters under two fixed zones.
  const script = `import('${join(process.cwd(), 'dist/src/fs/index.js')}').then((m) => console.log(JSON.stringify([m.goRfc3339(1764616638), m.goTimeString(1764616638), m.formatRfc3339Nano(1764616638000000001n)])))`
  const run = (tz: string): string[] => JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TZ: tz }, encoding: 'utf8' })) as string[]
  assert.deepEqual(run('UTC'), ['2025-12-01T19:17:18Z', '2025-12-01 19:17:18 +0000 UTC', '2025-12-01T19:17:18.000000001Z'])
  const [rfc, , nano] = run('Asia/Kolkata')
  assert.equal(rfc, '2025-12-02T00:47:18+05:30')
  assert.equal(nano, '2025-12-02T00:47:18.000000001+05:30')
})

test('Go JSON text: JSON.stringify re-escaped as encoding/json writes it', () => {
  assert.equal(goJsonText(JSON.stringify({ a: '<b>&\u2028\b\f' }), { html: true }), '{"a":"\\u003cb\\u003e\\u0026\\u2028\\u0008\\u000c"}')
  assert.equal(goJsonText(JSON.stringify({ a: '<b>\\b' })), '{"a":"<b>\\\\b"}', 'no HTML escapes, an escaped backslash stays')
})
