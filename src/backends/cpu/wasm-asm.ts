/**
 * A tiny WebAssembly assembler: enough of the binary format to emit the CPU backend's SIMD
 * kernels (src/backends/cpu/simd.ts) at runtime from TypeScript — one imported memory, functions
 * with i32/f32/v128 locals, structured control flow, the MVP and SIMD-128 opcodes the kernels use.
 * No toolchain and no binary blobs: the module is built from this code when the backend starts.
 */

export type ValType = 'i32' | 'f32' | 'f64' | 'v128';
const VT: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, f64: 0x7c, v128: 0x7b };

function uleb(n: number, out: number[]): void {
  if (!Number.isInteger(n) || n < 0) throw new Error(`wasm-asm: uleb of ${n}`);
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
}

function sleb(n: number, out: number[]): void {
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return;
  }
}

const SIMD = (code: number): number[] => {
  const out = [0xfd];
  uleb(code, out);
  return out;
};

/** Opcodes without immediates. */
const OPS = {
  'unreachable': [0x00], 'nop': [0x01], 'drop': [0x1a], 'select': [0x1b], 'return': [0x0f],
  'i32.eqz': [0x45], 'i32.eq': [0x46], 'i32.ne': [0x47], 'i32.lt_s': [0x48], 'i32.lt_u': [0x49],
  'i32.gt_s': [0x4a], 'i32.gt_u': [0x4b], 'i32.le_s': [0x4c], 'i32.le_u': [0x4d], 'i32.ge_s': [0x4e], 'i32.ge_u': [0x4f],
  'f32.eq': [0x5b], 'f32.ne': [0x5c], 'f32.lt': [0x5d], 'f32.gt': [0x5e], 'f32.le': [0x5f], 'f32.ge': [0x60],
  'i32.add': [0x6a], 'i32.sub': [0x6b], 'i32.mul': [0x6c], 'i32.div_u': [0x6e], 'i32.rem_u': [0x70],
  'i32.and': [0x71], 'i32.or': [0x72], 'i32.xor': [0x73], 'i32.shl': [0x74], 'i32.shr_s': [0x75], 'i32.shr_u': [0x76],
  'f32.abs': [0x8b], 'f32.neg': [0x8c], 'f32.floor': [0x8e], 'f32.nearest': [0x90],
  'f32.add': [0x92], 'f32.sub': [0x93], 'f32.mul': [0x94], 'f32.div': [0x95], 'f32.min': [0x96], 'f32.max': [0x97],
  'i32.trunc_sat_f32_s': [0xfc, 0x00], 'f32.convert_i32_s': [0xb2],
  'i32.reinterpret_f32': [0xbc], 'f32.reinterpret_i32': [0xbe],
  'memory.copy': [0xfc, 0x0a, 0x00, 0x00], 'memory.fill': [0xfc, 0x0b, 0x00],
  'i32x4.splat': SIMD(0x11), 'f32x4.splat': SIMD(0x13),
  'i32x4.eq': SIMD(0x37), 'i32x4.ne': SIMD(0x38), 'i32x4.lt_s': SIMD(0x39), 'i32x4.lt_u': SIMD(0x3a),
  'i32x4.gt_s': SIMD(0x3b), 'i32x4.gt_u': SIMD(0x3c), 'i32x4.le_s': SIMD(0x3d), 'i32x4.ge_s': SIMD(0x3f), 'i32x4.ge_u': SIMD(0x40),
  'f32x4.eq': SIMD(0x41), 'f32x4.ne': SIMD(0x42), 'f32x4.lt': SIMD(0x43), 'f32x4.gt': SIMD(0x44), 'f32x4.le': SIMD(0x45), 'f32x4.ge': SIMD(0x46),
  'v128.not': SIMD(0x4d), 'v128.and': SIMD(0x4e), 'v128.andnot': SIMD(0x4f), 'v128.or': SIMD(0x50), 'v128.xor': SIMD(0x51),
  'v128.bitselect': SIMD(0x52), 'v128.any_true': SIMD(0x53),
  'f32x4.ceil': SIMD(0x67), 'f32x4.floor': SIMD(0x68), 'f32x4.trunc': SIMD(0x69), 'f32x4.nearest': SIMD(0x6a),
  'i32x4.shl': SIMD(0xab), 'i32x4.shr_s': SIMD(0xac), 'i32x4.shr_u': SIMD(0xad),
  'i32x4.add': SIMD(0xae), 'i32x4.sub': SIMD(0xb1), 'i32x4.mul': SIMD(0xb5),
  'i32x4.min_s': SIMD(0xb6), 'i32x4.min_u': SIMD(0xb7), 'i32x4.max_s': SIMD(0xb8), 'i32x4.max_u': SIMD(0xb9),
  'f32x4.abs': SIMD(0xe0), 'f32x4.neg': SIMD(0xe1), 'f32x4.add': SIMD(0xe4), 'f32x4.sub': SIMD(0xe5),
  'f32x4.mul': SIMD(0xe6), 'f32x4.div': SIMD(0xe7), 'f32x4.min': SIMD(0xe8), 'f32x4.max': SIMD(0xe9),
  'f32x4.pmin': SIMD(0xea), 'f32x4.pmax': SIMD(0xeb),
  'i32x4.trunc_sat_f32x4_s': SIMD(0xf8), 'f32x4.convert_i32x4_s': SIMD(0xfa),
} as const;
export type Op = keyof typeof OPS;

