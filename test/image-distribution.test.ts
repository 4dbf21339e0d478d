/**
 * Distribution metadata as moby's FSMetadataStore and V2MetadataService
 * write it: the two files per mapping, their exact bytes (Go json.Marshal,
 * including its HTML-safe string escaping), modes (0700 store dir, 0755
 * namespace dirs, 0644 files), Add's move-to-end dedup and its limit of 50,
 * the HMAC, and Remove.
 */
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { sha256Of } from '../src/digest/index.js'
import { StrataError } from '../src/errors/index.js'
import { DistributionMetadataStore, MAX_V2_METADATA, checkV2MetadataHmac, computeV2MetadataHmac, encodeV2Metadata } from '../src/image/index.js'
import { goJsonString, DataRootLock } from '../src/fs/index.js'
import { tempDirFor } from './helpers/tmp.js'


const BLOB1 = sha256Of('blob 1')
const BLOB2 = sha256Of('blob 2')
const DIFF1 = sha256Of('diff 1')

async function modeOf(path: string): Promise<number> {
  return (await stat(path)).mode & 0o7777
}

async function open(t: import('node:test').TestContext): Promise<{ root: string; store: DistributionMetadataStore; dir: string }> {
  const root = tempDirFor(t, 'image-dist-')
  const store = await DistributionMetadataStore.open({ root, driverName: 'overlay2', lock: new DataRootLock(root) })
  return { root, store, dir: join(root, 'image', 'overlay2', 'distribution') }
}

test('Go json.Marshal string escaping', () => {
  assert.equal(goJsonString('docker.io/library/busybox'), '"docker.io/library/busybox"')
  assert.equal(goJsonString('a<b>&"\\\n\r\t\b\f\u0001\u2028\u2029é'), '"a\\u003cb\\u003e\\u0026\\"\\\\\\n\\r\\t\\u0008\\u000c\\u0001\\u2028\\u2029é"')
})

test('addMapping writes both files with the bytes and modes dockerd uses', async (t) => {
  const { store, dir } = await open(t)
  assert.equal(store.dir, dir)
  assert.equal(await modeOf(dir), 0o700)
  await store.addMapping(BLOB1, DIFF1, 'docker.io/library/busybox')

  const byDigest = join(dir, 'diffid-by-digest', 'sha256', BLOB1.slice(7))
  const byDiff = join(dir, 'v2metadata-by-diffid', 'sha256', DIFF1.slice(7))
  assert.equal(store.diffIdPath(BLOB1), byDigest)
  assert.equal(store.v2MetadataPath(DIFF1), byDiff)
  assert.equal(await readFile(byDigest, 'utf8'), DIFF1, 'the diffID, no newline')
  assert.equal(await readFile(byDiff, 'utf8'), `[{"Digest":"${BLOB1}","SourceRepository":"docker.io/library/busybox","HMAC":""}]`)
  for (const d of ['diffid-by-digest', 'diffid-by-digest/sha256', 'v2metadata-by-diffid', 'v2metadata-by-diffid/sha256']) {
    assert.equal(await modeOf(join(dir, d)), 0o755, `${d} is 0755`)
  }
  assert.equal(await modeOf(byDigest), 0o644)
  assert.equal(await modeOf(byDiff), 0o644)
  assert.deepEqual(await readdir(join(dir, 'diffid-by-digest', 'sha256')), [BLOB1.slice(7)], 'no temp files left')

  assert.equal(await store.diffIdFor(BLOB1), DIFF1)
  assert.equal(await store.diffIdFor(BLOB2), undefined)
  assert.deepEqual(await store.v2MetadataFor(DIFF1), [{ Digest: BLOB1, SourceRepository: 'docker.io/library/busybox', HMAC: '' }])
  assert.deepEqual(await store.v2MetadataFor(sha256Of('other')), [])
})

test('Add moves an equal entry to the end and keeps the newest 50', async (t) => {
  const { store } = await open(t)
  await store.addMapping(BLOB1, DIFF1, 'docker.io/library/a')
  await store.addMapping(BLOB2, DIFF1, 'docker.io/library/b')
  await store.addMapping(BLOB1, DIFF1, 'docker.io/library/a')
  assert.deepEqual((await store.v2MetadataFor(DIFF1)).map((m) => m.SourceRepository), ['docker.io/library/b', 'docker.io/library/a'])
  // Same digest, other repository: a separate entry.
  await store.addMapping(BLOB1, DIFF1, 'quay.io/x/a')
  assert.equal(
    await readFile(store.v2MetadataPath(DIFF1), 'utf8'),
    `[{"Digest":"${BLOB2}","SourceRepository":"docker.io/library/b","HMAC":""},` +
      `{"Digest":"${BLOB1}","SourceRepository":"docker.io/library/a","HMAC":""},` +
      `{"Digest":"${BLOB1}","SourceRepository":"quay.io/x/a","HMAC":""}]`,
  )
  for (let i = 0; i < 55; i++) await store.addMapping(BLOB1, DIFF1, `r/${i}`)
  const list = await store.v2MetadataFor(DIFF1)
  assert.equal(list.length, MAX_V2_METADATA)
  assert.deepEqual(list.map((m) => m.SourceRepository), Array.from({ length: 50 }, (_, i) => `r/${i + 5}`), 'the oldest are dropped')
  assert.equal(await readFile(store.v2MetadataPath(DIFF1), 'utf8'), encodeV2Metadata(list))
})

