import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes, randomInt } from 'node:crypto'
import { Crc64, crc64 } from '../src/archive/tarsplit/crc64.js'

/**
 * Reference: Go's hash/crc64 transcribed literally (bytewise, one table,
 * BigInt register), so the fast implementation is checked against the
 * algorithm rather than against itself.
 */
const ISO = 0xd800000000000000n
const MASK = 0xffffffffffffffffn
const REF_TABLE: bigint[] = []
for (let i = 0n; i < 256n; i++) {
  let crc = i
  for (let j = 0; j < 8; j++) crc = (crc & 1n) === 1n ? (crc >> 1n) ^ ISO : crc >> 1n
  REF_TABLE.push(crc)
}

function refUpdate(crc: bigint, p: Uint8Array): bigint {
  crc = ~crc & MASK
  for (const b of p) crc = REF_TABLE[Number((crc ^ BigInt(b)) & 0xffn)]! ^ (crc >> 8n)
  return ~crc & MASK
}

function refSum(crc: bigint): Buffer {
  const out = Buffer.alloc(8)
  out.writeBigUInt64BE(crc)
  return out
}

test('known vectors match Go crc64.MakeTable(crc64.ISO)', () => {
  const vectors: Array<[string, string]> = [
    ['', '0000000000000000'],
    ['123456789', 'b90956c775a41001'],
    // From the golden table in Go's src/hash/crc64/crc64_test.go.
    ['a', '3420000000000000'],
    ['ab', '36c4200000000000'],
    ['abc', '3776c42000000000'],
    ['abcd', '336776c420000000'],
  ]
  for (const [input, hex] of vectors) {
    assert.equal(crc64(Buffer.from(input)).toString('hex'), hex, `crc64(${JSON.stringify(input)})`)
    assert.equal(refSum(refUpdate(0n, Buffer.from(input))).toString('hex'), hex, `reference for ${JSON.stringify(input)}`)
  }
})

test('digest is 8 bytes, big-endian, and does not reset the state', () => {
  const c = new Crc64()
  c.update(Buffer.from('1234'))
  const mid = c.digest()
  assert.equal(mid.length, 8)
  assert.deepEqual(c.digest(), mid)
  c.update(Buffer.from('56789'))
  assert.equal(c.digest().readBigUInt64BE(0), 0xb90956c775a41001n)
})

test('slicing-by-8 equals the bytewise reference on random inputs', () => {
  for (let round = 0; round < 300; round++) {
    // Mostly short lengths (every tail/alignment case), some long ones.
    const len = round % 10 === 0 ? randomInt(0, 20_000) : randomInt(0, 300)
    // A random offset into a larger buffer so the word path sees every
    // byteOffset alignment, not just the pool's 8-byte aligned slices.
    const offset = randomInt(0, 8)
    const data = randomBytes(len + offset).subarray(offset)
    assert.deepEqual(crc64(data), refSum(refUpdate(0n, data)), `len=${len} offset=${offset}`)
  }
})

test('incremental updates equal one-shot at random split points', () => {
  for (let round = 0; round < 200; round++) {
    const len = randomInt(0, round % 5 === 0 ? 50_000 : 500)
    const data = randomBytes(len)
    const oneShot = crc64(data)
    const c = new Crc64()
    let ref = 0n
    let pos = 0
    while (pos < len) {
      const next = Math.min(len, pos + randomInt(0, Math.max(2, len >> 2)))
      const piece = data.subarray(pos, next)
      c.update(piece)
      ref = refUpdate(ref, piece)
      pos = next
    }
    c.update(new Uint8Array(0))
    assert.deepEqual(c.digest(), oneShot, `len=${len}`)
    assert.deepEqual(refSum(ref), oneShot, `reference len=${len}`)
  }
})

test('accepts a plain Uint8Array (not only Buffer)', () => {
  const bytes = new TextEncoder().encode('123456789'.repeat(20))
  assert.deepEqual(crc64(bytes), refSum(refUpdate(0n, bytes)))
})

test('long inputs (three-lane blocks, their edges, the copy window\'s edges) equal the reference', () => {
  // The WebAssembly path checksums blocks of 3 x 1024 bytes as three streams and copies input in 256 KiB windows.
  const lengths = [3071, 3072, 3073, 3072 * 2 + 15, 3072 * 7 + 1, 262_144 - 1, 262_144, 262_144 + 3072 + 9, 600_000]
  for (const len of lengths) {
    const offset = randomInt(0, 8)
    const data = randomBytes(len + offset).subarray(offset)
    assert.deepEqual(crc64(data), refSum(refUpdate(0n, data)), `len=${len} offset=${offset}`)
    // Continued from a register that is not the initial one.
    const c = new Crc64()
    c.update(data.subarray(0, 5))
    c.update(data.subarray(5))
    assert.deepEqual(c.digest(), refSum(refUpdate(0n, data)), `len=${len} split at 5`)
  }
})
