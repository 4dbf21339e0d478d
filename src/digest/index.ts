/**
 * Content digests as Docker and OCI write them: `sha256:` + 64 lowercase hex.
 * Only sha256 is accepted (it is the only algorithm dockerd 20.10 stores);
 * anything else is an INVALID_ARGUMENT naming the bad value.
 */
import { createHash, type Hash } from 'node:crypto'
import { Transform, type TransformCallback } from 'node:stream'
import { StrataError } from '../errors/index.js'

/** A validated `sha256:<hex>` string. */
export type Digest = string & { readonly __digest: unique symbol }

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/

export function isDigest(value: unknown): value is Digest {
  return typeof value === 'string' && DIGEST_RE.test(value)
}

/**
 * Parses a digest, accepting a bare 64-hex string as sha256 (the form
 * dockerd uses for directory names).
 * @example parseDigest('sha256:e3b0c4...') // 'sha256:e3b0c4...'
 */
export function parseDigest(value: string): Digest {
  const v = value.trim()
  if (DIGEST_RE.test(v)) return v as Digest
  if (/^[a-f0-9]{64}$/.test(v)) return `sha256:${v}` as Digest
  throw new StrataError('INVALID_ARGUMENT', `Invalid digest "${value}": expected sha256:<64 lowercase hex>`)
}

/** The 64-hex part of a digest. */
export function digestHex(d: Digest): string {
  return d.slice(7)
}

export function sha256Of(data: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest
}

/**
 * A digest of the empty input: the diffID of an empty layer tar is NOT this (1024 zero bytes is).
 * Written out, not computed at import: the CLI bundle loads node:crypto on first use (scripts/bundle-cli.mjs).
 */
export const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' as Digest

/** Incremental sha256 with a running byte count. */
export class Digester {
  readonly #hash: Hash = createHash('sha256')
  #size = 0

  update(chunk: Buffer): void {
    this.#hash.update(chunk)
    this.#size += chunk.length
  }

  get size(): number {
    return this.#size
  }

  digest(): Digest {
    return `sha256:${this.#hash.digest('hex')}` as Digest
  }
}

/**
 * A pass-through stream that hashes what flows through it. Read `digest()`
 * after the stream has ended (its 'finish' or the consumer's end).
 */
export class HashingStream extends Transform {
  readonly #digester = new Digester()
  #result: Digest | undefined
  #hashing = true
  #size = 0

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.#hashing) this.#digester.update(chunk)
    this.#size += chunk.length
    cb(null, chunk)
  }

  override _flush(cb: TransformCallback): void {
    if (this.#hashing) this.#result = this.#digester.digest()
    cb()
  }

  /**
   * Stops hashing (bytes keep flowing and being counted) when the digest
   * turns out not to be needed, e.g. an uncompressed layer whose digest is
   * its diffID, hashed once further down.
   */
  stopHashing(): void {
    this.#hashing = false
  }

  get size(): number {
    return this.#size
  }

  digest(): Digest {
    if (!this.#hashing) throw new StrataError('INVALID_ARGUMENT', 'Digest read from a stream that stopped hashing')
    if (this.#result === undefined) throw new StrataError('INVALID_ARGUMENT', 'Digest read before the stream ended')
    return this.#result
  }
}

/** sha256 of everything a stream yields. */
export async function digestStream(stream: AsyncIterable<Buffer>): Promise<{ digest: Digest; size: number }> {
  const d = new Digester()
  for await (const chunk of stream) d.update(chunk)
  return { digest: d.digest(), size: d.size }
}

/**
 * The chainID of the last layer of a stack: chainID(1) = diffID(1),
 * chainID(n) = sha256(chainID(n-1) + " " + diffID(n)).
 */
export function chainId(diffIds: readonly Digest[]): Digest {
  if (diffIds.length === 0) throw new StrataError('INVALID_ARGUMENT', 'chainId of an empty layer list')
  let chain = diffIds[0]!
  for (let i = 1; i < diffIds.length; i++) chain = sha256Of(`${chain} ${diffIds[i]}`)
  return chain
}

/** Every chainID along a stack, base first. */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = []
  for (let i = 0; i < diffIds.length; i++) out.push(i === 0 ? diffIds[0]! : sha256Of(`${out[i - 1]} ${diffIds[i]}`))
  return out
}

/** Throws DIGEST_MISMATCH naming what was checked. */
export function verifyDigest(what: string, expected: Digest, actual: Digest): void {
  if (expected !== actual) {
    throw new StrataError('DIGEST_MISMATCH', `${what}: digest mismatch: expected ${expected}, got ${actual}`, {
      details: { expected, actual },
    })
  }
}
