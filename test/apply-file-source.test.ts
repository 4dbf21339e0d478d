/**
 * applyLayerOffThread of a source marked as a file's byte range
 * (src/archive/file-source.ts): the worker reads the file itself. The
 * result must be the one the stream would have given (diffID, digest,
 * sizes, tar-split lines, files), the stream itself must stay unread, and
 * a file that is shorter than its range, a wrong diffID, a failing
 * tar-split sink and a path-escape attack must fail as they do through
 * the stream.
 */
import assert from 'node:assert/strict'
import { createReadStream, existsSync, readFileSync, readlinkSync, statSync, truncateSync, writeFileSync, mkdirSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { test, type TestContext } from 'node:test'
import { gzipSync } from 'node:zlib'
import { applyLayer, type ApplyOptions } from '../src/archive/apply.js'
import { applyLayerOffThread } from '../src/archive/apply-offthread.js'
import { fileRangeOf, withFileRange, type FileRange } from '../src/archive/file-source.js'
import { sha256Of } from '../src/digest/index.js'
import { StrataError } from '../src/errors/index.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'

/** A small tree tarred by GNU tar: a dir, a few files (one of 3 MiB, more than one read), a symlink, a hardlink. */
async function sampleTar(dir: string): Promise<string> {
  const src = join(dir, 'src')
  mkdirSync(join(src, 'etc/sub'), { recursive: true })
  writeFileSync(join(src, 'etc/hostname'), 'box\n')
  writeFileSync(join(src, 'etc/sub/empty'), '')
  const big = Buffer.alloc(3 << 20)
  for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i, i)
  writeFileSync(join(src, 'big'), big)
  symlinkSync('etc/hostname', join(src, 'link'))
  await run('ln', [join(src, 'etc/hostname'), join(src, 'hard')])
  const tar = join(dir, 'layer.tar')
  await run('tar', ['--format=posix', '--numeric-owner', '-C', src, '-cf', tar, '.'])
  return tar
}

/** A stream of `range` that fails the test if anything reads it: the worker must read the file itself. */
function untouchable(range: FileRange): Readable {
  return withFileRange(
    new Readable({
      read() {
        this.destroy(new Error('the marked stream was read'))
      },
    }),
    range,
  )
}

async function applyBoth(t: TestContext, file: FileRange, bytes: Buffer, opts: Omit<ApplyOptions, 'tarSplit'> = { whiteouts: 'overlay' }) {
  const dir = tempDirFor(t, 'file-source-')
  const viaFile: string[] = []
  const viaStream: string[] = []
  const a = join(dir, 'a')
  const b = join(dir, 'b')
  mkdirSync(a)
  mkdirSync(b)
  const fromFile = await applyLayerOffThread(a, untouchable(file), { ...opts, tarSplit: (l) => viaFile.push(l) })
  const fromStream = await applyLayer(b, Readable.from([bytes]), { ...opts, tarSplit: (l) => viaStream.push(l) })
  return { a, b, fromFile, fromStream, viaFile, viaStream }
}

test('a file source is read by the worker: same result, tar-split and files as the stream, the stream unread', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'file-source-')
  const tar = await sampleTar(dir)
  const bytes = readFileSync(tar)
  const r = await applyBoth(t, { path: tar, start: 0 }, bytes, { whiteouts: 'overlay', expectedDiffId: sha256Of(bytes) })
  assert.deepEqual(r.fromFile, r.fromStream)
  assert.equal(r.fromFile.diffId, sha256Of(bytes))
  assert.deepEqual(r.viaFile, r.viaStream)
  assert.ok(r.viaFile.length > 5)
  assert.deepEqual(readFileSync(join(r.a, 'big')), readFileSync(join(dir, 'src/big')))
  assert.equal(readFileSync(join(r.a, 'hard'), 'utf8'), 'box\n')
  assert.equal(statSync(join(r.a, 'hard')).ino, statSync(join(r.a, 'etc/hostname')).ino)
  assert.equal(readlinkSync(join(r.a, 'link')), 'etc/hostname')
})

