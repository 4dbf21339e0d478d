/**
 * The tar codec on its own: header blocks, PAX records, the streaming parser
 * and its raw-byte accounting, the async iterator, and agreement with GNU tar
 * in both directions (GNU tar's archives parsed by us; our headers listed and
 * extracted by GNU tar).
 */
import assert from 'node:assert/strict'
import { chmod, chown, link, lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { test, type TestContext } from 'node:test'
import { END_OF_ARCHIVE, encodeHeader, padding, readTar, TarParser, type TarHeader, type TarHeaderInput } from '../src/archive/tar/index.js'
import { decodeHeader, encodeUstar, octalLimit, readNumber } from '../src/archive/tar/header.js'
import { encodePax, formatPaxTime, parsePax, parsePaxTime } from '../src/archive/tar/pax.js'
import { isStrataError } from '../src/errors/index.js'
import { lutimens, major, minor, mknod, S_IFBLK, S_IFCHR, S_IFIFO, type Timespec } from '../src/sys/index.js'
import { randomBytesSeeded } from './helpers/fixtures.js'
import { requireRoot, requireTool, run } from './helpers/peers.js'
import { tempDirFor } from './helpers/tmp.js'

// ---------------------------------------------------------------- helpers

const BINARY = Buffer.from([0x00, 0x01, 0xff, 0x00, 0x7f, 0x80, 0x00, 0x0a, 0x00, 0x3d])

interface Item {
  h: TarHeaderInput
  body?: Buffer
}

/** A complete archive: every entry's header, content and padding, then the end-of-archive blocks. */
function archive(items: Item[], trailer: Buffer = END_OF_ARCHIVE): Buffer {
  const parts: Buffer[] = []
  for (const { h, body } of items) {
    parts.push(encodeHeader(h))
    if (body !== undefined) parts.push(body, padding(body.length))
  }
  parts.push(trailer)
  return Buffer.concat(parts)
}

type Ev = { kind: 'entry'; header: TarHeader } | { kind: 'data'; bytes: Buffer } | { kind: 'end' } | { kind: 'segment'; bytes: Buffer }

interface Parsed {
  entries: Array<{ header: TarHeader; body: Buffer }>
  /** Events in order, consecutive data events merged (chunking is not part of the contract). */
  events: Ev[]
  /** Segments and content in stream order: must concatenate back to the input. */
  stream: Buffer[]
  done: boolean
}

/** Parses `input` fed in chunks of `chunkSize` bytes (whole input by default) and ends it. */
function parseAll(input: Buffer, chunkSize = input.length, accounting = true): Parsed {
  const events: Ev[] = []
  const stream: Buffer[] = []
  const push = (e: Ev): void => {
    const last = events[events.length - 1]
    if (e.kind === 'data' && last?.kind === 'data') last.bytes = Buffer.concat([last.bytes, e.bytes])
    else events.push(e)
  }
  const handler = {
    entry: (header: TarHeader) => push({ kind: 'entry', header }),
    data: (chunk: Buffer) => {
      stream.push(Buffer.from(chunk))
      push({ kind: 'data', bytes: Buffer.from(chunk) })
    },
    entryEnd: () => push({ kind: 'end' }),
    ...(accounting
      ? {
          segment: (bytes: Buffer) => {
            stream.push(Buffer.from(bytes))
            push({ kind: 'segment', bytes: Buffer.from(bytes) })
          },
        }
      : {}),
  }
  const parser = new TarParser(handler)
  for (let off = 0; off < input.length; off += Math.max(1, chunkSize)) parser.write(input.subarray(off, off + Math.max(1, chunkSize)))
  parser.end()
  const entries: Parsed['entries'] = []
  for (const e of events) {
    if (e.kind === 'entry') entries.push({ header: e.header, body: Buffer.alloc(0) })
    else if (e.kind === 'data') entries[entries.length - 1]!.body = e.bytes
  }
  return { entries, events, stream, done: parser.done }
}

function only(input: Buffer): TarHeader {
  const { entries } = parseAll(input)
  assert.equal(entries.length, 1)
  return entries[0]!.header
}

/** Recomputes a hand-edited header block's checksum the way tar writes it: 6 octal digits, NUL, space. */
function fixChecksum(block: Buffer): Buffer {
  block.fill(0x20, 148, 156)
  let sum = 0
  for (let i = 0; i < 512; i++) sum += block[i]!
  block.write(sum.toString(8).padStart(6, '0'), 148, 6, 'latin1')
  block[154] = 0
  block[155] = 0x20
  return block
}

/** The PAX records of an encodeHeader output that starts with an `x` entry (undefined without one). */
function paxOf(encoded: Buffer): Map<string, string> | undefined {
  const first = decodeHeader(encoded.subarray(0, 512), 0)
  if (first.typeflag !== 'x') return undefined
  return parsePax(encoded.subarray(512, 512 + first.size), first.name).text
}

/** The final (ustar) block of an encodeHeader output, decoded. */
function ustarOf(encoded: Buffer): ReturnType<typeof decodeHeader> {
  return decodeHeader(encoded.subarray(encoded.length - 512), encoded.length - 512)
}

function corruptError(re: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isStrataError(e, 'CORRUPT'), `expected a CORRUPT StrataError, got ${String(e)}`)
    assert.match(e.message, re)
    return true
  }
}

const ns = (t: Timespec): bigint => BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec)

// ---------------------------------------------------------------- encode → parse round trips

