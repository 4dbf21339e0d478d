/**
 * The round trip a layer store lives on, against GNU tar as the peer:
 *
 *   tree ──GNU tar──▶ x.tar ──applyLayer (+ tar-split)──▶ dir
 *   tar-split + dir ──assembleTar──▶ exactly x.tar, sha256 = diffID
 *
 * for each GNU tar format (gnu, posix, ustar), compressed or not, plus the
 * odd archives real layers contain (trailing zeros, PAX global headers) and
 * the ones that must be refused (sparse, truncated, duplicate names, files
 * changed after apply).
 *
 * Format notes that shape the expectations:
 * - GNU tar silently switches to the posix format when --xattrs is given, so
 *   the gnu and ustar archives are made without it and carry no xattrs.
 * - gnu and ustar hold whole-second mtimes; posix keeps nanoseconds.
 * - ustar cannot hold names that do not split into prefix(155)/name(100),
 *   link targets over 100 bytes or ids over 2097151: its source is the rich
 *   tree without `long/` and with `owners/huge` moved to ids that fit, plus
 *   a name that needs the prefix field.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { chown, mkdir, open, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { after, test, type TestContext } from 'node:test'
import { gzipSync } from 'node:zlib'
import { applyLayer, type ApplyResult } from '../src/archive/apply.js'
import { encodeHeader, END_OF_ARCHIVE, padding } from '../src/archive/tar/index.js'
import { assembleTar, createTarSplitFile, crc64, directoryFileGetter, readTarSplit, readTarSplitPlan, rebuildTarAt, type AssembleOptions } from '../src/archive/tarsplit/index.js'
import type { Digest } from '../src/digest/index.js'
import { isStrataError, type StrataErrorCode } from '../src/errors/index.js'
import { lutimens } from '../src/sys/index.js'
import { makeRichTree, RICH } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'
import { assertSameTree, snapshotTree, type TreeEntry } from './helpers/tree.js'

type Format = 'gnu' | 'posix' | 'ustar'
const FORMATS: Format[] = ['gnu', 'posix', 'ustar']

// ---- shared scratch space: source trees and archives are built once per file ----

const work = mkdtempSync(join(tmpdir(), 'strata-test-tar-roundtrip-'))
after(() => rmSync(work, { recursive: true, force: true }))

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined
  return () => (p ??= fn())
}

const richTree = once(async () => {
  const dir = join(work, 'rich')
  await makeRichTree(dir)
  return dir
})

/** A name that fits ustar only through its prefix field (>100 bytes, splits at a slash). */
const USTAR_SPLIT_NAME = `split/${'d'.repeat(90)}/${'f'.repeat(90)}`

/** The rich tree minus what ustar cannot hold (see the header comment). */
const ustarTree = once(async () => {
  const dir = join(work, 'rich-ustar')
  await makeRichTree(dir)
  const rootTimes = statSync(dir, { bigint: true })
  await rm(join(dir, 'long'), { recursive: true })
  await chown(join(dir, 'owners/huge'), 2000000, 2097151)
  await mkdir(join(dir, USTAR_SPLIT_NAME, '..'), { recursive: true })
  await writeFile(join(dir, USTAR_SPLIT_NAME), 'needs the ustar prefix field\n')
  // Times for the new entries (file first, then its directories), then the root's back.
  const t = (sec: number, nsec: number) => ({ sec, nsec })
  lutimens(join(dir, USTAR_SPLIT_NAME), t(1690000000, 5), t(1690000000, 5))
  lutimens(join(dir, 'split', 'd'.repeat(90)), t(1690000100, 6), t(1690000100, 6))
  lutimens(join(dir, 'split'), t(1690000200, 7), t(1690000200, 7))
  const ns = (v: bigint) => ({ sec: Number(v / 1_000_000_000n), nsec: Number(v % 1_000_000_000n) })
  lutimens(dir, ns(rootTimes.atimeNs), ns(rootTimes.mtimeNs))
  return dir
})