test('a range inside a larger file: only its bytes, with progress up to its length', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'file-source-')
  const layer = readFileSync(await sampleTar(dir))
  const padded = join(dir, 'padded')
  writeFileSync(padded, Buffer.concat([Buffer.alloc(1000, 0x61), layer, Buffer.alloc(777, 0x62)]))
  const seen: number[] = []
  const r = await applyBoth(t, { path: padded, start: 1000, length: layer.length, onRead: (n) => seen.push(n) }, layer)
  assert.deepEqual(r.fromFile, r.fromStream)
  assert.deepEqual(r.viaFile, r.viaStream)
  assert.equal(seen.at(-1), layer.length)
  assert.ok(seen.every((n, i) => i === 0 || n > seen[i - 1]!))
})

test('a gzip file: decompressed in the worker; digest of the file, diffID of the tar', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'file-source-')
  const layer = readFileSync(await sampleTar(dir))
  const gz = gzipSync(layer)
  const file = join(dir, 'layer.tar.gz')
  writeFileSync(file, gz)
  const r = await applyBoth(t, { path: file, start: 0 }, gz)
  assert.deepEqual(r.fromFile, r.fromStream)
  assert.equal(r.fromFile.compression, 'gzip')
  assert.equal(r.fromFile.digest, sha256Of(gz))
  assert.equal(r.fromFile.diffId, sha256Of(layer))
  assert.deepEqual(r.viaFile, r.viaStream)
})

test('a file shorter than its range (truncated after it was indexed) is CORRUPT, naming the file', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'file-source-')
  const tar = await sampleTar(dir)
  const length = statSync(tar).size
  truncateSync(tar, length - 5000)
  mkdirSync(join(dir, 'out'))
  await assert.rejects(applyLayerOffThread(join(dir, 'out'), untouchable({ path: tar, start: 0, length }), { whiteouts: 'overlay' }), (err: unknown) => {
    assert.ok(err instanceof StrataError, String(err))
    assert.equal(err.code, 'CORRUPT')
    assert.match(err.message, /layer\.tar/)
    return true
  })
})

test('a wrong expected diffID is DIGEST_MISMATCH, as through the stream', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'file-source-')
  const tar = await sampleTar(dir)
  mkdirSync(join(dir, 'out'))
  const wrong = sha256Of(Buffer.from('not this layer'))
  await assert.rejects(applyLayerOffThread(join(dir, 'out'), untouchable({ path: tar, start: 0 }), { whiteouts: 'overlay', expectedDiffId: wrong }), (err: unknown) => {
    assert.ok(err instanceof StrataError, String(err))
    assert.equal(err.code, 'DIGEST_MISMATCH')
    return true
  })
})

test('a failing tar-split sink stops a file apply with the sink error', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'file-source-')
  const tar = await sampleTar(dir)
  mkdirSync(join(dir, 'out'))
  const boom = new Error('tar-split disk full')
  await assert.rejects(
    applyLayerOffThread(join(dir, 'out'), untouchable({ path: tar, start: 0 }), {
      whiteouts: 'overlay',
      tarSplit: () => {
        throw boom
      },
    }),
    (err: unknown) => err === boom,
  )
})

test('symlink escape attack through a file source: refused, nothing written outside the target', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'file-source-')
  const src = join(dir, 'src')
  mkdirSync(src)
  symlinkSync('../../../../../../victim-dir', join(src, 'escape'))
  writeFileSync(join(dir, 'payload'), 'pwned')
  const tar = join(dir, 'evil.tar')
  // The symlink, then a file written "through" it.
  await run('tar', ['--format=posix', '-C', src, '-cf', tar, 'escape'])
  await run('tar', ['--format=posix', '-C', dir, '--transform', 's,^payload$,escape/pwned,', '-rf', tar, 'payload'])
  mkdirSync(join(dir, 'out'))
  await assert.rejects(applyLayerOffThread(join(dir, 'out'), untouchable({ path: tar, start: 0 }), { whiteouts: 'overlay' }), (err: unknown) => {
    assert.ok(err instanceof StrataError, String(err))
    assert.equal(err.code, 'UNSAFE_PATH')
    return true
  })
  assert.equal(existsSync('/victim-dir'), false)
  assert.equal(existsSync(join(dir, 'victim-dir')), false)
})

test('a marked stream that was already read from is not taken for its file', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'file-source-')
  const tar = await sampleTar(dir)
  const stream = withFileRange(createReadStream(tar), { path: tar, start: 0 })
  assert.notEqual(fileRangeOf(stream), undefined)
  await new Promise<void>((resolve) => stream.once('readable', () => resolve()))
  stream.read(100)
  assert.equal(fileRangeOf(stream), undefined)
  stream.destroy()
})
