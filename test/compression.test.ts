import { test, before, after } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync, execFileSync } from 'node:child_process'
import { createReadStream, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { setTimeout as delay } from 'node:timers/promises'
import { compressStream, detectCompression, openDecompressed } from '../src/archive/compression.js'
import { StrataError, isStrataError } from '../src/errors/index.js'

let dir: string
let plainPath: string
let plain: Buffer

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-compression-'))
  // Half incompressible, half highly compressible: exercises both stored and
  // Huffman/LZ-heavy blocks in every codec.
  const text = Buffer.from(
    Array.from({ length: 40_000 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join(''),
  ).subarray(0, 2_500_000)
  plain = Buffer.concat([randomBytes(2_500_000), text])
  plainPath = join(dir, 'data.bin')
  writeFileSync(plainPath, plain)
})

after(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
})

function haveTool(tool: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', tool], { stdio: 'ignore' }).status === 0
}

/** Under CI a missing tool is a failure: coverage must not vanish silently. */
function failIfCI(tool: string): void {
  if (process.env.CI) throw new Error(`${tool} is not installed, and CI is set: the test must not be skipped`)
}

/** True when `tool` is on PATH. Missing: fail under CI, skip otherwise. */
function needTool(t: TestContext, tool: string): boolean {
  if (haveTool(tool)) return true
  failIfCI(tool)
  t.skip(`${tool} is not installed`)
  return false
}

/** Runs `tool args... < input > output` and returns the output's path. */
function runTool(tool: string, args: string[], input: string, output: string): string {
  const inFd = openSync(input, 'r')
  const outFd = openSync(output, 'w')
  try {
    const r = spawnSync(tool, args, { stdio: [inFd, outFd, 'pipe'] })
    if (r.error) throw r.error
    assert.equal(r.status, 0, `${tool} ${args.join(' ')} failed: ${r.stderr.toString()}`)
  } finally {
    closeSync(inFd)
    closeSync(outFd)
  }
  return output
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

async function decompressFile(path: string, highWaterMark?: number) {
  const source = createReadStream(path, highWaterMark === undefined ? {} : { highWaterMark })
  const { compression, stream } = await openDecompressed(source)
  return { compression, data: await collect(stream) }
}

/** Asserts that reading `stream` fails with StrataError CORRUPT mentioning `kind`. */
async function assertCorrupt(source: Readable, kind: 'gzip' | 'zstd'): Promise<void> {
  const { compression, stream } = await openDecompressed(source)
  assert.equal(compression, kind)
  await assert.rejects(collect(stream), (err: unknown) => {
    assert.ok(isStrataError(err, 'CORRUPT'), `expected CORRUPT, got ${String(err)}`)
    assert.match(err.message, new RegExp(kind))
    return true
  })
}

function chunked(buf: Buffer, sizes: number[]): Readable {
  const parts: Buffer[] = []
  let pos = 0
  for (const n of sizes) {
    parts.push(buf.subarray(pos, pos + n))
    pos += n
  }
  parts.push(buf.subarray(pos))
  return Readable.from(parts)
}

test('detectCompression by magic bytes', () => {
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0])), 'gzip')
  assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x24, 0])), 'zstd')
  // A zstd skippable frame (0x184D2A5?, little-endian) can start a zstd stream.
  assert.equal(detectCompression(Buffer.from([0x5e, 0x2a, 0x4d, 0x18, 0, 0])), 'zstd')
  assert.equal(detectCompression(Buffer.from('ustar\0')), 'none')
  assert.equal(detectCompression(Buffer.alloc(0)), 'none')
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b])), 'none') // too short to be gzip
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 0x07, 0, 0, 0])), 'none') // not deflate
  assert.throws(
    () => detectCompression(Buffer.from('BZh91AY')),
    (err: unknown) => isStrataError(err, 'NOT_SUPPORTED') && /bzip2.*not supported.*decompress it first/.test(err.message),
  )
  assert.throws(
    () => detectCompression(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])),
    (err: unknown) => isStrataError(err, 'NOT_SUPPORTED') && /xz.*not supported/.test(err.message),
  )
})

test('gzip from the gzip CLI decompresses to identical bytes', async (t) => {
  if (!needTool(t, 'gzip')) return
  const gz = runTool('gzip', ['-c', '-6'], plainPath, join(dir, 'data.gz'))
  const { compression, data } = await decompressFile(gz)
  assert.equal(compression, 'gzip')
  assert.ok(data.equals(plain))
})