function sourceFor(format: Format): Promise<string> {
  return format === 'ustar' ? ustarTree() : richTree()
}

/** GNU tar's arguments for `format`; only posix can carry xattrs (tar switches to posix otherwise). */
function tarCreateArgs(format: Format, out: string, dir: string, extra: string[] = []): string[] {
  const xattrs = format === 'posix' ? ['--xattrs', '--xattrs-include=*'] : []
  return [`--format=${format}`, ...xattrs, '--numeric-owner', ...extra, '-cf', out, '-C', dir, '.']
}

const archives = new Map<Format, Promise<string>>()
function archiveFor(format: Format): Promise<string> {
  let p = archives.get(format)
  if (p === undefined) {
    p = (async () => {
      const out = join(work, `${format}.tar`)
      await run('tar', tarCreateArgs(format, out, await sourceFor(format)))
      return out
    })()
    archives.set(format, p)
  }
  return p
}

/** What applying an archive of `format` must give: the source, less what the format cannot carry. */
async function expectedTree(format: Format): Promise<Map<string, TreeEntry>> {
  const snap = await snapshotTree(await sourceFor(format))
  if (format === 'posix') return snap
  for (const e of snap.values()) {
    e.mtimeNs = (e.mtimeNs / 1_000_000_000n) * 1_000_000_000n
    e.xattrs = {}
  }
  return snap
}

// ---- helpers ----

async function sha256File(path: string): Promise<Digest> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer)
  return `sha256:${hash.digest('hex')}` as Digest
}

interface Applied {
  result: ApplyResult
  /** The applied tree. */
  dir: string
  /** The gzip'd tar-split file. */
  tarSplit: string
  /** The tar-split lines as they were emitted. */
  lines: string[]
}

/** Applies `archive` into a fresh `<scratch>/<name>` and records its tar-split next to it. */
async function applyWithTarSplit(archive: string, scratch: string, name: string): Promise<Applied> {
  const dir = join(scratch, name)
  mkdirSync(dir)
  const tarSplit = join(scratch, `${name}.tar-split.json.gz`)
  const file = createTarSplitFile(tarSplit)
  const lines: string[] = []
  try {
    const result = await applyLayer(dir, createReadStream(archive), {
      whiteouts: 'full',
      tarSplit: (line) => {
        lines.push(line)
        file.sink(line)
      },
    })
    await file.close()
    return { result, dir, tarSplit, lines }
  } catch (err) {
    file.abort()
    throw err
  }
}

/** Rebuilds the tar from tar-split + files into `out`. */
async function reassemble(applied: Applied, out: string, opts: AssembleOptions = {}): Promise<void> {
  await pipeline(Readable.from(assembleTar(readTarSplit(applied.tarSplit), directoryFileGetter(applied.dir), opts)), createWriteStream(out))
}

/**
 * Rebuilds the tar with rebuildTarAt (save's way) into a new file `out` at
 * byte 3, after "abc": returns the plan's size and the file.
 */
async function rebuildAt(applied: Applied, out: string, expectedDigest: Digest, verifyFiles = true): Promise<{ size: number; file: Buffer }> {
  const plan = readTarSplitPlan(applied.tarSplit)
  const fh = await open(out, 'w+')
  try {
    await fh.write(Buffer.from('abc'), 0, 3, 0)
    await rebuildTarAt(plan, applied.dir, fh.fd, 3, { expectedDigest, what: 'the test layer', verifyFiles })
  } finally {
    await fh.close()
  }
  return { size: plan.size, file: readFileSync(out) }
}

/** Drains an assembleTar run, for the tests that expect it to fail. */
async function drain(applied: Applied, opts: AssembleOptions = {}): Promise<number> {
  let n = 0
  for await (const chunk of assembleTar(readTarSplit(applied.tarSplit), directoryFileGetter(applied.dir), opts)) n += chunk.length
  return n
}

