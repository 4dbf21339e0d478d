/**
 * The bulk of CRC-64/ISO in WebAssembly: slicing-by-16 on native 64-bit
 * integers, one table load per input byte (JavaScript's slicing-by-8 needs
 * two, keeping the register as two int32 halves). A step's speed is bound
 * by its chain of dependent loads, and 16 bytes a step put half the bytes
 * off that chain (the second 8 do not depend on the register), so this is
 * about twice the JavaScript loop's speed. tar-split checksums every byte
 * of every layer: that is a good part of a registration's CPU.
 *
 * The module is small enough to assemble here, by hand, from its text form
 * (kept below in the comments next to each instruction), rather than ship a
 * binary blob or a WebAssembly toolchain. Memory layout: the sixteen
 * 256-entry tables (8 bytes each) at 0..32 KiB, the input window after them.
 *
 *   (func $update (param $crc i64) (param $p i32) (param $n i32) (result i64)
 *     ;; 16 bytes at a time: crc ^= load64(p);
 *     ;;   crc = T15[crc b0] ^ ... ^ T8[crc b7] ^ T7[p[8]] ^ ... ^ T0[p[15]]
 *     ;; then byte by byte:  crc = T0[(crc ^ p[i]) & 0xff] ^ (crc >> 8)
 *     ...)
 *
 * The register is the inverted CRC, as in crc64.ts, so the two paths can be
 * mixed freely on one checksum.
 */

/** Slicing-by-16: sixteen tables of 256 64-bit entries. */
const TABLES = 16
/** Where the tables end and the input window starts. */
const TABLES_BYTES = TABLES * 256 * 8
/** Input is copied in and checksummed in windows of this size. */
const WINDOW = 256 << 10
const PAGES = Math.ceil((TABLES_BYTES + WINDOW) / 65536)

// Opcodes used below.
const OP = {
  block: 0x02,
  loop: 0x03,
  br: 0x0c,
  brIf: 0x0d,
  end: 0x0b,
  localGet: 0x20,
  localSet: 0x21,
  i32Load: 0x28,
  i64Load: 0x29,
  i64Load8U: 0x31,
  i32Const: 0x41,
  i64Const: 0x42,
  i32GeU: 0x4f,
  i32Add: 0x6a,
  i32And: 0x71,
  i32Shl: 0x74,
  i32ShrU: 0x76,
  i64And: 0x83,
  i64Xor: 0x85,
  i64ShrU: 0x88,
  i32WrapI64: 0xa7,
} as const
const VOID = 0x40
const I32 = 0x7f
const I64 = 0x7e

function uleb(n: number): number[] {
  const out: number[] = []
  do {
    let b = n & 0x7f
    n >>>= 7
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}

function sleb(n: number): number[] {
  const out: number[] = []
  for (;;) {
    const b = n & 0x7f
    n >>= 7
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b)
      return out
    }
    out.push(b | 0x80)
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body]
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()]
}

function name(s: string): number[] {
  const bytes = [...Buffer.from(s, 'utf8')]
  return [...uleb(bytes.length), ...bytes]
}

/**
 * Locals: 0 crc (i64), 1 p, 2 n, 3 end16, 4 end, then as i32: 5 lo, 6 hi
 * (the register's halves after the first 8 input bytes are folded in),
 * 7 dlo, 8 dhi (the next 8 input bytes). Table offsets come from those
 * with one shift and one mask each: ((x >> 8b) << 3) & 0x7f8.
 */