test('HMAC: hex HMAC-SHA256 of Digest+SourceRepository keyed by the credentials digest; check matches moby', async (t) => {
  const { store } = await open(t)
  const key = Buffer.from(sha256Of('{"username":"u","password":"p"}'))
  const expected = createHmac('sha256', key).update(BLOB1 + 'docker.io/u/r').digest('hex')
  assert.equal(computeV2MetadataHmac(key, { Digest: BLOB1, SourceRepository: 'docker.io/u/r' }), expected)
  assert.equal(computeV2MetadataHmac(undefined, { Digest: BLOB1, SourceRepository: 'docker.io/u/r' }), '')
  await store.addMapping(BLOB1, DIFF1, 'docker.io/u/r', key)
  const [meta] = await store.v2MetadataFor(DIFF1)
  assert.equal(meta!.HMAC, expected)
  assert.equal(checkV2MetadataHmac(meta!, key), true)
  assert.equal(checkV2MetadataHmac(meta!, Buffer.from('other')), false)
  assert.equal(checkV2MetadataHmac(meta!, undefined), false, 'an entry with an HMAC does not match anonymous access')
  assert.equal(checkV2MetadataHmac({ ...meta!, HMAC: '' }, undefined), true)
  assert.equal(checkV2MetadataHmac({ ...meta!, HMAC: '' }, key), false)
  assert.equal(checkV2MetadataHmac({ ...meta!, HMAC: 'zz' }, key), false)
})

test('removeMetadata drops one entry, deletes the list when empty, keeps diffid-by-digest; damaged files are CORRUPT', async (t) => {
  const { store } = await open(t)
  await store.addMapping(BLOB1, DIFF1, 'a')
  await store.addMapping(BLOB2, DIFF1, 'b')
  await store.removeMetadata({ Digest: BLOB1, SourceRepository: 'a', HMAC: '' })
  assert.equal(await readFile(store.v2MetadataPath(DIFF1), 'utf8'), `[{"Digest":"${BLOB2}","SourceRepository":"b","HMAC":""}]`)
  await store.removeMetadata({ Digest: BLOB2, SourceRepository: 'b', HMAC: '' })
  await assert.rejects(stat(store.v2MetadataPath(DIFF1)), { code: 'ENOENT' })
  assert.equal(await store.diffIdFor(BLOB1), DIFF1, 'the blob → diffID mapping stays, as in moby')
  await assert.rejects(store.removeMetadata({ Digest: sha256Of('unknown'), SourceRepository: '', HMAC: '' }), (err: unknown) => {
    assert.ok(err instanceof StrataError && err.code === 'NOT_FOUND')
    return true
  })

  await writeFile(store.diffIdPath(BLOB2), 'garbage')
  await assert.rejects(store.diffIdFor(BLOB2), (err: unknown) => err instanceof StrataError && err.code === 'CORRUPT' && err.message.includes(store.diffIdPath(BLOB2)))
  await writeFile(store.v2MetadataPath(DIFF1), '{"not":"a list"}')
  await assert.rejects(store.v2MetadataFor(DIFF1), (err: unknown) => err instanceof StrataError && err.code === 'CORRUPT' && /not a JSON array/.test(err.message))
  // Add starts over from a damaged list, as moby does.
  await store.addMapping(BLOB1, DIFF1, 'c')
  assert.deepEqual(await store.v2MetadataFor(DIFF1), [{ Digest: BLOB1, SourceRepository: 'c', HMAC: '' }])
  // Go's field matching is case-insensitive; a list written with other casing still reads.
  await writeFile(store.v2MetadataPath(DIFF1), `[{"digest":"${BLOB2}","sourcerepository":"d","hmac":""}]`)
  assert.deepEqual(await store.v2MetadataFor(DIFF1), [{ Digest: BLOB2, SourceRepository: 'd', HMAC: '' }])
  await assert.rejects(store.addMapping('sha256:bad', DIFF1), (err: unknown) => err instanceof StrataError && err.code === 'INVALID_ARGUMENT')
})