function isCode(code: StrataErrorCode, message: RegExp, check?: (err: { details: Record<string, unknown> }) => void) {
  return (err: unknown): boolean => {
    assert.ok(isStrataError(err), `expected a StrataError, got ${String(err)}`)
    assert.equal(err.code, code, `code of: ${err.message}`)
    assert.match(err.message, message)
    check?.(err)
    return true
  }
}

/** The magic and version bytes of the first header: which format GNU tar really wrote. */
function magicOf(archive: string): string {
  return readFileSync(archive).subarray(257, 265).toString('latin1')
}

const MAGIC: Record<Format, string> = { gnu: 'ustar  \0', posix: 'ustar\x0000', ustar: 'ustar\x0000' }

/** The full check: tree, byte-identical reassembly, digests, and `tar -tvf` of the result. */
async function checkRoundTrip(t: TestContext, archive: string, expected: Map<string, TreeEntry>, scratch: string, name: string): Promise<Applied> {
  const applied = await applyWithTarSplit(archive, scratch, name)
  const { result } = applied
  const original = readFileSync(archive)
  const diffId = await sha256File(archive)

  // (a) the tree
  assertSameTree(await snapshotTree(applied.dir), expected, `${name}: applied tree vs source`)

  // (b) digests and the byte-identical rebuild
  assert.equal(result.diffId, diffId)
  assert.equal(result.digest, diffId)
  assert.equal(result.compression, 'none')
  assert.equal(result.tarSize, original.length)
  assert.equal(result.compressedSize, original.length)
  const out = join(scratch, `${name}.reassembled.tar`)
  await reassemble(applied, out, { expectedDigest: diffId })
  const rebuilt = readFileSync(out)
  assert.equal(rebuilt.length, original.length, 'reassembled size')
  assert.ok(rebuilt.equals(original), 'reassembled tar is byte-identical')
  assert.equal(await sha256File(out), result.diffId)
  // The same bytes written at a position, as save writes them, the size known before.
  const at = await rebuildAt(applied, join(scratch, `${name}.rebuilt-at.tar`), diffId)
  assert.ok((await rebuildAt(applied, join(scratch, `${name}.rebuilt-at.tar`), diffId, false)).file.subarray(3).equals(original), 'the same without the CRC-64 per file')
  assert.equal(at.size, original.length, 'planned size')
  assert.ok(at.file.subarray(0, 3).equals(Buffer.from('abc')), 'bytes before the position are kept')
  assert.ok(at.file.subarray(3).equals(original), 'rebuilt at a position: byte-identical')

  // (c) GNU tar reads the rebuilt stream, and lists it as it lists the original
  const listed = await run('tar', ['-tvf', out])
  assert.equal(listed.stdout.toString(), (await run('tar', ['-tvf', archive])).stdout.toString())
  t.diagnostic(`${name}: ${result.entries} entries, ${result.tarSize} bytes, ${applied.lines.length} tar-split lines`)
  return applied
}

// ---- the formats ----