/** Memory ops: opcode bytes and the natural alignment (log2). */
const MEM = {
  'i32.load': [[0x28], 2], 'f32.load': [[0x2a], 2], 'i32.load8_s': [[0x2c], 0], 'i32.load8_u': [[0x2d], 0],
  'i32.load16_u': [[0x2f], 1], 'i32.store': [[0x36], 2], 'f32.store': [[0x38], 2], 'i32.store16': [[0x3b], 1],
  'v128.load': [SIMD(0x00), 4], 'v128.load16x4_u': [SIMD(0x04), 3], 'v128.load32_splat': [SIMD(0x09), 2],
  'v128.load64_zero': [SIMD(0x5d), 3], 'v128.store': [SIMD(0x0b), 4],
} as const satisfies Record<string, readonly [readonly number[], number]>;
export type MemOp = keyof typeof MEM;

/** One function's body, written as a stack machine. Methods chain. */
export class Fn {
  readonly code: number[] = [];
  private readonly locals: ValType[] = [];
  private depth = 0;
  constructor(
    readonly name: string,
    readonly params: ValType[],
    readonly results: ValType[] = [],
  ) {}

  /** A new local of type t; returns its index. */
  local(t: ValType): number {
    this.locals.push(t);
    return this.params.length + this.locals.length - 1;
  }
  op(...names: Op[]): this {
    for (const n of names) this.code.push(...OPS[n]);
    return this;
  }
  get(i: number): this { this.code.push(0x20); uleb(i, this.code); return this; }
  set(i: number): this { this.code.push(0x21); uleb(i, this.code); return this; }
  tee(i: number): this { this.code.push(0x22); uleb(i, this.code); return this; }
  call(index: number): this { this.code.push(0x10); uleb(index, this.code); return this; }
  i32(n: number): this { this.code.push(0x41); sleb(n, this.code); return this; }
  f32(x: number): this {
    const b = new Uint8Array(new Float32Array([x]).buffer);
    this.code.push(0x43, ...b);
    return this;
  }
  /** v128.const from four i32 lanes. */
  v128i(a: number, b: number, c: number, d: number): this {
    const bytes = new Uint8Array(new Int32Array([a, b, c, d]).buffer);
    this.code.push(...SIMD(0x0c), ...bytes);
    return this;
  }
  v128f(a: number, b: number, c: number, d: number): this {
    const bytes = new Uint8Array(new Float32Array([a, b, c, d]).buffer);
    this.code.push(...SIMD(0x0c), ...bytes);
    return this;
  }
  /** i8x16.shuffle of the two v128 on the stack. */
  shuffle(lanes: number[]): this {
    if (lanes.length !== 16) throw new Error('wasm-asm: shuffle needs 16 lanes');
    this.code.push(...SIMD(0x0d), ...lanes);
    return this;
  }
  extractF(lane: number): this { this.code.push(...SIMD(0x1f), lane); return this; }
  extractI(lane: number): this { this.code.push(...SIMD(0x1b), lane); return this; }
  replaceF(lane: number): this { this.code.push(...SIMD(0x20), lane); return this; }
  /** load/store with a constant byte offset added to the address on the stack. */
  mem(name: MemOp, offset = 0): this {
    const [bytes, align] = MEM[name];
    this.code.push(...bytes, align);
    uleb(offset, this.code);
    return this;
  }