test('gzip from the pigz CLI decompresses to identical bytes', async (t) => {
  if (!needTool(t, 'pigz')) return
  // -b 128: many independent deflate blocks, the shape pigz gives big layers.
  const gz = runTool('pigz', ['-c', '-p', '4', '-b', '128'], plainPath, join(dir, 'data.pigz.gz'))
  const { compression, data } = await decompressFile(gz, 4096)
  assert.equal(compression, 'gzip')
  assert.ok(data.equals(plain))
})

test('multi-member gzip (two .gz files concatenated) yields both members', async (t) => {
  if (!needTool(t, 'gzip')) return
  const second = Buffer.from('second member\n'.repeat(1000))
  const secondPath = join(dir, 'second.bin')
  writeFileSync(secondPath, second)
  const a = readFileSync(runTool('gzip', ['-c'], plainPath, join(dir, 'a.gz')))
  const b = readFileSync(runTool('gzip', ['-c'], secondPath, join(dir, 'b.gz')))
  const catPath = join(dir, 'ab.gz')
  writeFileSync(catPath, Buffer.concat([a, b]))
  const { compression, data } = await decompressFile(catPath)
  assert.equal(compression, 'gzip')
  assert.ok(data.equals(Buffer.concat([plain, second])))
})

test('zstd from the zstd CLI (single and concatenated frames) decompresses to identical bytes', async (t) => {
  if (!needTool(t, 'zstd')) return
  const zst = runTool('zstd', ['-q', '-c', '-3'], plainPath, join(dir, 'data.zst'))
  const one = await decompressFile(zst)
  assert.equal(one.compression, 'zstd')
  assert.ok(one.data.equals(plain))

  const z = readFileSync(zst)
  const catPath = join(dir, 'twice.zst')
  writeFileSync(catPath, Buffer.concat([z, z]))
  const two = await decompressFile(catPath, 1000)
  assert.equal(two.compression, 'zstd')
  assert.ok(two.data.equals(Buffer.concat([plain, plain])))
})

test('a first chunk of 1 byte is handled for every format', async (t) => {
  if (!needTool(t, 'gzip') || !needTool(t, 'zstd')) return
  const inputs: Array<[string, Buffer]> = [
    ['gzip', readFileSync(runTool('gzip', ['-c'], plainPath, join(dir, 'tiny.gz')))],
    ['zstd', readFileSync(runTool('zstd', ['-q', '-c'], plainPath, join(dir, 'tiny.zst')))],
    ['none', plain],
  ]
  for (const [kind, bytes] of inputs) {
    for (const sizes of [[1, 1, 1, 1, 1, 1], [1, 2, 3], [1], [2, 1, 1, 5]]) {
      const { compression, stream } = await openDecompressed(chunked(bytes, sizes))
      assert.equal(compression, kind, `sizes ${sizes.join(',')}`)
      assert.ok((await collect(stream)).equals(plain), `${kind} with sizes ${sizes.join(',')}`)
    }
  }
})

test('empty and very short plain streams are "none" and pass through', async () => {
  const empty = await openDecompressed(Readable.from([]))
  assert.equal(empty.compression, 'none')
  assert.equal((await collect(empty.stream)).length, 0)

  const short = await openDecompressed(Readable.from([Buffer.from('a'), Buffer.from('bc')]))
  assert.equal(short.compression, 'none')
  assert.equal((await collect(short.stream)).toString(), 'abc')

  const withEmptyChunks = await openDecompressed(Readable.from([Buffer.alloc(0), Buffer.from('xy'), Buffer.alloc(0)]))
  assert.equal((await collect(withEmptyChunks.stream)).toString(), 'xy')
})

test('truncated and corrupt gzip fail with CORRUPT, without hanging', { timeout: 20_000 }, async (t) => {
  if (!needTool(t, 'gzip')) return
  const gz = readFileSync(runTool('gzip', ['-c'], plainPath, join(dir, 'trunc.gz')))
  // Cut mid-stream, inside the header, and just before the CRC/size trailer.
  for (const cut of [gz.length >> 1, 10, 6, gz.length - 4]) {
    await assertCorrupt(chunked(gz.subarray(0, cut), [4096]), 'gzip')
  }
  const flipped = Buffer.from(gz)
  for (let i = 1000; i < 1100; i++) flipped[i] = flipped[i]! ^ 0x55
  await assertCorrupt(Readable.from([flipped]), 'gzip')
})

test('truncated and corrupt zstd fail with CORRUPT, without hanging', { timeout: 20_000 }, async (t) => {
  if (!needTool(t, 'zstd')) return
  const zst = readFileSync(runTool('zstd', ['-q', '-c'], plainPath, join(dir, 'trunc.zst')))
  for (const cut of [zst.length >> 1, 6, zst.length - 1]) {
    await assertCorrupt(chunked(zst.subarray(0, cut), [4096]), 'zstd')
  }
  const flipped = Buffer.from(zst)
  for (let i = 100; i < 200; i++) flipped[i] = flipped[i]! ^ 0x55
  await assertCorrupt(Readable.from([flipped]), 'zstd')
})