for (const format of FORMATS) {
  test(`${format}: GNU tar archive applies to the source tree and reassembles byte for byte`, async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'tar')) return
    const archive = await archiveFor(format)
    assert.equal(magicOf(archive), MAGIC[format], `GNU tar wrote a ${format} archive`)
    const scratch = tempDirFor(t, `rt-${format}-`)
    const applied = await checkRoundTrip(t, archive, await expectedTree(format), scratch, 'plain')
    // Entries: the source tree's count (minus nothing: every path is one entry).
    assert.equal(applied.result.entries, (await snapshotTree(await sourceFor(format))).size)
  })

  test(`${format}: gzip and zstd versions give the same diffID, their own digest, the same tree and tar-split`, async (t) => {
    if (!requireRoot(t) || !requireTool(t, 'tar', 'gzip', 'zstd')) return
    const archive = await archiveFor(format)
    const scratch = tempDirFor(t, `rtz-${format}-`)
    const diffId = await sha256File(archive)
    const plain = await applyWithTarSplit(archive, scratch, 'plain')
    const expected = await expectedTree(format)
    for (const [kind, make] of [
      ['gzip', async (dst: string) => { await run('sh', ['-c', 'gzip -c -- "$1" > "$2"', 'sh', archive, dst]) }],
      ['zstd', async (dst: string) => { await run('zstd', ['-q', '-f', archive, '-o', dst]) }],
    ] as const) {
      const compressed = join(scratch, `x.tar.${kind === 'gzip' ? 'gz' : 'zst'}`)
      await make(compressed)
      const applied = await applyWithTarSplit(compressed, scratch, kind)
      const { result } = applied
      assert.equal(result.compression, kind)
      assert.equal(result.diffId, diffId, `${kind}: diffID is the sha256 of the uncompressed tar`)
      assert.equal(result.digest, await sha256File(compressed), `${kind}: digest is the sha256 of the ${kind} file`)
      assert.equal(result.compressedSize, statSync(compressed).size)
      assert.equal(result.tarSize, statSync(archive).size)
      assert.deepEqual(applied.lines, plain.lines, `${kind}: same tar-split as the plain tar`)
      assertSameTree(await snapshotTree(applied.dir), expected, `${kind}: applied tree vs source`)
      const out = join(scratch, `${kind}.reassembled.tar`)
      await reassemble(applied, out, { expectedDigest: diffId })
      assert.ok(readFileSync(out).equals(readFileSync(archive)), `${kind}: reassembles the uncompressed tar`)
    }
  })
}

// ---- odd but valid archives ----

test('(d) trailing zeros after the end-of-archive marker round-trip byte for byte', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const scratch = tempDirFor(t, 'rt-trailing-')
  const base = readFileSync(await archiveFor('posix'))
  assert.equal(base.length % 10240, 0, 'GNU tar pads to its 10240-byte records')
  const archive = join(scratch, 'trailing.tar')
  writeFileSync(archive, Buffer.concat([base, Buffer.alloc(3000)]))
  const applied = await checkRoundTrip(t, archive, await expectedTree('posix'), scratch, 'trailing')
  assert.equal(applied.result.tarSize, base.length + 3000)
})

test('(e) a PAX global header (as git archive writes) is accepted, not extracted, and round-trips', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const scratch = tempDirFor(t, 'rt-global-')
  const archive = join(scratch, 'global.tar')
  await run('tar', tarCreateArgs('posix', archive, await richTree(), ['--pax-option=globexthdr.name=pax_global_header,comment=hi']))
  const head = readFileSync(archive).subarray(0, 1024)
  assert.equal(head.subarray(0, 17).toString('latin1'), 'pax_global_header')
  assert.equal(String.fromCharCode(head[156]!), 'g', 'the first header is a PAX global header')
  assert.equal(head.subarray(512, 526).toString('latin1'), '14 comment=hi\n')
  const applied = await checkRoundTrip(t, archive, await expectedTree('posix'), scratch, 'global')
  // Recorded like Go's tar-split: an entry of its own, no size, no checksum.
  assert.equal(applied.lines[1], '{"type":1,"name":"pax_global_header","payload":null,"position":1}\n')
})

// ---- archives that must be refused ----

test('(f) sparse files are refused with NOT_SUPPORTED naming the entry (GNU and PAX sparse formats)', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'truncate')) return
  const scratch = tempDirFor(t, 'rt-sparse-')
  const src = join(scratch, 'src')
  mkdirSync(src)
  await run('truncate', ['-s', '10M', join(src, 's')])
  writeFileSync(join(src, 'before'), 'a file before the sparse one\n')
  for (const [label, args] of [
    ['gnu', ['--format=gnu', '--sparse']],
    ['posix 1.0', ['--format=posix', '--sparse', '--sparse-version=1.0']],
    ['posix 0.1', ['--format=posix', '--sparse', '--sparse-version=0.1']],
  ] as const) {
    const archive = join(scratch, `sparse-${label.replace(/\W/g, '')}.tar`)
    await run('tar', [...args, '-cf', archive, '-C', src, 'before', 's'])
    const target = join(scratch, `out-${label.replace(/\W/g, '')}`)
    mkdirSync(target)
    await assert.rejects(
      applyLayer(target, createReadStream(archive), { whiteouts: 'full', tarSplit: () => {} }),
      isCode('NOT_SUPPORTED', /sparse/, (err) => {
        assert.equal(err.details.entry, 's', `${label}: the error names the sparse entry`)
      }),
      label,
    )
  }
})

