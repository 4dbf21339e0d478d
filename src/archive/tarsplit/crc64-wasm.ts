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
 * 256-entry tables (8 bytes each) at 0..32 KiB, the eight shift tables
 * (below) at 32..48 KiB, the register (REG_AT), the input window after them.
 *
 *   (func $update (param $p i32) (param $n i32)   ;; the register in memory at REG_AT
 *     ;; 16 bytes at a time: crc ^= load64(p);
 *     ;;   crc = T15[crc b0] ^ ... ^ T8[crc b7] ^ T7[p[8]] ^ ... ^ T0[p[15]]
 *     ;; then byte by byte:  crc = T0[(crc ^ p[i]) & 0xff] ^ (crc >> 8)
 *     ...)
 *
 * The register is the inverted CRC, as in crc64.ts, so the two paths can be
 * mixed freely on one checksum.
 *
 * Three lanes: one step's table loads depend on the step before it, so a
 * single stream of steps waits on its loads (~1.6 GB/s here) while the
 * core could issue more. Blocks of 3 × LANE bytes are checksummed as three
 * independent streams in one loop (the first from the register, the other
 * two from zero), then combined: the update is linear, so
 * crc(A‖B) = shift(crc(A)) ^ crc₀(B), where shift advances a register over
 * LANE zero bytes. shift is linear too, done by eight 256-entry tables
 * (one per byte of the register) made once from the bytewise table.
 * Whatever is left of the input after the blocks (and inputs shorter than
 * one block) goes through the one-stream loop.
 */

/** Slicing-by-16: sixteen tables of 256 64-bit entries. */
const TABLES = 16
/** Bytes of one lane of a three-lane block (a multiple of 16). */
const LANE = 1024
/** Where the eight LANE-shift tables start (after the slicing tables). */
const SHIFT_BASE = TABLES * 256 * 8
/** Where the tables end. */
const TABLES_BYTES = SHIFT_BASE + 8 * 256 * 8
/**
 * Where the register lives between calls (8 bytes): passed in memory, not
 * as an i64 argument and result, which JavaScript sees as BigInts (an
 * allocation and conversions on every call).
 */
const REG_AT = TABLES_BYTES
/** Where the input window starts. */
const WINDOW_AT = REG_AT + 16
/** Input is copied in and checksummed in windows of this size. */
const WINDOW = 256 << 10
const PAGES = Math.ceil((WINDOW_AT + WINDOW) / 65536)

// Opcodes used below.
const OP = {
  block: 0x02,
  localTee: 0x22,
  i32Sub: 0x6b,
  i32RemU: 0x70,
  i64Store: 0x37,
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
 * Locals: 0 crc (i64), 1 p, 2 n (params); then as i32: 3 end16, 4 end,
 * 5..16 the three lanes' lo, hi, dlo, dhi (the register's halves after the
 * first 8 input bytes are folded in, and the next 8 input bytes), 17 q (the
 * position in the first lane), 18 qend, 19 end3 (where whole blocks end);
 * as i64: 20, 21, 22 the three lanes' registers. Table offsets come from
 * the i32 halves with one shift and one mask each: ((x >> 8b) << 3) & 0x7f8.
 */