test('xz and bzip2 layers are rejected as NOT_SUPPORTED and the source is released', async (t) => {
  for (const [tool, name] of [['xz', 'xz'], ['bzip2', 'bzip2']] as const) {
    let bytes: Buffer
    if (haveTool(tool)) {
      bytes = readFileSync(runTool(tool, ['-c'], plainPath, join(dir, `data.${name}`)))
    } else {
      failIfCI(tool)
      t.diagnostic(`${tool} not installed: using crafted magic bytes`)
      bytes = name === 'xz' ? Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 4]) : Buffer.from('BZh91AY&SY')
    }
    const source = chunked(bytes, [1, 1, 2])
    await assert.rejects(openDecompressed(source), (err: unknown) => {
      assert.ok(isStrataError(err, 'NOT_SUPPORTED'), `expected NOT_SUPPORTED, got ${String(err)}`)
      assert.match(err.message, new RegExp(`^${name}-compressed layers are not supported`))
      return true
    })
    assert.ok(source.destroyed, `${name} source should be destroyed`)
  }
})

test('source errors reach the returned stream unchanged', { timeout: 20_000 }, async (t) => {
  if (!needTool(t, 'gzip') || !needTool(t, 'zstd')) return
  const gz = readFileSync(runTool('gzip', ['-c'], plainPath, join(dir, 'err.gz')))
  const zst = readFileSync(runTool('zstd', ['-q', '-c'], plainPath, join(dir, 'err.zst')))
  for (const bytes of [gz, zst, plain]) {
    const boom = new Error('disk on fire')
    const source = Readable.from(
      (async function* () {
        yield bytes.subarray(0, 100_000)
        await delay(5)
        throw boom
      })(),
    )
    const { stream } = await openDecompressed(source)
    await assert.rejects(collect(stream), (err: unknown) => err === boom)
  }

  // Failing before 6 bytes arrived: the promise itself rejects.
  const early = new Error('early')
  const source = Readable.from(
    (async function* () {
      yield Buffer.from([0x1f])
      throw early
    })(),
  )
  await assert.rejects(openDecompressed(source), (err: unknown) => err === early)
})

test('destroying the returned stream releases an idle source', { timeout: 20_000 }, async () => {
  for (const head of [Buffer.from([0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3]), Buffer.from('plain tar bytes')]) {
    // A source that delivers its head and then stalls forever, like a hung socket.
    const source = new Readable({ read() {} })
    source.push(head)
    const { stream } = await openDecompressed(source)
    stream.resume()
    await delay(10)
    stream.destroy()
    await new Promise<void>((resolve) => (source.destroyed ? resolve() : source.once('close', () => resolve())))
    assert.ok(source.destroyed)
  }
})

const LEVELS = [['gzip', undefined], ['gzip', 1], ['gzip', 9], ['zstd', undefined], ['zstd', 19], ['zstd', -5]] as const
const SAMPLE = () => plain.subarray(0, 1_000_000)

async function compressWith(kind: 'gzip' | 'zstd', level: number | undefined): Promise<Buffer> {
  return collect(Readable.from([SAMPLE()]).pipe(compressStream(kind, level)))
}

test('compressStream output round-trips through openDecompressed', async () => {
  for (const [kind, level] of LEVELS) {
    const compressed = await compressWith(kind, level)
    assert.equal(detectCompression(compressed), kind)
    const { compression, stream } = await openDecompressed(chunked(compressed, [1, 3, 7000]))
    assert.equal(compression, kind)
    assert.ok((await collect(stream)).equals(SAMPLE()), `${kind} level ${level}`)
  }
})

test('compressStream output is readable by the gzip and zstd CLIs', async (t) => {
  if (!needTool(t, 'gzip') || !needTool(t, 'zstd')) return
  for (const [kind, level] of LEVELS) {
    const compressed = await compressWith(kind, level)
    const viaCli = execFileSync(kind, ['-d', '-c', '-q'], { input: compressed, maxBuffer: 64 << 20 })
    assert.ok(viaCli.equals(SAMPLE()), `${kind} CLI decompresses level ${level}`)
  }
})

test('compressStream rejects bad levels as INVALID_ARGUMENT', () => {
  for (const [kind, level] of [['gzip', 10], ['gzip', 1.5], ['zstd', 1000], ['zstd', Number.NaN]] as const) {
    assert.throws(() => compressStream(kind, level), (err: unknown) => err instanceof StrataError && err.code === 'INVALID_ARGUMENT')
  }
})