test('(g) a truncated tar is CORRUPT: cut inside file content, inside a header, inside the padding', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'gzip')) return
  const scratch = tempDirFor(t, 'rt-trunc-')
  const src = join(scratch, 'src')
  mkdirSync(src)
  writeFileSync(join(src, 'a'), Buffer.alloc(100, 'a'))
  writeFileSync(join(src, 'b'), Buffer.alloc(5000, 'b'))
  const full = join(scratch, 'full.tar')
  await run('tar', ['--format=gnu', '-cf', full, '-C', src, 'a', 'b'])
  const bytes = readFileSync(full)
  // a: header 0, content 512..612, padding to 1024; b: header 1024, content 1536..6536.
  assert.equal(bytes.subarray(1024, 1025).toString(), 'b')
  assert.equal(bytes.subarray(1024 + 257, 1024 + 262).toString(), 'ustar')
  for (const [label, cut, why] of [
    ['in the middle of b content', 1536 + 2000, /Truncated.*inside "b", 3000 bytes of content missing/],
    ['right after the header of b', 1536, /Truncated.*inside "b", 5000 bytes of content missing/],
    ['in the middle of b header', 1024 + 200, /Truncated.*inside a header block/],
    ['in the middle of a padding', 700, /Truncated.*inside the padding after "a"/],
  ] as const) {
    const plain = join(scratch, `cut-${cut}.tar`)
    writeFileSync(plain, bytes.subarray(0, cut))
    const gz = `${plain}.gz`
    writeFileSync(gz, gzipSync(bytes.subarray(0, cut)))
    for (const archive of [plain, gz]) {
      const target = join(scratch, `out-${cut}-${archive === gz ? 'gz' : 'tar'}`)
      mkdirSync(target)
      await assert.rejects(applyLayer(target, createReadStream(archive), { whiteouts: 'full', tarSplit: () => {} }), isCode('CORRUPT', why), `${label} (${archive})`)
    }
  }
  // A gzip stream cut short is CORRUPT too, from the decompressor.
  const whole = gzipSync(bytes)
  const cutGz = join(scratch, 'cut.gz')
  writeFileSync(cutGz, whole.subarray(0, whole.length >> 1))
  mkdirSync(join(scratch, 'out-cut-gz'))
  await assert.rejects(applyLayer(join(scratch, 'out-cut-gz'), createReadStream(cutGz), { whiteouts: 'full' }), isCode('CORRUPT', /truncated/i))
})

