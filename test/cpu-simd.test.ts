// The WebAssembly SIMD kernels against the plain TypeScript oracle (CpuBackend({ simd: false })):
// bit for bit on random matrices and on edge values (NaN, ±Inf, ±0, denormals, rounding ties,
// huge values), for shapes that hit the vector bodies, the remainders and the chunking.
import { describe, expect, test } from 'vitest';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import { simdAvailable } from '../src/backends/cpu/simd';
import type { Backend, Mat, RotationSpec } from '../src/core/ports';
import { headRotation, makeRotationSpec, residualRotation } from '../src/core/hadamard/rotation';
import { randomSigns } from '../src/core/hadamard/signs';
import { MSE_ALPHAS, MSE_INV_ALPHAS, MSE_INV_REFINE, MSE_REFINE } from '../src/core/quant/scales';
import { decodeToF32, roundToF16 } from '../src/core/safetensors/dtype';

const simd = new CpuBackend();
const plain = new CpuBackend({ simd: false });

/** Deterministic xorshift values. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
}

const EDGE = [NaN, Infinity, -Infinity, 0, -0, 1e-45, -1e-45, 1.2e-38, -3e-39, 0.5, -0.5, 1.5, -2.5, 3.4e38, -3.4e38, 65504, 65520, -65519.99, 6.1e-5, 5.96e-8, 2.98e-8, -2.9802322e-8, 1e-7, 7.5, -8.5, 1e30];

/** rows×cols: gaussian-ish values of scale `scale`, with every `edgeEvery`-th element an edge value. */
function matrix(rows: number, cols: number, seed: number, opts: { scale?: number; edgeEvery?: number } = {}): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(rows * cols);
  const scale = opts.scale ?? 0.05;
  for (let i = 0; i < out.length; i++) {
    out[i] = (r() + r() + r() - 1.5) * scale;
    if (opts.edgeEvery && i % opts.edgeEvery === 3) out[i] = EDGE[Math.floor(r() * EDGE.length)];
  }
  return out;
}

/** Index of the first element whose bits differ (NaN equals NaN), or -1. */
function firstDiff(a: Float32Array | Uint32Array, b: Float32Array | Uint32Array): number {
  if (a.length !== b.length) return -2;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < a.length; i++) {
    if (ua[i] === ub[i]) continue;
    if (a instanceof Float32Array && Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    return i;
  }
  return -1;
}

function firstByteDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return -2;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

async function up(b: Backend, data: Float32Array, rows: number, cols: number): Promise<Mat> {
  return b.upload(new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)), 'F32', rows, cols);
}