test('encodeHeader → TarParser round trip for every entry type keeps every field', () => {
  const xattrs = new Map<string, Buffer>([
    ['user.binary', BINARY],
    ['trusted.overlay.opaque', Buffer.from('y')],
    ['security.capability', Buffer.from('0100000200200000000000000000000000000000', 'hex')],
  ])
  const base = { uid: 1234, gid: 5678, uname: 'alice', gname: 'staff', mtime: { sec: 1_700_000_000, nsec: 123_456_789 } }
  const items: Item[] = [
    { h: { ...base, name: 'dir/', type: 'dir', mode: 0o1777, xattrs } },
    { h: { ...base, name: 'dir/file', type: 'file', mode: 0o7755, size: 5, xattrs }, body: Buffer.from('hello') },
    { h: { ...base, name: 'dir/empty', type: 'file', mode: 0o4000, size: 0 } },
    { h: { ...base, name: 'dir/big', type: 'file', mode: 0o2640, size: 1536 }, body: randomBytesSeeded(1536, 7) },
    { h: { ...base, name: 'dir/symlink', type: 'symlink', mode: 0o777, linkname: '../target with spaces' } },
    { h: { ...base, name: 'dir/hardlink', type: 'hardlink', mode: 0o7755, linkname: 'dir/file' } },
    { h: { ...base, name: 'dir/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 } },
    { h: { ...base, name: 'dir/whiteout', type: 'char', mode: 0, devmajor: 0, devminor: 0 } },
    { h: { ...base, name: 'dir/nvme', type: 'block', mode: 0o660, devmajor: 259, devminor: 70000 } },
    { h: { ...base, name: 'dir/maxdev', type: 'block', mode: 0o600, devmajor: 2097151, devminor: 2097151 } },
    { h: { ...base, name: 'dir/fifo', type: 'fifo', mode: 0o1644 } },
  ]
  const input = archive(items)
  const { entries, done } = parseAll(input)
  assert.equal(done, true)
  assert.equal(entries.length, items.length)
  for (const [i, { h, body }] of items.entries()) {
    const got = entries[i]!.header
    const want = {
      name: h.name,
      type: h.type,
      mode: h.mode,
      uid: 1234,
      gid: 5678,
      uname: 'alice',
      gname: 'staff',
      size: body?.length ?? 0,
      mtime: { sec: 1_700_000_000, nsec: 123_456_789 },
      linkname: h.linkname ?? '',
      devmajor: h.devmajor ?? 0,
      devminor: h.devminor ?? 0,
    }
    const { xattrs: gotX, pax: _pax, atime: _a, ctime: _c, ...rest } = got
    assert.deepEqual(rest, want, h.name)
    assert.deepEqual([...gotX.entries()].sort(), [...(h.xattrs ?? new Map()).entries()].sort(), `${h.name} xattrs`)
    assert.deepEqual(entries[i]!.body, body ?? Buffer.alloc(0), `${h.name} body`)
  }
  // The binary xattr survives byte for byte, NULs and '=' included.
  assert.ok(entries[1]!.header.xattrs.get('user.binary')!.equals(BINARY))
  // The mode field carries Go's type bits; the parsed mode does not.
  assert.equal(ustarOf(encodeHeader(items[0]!.h)).mode, 0o041777)
  assert.equal(ustarOf(encodeHeader(items[10]!.h)).mode, 0o011644)
})

test('encodeHeader: defaults, no PAX when everything fits, deterministic output', () => {
  const plain = encodeHeader({ name: 'etc/hosts', type: 'file', size: 3 })
  assert.equal(plain.length, 512, 'a header whose fields fit is one ustar block')
  const raw = decodeHeader(plain, 0)
  assert.equal(raw.format, 'ustar')
  assert.equal(raw.typeflag, '0')
  assert.equal(raw.mode, 0o100644)
  assert.equal(raw.mtime, 0)
  assert.equal(decodeHeader(encodeHeader({ name: 'd/', type: 'dir' }), 0).mode, 0o040755)
  assert.ok(encodeHeader({ name: 'a', type: 'file', mtime: { sec: 5, nsec: 1 } }).equals(encodeHeader({ name: 'a', type: 'file', mtime: { sec: 5, nsec: 1 } })))
  // Header-only types never claim content.
  assert.equal(decodeHeader(encodeHeader({ name: 'l', type: 'symlink', linkname: 't', size: 99 }), 0).size, 0)
  // Sub-second times are dropped (no PAX at all) when asked, as dockerd does.
  const trunc = encodeHeader({ name: 'a', type: 'file', mtime: { sec: 5, nsec: 999_999_999 } }, { subsecondTimes: false })
  assert.equal(trunc.length, 512)
  assert.equal(decodeHeader(trunc, 0).mtime, 5)
  assert.throws(() => encodeHeader({ name: 'g', type: 'globalHeader' }), (e: unknown) => isStrataError(e, 'INVALID_ARGUMENT'))
  assert.throws(() => encodeHeader({ name: 'd', type: 'char', devmajor: 2097152 }), (e: unknown) => isStrataError(e, 'INVALID_ARGUMENT'))
})

test("PAX extended headers as Go 1.19's archive/tar writes them (checked against its output): sorted records, a minimal x header, Go's header name", () => {
  const dirName = `${'d'.repeat(120)}/`
  const bytes = encodeHeader({ name: dirName, type: 'dir', uid: 3_000_000, xattrs: new Map([['security.capability', Buffer.from([1, 0, 0, 2])]]) }, { subsecondTimes: false })
  const x = bytes.subarray(0, 512)
  const field = (from: number, to: number): string => x.toString('latin1', from, to)
  // path.Join("ddd…/", "PaxHeaders.0", "") is "ddd…/PaxHeaders.0"; cut to 100 bytes, only d's are left.
  assert.equal(field(0, 100), 'd'.repeat(100))
  assert.equal(String.fromCharCode(x[156]!), 'x')
  assert.equal(field(100, 108), '0000000\0', 'mode 0')
  assert.equal(field(108, 124), '0000000\x000000000\0', 'uid and gid 0')
  assert.equal(field(136, 148), '00000000000\0', 'mtime 0')
  assert.ok(x.subarray(265, 345).every((b) => b === 0), 'no user or group names, no device numbers')
  const size = parseInt(field(124, 135), 8)
  const records = bytes.toString('latin1', 512, 512 + size)
  assert.deepEqual(
    records.split('\n').filter(Boolean).map((r) => r.slice(r.indexOf(' ') + 1, r.indexOf('='))),
    ['SCHILY.xattr.security.capability', 'path', 'uid'],
    'records sorted by key, byte order',
  )
  assert.equal(readNumber(x, 148, 8, 'chksum'), [...x].reduce((sum, b, i) => sum + (i >= 148 && i < 156 ? 0x20 : b), 0), 'checksum')

  const nested = encodeHeader({ name: `a/${'f'.repeat(120)}`, type: 'file' })
  assert.equal(nested.toString('latin1', 0, 100).replace(/\0+$/, ''), `a/PaxHeaders.0/${'f'.repeat(85)}`)
  const utf8 = encodeHeader({ name: 'dir/héllo', type: 'file' })
  assert.equal(utf8.toString('latin1', 0, 100).replace(/\0+$/, ''), 'dir/PaxHeaders.0/hllo', 'only the ASCII characters')

  // dockerd's hand-made whiteout headers set the mode without the file type bits.
  const wh = encodeHeader({ name: '.wh.x', type: 'file', mode: 0o600 }, { modeTypeBits: false })
  assert.equal(wh.toString('latin1', 100, 108), '0000600\0')
  assert.equal(encodeHeader({ name: '.wh.x', type: 'file', mode: 0o600 }).toString('latin1', 100, 108), '0100600\0')
})

test('names: exactly 100 in the name field, longer ones split into prefix or moved to PAX path', () => {
  const cases: Array<{ name: string; pax: boolean; prefix?: string }> = [
    { name: 'n'.repeat(100), pax: false },
    { name: `${'d'.repeat(49)}/${'n'.repeat(50)}`, pax: false },
    { name: 'n'.repeat(101), pax: true }, // no slash to split at
    { name: `a/${'n'.repeat(99)}`, pax: false, prefix: 'a' },
    { name: `${'p'.repeat(155)}/${'n'.repeat(100)}`, pax: false, prefix: 'p'.repeat(155) }, // the largest split
    { name: `${'p'.repeat(156)}/${'n'.repeat(100)}`, pax: true }, // prefix one too long
    { name: `${'p'.repeat(100)}/${'n'.repeat(101)}`, pax: true }, // base one too long
    { name: `${'x'.repeat(60)}/`.repeat(5) + 'file', pax: true }, // 300+ bytes
    { name: `${'a'.repeat(60)}/${'b'.repeat(50)}/`, pax: false, prefix: 'a'.repeat(60) }, // a dir: the trailing slash stays in the name field
    { name: `long/${'d'.repeat(99)}/`, pax: false, prefix: 'long' }, // base with its slash: exactly 100
    { name: `long/${'d'.repeat(100)}/`, pax: true }, // base with its slash: 101
    { name: `long/${'d'.repeat(120)}/`, pax: true }, // base 'ddd/' is 121 bytes
    { name: 'names/héllo-世界.txt', pax: true }, // short but not ASCII
    { name: `ü/${'n'.repeat(99)}`, pax: true }, // non-ASCII is never split
  ]
  for (const c of cases) {
    const encoded = encodeHeader({ name: c.name, type: c.name.endsWith('/') ? 'dir' : 'file' })
    const pax = paxOf(encoded)
    assert.equal(pax !== undefined, c.pax, `${c.name.length}-char name ${JSON.stringify(c.name.slice(0, 20))}: PAX expected ${c.pax}`)
    if (c.pax) {
      assert.equal(pax!.get('path'), c.name)
      // The fallback in the ustar name field is ASCII, so non-PAX readers still decode it.
      assert.match(ustarOf(encoded).name, /^[\x20-\x7e]*$/)
    } else {
      assert.equal(encoded.length, 512)
      assert.equal(ustarOf(encoded).name, c.name, 'ustar name+prefix gives the whole name back')
      assert.equal(encoded.toString('latin1', 345, 500).replace(/\0+$/, ''), c.prefix ?? '')
    }
    assert.equal(only(Buffer.concat([encoded, END_OF_ARCHIVE])).name, c.name)
  }
  // Exactly 100 bytes: the field is full, with no terminating NUL.
  const hundred = encodeHeader({ name: 'n'.repeat(100), type: 'file' })
  assert.equal(hundred[99], 0x6e)
  assert.equal(hundred[100], 0x30, 'the mode field starts right after')
})

test('long linknames go to PAX linkpath; ids past 2097151 to PAX uid/gid; long or non-ASCII owner names to PAX', () => {
  for (const type of ['symlink', 'hardlink'] as const) {
    const target = `${'t'.repeat(40)}/`.repeat(5)
    const encoded = encodeHeader({ name: 'l', type, linkname: target })
    assert.equal(paxOf(encoded)?.get('linkpath'), target)
    assert.equal(only(Buffer.concat([encoded, END_OF_ARCHIVE])).linkname, target)
    const hundred = 'x'.repeat(100)
    assert.equal(paxOf(encodeHeader({ name: 'l', type, linkname: hundred })), undefined, '100 bytes still fit')
    assert.equal(paxOf(encodeHeader({ name: 'l', type, linkname: 'ziel-ü' }))?.get('linkpath'), 'ziel-ü')
  }

  assert.equal(paxOf(encodeHeader({ name: 'f', type: 'file', uid: 2097151, gid: 2097151 })), undefined)
  const big = encodeHeader({ name: 'f', type: 'file', uid: 2097152, gid: 4_000_000 })
  const pax = paxOf(big)!
  assert.equal(pax.get('uid'), '2097152')
  assert.equal(pax.get('gid'), '4000000')
  assert.equal(ustarOf(big).uid, 0, 'the octal field holds a placeholder')
  const h = only(Buffer.concat([big, END_OF_ARCHIVE]))
  assert.equal(h.uid, 2097152)
  assert.equal(h.gid, 4_000_000)

  const names = encodeHeader({ name: 'f', type: 'file', uname: 'ü'.repeat(3), gname: 'g'.repeat(33) })
  assert.equal(paxOf(names)?.get('uname'), 'üüü')
  assert.equal(paxOf(names)?.get('gname'), 'g'.repeat(33))
  const parsed = only(Buffer.concat([names, END_OF_ARCHIVE]))
  assert.equal(parsed.uname, 'üüü')
  assert.equal(parsed.gname, 'g'.repeat(33))
})

test('sizes past 8 GiB go to PAX size; the parser reports the size without needing the content', () => {
  const limit = octalLimit(12)
  assert.equal(limit, 8 * 1024 ** 3 - 1)
  const fits = encodeHeader({ name: 'f', type: 'file', size: limit })
  assert.equal(fits.length, 512)
  assert.equal(decodeHeader(fits, 0).size, limit)

  const size = 10 * 1024 ** 3 + 5
  const encoded = encodeHeader({ name: 'huge.img', type: 'file', size })
  assert.equal(paxOf(encoded)?.get('size'), String(size))
  assert.equal(ustarOf(encoded).size, 0)
  const seen: TarHeader[] = []
  const parser = new TarParser({ entry: (hd) => seen.push(hd), data: () => assert.fail('no content was written'), entryEnd: () => assert.fail('the entry cannot have ended') })
  parser.write(encoded)
  assert.equal(seen.length, 1)
  assert.equal(seen[0]!.size, size)
  assert.equal(parser.position, encoded.length)
  assert.equal(parser.done, false)
  assert.throws(() => parser.end(), corruptError(/Truncated.*huge\.img.*10737418245 bytes of content missing/))
})

test('mtimes: nanoseconds, negative (-1.5 s) and beyond the octal field go to PAX mtime', () => {
  const cases: Array<{ t: Timespec; pax: string | undefined; field: number }> = [
    { t: { sec: 1_700_000_000, nsec: 0 }, pax: undefined, field: 1_700_000_000 },
    { t: { sec: 1_700_000_000, nsec: 1 }, pax: '1700000000.000000001', field: 1_700_000_000 },
    { t: { sec: 0, nsec: 500_000_000 }, pax: '0.5', field: 0 },
    { t: { sec: -2, nsec: 500_000_000 }, pax: '-1.5', field: 0 },
    { t: { sec: -1, nsec: 0 }, pax: '-1', field: 0 },
    { t: { sec: octalLimit(12), nsec: 0 }, pax: undefined, field: octalLimit(12) },
    { t: { sec: octalLimit(12) + 1, nsec: 0 }, pax: '8589934592', field: 0 },
    { t: { sec: 32_503_680_000, nsec: 42 }, pax: '32503680000.000000042', field: 0 }, // year 3000
  ]
  for (const c of cases) {
    const encoded = encodeHeader({ name: 'f', type: 'file', mtime: c.t })
    assert.equal(paxOf(encoded)?.get('mtime'), c.pax, JSON.stringify(c.t))
    assert.equal(ustarOf(encoded).mtime, c.field)
    assert.deepEqual(only(Buffer.concat([encoded, END_OF_ARCHIVE])).mtime, c.t)
  }
})

// ---------------------------------------------------------------- PAX records and times

test('parsePaxTime / formatPaxTime are exact and inverse of each other', () => {
  const table: Array<[string, Timespec]> = [
    ['0', { sec: 0, nsec: 0 }],
    ['1700000000', { sec: 1_700_000_000, nsec: 0 }],
    ['1700000000.123456789', { sec: 1_700_000_000, nsec: 123_456_789 }],
    ['1.5', { sec: 1, nsec: 500_000_000 }],
    ['1.000000001', { sec: 1, nsec: 1 }],
    ['-1', { sec: -1, nsec: 0 }],
    ['-1.5', { sec: -2, nsec: 500_000_000 }],
    ['-0.000000001', { sec: -1, nsec: 999_999_999 }],
    ['9007199254.740993', { sec: 9_007_199_254, nsec: 740_993_000 }],
  ]
  for (const [text, t] of table) {
    assert.deepEqual(parsePaxTime(text, 'mtime'), t, text)
    assert.equal(formatPaxTime(t), text, JSON.stringify(t))
  }
  // Accepted but not canonical: digits past nanoseconds are truncated, a bare dot is zero.
  assert.deepEqual(parsePaxTime('1.1234567899', 'mtime'), { sec: 1, nsec: 123_456_789 })
  assert.deepEqual(parsePaxTime('7.', 'mtime'), { sec: 7, nsec: 0 })
  assert.deepEqual(parsePaxTime('-1.50', 'mtime'), { sec: -2, nsec: 500_000_000 })
  for (const bad of ['', 'x', '1.2.3', '1e9', ' 1', '+1', '0x10', '1.-5']) {
    assert.throws(() => parsePaxTime(bad, 'mtime'), corruptError(/Invalid PAX mtime/), JSON.stringify(bad))
  }
})

test('encodePax / parsePax: record lengths count their own digits; binary values survive', () => {
  // Records whose length crosses a power of ten, where the digit count feeds back into the length.
  for (let n = 0; n < 1100; n += n < 120 ? 1 : 37) {
    const value = 'v'.repeat(n)
    const enc = encodePax([['path', value]])
    const len = Number(enc.toString('latin1', 0, enc.indexOf(0x20)))
    assert.equal(len, enc.length, `value of ${n} bytes`)
    assert.equal(parsePax(enc, 'e').text.get('path'), value)
  }
  assert.equal(encodePax([['path', 'abc']]).toString(), '12 path=abc\n')
  assert.equal(encodePax([['a', 'b'.repeat(4)]]).toString(), '9 a=bbbb\n')
  assert.equal(encodePax([['a', 'b'.repeat(5)]]).toString(), '11 a=bbbbb\n', '9 bytes + 1 digit would be 10, which needs 2 digits: 11')

  const records = encodePax([
    ['path', 'dir/ünïcode=name'],
    ['SCHILY.xattr.user.bin', BINARY],
    ['SCHILY.xattr.user.with=sign', Buffer.from('x')],
    ['mtime', '1.5'],
  ])
  const parsed = parsePax(Buffer.concat([records, Buffer.alloc(20)]), 'e') // trailing NULs end the records
  assert.equal(parsed.text.get('path'), 'dir/ünïcode=name')
  assert.equal(parsed.text.get('mtime'), '1.5')
  assert.equal(parsed.text.size, 2)
  assert.ok(parsed.xattrs.get('user.bin')!.equals(BINARY))
  // Keys end at the first '=': a name with '=' in it cannot be expressed, the value keeps the rest.
  assert.equal(parsed.xattrs.get('user.with')?.toString(), 'sign=x')
})

test('parsePax rejects bad record lengths and malformed records with CORRUPT', () => {
  const bad: Array<[string, RegExp]> = [
    ['11 path=abc\n', /record does not end with a newline/],
    ['13 path=abc\n', /bad record length "13"/],
    ['99 path=abc\n', /bad record length "99"/],
    ['0 path=abc\n', /bad record length "0"/],
    ['2 path=abc\n', /bad record length "2"/],
    ['3 path=abc\n', /record does not end with a newline/],
    ['x path=abc\n', /bad record length "x"/],
    ['0xc path=abc\n', /bad record length "0xc"/],
    ['1.2e1 path=a\n', /bad record length "1.2e1"/],
    ['-12 path=abc\n', /bad record length "-12"/],
    ['12path=abc\n', /record length is missing|bad record length/],
    ['12 pathabcd\n', /no "="/],
    ['nospace', /record length is missing/],
    [`${'1'.repeat(30)} path=a\n`, /record length is missing/],
  ]
  for (const [text, re] of bad) assert.throws(() => parsePax(Buffer.from(text), 'some/entry'), corruptError(new RegExp(`"some/entry".*${re.source}`)), JSON.stringify(text))
})

test('a PAX header with a bad record length makes the parser throw CORRUPT', () => {
  const records = Buffer.from('30 path=short\n')
  const paxHeader = encodeUstar({ name: 'PaxHeaders.0/f', prefix: '', mode: 0o644, uid: 0, gid: 0, size: records.length, mtime: 0, typeflag: 'x', linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0 })
  const input = Buffer.concat([paxHeader, records, padding(records.length), encodeHeader({ name: 'f', type: 'file' }), END_OF_ARCHIVE])
  assert.throws(() => parseAll(input), corruptError(/Invalid PAX header for "PaxHeaders\.0\/f": bad record length "30"/))
  // Same for a PAX numeric value that is not a number.
  const badUid = encodePax([['uid', '12x']])
  const hdr2 = encodeUstar({ name: 'PaxHeaders.0/g', prefix: '', mode: 0o644, uid: 0, gid: 0, size: badUid.length, mtime: 0, typeflag: 'x', linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0 })
  assert.throws(() => parseAll(Buffer.concat([hdr2, badUid, padding(badUid.length), encodeHeader({ name: 'g', type: 'file' }), END_OF_ARCHIVE])), corruptError(/"g": invalid PAX uid "12x"/))
})

// ---------------------------------------------------------------- header blocks

test('readNumber: octal with spaces and NULs, GNU base-256 positive and negative, junk rejected', () => {
  const field = (bytes: number[] | string): Buffer => (typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : Buffer.from(bytes))
  assert.equal(readNumber(field('0000755\0'), 0, 8, 'mode'), 0o755)
  assert.equal(readNumber(field('   755 \0'), 0, 8, 'mode'), 0o755)
  assert.equal(readNumber(field('\0\0\0\0\0\0\0\0'), 0, 8, 'mode'), 0)
  assert.equal(readNumber(field('77777777777 '), 0, 12, 'size'), 8 ** 11 - 1)
  assert.equal(readNumber(field('777777777777'), 0, 12, 'size'), 8 ** 12 - 1, 'all 12 digits, no terminator (star)')
  assert.equal(readNumber(field('12 34567'), 0, 8, 'uid'), 0o12, 'a space ends the number')
  assert.throws(() => readNumber(field('0000789\0'), 0, 8, 'mode'), corruptError(/field mode is not an octal number/))
  assert.throws(() => readNumber(field('-000001\0'), 0, 8, 'uid'), corruptError(/field uid is not an octal number/))

  const b256 = (bytes: number[]): number => readNumber(Buffer.from(bytes), 0, bytes.length, 'f')
  assert.equal(b256([0x80, 0, 0, 0, 0, 0x2d, 0xc6, 0xc0]), 3_000_000)
  assert.equal(b256([0x80, 0, 0, 0, 0x12, 0x34, 0x56, 0x78]), 0x12345678)
  assert.equal(b256([0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x80, 0, 0, 5]), 10 * 1024 ** 3 + 5)
  assert.equal(b256([0x80, 0, 0, 0, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Number.MAX_SAFE_INTEGER)
  // Negative numbers, two's complement as GNU tar writes pre-1970 mtimes in --format=gnu.
  assert.equal(b256(Array(12).fill(0xff)), -1)
  assert.equal(b256([...Array(11).fill(0xff), 0xfe]), -2)
  assert.equal(b256([...Array(8).fill(0xff), 0xff, 0xff, 0xfe, 0x0c]), -500)
  assert.equal(b256([0xff, 0xff, 0xff, 0xff, 0xff, 0xe0, 0, 0, 0, 0, 0, 0x01]), Number.MIN_SAFE_INTEGER)
  assert.throws(() => b256([0x80, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0, 0]), corruptError(/field f is out of range/))
  assert.throws(() => b256([0xff, 0xdf, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), corruptError(/field f is out of range/))
})

test('base-256 numeric fields in a crafted header block are parsed', () => {
  const block = encodeHeader({ name: 'f', type: 'file', uid: 7, gid: 8, mtime: { sec: 100, nsec: 0 } })
  assert.equal(block.length, 512)
  Buffer.from([0x80, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]).copy(block, 108) // uid 2^31-1
  Buffer.from([0x80, 0, 0, 0, 0, 0x3d, 0x09, 0x00]).copy(block, 116) // gid 4000000
  Buffer.from([...Array(11).fill(0xff), 0xfe]).copy(block, 136) // mtime -2
  assert.throws(() => decodeHeader(block, 0), corruptError(/checksum/), 'edited without a new checksum')
  fixChecksum(block)
  const raw = decodeHeader(block, 0)
  assert.equal(raw.uid, 0x7fffffff)
  assert.equal(raw.gid, 4_000_000)
  assert.equal(raw.mtime, -2)
  const h = only(Buffer.concat([block, END_OF_ARCHIVE]))
  assert.equal(h.uid, 0x7fffffff)
  assert.equal(h.gid, 4_000_000)
  assert.deepEqual(h.mtime, { sec: -2, nsec: 0 })
})

test('checksums: the signed-byte sum old tars wrote is accepted; a corrupt block is CORRUPT naming its byte offset', () => {
  // High bytes in the name make the signed and unsigned sums differ.
  const ustar = encodeHeader({ name: 'caf', type: 'file' })
  Buffer.from('n\xe9\xff', 'latin1').copy(ustar, 0)
  ustar.fill(0x20, 148, 156)
  let signed = 0
  for (const b of ustar) signed += b >= 0x80 ? b - 256 : b
  ustar.write(`${signed.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1')
  // Checksum passes; the name is not UTF-8, which is refused as NOT_SUPPORTED rather than mangled.
  assert.throws(() => decodeHeader(ustar, 0), (e: unknown) => isStrataError(e, 'NOT_SUPPORTED') && /not valid UTF-8: 6ee9ff/.test(e.message))

  const input = archive([
    { h: { name: 'first', type: 'file', size: 5 }, body: Buffer.from('12345') },
    { h: { name: 'second', type: 'file' } },
  ])
  const corrupt = Buffer.from(input)
  corrupt[1024 + 3] ^= 0x01 // a byte of the second header's name
  assert.throws(() => parseAll(corrupt), corruptError(/Invalid tar header at byte 1024: checksum mismatch/))
  const badSum = Buffer.from(input)
  badSum.write('0000000\0', 1024 + 148, 'latin1')
  assert.throws(() => parseAll(badSum, 7), corruptError(/at byte 1024: checksum mismatch/))
  assert.throws(() => parseAll(Buffer.from('this is not a tar archive'.padEnd(600, '.'))), corruptError(/at byte 0: checksum mismatch/))
})

test('V7 headers: no magic, NUL typeflag; a trailing slash means a directory', () => {
  const v7 = (name: string, size: number): Buffer => {
    const b = encodeUstar({ name, prefix: '', mode: 0o755, uid: 3, gid: 4, size, mtime: 1000, typeflag: '0', linkname: '', uname: 'ignored', gname: 'ignored', devmajor: 0, devminor: 0 })
    b.fill(0, 257, 512) // magic, version, uname, gname, devices, prefix: none of these exist in V7
    b[156] = 0
    return fixChecksum(b)
  }
  const input = Buffer.concat([v7('olddir/', 0), v7('olddir/file', 3), Buffer.from('abc'), padding(3), END_OF_ARCHIVE])
  assert.equal(decodeHeader(input.subarray(0, 512), 0).format, 'v7')
  assert.equal(decodeHeader(input.subarray(0, 512), 0).typeflag, '\0')
  const { entries } = parseAll(input)
  assert.deepEqual(
    entries.map((e) => [e.header.name, e.header.type, e.header.mode, e.header.uid, e.header.gid, e.header.uname, e.header.size, e.body.toString()]),
    [
      ['olddir/', 'dir', 0o755, 3, 4, '', 0, ''],
      ['olddir/file', 'file', 0o755, 3, 4, '', 3, 'abc'],
    ],
  )
})

test('end of archive: two zero blocks, one zero block then EOF, or EOF after an entry; zero then non-zero is CORRUPT', () => {
  const one = { h: { name: 'a', type: 'file', size: 2 } as TarHeaderInput, body: Buffer.from('hi') }
  const two = { h: { name: 'b', type: 'dir' } as TarHeaderInput }
  const full = archive([one, two])
  assert.equal(parseAll(full).entries.length, 2)

  const oneZero = archive([one, two], Buffer.alloc(512))
  const r = parseAll(oneZero)
  assert.equal(r.entries.length, 2)
  assert.equal(r.done, true)
  assert.ok(Buffer.concat(r.stream).equals(oneZero))

  assert.equal(parseAll(archive([one, two], Buffer.alloc(0))).entries.length, 2, 'EOF right after an entry')
  assert.equal(parseAll(Buffer.alloc(0)).entries.length, 0, 'an empty stream is an empty archive')

  const zeroThenHeader = Buffer.concat([encodeHeader(one.h), one.body, padding(2), Buffer.alloc(512), encodeHeader(two.h), END_OF_ARCHIVE])
  assert.throws(() => parseAll(zeroThenHeader), corruptError(/a zero block is followed by a non-zero block at byte 1536/))
  const zeroThenJunk = Buffer.concat([full.subarray(0, full.length - 512), Buffer.from([0, 0, 0, 1]), Buffer.alloc(508)])
  assert.throws(() => parseAll(zeroThenJunk, 100), corruptError(/zero block is followed by a non-zero block/))

  // Truncations are CORRUPT, not a silent short archive.
  assert.throws(() => parseAll(full.subarray(0, 700)), corruptError(/Truncated.*inside "a"|Truncated.*padding/))
  assert.throws(() => parseAll(full.subarray(0, 513)), corruptError(/inside "a", 1 bytes of content missing/))
  assert.throws(() => parseAll(full.subarray(0, 1024 + 100)), corruptError(/inside a header block/))
  assert.throws(() => parseAll(full.subarray(0, 2048 + 100)), corruptError(/inside the end-of-archive marker/))
  // A missing (not partial) final padding is accepted, as Go's reader does.
  assert.equal(parseAll(full.subarray(0, 514)).entries.length, 1)
})

// ---------------------------------------------------------------- streaming invariants

function mixedArchive(): Buffer {
  return archive(
    [
      { h: { name: './', type: 'dir', mode: 0o755 } },
      { h: { name: 'one', type: 'file', size: 1 }, body: Buffer.from('1') },
      { h: { name: `deep/${'x'.repeat(60)}/`.repeat(4) + 'f', type: 'file', size: 511, xattrs: new Map([['user.b', BINARY]]) }, body: randomBytesSeeded(511, 1) },
      { h: { name: 'b512', type: 'file', size: 512, mtime: { sec: 1, nsec: 5 } }, body: randomBytesSeeded(512, 2) },
      { h: { name: 'b513', type: 'file', size: 513 }, body: randomBytesSeeded(513, 3) },
      { h: { name: 'l', type: 'symlink', linkname: 'l'.repeat(300) } },
      { h: { name: 'h', type: 'hardlink', linkname: 'one' } },
      { h: { name: 'dev', type: 'char', devmajor: 1, devminor: 3 } },
      { h: { name: 'huge-uid', type: 'file', uid: 5_000_000, size: 3000 }, body: randomBytesSeeded(3000, 4) },
      { h: { name: 'empty', type: 'file', size: 0 } },
    ],
    // Two zero blocks, then trailing junk that belongs to no entry.
    Buffer.concat([END_OF_ARCHIVE, Buffer.from('trailing garbage after the end\n')]),
  )
}

test('feeding the parser 1 byte at a time gives the same events; segments + content == input', () => {
  const input = mixedArchive()
  const whole = parseAll(input)
  assert.equal(whole.entries.length, 10)
  assert.ok(Buffer.concat(whole.stream).equals(input), 'raw accounting covers every byte')
  for (const size of [1, 3, 511, 512, 513, 4096]) {
    const piecewise = parseAll(input, size)
    assert.deepEqual(piecewise.events, whole.events, `chunks of ${size}`)
    assert.ok(Buffer.concat(piecewise.stream).equals(input), `raw accounting in chunks of ${size}`)
  }
  // Each segment ends with the header block of the entry after it.
  const segs = whole.events.flatMap((e, i) => (e.kind === 'segment' && whole.events[i + 1]?.kind === 'entry' ? [[e.bytes, (whole.events[i + 1] as { header: TarHeader }).header] as const] : []))
  assert.equal(segs.length, 10)
  for (const [seg, header] of segs) {
    const raw = decodeHeader(seg.subarray(seg.length - 512), 0)
    assert.equal(raw.size, header.size)
    if (!header.pax.has('path')) assert.equal(raw.name, header.name)
  }
  // The segment before an entry starts with the padding of the content before it.
  assert.equal(segs[2]![0].length, 511 + 3 * 512, "one's padding, the PAX header, its records, the ustar block")
  // The last segments hold the end-of-archive blocks and the trailing bytes,
  // then one empty segment, as dockerd 20.10's tar-split ends every file.
  const [beforeLast, last] = whole.events.slice(-2)
  assert.equal(beforeLast!.kind, 'segment')
  assert.ok((beforeLast as { bytes: Buffer }).bytes.toString().endsWith('trailing garbage after the end\n'))
  assert.equal(last!.kind, 'segment')
  assert.equal((last as { bytes: Buffer }).bytes.length, 0)

  // Without a segment handler the parser gives the same entries and content.
  const noAccounting = parseAll(input, 100, false)
  assert.deepEqual(noAccounting.events, whole.events.filter((e) => e.kind !== 'segment'))
})

// ---------------------------------------------------------------- readTar

async function* chunked(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let off = 0; off < buf.length; off += size) yield buf.subarray(off, off + size)
}

test('readTar yields entries with their bodies; unread bodies are skipped', async () => {
  const input = mixedArchive()
  const expected = parseAll(input).entries
  for (const size of [1, 700, input.length]) {
    const got: Array<{ header: TarHeader; body: Buffer }> = []
    for await (const entry of readTar(chunked(input, size))) {
      const parts: Buffer[] = []
      for await (const c of entry.body()) parts.push(Buffer.from(c))
      got.push({ header: entry.header, body: Buffer.concat(parts) })
    }
    assert.deepEqual(got, expected, `chunks of ${size}`)
  }

  // Skip every other body, and read only the first chunk of another: the next header is still found.
  const names: string[] = []
  let i = 0
  for await (const entry of readTar(chunked(input, 100))) {
    names.push(entry.header.name)
    if (entry.header.name === 'b513') {
      for await (const c of entry.body()) {
        assert.ok(c.length > 0)
        break
      }
    } else if (i++ % 2 === 1) {
      const parts: Buffer[] = []
      for await (const c of entry.body()) parts.push(c)
      assert.deepEqual(Buffer.concat(parts), expected.find((e) => e.header.name === entry.header.name)!.body)
    }
  }
  assert.deepEqual(names, expected.map((e) => e.header.name))

  // Readable streams work as sources; an early break closes the source.
  const stream = Readable.from(chunked(input, 50))
  for await (const entry of readTar(stream)) {
    assert.equal(entry.header.name, './')
    break
  }
  assert.equal(stream.destroyed, true)

  // Errors surface from the iterator.
  const corrupt = Buffer.from(input)
  corrupt[512 + 100] ^= 1
  await assert.rejects(async () => {
    for await (const e of readTar(chunked(corrupt, 64))) for await (const _ of e.body());
  }, corruptError(/at byte 512: checksum mismatch/))
})

// ---------------------------------------------------------------- GNU tar, both directions

interface Listed {
  perms: string
  uid: number
  gid: number
  sizeOrDev: string
  time: string
  name: string
  link: string | undefined
}

/** Parses `tar --numeric-owner --full-time -tv` lines (names without " -> " or " link to " inside). */
function parseListing(text: string): Listed[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const m = /^(\S{10}) (\d+)\/(\d+) +(\S+) (\S+ \S+) +(.*)$/.exec(line)
      assert.ok(m, `unexpected tar -tv line: ${line}`)
      let name = m[6]!
      let target: string | undefined
      for (const sep of [' -> ', ' link to ']) {
        const at = name.indexOf(sep)
        if (at >= 0) {
          target = name.slice(at + sep.length)
          name = name.slice(0, at)
        }
      }
      return { perms: m[1]!, uid: Number(m[2]), gid: Number(m[3]), sizeOrDev: m[4]!, time: m[5]!.trim(), name, link: target }
    })
}

const TYPE_CHAR: Record<string, string> = { file: '-', dir: 'd', symlink: 'l', hardlink: 'h', char: 'c', block: 'b', fifo: 'p' }

function permString(h: TarHeader): string {
  const m = h.mode
  const bit = (mask: number, c: string): string => (m & mask ? c : '-')
  const special = (x: number, special: number, lower: string, upper: string): string => (m & special ? (m & x ? lower : upper) : m & x ? 'x' : '-')
  return (
    TYPE_CHAR[h.type]! +
    bit(0o400, 'r') + bit(0o200, 'w') + special(0o100, 0o4000, 's', 'S') +
    bit(0o40, 'r') + bit(0o20, 'w') + special(0o10, 0o2000, 's', 'S') +
    bit(0o4, 'r') + bit(0o2, 'w') + special(0o1, 0o1000, 't', 'T')
  )
}

/** The --full-time rendering of a time in UTC (fraction only when non-zero, as GNU tar prints it). */
function fullTime(t: Timespec): string {
  const base = new Date(t.sec * 1000).toISOString().slice(0, 19).replace('T', ' ')
  return t.nsec === 0 ? base : `${base}.${String(t.nsec).padStart(9, '0').replace(/0+$/, '')}`
}

const LIST_ENV = { ...process.env, TZ: 'UTC', LC_ALL: 'C.UTF-8' }

/** Compares GNU tar's listing of `tarBytes` with TarParser's headers of the same bytes. */
async function compareWithListing(tarBytes: Buffer, what: string): Promise<TarHeader[]> {
  const { stdout } = await run('tar', ['--numeric-owner', '--full-time', '-tvf', '-'], { input: tarBytes, env: LIST_ENV })
  const listed = parseListing(stdout.toString())
  const headers = parseAll(tarBytes).entries.map((e) => e.header)
  assert.deepEqual(headers.map((h) => h.name), listed.map((l) => l.name), `${what}: names`)
  for (const [i, h] of headers.entries()) {
    const l = listed[i]!
    const where = `${what}: ${h.name}`
    assert.equal(permString(h), l.perms, `${where}: type and mode`)
    assert.equal(h.uid, l.uid, `${where}: uid`)
    assert.equal(h.gid, l.gid, `${where}: gid`)
    if (h.type === 'char' || h.type === 'block') assert.equal(`${h.devmajor},${h.devminor}`, l.sizeOrDev, `${where}: device`)
    else assert.equal(String(h.size), l.sizeOrDev, `${where}: size`)
    // GNU tar prints negative fractional times truncated towards zero; only compare the rest.
    if (h.mtime.sec >= 0 || h.mtime.nsec === 0) assert.equal(fullTime(h.mtime), l.time, `${where}: mtime`)
    if (h.type === 'symlink' || h.type === 'hardlink') assert.equal(h.linkname, l.link, `${where}: link target`)
    else assert.equal(l.link, undefined)
  }
  return headers
}

type Format = 'gnu' | 'oldgnu' | 'posix' | 'ustar' | 'v7'
const FORMATS: Format[] = ['gnu', 'oldgnu', 'posix', 'ustar', 'v7']

const SPLIT_NAME = `d/${'p'.repeat(90)}/${'q'.repeat(60)}`
const LONG_NAME = `d/${'L'.repeat(200)}`
const LONG_TARGET = `${'t'.repeat(49)}/`.repeat(3)

/** A small tree with what `format` can hold, all times set to known values. */
async function makeTree(root: string, format: Format): Promise<Map<string, Timespec>> {
  const p = (rel: string): string => join(root, rel)
  const times = new Map<string, Timespec>()
  let n = 0
  const stamp = (rel: string, t: Timespec = { sec: 1_600_000_000 + 1000 * n, nsec: (n++ * 123_456_789) % 1_000_000_000 }): void => {
    lutimens(p(rel), t, t)
    times.set(rel, t)
  }
  await mkdir(p('d/sub'), { recursive: true })
  await writeFile(p('d/file'), 'hello\n')
  await chmod(p('d/file'), 0o4755)
  await writeFile(p('d/empty'), '')
  await writeFile(p('d/sub/x'), randomBytesSeeded(1000, 9))
  await chown(p('d/sub/x'), 1234, 5678)
  await chmod(p('d/sub/x'), 0o2640)
  await writeFile(p('d/sub/b512'), randomBytesSeeded(512, 10))
  await symlink('file', p('d/link'))
  await link(p('d/file'), p('d/hard'))
  await chmod(p('d/sub'), 0o1777)
  if (format !== 'v7') {
    mknod(p('d/fifo'), S_IFIFO | 0o600, 0, 0)
    mknod(p('d/chr'), S_IFCHR | 0o640, 300, 70000)
    mknod(p('d/blk'), S_IFBLK | 0o660, 8, 1)
    await mkdir(p(SPLIT_NAME.slice(0, SPLIT_NAME.lastIndexOf('/'))))
    await writeFile(p(SPLIT_NAME), 'split\n')
  }
  if (format === 'gnu' || format === 'oldgnu' || format === 'posix') {
    await writeFile(p(LONG_NAME), 'long\n')
    await symlink(LONG_TARGET, p('d/longlink'))
    await writeFile(p('d/old'), 'old\n')
    await chown(p('d/old'), 3_000_000, 4_000_000)
    stamp('d/old', { sec: -2, nsec: 0 })
  }
  if (format === 'posix') await writeFile(p('d/héllo-世界.txt'), 'utf8\n')
  for (const rel of ['d/file', 'd/empty', 'd/sub/x', 'd/sub/b512', 'd/link', 'd/fifo', 'd/chr', 'd/blk', SPLIT_NAME, LONG_NAME, 'd/longlink', 'd/héllo-世界.txt']) {
    if (await lstat(p(rel)).then(() => true, () => false)) stamp(rel)
  }
  if (format !== 'v7') stamp(SPLIT_NAME.slice(0, SPLIT_NAME.lastIndexOf('/')))
  stamp('d/sub')
  stamp('d')
  return times
}

test("GNU tar's archives in every format parse like `tar -tv` lists them", async (t: TestContext) => {
  if (!requireRoot(t) || !requireTool(t, 'tar')) return
  for (const format of FORMATS) {
    const dir = tempDirFor(t, `tar-${format}-`)
    const root = join(dir, 'root')
    await mkdir(root)
    const times = await makeTree(root, format)
    const { stdout: tarBytes } = await run('tar', [`--format=${format}`, '-C', root, '-cf', '-', 'd'])
    const headers = await compareWithListing(tarBytes, format)
    const byName = new Map(headers.map((h) => [h.name.replace(/\/$/, ''), h]))

    // Every file made it, and times match what the tree holds: exactly in
    // posix format (PAX mtime with ns), else floored to the second.
    for (const [rel, t0] of times) {
      const h = byName.get(rel)
      assert.ok(h, `${format}: ${rel} is in the archive`)
      const expected = format === 'posix' ? t0 : { sec: t0.sec, nsec: 0 }
      if (format === 'posix' || t0.sec >= 0) assert.deepEqual(h.mtime, expected, `${format}: ${rel} mtime`)
    }
    const file = byName.get('d/file')!
    assert.equal(file.type, 'file')
    assert.equal(file.mode, 0o4755)
    assert.equal(byName.get('d/hard')!.type, 'hardlink')
    assert.equal(byName.get('d/hard')!.linkname, 'd/file')
    assert.equal(byName.get('d/sub')!.mode, 0o1777)
    assert.equal(byName.get('d/sub/x')!.mode, 0o2640)
    assert.equal(file.uname, format === 'v7' ? '' : 'root')
    if (format !== 'v7') {
      assert.deepEqual([byName.get('d/chr')!.devmajor, byName.get('d/chr')!.devminor], [300, 70000])
      assert.equal(byName.get('d/fifo')!.type, 'fifo')
      assert.ok(byName.has(SPLIT_NAME))
    }
    if (format === 'gnu' || format === 'oldgnu' || format === 'posix') {
      const old = byName.get('d/old')!
      assert.deepEqual([old.uid, old.gid], [3_000_000, 4_000_000], `${format}: big ids (base-256 in gnu, PAX in posix)`)
      assert.deepEqual(old.mtime, { sec: -2, nsec: 0 }, `${format}: pre-1970 mtime`)
      assert.ok(byName.has(LONG_NAME))
      assert.equal(byName.get('d/longlink')!.linkname, LONG_TARGET)
    }
    if (format === 'posix') assert.ok(byName.has('d/héllo-世界.txt'))
  }
})

test('GNU tar parses -1.5 s mtimes from its posix archives the way we do', async (t: TestContext) => {
  if (!requireTool(t, 'tar')) return
  const dir = tempDirFor(t, 'tar-neg-')
  await writeFile(join(dir, 'old'), '')
  lutimens(join(dir, 'old'), { sec: -2, nsec: 500_000_000 }, { sec: -2, nsec: 500_000_000 })
  for (const format of ['posix', 'gnu'] as const) {
    const { stdout } = await run('tar', [`--format=${format}`, '-C', dir, '-cf', '-', 'old'])
    const h = only(stdout)
    assert.deepEqual(h.mtime, format === 'posix' ? { sec: -2, nsec: 500_000_000 } : { sec: -2, nsec: 0 }, format)
  }
})

test('GNU tar lists and extracts what encodeHeader writes: names, modes, owners, ns mtimes, xattrs, devices, links', async (t: TestContext) => {
  if (!requireRoot(t) || !requireTool(t, 'tar', 'getfattr')) return
  const dir = tempDirFor(t, 'tar-extract-')
  const deep = `x/${['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(60)).join('/')}/bottom-file`
  const mt = (sec: number, nsec: number): Timespec => ({ sec, nsec })
  const file = (name: string, content: string, h: Partial<TarHeaderInput> = {}): Item => ({ h: { name, type: 'file', size: Buffer.byteLength(content), ...h }, body: Buffer.from(content) })
  const items: Item[] = [
    { h: { name: 'x/', type: 'dir', mode: 0o755, mtime: mt(1_600_000_000, 111_111_111) } },
    file('x/file', 'hello\n', { mode: 0o4755, uid: 1000, gid: 1001, uname: 'nobody-here', mtime: mt(1_700_000_000, 123_456_789), xattrs: new Map([['user.bin', BINARY], ['trusted.t', Buffer.from('tv')], ['user.text', Buffer.from('plain')]]) }),
    { h: { name: 'x/sticky/', type: 'dir', mode: 0o1777, uid: 7, gid: 8, mtime: mt(1_600_000_001, 1), xattrs: new Map([['user.d', Buffer.from([0, 0, 0])]]) } },
    file('x/sgid', 'sgid\n', { mode: 0o2750, uid: 0, gid: 50, mtime: mt(1_600_000_002, 999_999_999) }),
    file('x/all-bits', '', { mode: 0o7777, mtime: mt(1_600_000_003, 0) }),
    { h: { name: 'x/link', type: 'symlink', linkname: 'file', uid: 1000, gid: 1000, mtime: mt(1_600_000_004, 400_000_000) } },
    { h: { name: 'x/hard', type: 'hardlink', linkname: 'x/file' } },
    { h: { name: 'x/chr', type: 'char', mode: 0o640, devmajor: 300, devminor: 70000, mtime: mt(1_600_000_005, 5) } },
    { h: { name: 'x/whiteout', type: 'char', mode: 0, devmajor: 0, devminor: 0, mtime: mt(1_600_000_006, 6) } },
    { h: { name: 'x/blk', type: 'block', mode: 0o660, devmajor: 8, devminor: 1, mtime: mt(1_600_000_007, 7) } },
    { h: { name: 'x/fifo', type: 'fifo', mode: 0o620, mtime: mt(1_600_000_008, 8) } },
    file(`x/${'n'.repeat(150)}`, 'long name\n', { mtime: mt(1_600_000_009, 9) }),
    file(`x/${'s'.repeat(120)}/split`, 'split\n', { mtime: mt(1_600_000_010, 10) }),
    file(deep, 'deep\n', { mtime: mt(1_600_000_011, 11) }),
    file('x/héllo-世界.txt', 'utf8\n', { uname: 'ünï', gname: 'gröup', mtime: mt(1_600_000_012, 12) }),
    { h: { name: 'x/longlink', type: 'symlink', linkname: LONG_TARGET, mtime: mt(1_600_000_013, 13) } },
    file('x/huge-ids', 'ids\n', { uid: 3_000_000, gid: 4_000_001, mtime: mt(1_600_000_014, 14) }),
    file('x/negative', 'old\n', { mtime: mt(-2, 500_000_000) }),
    file('x/far-future', 'future\n', { mtime: mt(octalLimit(12) + 12345, 678) }),
    file('x/zero-time', 'zero\n', { mtime: mt(0, 0) }),
  ]
  const tarBytes = archive(items)
  await compareWithListing(tarBytes, 'encodeHeader')

  const out = join(dir, 'out')
  await mkdir(out)
  await run('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '--same-owner', '-xpf', '-', '-C', out], { input: tarBytes })

  for (const { h, body } of items) {
    const path = join(out, h.name)
    const st = await lstat(path, { bigint: true })
    const where = h.name
    const type = h.type === 'hardlink' ? 'file' : h.type
    const isType: Record<string, boolean> = { file: st.isFile(), dir: st.isDirectory(), symlink: st.isSymbolicLink(), char: st.isCharacterDevice(), block: st.isBlockDevice(), fifo: st.isFIFO() }
    assert.ok(isType[type], `${where}: is a ${type}`)
    if (h.type === 'hardlink') {
      assert.equal(st.ino, (await lstat(join(out, h.linkname!), { bigint: true })).ino, `${where}: same inode as its target`)
      continue
    }
    if (h.type !== 'symlink') assert.equal(Number(st.mode) & 0o7777, h.mode ?? (h.type === 'dir' ? 0o755 : 0o644), `${where}: mode`)
    assert.equal(Number(st.uid), h.uid ?? 0, `${where}: uid`)
    assert.equal(Number(st.gid), h.gid ?? 0, `${where}: gid`)
    assert.equal(st.mtimeNs, ns(h.mtime ?? { sec: 0, nsec: 0 }), `${where}: mtime to the nanosecond`)
    if (h.type === 'symlink') assert.equal(await readlink(path), h.linkname, `${where}: target`)
    if (h.type === 'char' || h.type === 'block') assert.deepEqual([major(st.rdev), minor(st.rdev)], [h.devmajor, h.devminor], `${where}: device`)
    if (body !== undefined) assert.ok((await readFile(path)).equals(body), `${where}: content`)
  }

  // Extended attributes, read back with getfattr (hex, so binary values compare exactly).
  for (const { h } of items) {
    if (h.type === 'symlink' || h.type === 'hardlink') continue
    const { stdout } = await run('getfattr', ['-h', '--absolute-names', '-d', '-m', '-', '-e', 'hex', join(out, h.name)])
    const got = new Map<string, string>()
    for (const line of stdout.toString().split('\n')) {
      const m = /^([^#=][^=]*)=0x([0-9a-f]*)$/.exec(line)
      if (m) got.set(m[1]!, m[2]!)
    }
    const want = new Map([...(h.xattrs ?? new Map<string, Buffer>())].map(([k, v]) => [k, v.toString('hex')]))
    assert.deepEqual(got, want, `${h.name}: xattrs`)
  }
})