test('(h) reassembly refuses files changed after apply (CRC-64) and a wrong expected digest', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const scratch = tempDirFor(t, 'rt-changed-')
  const src = join(scratch, 'src')
  mkdirSync(join(src, 'd'), { recursive: true })
  writeFileSync(join(src, 'd/f'), Buffer.alloc(3000, 'f'))
  writeFileSync(join(src, 'd/g'), 'gee\n')
  const archive = join(scratch, 'x.tar')
  await run('tar', ['--format=posix', '-cf', archive, '-C', src, '.'])
  const diffId = await sha256File(archive)

  const applied = await applyWithTarSplit(archive, scratch, 'applied')
  assert.equal(applied.result.diffId, diffId)
  // Intact: the right digest passes, a wrong one is DIGEST_MISMATCH.
  assert.equal(await drain(applied, { expectedDigest: diffId }), statSync(archive).size)
  const wrong = `sha256:${'0'.repeat(64)}` as Digest
  await assert.rejects(drain(applied, { expectedDigest: wrong }), isCode('DIGEST_MISMATCH', new RegExp(`hashes to ${diffId}, not ${wrong}`)))
  await assert.rejects(rebuildAt(applied, join(scratch, 'wrong.tar'), wrong), isCode('DIGEST_MISMATCH', new RegExp(`hashes to ${diffId}, not ${wrong}`)))

  // Same size, different content: only the CRC can tell.
  const f = join(applied.dir, 'd/f')
  const changed = Buffer.alloc(3000, 'f')
  changed[1234] = 0x46
  writeFileSync(f, changed)
  await assert.rejects(drain(applied), isCode('CORRUPT', /"\.\/d\/f" changed since the layer was stored \(CRC-64 mismatch\)/, (err) => assert.equal(err.details.entry, './d/f')))
  await assert.rejects(drain(applied, { expectedDigest: diffId }), isCode('CORRUPT', /CRC-64 mismatch/))
  const atOut = join(scratch, 'at.tar')
  await assert.rejects(rebuildAt(applied, atOut, diffId), isCode('CORRUPT', /"\.\/d\/f" changed since the layer was stored \(CRC-64 mismatch\)/))
  // Without the CRC as it reads, the sha256 fails at the end and the files are read again to name the one that changed.
  await assert.rejects(rebuildAt(applied, atOut, diffId, false), isCode('CORRUPT', /"\.\/d\/f" changed since the layer was stored \(CRC-64 mismatch\)/))

  // Shorter, and gone.
  await truncate(f, 2999)
  await assert.rejects(drain(applied), isCode('CORRUPT', /"\.\/d\/f" is shorter than the 3000 bytes recorded/))
  await assert.rejects(rebuildAt(applied, atOut, diffId), isCode('CORRUPT', /"\.\/d\/f" is shorter than the 3000 bytes recorded/))
  await assert.rejects(rebuildAt(applied, atOut, diffId, false), isCode('CORRUPT', /"\.\/d\/f" is shorter than the 3000 bytes recorded/))
  await rm(f)
  await assert.rejects(drain(applied), isCode('NOT_FOUND', /"\.\/d\/f" is missing/))
  await assert.rejects(rebuildAt(applied, atOut, diffId), isCode('NOT_FOUND', /"\.\/d\/f" is missing/))
  await assert.rejects(rebuildAt(applied, atOut, diffId, false), isCode('NOT_FOUND', /"\.\/d\/f" is missing/))
})

test('(i) the same path twice ("a" and "./a") is CORRUPT', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  const scratch = tempDirFor(t, 'rt-dup-')
  // Crafted: two regular files.
  const crafted = join(scratch, 'crafted.tar')
  writeFileSync(
    crafted,
    Buffer.concat([
      encodeHeader({ name: 'a', type: 'file', size: 2 }),
      Buffer.from('hi'),
      padding(2),
      encodeHeader({ name: './a', type: 'file', size: 3 }),
      Buffer.from('bye'),
      padding(3),
      END_OF_ARCHIVE,
    ]),
  )
  // GNU tar: the second name becomes a hardlink to the first.
  const src = join(scratch, 'src')
  mkdirSync(src)
  writeFileSync(join(src, 'a'), 'hi\n')
  const gnu = join(scratch, 'gnu.tar')
  await run('tar', ['--format=gnu', '-cf', gnu, '-C', src, 'a', './a'])
  for (const archive of [crafted, gnu]) {
    const target = join(scratch, `out-${archive === gnu ? 'gnu' : 'crafted'}`)
    mkdirSync(target)
    await assert.rejects(
      applyLayer(target, createReadStream(archive), { whiteouts: 'full', tarSplit: () => {} }),
      isCode('CORRUPT', /contains "\.\/a" twice/, (err) => assert.equal(err.details.entry, './a')),
    )
  }
  // A tar-split file with a repeated name is refused on reading, too.
  const ts = join(scratch, 'dup.tar-split.json.gz')
  writeFileSync(ts, gzipSync('{"type":1,"name":"a","payload":null,"position":0}\n{"type":1,"name":"./a/","payload":null,"position":1}\n'))
  await assert.rejects(
    (async () => {
      for await (const _ of readTarSplit(ts)) void _
    })(),
    isCode('CORRUPT', /twice/),
  )
})