function updateBody(): number[] {
  const code: number[] = []
  const emit = (...bytes: number[]): void => void code.push(...bytes)
  // i64.load of table k's entry for byte b (0..3) of the i32 local `word`.
  const term = (word: number, b: number, k: number): void => {
    const shift = 8 * b - 3
    emit(OP.localGet, word)
    if (shift < 0) emit(OP.i32Const, 3, OP.i32Shl)
    else emit(OP.i32Const, ...sleb(shift), OP.i32ShrU)
    emit(OP.i32Const, ...sleb(0x7f8), OP.i32And)
    emit(OP.i64Load, 3, ...uleb(k * 2048)) // i64.load align=8 offset=table k
  }
  emit(OP.localGet, 1, OP.localGet, 2, OP.i32Add, OP.localSet, 4) // end = p + n
  emit(OP.localGet, 1, OP.localGet, 2, OP.i32Const, ...sleb(-16), OP.i32And, OP.i32Add, OP.localSet, 3) // end16 = p + (n & ~15)
  emit(OP.block, VOID, OP.loop, VOID)
  emit(OP.localGet, 1, OP.localGet, 3, OP.i32GeU, OP.brIf, 1) // p >= end16: out
  emit(OP.localGet, 0, OP.localGet, 1, OP.i64Load, 0, 0, OP.i64Xor, OP.localSet, 0) // crc ^= load64(p)
  emit(OP.localGet, 0, OP.i32WrapI64, OP.localSet, 5) // lo
  emit(OP.localGet, 0, OP.i64Const, 32, OP.i64ShrU, OP.i32WrapI64, OP.localSet, 6) // hi
  emit(OP.localGet, 1, OP.i32Load, 0, 8, OP.localSet, 7) // dlo = load32(p + 8)
  emit(OP.localGet, 1, OP.i32Load, 0, 12, OP.localSet, 8) // dhi = load32(p + 12)
  // Byte i of the 16 (0 = first) goes through table 15 - i.
  const words = [5, 6, 7, 8]
  for (let i = 0; i < 16; i++) {
    term(words[i >> 2]!, i & 3, 15 - i)
    if (i > 0) emit(OP.i64Xor)
  }
  emit(OP.localSet, 0)
  emit(OP.localGet, 1, OP.i32Const, 16, OP.i32Add, OP.localSet, 1) // p += 16
  emit(OP.br, 0, OP.end, OP.end)
  emit(OP.block, VOID, OP.loop, VOID)
  emit(OP.localGet, 1, OP.localGet, 4, OP.i32GeU, OP.brIf, 1) // p >= end: out
  emit(OP.localGet, 0, OP.localGet, 1, OP.i64Load8U, 0, 0, OP.i64Xor) // crc ^ p[0]
  emit(OP.i32WrapI64, OP.i32Const, 3, OP.i32Shl, OP.i32Const, ...sleb(0x7f8), OP.i32And, OP.i64Load, 3, 0) // T0[(crc ^ p[0]) & 0xff]
  emit(OP.localGet, 0, OP.i64Const, 8, OP.i64ShrU, OP.i64Xor, OP.localSet, 0) // ^ crc >> 8
  emit(OP.localGet, 1, OP.i32Const, 1, OP.i32Add, OP.localSet, 1) // p += 1
  emit(OP.br, 0, OP.end, OP.end)
  emit(OP.localGet, 0, OP.end)
  const locals = vec([[...uleb(6), I32]])
  const body = [...locals, ...code]
  return [...uleb(body.length), ...body]
}

function moduleBytes(): Uint8Array {
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
    ...section(1, vec([[0x60, ...vec([[I64], [I32], [I32]]), ...vec([[I64]])]])), // type 0: (i64 i32 i32) -> i64
    ...section(3, vec([[0]])), // func 0 has type 0
    ...section(5, vec([[0x00, ...uleb(PAGES)]])), // one memory, PAGES pages
    ...section(7, vec([[...name('update'), 0x00, 0], [...name('memory'), 0x02, 0]])),
    ...section(10, vec([updateBody()])),
  ])
}

export interface Crc64Wasm {
  /** Advances the (inverted) register `crc` over `buf`. */
  update(crc: bigint, buf: Uint8Array): bigint
}

/** The little of the WebAssembly JS API used here (the project's type libraries do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> }
}
interface WasmMemory {
  buffer: ArrayBuffer
}

let instance: Crc64Wasm | null | undefined

/**
 * The WebAssembly path, built on first use from crc64.ts's tables (table
 * k's entry i as the two int32 halves at k * 256 + i; table 0 is all it
 * needs, the others are derived from it); null when this runtime cannot
 * run it (the JavaScript path is used then).
 */
export function crc64Wasm(tablesLo: Int32Array, tablesHi: Int32Array): Crc64Wasm | null {
  if (instance !== undefined) return instance
  try {
    const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly
    if (wasm === undefined) return (instance = null)
    const inst = new wasm.Instance(new wasm.Module(moduleBytes()), {})
    const update = inst.exports.update as (crc: bigint, p: number, n: number) => bigint
    const memory = inst.exports.memory as WasmMemory
    const bytes = new Uint8Array(memory.buffer)
    const words = new Int32Array(memory.buffer, 0, TABLES_BYTES / 4)
    for (let i = 0; i < 256; i++) {
      words[2 * i] = tablesLo[i]!
      words[2 * i + 1] = tablesHi[i]!
    }
    // T[k][i] = (T[k-1][i] >> 8) ^ T[0][T[k-1][i] & 0xff]: one more zero byte.
    for (let k = 1; k < TABLES; k++) {
      for (let i = 0; i < 256; i++) {
        const prevLo = words[2 * ((k - 1) * 256 + i)]!
        const prevHi = words[2 * ((k - 1) * 256 + i) + 1]!
        const idx = prevLo & 0xff
        words[2 * (k * 256 + i)] = ((prevLo >>> 8) | (prevHi << 24)) ^ words[2 * idx]!
        words[2 * (k * 256 + i) + 1] = (prevHi >>> 8) ^ words[2 * idx + 1]!
      }
    }
    instance = {
      update(crc: bigint, buf: Uint8Array): bigint {
        for (let off = 0; off < buf.length; off += WINDOW) {
          const piece = buf.subarray(off, Math.min(off + WINDOW, buf.length))
          bytes.set(piece, TABLES_BYTES)
          crc = update(crc, TABLES_BYTES, piece.length)
        }
        return crc
      },
    }
  } catch {
    instance = null
  }
  return instance
}
