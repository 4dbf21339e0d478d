/**
 * Digests, chainIDs and the hashing stream, checked against node:crypto
 * computed independently and against values Docker publishes.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes, randomInt } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { test } from 'node:test'
import { chainId, chainIds, digestHex, digestStream, EMPTY_SHA256, HashingStream, isDigest, parseDigest, sha256Of, verifyDigest, type Digest } from '../src/digest/index.js'
import { isStrataError } from '../src/errors/index.js'

const sha = (data: string | Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`
const HEX = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'

function invalidArgument(value: string): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isStrataError(e, 'INVALID_ARGUMENT'), `expected INVALID_ARGUMENT, got ${String(e)}`)
    assert.ok(e.message.includes(JSON.stringify(value)), `the message names the bad value: ${e.message}`)
    return true
  }
}

test('parseDigest accepts sha256:<hex> and bare hex', () => {
  assert.equal(parseDigest(`sha256:${HEX}`), `sha256:${HEX}`)
  assert.equal(parseDigest(HEX), `sha256:${HEX}`)
  assert.equal(parseDigest(`  sha256:${HEX}\n`), `sha256:${HEX}`, 'surrounding whitespace (a file read with its newline) is trimmed')
  assert.equal(digestHex(parseDigest(HEX)), HEX)
  assert.equal(isDigest(`sha256:${HEX}`), true)
  assert.equal(isDigest(HEX), false)
  assert.equal(isDigest(42), false)
})

test('parseDigest rejects uppercase, short, long, non-hex and other algorithms with INVALID_ARGUMENT', () => {
  const bad = [
    '',
    `sha256:${HEX.toUpperCase()}`,
    HEX.toUpperCase(),
    `sha256:${HEX.slice(0, 10)}A${HEX.slice(11)}`,
    `SHA256:${HEX}`,
    `sha256:${HEX.slice(1)}`,
    HEX.slice(1),
    `sha256:${HEX}0`,
    `sha256:${HEX.slice(1)}g`,
    `sha512:${'a'.repeat(128)}`,
    `sha384:${'a'.repeat(96)}`,
    `md5:${'a'.repeat(32)}`,
    `blake3:${HEX}`,
    `sha256-${HEX}`,
    `sha256: ${HEX}`,
    `sha256:${HEX.slice(0, 32)} ${HEX.slice(32)}`,
  ]
  for (const value of bad) assert.throws(() => parseDigest(value), invalidArgument(value), JSON.stringify(value))
})

test('sha256Of and EMPTY_SHA256 match node:crypto', () => {
  assert.equal(EMPTY_SHA256, `sha256:${HEX}`)
  assert.equal(sha256Of('hello'), sha('hello'))
  const buf = randomBytes(10_000)
  assert.equal(sha256Of(buf), sha(buf))
})

test("Docker's empty-layer diffID is the sha256 of 1024 zero bytes (an empty tar)", () => {
  const known = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef'
  assert.equal(sha(Buffer.alloc(1024)), known, 'verified independently with node:crypto')
  assert.equal(sha256Of(Buffer.alloc(1024)), known)
  assert.notEqual(EMPTY_SHA256, known)
})

test('chainId: one diffID is its own chainID; two is sha256("a b"); chainIds is the prefix sequence', () => {
  const ids = Array.from({ length: 6 }, (_, i) => sha256Of(`layer ${i}`) as Digest)
  const [a, b, c] = ids as [Digest, Digest, Digest]
  assert.equal(chainId([a]), a)
  assert.equal(chainId([a, b]), sha(`${a} ${b}`))
  assert.equal(chainId([a, b, c]), sha(`${sha(`${a} ${b}`)} ${c}`))
  assert.notEqual(chainId([a, b]), chainId([b, a]), 'order matters')

  const all = chainIds(ids)
  assert.equal(all.length, ids.length)
  for (let n = 1; n <= ids.length; n++) assert.equal(all[n - 1], chainId(ids.slice(0, n)), `chainIds[${n - 1}] == chainId(first ${n})`)
  // Prefix property: the chain of a longer stack starts with the chain of any prefix.
  assert.deepEqual(chainIds(ids.slice(0, 3)), all.slice(0, 3))
  assert.deepEqual(chainIds([]), [])
  assert.throws(() => chainId([]), (e: unknown) => isStrataError(e, 'INVALID_ARGUMENT'))

  // The empty layer stacked on itself: bare hex parsed, then chained with the "sha256:" prefixes.
  const empty = '5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef'
  const twice = chainId([parseDigest(empty), parseDigest(empty)])
  assert.equal(twice, sha(`sha256:${empty} sha256:${empty}`))
})

test('HashingStream passes data through unchanged and digests it like createHash, in random chunks', async () => {
  for (const total of [0, 1, 63, 64, 65, 4096, 1_000_003]) {
    const data = randomBytes(total)
    const chunks: Buffer[] = []
    for (let off = 0; off < total; ) {
      const n = Math.min(total - off, randomInt(1, 70_000))
      chunks.push(data.subarray(off, off + n))
      off += n
    }
    const hs = new HashingStream()
    assert.throws(() => hs.digest(), (e: unknown) => isStrataError(e, 'INVALID_ARGUMENT'), 'no digest before the end')
    const out: Buffer[] = []
    await pipeline(
      Readable.from(chunks),
      hs,
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          out.push(chunk)
          cb()
        },
      }),
    )
    assert.equal(hs.digest(), sha(data), `${total} bytes in ${chunks.length} chunks`)
    assert.equal(hs.size, total)
    assert.ok(Buffer.concat(out).equals(data), 'pass-through is byte-exact')

    const viaStream = await digestStream(Readable.from(chunks))
    assert.deepEqual(viaStream, { digest: sha(data), size: total })
  }
})

test('verifyDigest throws DIGEST_MISMATCH naming both digests', () => {
  const a = sha256Of('a')
  const b = sha256Of('b')
  verifyDigest('layer', a, a)
  assert.throws(
    () => verifyDigest('layer tar', a, b),
    (e: unknown) => isStrataError(e, 'DIGEST_MISMATCH') && e.message.includes(a) && e.message.includes(b) && e.message.startsWith('layer tar') && e.details.expected === a && e.details.actual === b,
  )
})