test('(j) tar-split lines are Go tar-split JSON, and the gzip file reads with zcat', async (t) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'zcat')) return
  const scratch = tempDirFor(t, 'rt-json-')
  const src = join(scratch, 'src')
  mkdirSync(join(src, 'd'), { recursive: true })
  writeFileSync(join(src, 'f'), 'hello\n')
  writeFileSync(join(src, 'e'), '')
  writeFileSync(join(src, 'd/<&>'), 'escaped\n')
  const archive = join(scratch, 'x.tar')
  await run('tar', ['--format=gnu', '--no-recursion', '-cf', archive, '-C', src, 'f', 'e', 'd', 'd/<&>'])
  const bytes = readFileSync(archive)
  const applied = await applyWithTarSplit(archive, scratch, 'applied')
  const b64 = (b: Buffer) => b.toString('base64')
  const crc = (s: string) => b64(crc64(Buffer.from(s)))
  // Layout: f @0 (6 bytes, padded to 1024), e @1024, d/ @1536, d/<&> @2048 (content @2560, padded to 3072), end @3072.
  const expected = [
    `{"type":2,"payload":"${b64(bytes.subarray(0, 512))}","position":0}\n`,
    `{"type":1,"name":"f","size":6,"payload":"${crc('hello\n')}","position":1}\n`,
    `{"type":2,"payload":"${b64(bytes.subarray(518, 1536))}","position":2}\n`,
    '{"type":1,"name":"e","payload":null,"position":3}\n',
    `{"type":2,"payload":"${b64(bytes.subarray(1536, 2048))}","position":4}\n`,
    '{"type":1,"name":"d/","payload":null,"position":5}\n',
    `{"type":2,"payload":"${b64(bytes.subarray(2048, 2560))}","position":6}\n`,
    `{"type":1,"name":"d/\\u003c\\u0026\\u003e","size":8,"payload":"${crc('escaped\n')}","position":7}\n`,
    `{"type":2,"payload":"${b64(bytes.subarray(2568, 3072 + 1024))}","position":8}\n`,
    `{"type":2,"payload":"${b64(bytes.subarray(3072 + 1024))}","position":9}\n`,
    // dockerd 20.10's tar-split ends every file with an empty segment (its last read of the stream).
    '{"type":2,"payload":"","position":10}\n',
  ]
  assert.deepEqual(applied.lines, expected)

  // Parsed, the first two are exactly the shapes Go writes, keys in Go's order.
  const first = JSON.parse(applied.lines[0]!) as Record<string, unknown>
  assert.deepEqual(Object.keys(first), ['type', 'payload', 'position'])
  assert.deepEqual(first, { type: 2, payload: b64(bytes.subarray(0, 512)), position: 0 })
  const second = JSON.parse(applied.lines[1]!) as Record<string, unknown>
  assert.deepEqual(Object.keys(second), ['type', 'name', 'size', 'payload', 'position'])
  assert.deepEqual(second, { type: 1, name: 'f', size: 6, payload: crc('hello\n'), position: 1 })
  const empty = JSON.parse(applied.lines[3]!) as Record<string, unknown>
  assert.deepEqual(Object.keys(empty), ['type', 'name', 'payload', 'position'], 'size omitted when 0')
  assert.equal(empty.payload, null)

  // The file on disk is a plain gzip of those lines.
  assert.equal((await run('zcat', [applied.tarSplit])).stdout.toString(), expected.join(''))
  const out = join(scratch, 'reassembled.tar')
  await reassemble(applied, out, { expectedDigest: applied.result.diffId })
  assert.ok(readFileSync(out).equals(bytes))
})

test('RICH names the long paths ustar leaves out', () => {
  // Guards the ustar reduction above: everything it drops lives under long/.
  for (const p of [RICH.longName, RICH.longPath, RICH.longTargetLink, RICH.longHardlink, RICH.longHardlinkTarget]) assert.ok(p.startsWith('long/'))
})