function updateBody(): number[] {
  const code: number[] = []
  const emit = (...bytes: number[]): void => void code.push(...bytes)
  const P = 0
  const N = 1
  const END16 = 2
  const END = 3
  const Q = 16
  const QEND = 17
  const END3 = 18
  const CRC = 19
  const LANE_REG = [20, 21, 22]
  const laneWords = (lane: number): number[] => [4 + 4 * lane, 5 + 4 * lane, 6 + 4 * lane, 7 + 4 * lane]
  // i64.load of table k's entry for byte b (0..3) of the i32 local `word`.
  const term = (word: number, b: number, k: number): void => {
    const shift = 8 * b - 3
    emit(OP.localGet, word)
    if (shift < 0) emit(OP.i32Const, 3, OP.i32Shl)
    else emit(OP.i32Const, ...sleb(shift), OP.i32ShrU)
    emit(OP.i32Const, ...sleb(0x7f8), OP.i32And)
    emit(OP.i64Load, 3, ...uleb(k * 2048)) // i64.load align=8 offset=table k
  }
  /** One 16-byte step of register local `reg` over the bytes at (local `at`) + `offset`; leaves the new register on the stack. */
  const step16 = (reg: number, at: number, offset: number, words: number[]): void => {
    emit(OP.localGet, reg, OP.localGet, at, OP.i64Load, 0, ...uleb(offset), OP.i64Xor, OP.localTee, reg) // reg ^= load64(at + offset)
    emit(OP.i32WrapI64, OP.localSet, words[0]!) // lo
    emit(OP.localGet, reg, OP.i64Const, 32, OP.i64ShrU, OP.i32WrapI64, OP.localSet, words[1]!) // hi
    emit(OP.localGet, at, OP.i32Load, 0, ...uleb(offset + 8), OP.localSet, words[2]!) // dlo = load32(at + offset + 8)
    emit(OP.localGet, at, OP.i32Load, 0, ...uleb(offset + 12), OP.localSet, words[3]!) // dhi = load32(at + offset + 12)
    // Byte i of the 16 (0 = first) goes through table 15 - i.
    for (let i = 0; i < 16; i++) {
      term(words[i >> 2]!, i & 3, 15 - i)
      if (i > 0) emit(OP.i64Xor)
    }
  }
  /** shift(register local `reg`): the register advanced over LANE zero bytes, left on the stack. */
  const shiftLane = (reg: number): void => {
    for (let k = 0; k < 8; k++) {
      emit(OP.localGet, reg)
      if (k > 0) emit(OP.i64Const, ...sleb(8 * k), OP.i64ShrU)
      emit(OP.i32WrapI64, OP.i32Const, ...sleb(0xff), OP.i32And, OP.i32Const, 3, OP.i32Shl)
      emit(OP.i64Load, 3, ...uleb(SHIFT_BASE + k * 2048))
      if (k > 0) emit(OP.i64Xor)
    }
  }
  emit(OP.i32Const, 0, OP.i64Load, 3, ...uleb(REG_AT), OP.localSet, CRC) // crc = the register in memory
  emit(OP.localGet, P, OP.localGet, N, OP.i32Add, OP.localSet, END) // end = p + n
  // Whole three-lane blocks: end3 = p + n - n % (3 * LANE).
  emit(OP.localGet, P, OP.localGet, N, OP.localGet, N, OP.i32Const, ...sleb(3 * LANE), OP.i32RemU, OP.i32Sub, OP.i32Add, OP.localSet, END3)
  emit(OP.block, VOID, OP.loop, VOID)
  emit(OP.localGet, P, OP.localGet, END3, OP.i32GeU, OP.brIf, 1) // p >= end3: out
  emit(OP.localGet, CRC, OP.localSet, LANE_REG[0]!, OP.i64Const, 0, OP.localSet, LANE_REG[1]!, OP.i64Const, 0, OP.localSet, LANE_REG[2]!)
  emit(OP.localGet, P, OP.localSet, Q, OP.localGet, P, OP.i32Const, ...sleb(LANE), OP.i32Add, OP.localSet, QEND)
  emit(OP.block, VOID, OP.loop, VOID)
  emit(OP.localGet, Q, OP.localGet, QEND, OP.i32GeU, OP.brIf, 1) // q >= qend: out
  for (let lane = 0; lane < 3; lane++) {
    step16(LANE_REG[lane]!, Q, lane * LANE, laneWords(lane))
    emit(OP.localSet, LANE_REG[lane]!)
  }
  emit(OP.localGet, Q, OP.i32Const, 16, OP.i32Add, OP.localSet, Q) // q += 16
  emit(OP.br, 0, OP.end, OP.end)
  // crc = shift(shift(a) ^ b) ^ c
  shiftLane(LANE_REG[0]!)
  emit(OP.localGet, LANE_REG[1]!, OP.i64Xor, OP.localSet, LANE_REG[1]!)
  shiftLane(LANE_REG[1]!)
  emit(OP.localGet, LANE_REG[2]!, OP.i64Xor, OP.localSet, CRC)
  emit(OP.localGet, P, OP.i32Const, ...sleb(3 * LANE), OP.i32Add, OP.localSet, P) // p += 3 * LANE
  emit(OP.br, 0, OP.end, OP.end)
  // One stream, 16 bytes at a time, over what the blocks left.
  emit(OP.localGet, P, OP.localGet, END, OP.localGet, P, OP.i32Sub, OP.i32Const, ...sleb(-16), OP.i32And, OP.i32Add, OP.localSet, END16) // end16 = p + ((end - p) & ~15)
  emit(OP.block, VOID, OP.loop, VOID)
  emit(OP.localGet, P, OP.localGet, END16, OP.i32GeU, OP.brIf, 1) // p >= end16: out
  step16(CRC, P, 0, laneWords(0))
  emit(OP.localSet, CRC)
  emit(OP.localGet, P, OP.i32Const, 16, OP.i32Add, OP.localSet, P) // p += 16
  emit(OP.br, 0, OP.end, OP.end)
  emit(OP.block, VOID, OP.loop, VOID)
  emit(OP.localGet, P, OP.localGet, END, OP.i32GeU, OP.brIf, 1) // p >= end: out
  emit(OP.localGet, CRC, OP.localGet, P, OP.i64Load8U, 0, 0, OP.i64Xor) // crc ^ p[0]
  emit(OP.i32WrapI64, OP.i32Const, 3, OP.i32Shl, OP.i32Const, ...sleb(0x7f8), OP.i32And, OP.i64Load, 3, 0) // T0[(crc ^ p[0]) & 0xff]
  emit(OP.localGet, CRC, OP.i64Const, 8, OP.i64ShrU, OP.i64Xor, OP.localSet, CRC) // ^ crc >> 8
  emit(OP.localGet, P, OP.i32Const, 1, OP.i32Add, OP.localSet, P) // p += 1
  emit(OP.br, 0, OP.end, OP.end)
  emit(OP.i32Const, 0, OP.localGet, CRC, OP.i64Store, 3, ...uleb(REG_AT), OP.end) // the register back to memory
  const locals = vec([[...uleb(17), I32], [...uleb(4), I64]])
  const body = [...locals, ...code]
  return [...uleb(body.length), ...body]
}