  // ── control flow ────────────────────────────────────────────────────────────────────────
  /** `while (cond) body` — cond leaves an i32 on the stack. */
  while(cond: () => void, body: () => void): this {
    this.code.push(0x02, 0x40, 0x03, 0x40);
    this.depth += 2;
    cond();
    this.op('i32.eqz');
    this.code.push(0x0d, 1); // br_if to the block's end
    body();
    this.code.push(0x0c, 0); // br to the loop's start
    this.code.push(0x0b, 0x0b);
    this.depth -= 2;
    return this;
  }
  /** `for (i = from; i < to; i += step) body` on i32 locals (unsigned compare). */
  for(i: number, from: () => void, to: number, step: number, body: () => void): this {
    from();
    this.set(i);
    return this.while(
      () => this.get(i).get(to).op('i32.lt_u'),
      () => { body(); this.get(i).i32(step).op('i32.add').set(i); },
    );
  }
  /** `if (cond on stack) then [else otherwise]`. */
  if(then: () => void, otherwise?: () => void): this {
    this.code.push(0x04, 0x40);
    this.depth++;
    then();
    if (otherwise) { this.code.push(0x05); otherwise(); }
    this.code.push(0x0b);
    this.depth--;
    return this;
  }

  /** The code section entry: locals, body, end. */
  encode(): number[] {
    if (this.depth !== 0) throw new Error(`wasm-asm: unbalanced control in ${this.name}`);
    const body: number[] = [];
    const groups: [number, ValType][] = [];
    for (const t of this.locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    uleb(groups.length, body);
    for (const [n, t] of groups) { uleb(n, body); body.push(VT[t]); }
    body.push(...this.code, 0x0b);
    const out: number[] = [];
    uleb(body.length, out);
    out.push(...body);
    return out;
  }
}

function section(id: number, content: number[], out: number[]): void {
  out.push(id);
  uleb(content.length, out);
  out.push(...content);
}

function name(s: string, out: number[]): void {
  const b = new TextEncoder().encode(s);
  uleb(b.length, out);
  out.push(...b);
}

/** A module importing memory `env.memory` (≥ minPages) and exporting every function by name. */
export function assembleModule(fns: Fn[], minPages: number): Uint8Array<ArrayBuffer> {
  const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const types: number[] = [];
  uleb(fns.length, types);
  for (const f of fns) {
    types.push(0x60);
    uleb(f.params.length, types);
    for (const p of f.params) types.push(VT[p]);
    uleb(f.results.length, types);
    for (const r of f.results) types.push(VT[r]);
  }
  section(1, types, out);
  const imports: number[] = [1];
  name('env', imports);
  name('memory', imports);
  imports.push(0x02, 0x00);
  uleb(minPages, imports);
  section(2, imports, out);
  const funcs: number[] = [];
  uleb(fns.length, funcs);
  fns.forEach((_, i) => uleb(i, funcs));
  section(3, funcs, out);
  const exports: number[] = [];
  uleb(fns.length, exports);
  fns.forEach((f, i) => { name(f.name, exports); exports.push(0x00); uleb(i, exports); });
  section(7, exports, out);
  const code: number[] = [];
  uleb(fns.length, code);
  for (const f of fns) code.push(...f.encode());
  section(10, code, out);
  return Uint8Array.from(out);
}