async function values(b: Backend, m: Mat): Promise<Float32Array> {
  const bytes = await b.read(m, 'F32');
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/** Shapes: vector bodies (cols % 4 = 0), remainders, single rows/columns, more rows than a chunk's lanes. */
const SHAPES: [number, number][] = [[1, 4], [3, 7], [5, 64], [17, 112], [9, 33], [64, 24], [33, 128]];
const CASES: { name: string; edgeEvery?: number; scale?: number }[] = [
  { name: 'random' }, { name: 'edge values', edgeEvery: 5 }, { name: 'large scale', scale: 3e4 },
];

describe.skipIf(!simdAvailable())('CPU SIMD kernels are bit-identical to the plain TypeScript kernels', () => {
  test('the backends say which kernels they run', () => {
    expect(simd.usesSimd).toBe(true);
    expect(plain.usesSimd).toBe(false);
    expect(simd.description).toBe('CPU (WebAssembly SIMD)');
    expect(plain.description).toBe('CPU (TypeScript)');
  });

  for (const c of CASES) {
    describe(c.name, () => {
      test('rowAbsMax, histogram, rowSquaredErrors, scaleColumns, read F16', async () => {
        let seed = 1;
        for (const [rows, cols] of SHAPES) {
          const data = matrix(rows, cols, seed++, c);
          const other = matrix(rows, cols, seed++, c);
          const [a, b] = [await up(simd, data, rows, cols), await up(plain, data, rows, cols)];
          expect(firstDiff(await simd.rowAbsMax(a), await plain.rowAbsMax(b)), `rowAbsMax ${rows}×${cols}`).toBe(-1);
          for (const [range, bins] of [[0.05, 128], [1e-3, 7], [4e4, 1]] as const) {
            expect(firstDiff(await simd.histogram(a, range, bins), await plain.histogram(b, range, bins)), `histogram ${rows}×${cols} ${range}/${bins}`).toBe(-1);
          }
          const [a2, b2] = [await up(simd, other, rows, cols), await up(plain, other, rows, cols)];
          const es = await simd.rowSquaredErrors(a, a2);
          const ep = await plain.rowSquaredErrors(b, b2);
          expect(firstDiff(es.diff, ep.diff), `rowSquaredErrors diff ${rows}×${cols}`).toBe(-1);
          expect(firstDiff(es.ref, ep.ref), `rowSquaredErrors ref ${rows}×${cols}`).toBe(-1);
          const gamma = matrix(1, cols, seed++, { ...c, scale: 2 });
          await simd.scaleColumns(a, gamma);
          await plain.scaleColumns(b, gamma);
          expect(firstDiff(await values(simd, a), await values(plain, b)), `scaleColumns ${rows}×${cols}`).toBe(-1);
          expect(firstByteDiff(await simd.read(a, 'F16'), await plain.read(b, 'F16')), `read F16 ${rows}×${cols}`).toBe(-1);
        }
      });

      test('mseRowErrors (coarse and refine candidate sets, W4 and W8)', async () => {
        let seed = 100;
        for (const [rows, cols] of SHAPES) {
          const data = matrix(rows, cols, seed++, c);
          const [a, b] = [await up(simd, data, rows, cols), await up(plain, data, rows, cols)];
          const rowMax = await plain.rowAbsMax(b);
          for (const qmax of [7, 127]) {
            const base = rowMax.map((m) => m / qmax);
            const invBase = rowMax.map((m) => (m > 0 ? qmax / m : 0));
            for (const [al, inv] of [[MSE_ALPHAS, MSE_INV_ALPHAS], [MSE_REFINE, MSE_INV_REFINE], [MSE_ALPHAS.subarray(0, 5), MSE_INV_ALPHAS.subarray(0, 5)]]) {
              const s = await simd.mseRowErrors(a, base, invBase, al, inv, -qmax - 1, qmax);
              const p = await plain.mseRowErrors(b, base, invBase, al, inv, -qmax - 1, qmax);
              expect(s.length).toBe(rows * al.length);
              expect(firstDiff(s, p), `mse ${rows}×${cols} qmax ${qmax} n ${al.length}`).toBe(-1);
            }
          }
        }
      });

      test('quantize (values, F16 rounding, code counts)', async () => {
        let seed = 200;
        for (const [rows, cols] of SHAPES) {
          const data = matrix(rows, cols, seed++, c);
          const [a, b] = [await up(simd, data, rows, cols), await up(plain, data, rows, cols)];
          const rowMax = await plain.rowAbsMax(b);
          for (const qmax of [7, 127]) {
            // some rows with a zero step, and steps that make x·inv land on ties
            const step = rowMax.map((m, r) => (r % 5 === 4 ? 0 : roundToF16(Math.max(m / qmax, 2 ** -24))));
            const inv = step.map((s) => (s > 0 ? 1 / s : 0));
            if (rows > 2) { step[1] = 0.5; inv[1] = 2; }
            for (const f16 of [false, true]) {
              const s = await simd.quantize(a, step, inv, -qmax - 1, qmax, f16);
              const p = await plain.quantize(b, step, inv, -qmax - 1, qmax, f16);
              expect(firstDiff(await values(simd, s.mat), await values(plain, p.mat)), `quantize ${rows}×${cols} qmax ${qmax} f16 ${f16}`).toBe(-1);
              expect(Array.from(s.codeCounts)).toEqual(Array.from(p.codeCounts));
            }
          }
        }
      });

      test('rotateRows and rotateColumns (full, block, per-head)', async () => {
        const specs: [string, RotationSpec][] = [
          ['full 112 = 28·4', residualRotation(112, 'full', 64, 1)],
          ['full 896 = 28·32', residualRotation(896, 'full', 64, 2)],
          ['block 16 of 64', residualRotation(64, 'block', 16, 3)],
          ['heads 4 × 64', headRotation(64, 4, 4)],
          ['full 24 = 12·2', makeRotationSpec({ length: 24, segment: 24, signs: randomSigns(5, 'residual', 24) })],
          ['full 8 (K = 1)', residualRotation(8, 'full', 64, 6)],
          ['full 2 (K = 1)', residualRotation(2, 'full', 64, 7)],
        ];
        let seed = 300;
        for (const [name, spec] of specs) {
          for (const other of [1, 3, 9, 70]) {
            // rows: each row is a vector of spec.length
            const dr = matrix(other, spec.length, seed++, c);
            const [a, b] = [await up(simd, dr, other, spec.length), await up(plain, dr, other, spec.length)];
            await simd.rotateRows(a, spec);
            await plain.rotateRows(b, spec);
            expect(firstDiff(await values(simd, a), await values(plain, b)), `rotateRows ${name} × ${other} rows`).toBe(-1);
            // columns: each column is a vector of spec.length
            const dc = matrix(spec.length, other, seed++, c);
            const [ca, cb] = [await up(simd, dc, spec.length, other), await up(plain, dc, spec.length, other)];
            await simd.rotateColumns(ca, spec);
            await plain.rotateColumns(cb, spec);
            expect(firstDiff(await values(simd, ca), await values(plain, cb)), `rotateColumns ${name} × ${other} cols`).toBe(-1);
          }
        }
      });
    });
  }

  test('BF16 upload decodes every bit pattern as the plain path does', async () => {
    const n = 65536 + 3;
    const bytes = new Uint8Array(n * 2);
    for (let i = 0; i < n; i++) { bytes[2 * i] = i & 0xff; bytes[2 * i + 1] = (i >> 8) & 0xff; }
    const a = await simd.upload(bytes, 'BF16', 1, n);
    const b = await plain.upload(bytes, 'BF16', 1, n);
    expect(firstDiff(await values(simd, a), await values(plain, b))).toBe(-1);
  });

  test('F16 encoding matches for every f16 neighbourhood (all 2^16 values and their midpoints)', async () => {
    const n = 65536 * 2;
    const f = new Float32Array(n);
    const all = decodeToF32(new Uint8Array(Uint16Array.from({ length: 65536 }, (_, i) => i).buffer), 'F16');
    const bits = new Uint32Array(f.buffer);
    for (let i = 0; i < 65536; i++) {
      f[2 * i] = all[i];
      // an f32 halfway-ish above: exact ties for normals, nudged values for the rest
      bits[2 * i + 1] = (bits[2 * i] + 0x1000) >>> 0;
    }
    const a = await simd.upload(new Uint8Array(f.buffer), 'F32', 1, n);
    const b = await plain.upload(new Uint8Array(f.buffer), 'F32', 1, n);
    expect(firstByteDiff(await simd.read(a, 'F16'), await plain.read(b, 'F16'))).toBe(-1);
  });

  test('released arrays are reused for new matrices without stale values (clone, upload, quantize, takeRows)', async () => {
    const b = new CpuBackend();
    const rows = 16;
    const cols = 64;
    const x = matrix(rows, cols, 41);
    const y = matrix(rows, cols, 42);
    const bf = (v: Float32Array): Uint8Array => {
      const u = new Uint16Array(v.length);
      const bits = new Uint32Array(v.buffer, v.byteOffset, v.length);
      for (let i = 0; i < v.length; i++) u[i] = bits[i] >>> 16;
      return new Uint8Array(u.buffer);
    };
    const a = await b.upload(bf(x), 'BF16', rows, cols);
    const c = await b.clone(a);
    b.release(a);
    b.release(c);
    const m = await b.upload(bf(y), 'BF16', rows, cols); // takes a released array
    const ref = await plain.upload(bf(y), 'BF16', rows, cols);
    expect(firstDiff(await values(b, m), await values(plain, ref))).toBe(-1);
    const step = new Float32Array(rows).fill(0.01);
    const inv = new Float32Array(rows).fill(100);
    const k = await b.clone(m);
    b.release(k);
    const q = await b.quantize(m, step, inv, -8, 7, true);
    const qp = await plain.quantize(ref, step, inv, -8, 7, true);
    expect(firstDiff(await values(b, q.mat), await values(plain, qp.mat))).toBe(-1);
    b.release(q.mat);
    const t = await b.takeRows(m, Int32Array.from([1, 5, 9, 13]));
    expect(firstDiff(await values(b, t), (await values(plain, ref)).slice(0, 0))).toBe(-2); // different lengths are told apart
    const want = new Float32Array(4 * cols);
    [1, 5, 9, 13].forEach((r, i) => want.set((y.map((v) => new Float32Array(new Uint32Array([new Uint32Array(new Float32Array([v]).buffer)[0] & 0xffff0000]).buffer)[0])).subarray(r * cols, (r + 1) * cols), i * cols));
    expect(firstDiff(await values(b, t), want)).toBe(-1);
    await expect(b.takeRows(m, Int32Array.from([3, 2]))).rejects.toThrow(/takeRows: row 2 after 3/);
  });

  test('large matrices go through the bounded memory in chunks, with the same bits', async () => {
    const rows = 300;
    const cols = 4864; // > 1 chunk of rows at 2^20 floats
    const data = matrix(rows, cols, 999);
    const [a, b] = [await up(simd, data, rows, cols), await up(plain, data, rows, cols)];
    const spec = residualRotation(896, 'full', 64, 0);
    const wide = matrix(1200, 896, 998);
    const [wa, wb] = [await up(simd, wide, 1200, 896), await up(plain, wide, 1200, 896)];
    await simd.rotateRows(wa, spec);
    await plain.rotateRows(wb, spec);
    expect(firstDiff(await values(simd, wa), await values(plain, wb))).toBe(-1);
    const rowMax = await plain.rowAbsMax(b);
    const base = rowMax.map((m) => m / 7);
    const inv = rowMax.map((m) => 7 / m);
    expect(firstDiff(await simd.mseRowErrors(a, base, inv, MSE_ALPHAS, MSE_INV_ALPHAS, -8, 7), await plain.mseRowErrors(b, base, inv, MSE_ALPHAS, MSE_INV_ALPHAS, -8, 7))).toBe(-1);
  });
});