function moduleBytes(): Uint8Array {
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
    ...section(1, vec([[0x60, ...vec([[I32], [I32]]), ...vec([])]])), // type 0: (i32 i32) -> ()
    ...section(3, vec([[0]])), // func 0 has type 0
    ...section(5, vec([[0x00, ...uleb(PAGES)]])), // one memory, PAGES pages
    ...section(7, vec([[...name('update'), 0x00, 0], [...name('memory'), 0x02, 0]])),
    ...section(10, vec([updateBody()])),
  ])
}

export interface Crc64Wasm {
  /** Advances the (inverted) register, given as its int32 halves, over `buf`; the result is read from `lo` and `hi`. */
  update(lo: number, hi: number, buf: Uint8Array): void
  readonly lo: number
  readonly hi: number
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
    const update = inst.exports.update as (p: number, n: number) => void
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
    // Shift table k, entry b: the register (b << 8k) advanced over LANE zero
    // bytes. From the images of the 64 one-bit registers, by linearity.
    const imgLo = new Int32Array(64)
    const imgHi = new Int32Array(64)
    for (let bit = 0; bit < 64; bit++) {
      let lo = bit < 32 ? 1 << bit : 0
      let hi = bit < 32 ? 0 : 1 << (bit - 32)
      for (let i = 0; i < LANE; i++) {
        const idx = lo & 0xff
        lo = ((lo >>> 8) | (hi << 24)) ^ tablesLo[idx]!
        hi = (hi >>> 8) ^ tablesHi[idx]!
      }
      imgLo[bit] = lo
      imgHi[bit] = hi
    }
    for (let k = 0; k < 8; k++) {
      for (let b = 0; b < 256; b++) {
        let lo = 0
        let hi = 0
        for (let i = 0; i < 8; i++) {
          if ((b >> i) & 1) {
            lo ^= imgLo[8 * k + i]!
            hi ^= imgHi[8 * k + i]!
          }
        }
        words[SHIFT_BASE / 4 + 2 * (k * 256 + b)] = lo
        words[SHIFT_BASE / 4 + 2 * (k * 256 + b) + 1] = hi
      }
    }
    const reg = new Int32Array(memory.buffer, REG_AT, 2)
    instance = {
      update(lo: number, hi: number, buf: Uint8Array): void {
        reg[0] = lo
        reg[1] = hi
        for (let off = 0; off < buf.length; off += WINDOW) {
          const piece = buf.subarray(off, Math.min(off + WINDOW, buf.length))
          bytes.set(piece, WINDOW_AT)
          update(WINDOW_AT, piece.length)
        }
      },
      get lo(): number {
        return reg[0]!
      },
      get hi(): number {
        return reg[1]!
      },
    }
  } catch {
    instance = null
  }
  return instance
}
