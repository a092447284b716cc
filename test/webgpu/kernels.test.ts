// Every WebGPU kernel against the CPU oracle, bit for bit, on awkward shapes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '../../src/backends/cpu/cpu-backend';
import type { Backend, Mat, RotationSpec } from '../../src/core/ports';
import { headRotation, makeRotationSpec, residualRotation } from '../../src/core/hadamard/rotation';
import { randomSigns } from '../../src/core/hadamard/signs';
import { MSE_ALPHAS, MSE_INV_ALPHAS } from '../../src/core/quant/scales';
import { codebookThresholds, fitCodebook, uniformCodebook } from '../../src/core/quant/codebook';
import { roundToF16 } from '../../src/core/safetensors/dtype';
import type { Dtype } from '../../src/core/safetensors/types';
import type { WebGpuBackend } from '../../src/backends/webgpu/webgpu-backend';
import { f32Bytes, firstBitDiff, gpuBackend, gpuEnv, randomMatrix, rng } from '../support/gpu';

const env = await gpuEnv();
const skipReason = env.adapter ? '' : `WebGPU kernel tests skipped: ${env.reason}`;
if (skipReason) console.warn(skipReason);

const cpu = new CpuBackend();

type Op = (b: Backend, m: Mat) => Promise<void>;

/** Upload the same bytes on both backends, apply `ops`, compare the F32 and F16 readbacks. */
async function sameAfter(gpu: Backend, data: Float32Array, rows: number, cols: number, ops: Op[]): Promise<void> {
  const bytes = f32Bytes(data);
  const results: Uint8Array[][] = [];
  for (const b of [cpu, gpu]) {
    const m = await b.upload(bytes, 'F32', rows, cols);
    for (const op of ops) await op(b, m);
    results.push([await b.read(m, 'F32'), await b.read(m, 'F16')]);
    b.release(m);
  }
  expect(firstBitDiff(results[1][0], results[0][0])).toBeNull();
  expect(firstBitDiff(results[1][1], results[0][1])).toBeNull();
}

function spec(length: number, segment: number, seed = 1): RotationSpec {
  return makeRotationSpec({ length, segment, signs: randomSigns(seed, 'test', length) });
}

for (const tiled of [false, true]) {
  describe.skipIf(!env.adapter)(`WebGPU kernels vs CPU oracle${tiled ? ' (forced row tiling)' : ''}`, () => {
    let gpu: WebGpuBackend;
    beforeAll(async () => {
      // 8 KiB tiles: a 37×300 matrix is 6 tiles, an 896-wide one 2 rows per tile.
      gpu = await gpuBackend(env, tiled ? { maxTileBytes: 8192 } : {});
    });
    afterAll(async () => {
      await gpu?.dispose();
    });

    it('names the adapter', () => {
      expect(gpu.name).toBe('webgpu');
      expect(gpu.description).toMatch(/^WebGPU/);
      console.info(`adapter: ${gpu.description}; tile limit ${gpu.limits.maxTileBytes} bytes`);
    });

    it('upload decodes every F16 and BF16 bit pattern, and F32 bits unchanged', async () => {
      const all = new Uint16Array(65536).map((_, i) => i);
      for (const dtype of ['F16', 'BF16'] as Dtype[]) {
        const bytes = new Uint8Array(all.buffer);
        const c = await cpu.upload(bytes, dtype, 256, 256);
        const g = await gpu.upload(bytes, dtype, 256, 256);
        expect(firstBitDiff(await gpu.read(g, 'F32'), await cpu.read(c, 'F32'))).toBeNull();
        gpu.release(g);
      }
      // odd element count with 2-byte dtypes (tail word padding) and unaligned source offset
      const r = rng(3);
      const raw = new Uint8Array(1 + 7 * 13 * 2).map(() => Math.floor(r() * 256));
      const odd = raw.subarray(1);
      for (const dtype of ['F16', 'BF16'] as Dtype[]) {
        const c = await cpu.upload(odd, dtype, 7, 13);
        const g = await gpu.upload(odd, dtype, 7, 13);
        expect(firstBitDiff(await gpu.read(g, 'F32'), await cpu.read(c, 'F32'))).toBeNull();
        expect(firstBitDiff(await gpu.read(g, 'F16'), await cpu.read(c, 'F16'))).toBeNull();
        gpu.release(g);
      }
      const f32 = new Uint8Array(1 + 5 * 9 * 4).map(() => Math.floor(r() * 256)).subarray(1);
      const c = await cpu.upload(f32, 'F32', 5, 9);
      const g = await gpu.upload(f32, 'F32', 5, 9);
      expect(firstBitDiff(await gpu.read(g, 'F32'), await cpu.read(c, 'F32'))).toBeNull();
      gpu.release(g);
    });

    it('F16 readback rounds edge values like encodeF16 (ties, subnormals, overflow, NaN)', async () => {
      const edge: number[] = [0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e9, Infinity, -Infinity, NaN,
        2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -25 * 1.0000001, 2 ** -14, 2 ** -14 * (1 - 2 ** -11), 6.1e-5,
        1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 2048 + 1, 2048 + 3, 1e-8, -1e-8, 2 ** -126, 1e-40];
      const u = new Uint32Array(64 * 64);
      const r = rng(11);
      for (let i = 0; i < u.length; i++) u[i] = Math.floor(r() * 2 ** 32);
      const f = new Float32Array(u.buffer);
      edge.forEach((v, i) => (f[i] = v));
      // make sure every f16-tie pattern appears: low 13 bits exactly 0x1000
      for (let i = 100; i < 400; i++) u[i] = (u[i] & 0xffffe000) | 0x1000;
      const bytes = new Uint8Array(u.buffer);
      const c = await cpu.upload(bytes, 'F32', 64, 64);
      const g = await gpu.upload(bytes, 'F32', 64, 64);
      expect(firstBitDiff(await gpu.read(g, 'F16'), await cpu.read(c, 'F16'))).toBeNull();
      gpu.release(g);
      const c2 = await cpu.upload(bytes.subarray(0, 4 * 37 * 3), 'F32', 37, 3); // odd count per tile
      const g2 = await gpu.upload(bytes.subarray(0, 4 * 37 * 3), 'F32', 37, 3);
      expect(firstBitDiff(await gpu.read(g2, 'F16'), await cpu.read(c2, 'F16'))).toBeNull();
      gpu.release(g2);
    });

    it('clone and scaleColumns', async () => {
      const rows = 37, cols = 300;
      const gamma = Float32Array.from(randomMatrix(1, cols, 5, 3));
      await sameAfter(gpu, randomMatrix(rows, cols, 4), rows, cols, [(b, m) => b.scaleColumns(m, gamma)]);
      const g = await gpu.upload(f32Bytes(randomMatrix(rows, cols, 4)), 'F32', rows, cols);
      const g2 = await gpu.clone(g);
      await gpu.scaleColumns(g, gamma);
      const c = await cpu.upload(f32Bytes(randomMatrix(rows, cols, 4)), 'F32', rows, cols);
      expect(firstBitDiff(await gpu.read(g2, 'F32'), await cpu.read(c, 'F32'))).toBeNull();
      gpu.release(g);
      gpu.release(g2);
    });

    it('rowAbsMax (1 row; cols not a multiple of 128; negative maxima; zeros)', async () => {
      for (const [rows, cols] of [[1, 5], [1, 1000], [37, 300], [3, 129]]) {
        const d = randomMatrix(rows, cols, rows * 7 + cols);
        if (rows === 37) d.fill(0, 300, 600); // an all-zero row
        d[0] = -5;
        const c = await cpu.upload(f32Bytes(d), 'F32', rows, cols);
        const g = await gpu.upload(f32Bytes(d), 'F32', rows, cols);
        expect(firstBitDiff(await gpu.rowAbsMax(g), await cpu.rowAbsMax(c))).toBeNull();
        gpu.release(g);
      }
    });

    const rowCases: [string, number, number, () => RotationSpec][] = [
      ['full 896 = 28·32, 1 row', 1, 896, () => residualRotation(896, 'full', 0, 7)],
      ['full 896 = 28·32, 9 rows', 9, 896, () => residualRotation(896, 'full', 0, 8)],
      ['block 16 over 896', 5, 896, () => residualRotation(896, 'block', 16, 9)],
      ['block 64 over 896', 3, 896, () => residualRotation(896, 'block', 64, 10)],
      ['block 256 over 768', 3, 768, () => residualRotation(768, 'block', 256, 11)],
      ['head R2 64 × 14', 4, 896, () => headRotation(64, 14, 12)],
      ['K = 12 alone (segment 12)', 3, 36, () => spec(36, 12)],
      ['12·128 = 1536', 2, 1536, () => spec(1536, 1536)],
      ['20·256 = 5120 (K-stage in global memory)', 2, 5120, () => spec(5120, 5120)],
      ['2^13 = 8192 (global FWHT stages)', 2, 8192, () => spec(8192, 8192)],
      ['12·1024 = 12288 (both)', 1, 12288, () => spec(12288, 12288)],
      ['K = 76 (H_K sign bits span 3 words), 76·2', 3, 304, () => spec(304, 152)],
      ['K = 36, 36·4', 2, 144, () => spec(144, 144)],
      ['76·64 = 4864 (K = 76 in global memory)', 2, 4864, () => spec(4864, 4864)],
    ];
    for (const [name, rows, cols, mk] of rowCases) {
      it(`rotateRows: ${name}`, async () => {
        if (tiled && cols * 4 > 8192) return; // one row must fit a tile; covered untiled
        const s = mk();
        await sameAfter(gpu, randomMatrix(rows, cols, cols + rows), rows, cols, [(b, m) => b.rotateRows(m, s)]);
      });
    }

    const colCases: [string, number, number, () => RotationSpec][] = [
      ['residual 112 = 28·4 along columns of 112×300', 112, 300, () => residualRotation(112, 'full', 0, 21)],
      ['head R2 segment 64 (2 heads) on 128×300', 128, 300, () => headRotation(64, 2, 22)],
      ['block 16 along columns of 48×5', 48, 5, () => residualRotation(48, 'block', 16, 23)],
      ['bias vector 128×1', 128, 1, () => headRotation(64, 2, 24)],
    ];
    for (const [name, rows, cols, mk] of colCases) {
      it(`rotateColumns: ${name}`, async () => {
        const s = mk();
        await sameAfter(gpu, randomMatrix(rows, cols, rows * cols), rows, cols, [(b, m) => b.rotateColumns(m, s)]);
      });
    }

    it('fused chain: scaleColumns → rotateRows → rotateColumns', async () => {
      const rows = 112, cols = 64;
      const gamma = Float32Array.from(randomMatrix(1, cols, 31, 2));
      const rs = residualRotation(cols, 'block', 16, 32);
      const cs = residualRotation(rows, 'full', 0, 33);
      await sameAfter(gpu, randomMatrix(rows, cols, 34), rows, cols, [
        (b, m) => b.scaleColumns(m, gamma), (b, m) => b.rotateRows(m, rs), (b, m) => b.rotateColumns(m, cs),
      ]);
    });

    /** Per-row bases as chooseScales builds them. */
    function bases(rowMax: Float32Array, qmax: number): { base: Float32Array; inv: Float32Array } {
      const base = new Float32Array(rowMax.length);
      const inv = new Float32Array(rowMax.length);
      rowMax.forEach((m, r) => { base[r] = m / qmax; inv[r] = m > 0 ? qmax / m : 0; });
      return { base, inv };
    }

    it('mseRowErrors (ties at half steps, zero rows, 1 row, long rows)', async () => {
      for (const [rows, cols, qmin, qmax] of [[1, 7, -8, 7], [37, 300, -8, 7], [5, 2500, -128, 127], [3, 4864, -8, 7]]) {
        if (tiled && cols * 4 > 8192) continue; // one row must fit a tile; covered untiled
        const d = randomMatrix(rows, cols, rows + cols);
        // row 0: values exactly on half steps of α = 1 (rne ties) and the row max on the grid
        for (let c = 0; c < cols; c++) d[c] = ((c % 15) - 7 + 0.5) / 7.5;
        d[0] = 1;
        if (rows > 2) d.fill(0, cols, 2 * cols);
        const c = await cpu.upload(f32Bytes(d), 'F32', rows, cols);
        const g = await gpu.upload(f32Bytes(d), 'F32', rows, cols);
        const { base, inv } = bases(await cpu.rowAbsMax(c), qmax);
        const want = await cpu.mseRowErrors(c, base, inv, MSE_ALPHAS, MSE_INV_ALPHAS, qmin, qmax);
        const got = await gpu.mseRowErrors(g, base, inv, MSE_ALPHAS, MSE_INV_ALPHAS, qmin, qmax);
        expect(firstBitDiff(got, want)).toBeNull();
        // more than 128 candidates (two per invocation)
        const a2 = Float32Array.from({ length: 200 }, (_, k) => 0.2 + 0.004 * k);
        const i2 = a2.map((a) => 1 / a);
        expect(firstBitDiff(
          await gpu.mseRowErrors(g, base, inv, a2, i2, qmin, qmax),
          await cpu.mseRowErrors(c, base, inv, a2, i2, qmin, qmax),
        )).toBeNull();
        gpu.release(g);
      }
    });

    it('quantize: values, f16 rounding and code counts', async () => {
      for (const [rows, cols, qmin, qmax] of [[1, 5, -8, 7], [37, 300, -8, 7], [9, 1000, -128, 127]]) {
        const d = randomMatrix(rows, cols, 3 * rows + cols);
        for (let c = 0; c < Math.min(cols, 16); c++) d[c] = (c - 8 + 0.5) / 7; // exact rne ties
        const c = await cpu.upload(f32Bytes(d), 'F32', rows, cols);
        const g = await gpu.upload(f32Bytes(d), 'F32', rows, cols);
        const rowMax = await cpu.rowAbsMax(c);
        const step = new Float32Array(rows);
        const inv = new Float32Array(rows);
        rowMax.forEach((m, r) => {
          // steps that make f16 rounding matter: subnormal, tie-prone and huge (overflow) values
          const s = r === 1 ? 3e-6 : r === 2 ? 70000 / qmax : r === 3 ? 1 + 2 ** -11 : m / qmax;
          step[r] = s;
          inv[r] = s > 0 ? 1 / s : 0;
        });
        for (const f16 of [false, true]) {
          const want = await cpu.quantize(c, step, inv, qmin, qmax, f16);
          const got = await gpu.quantize(g, step, inv, qmin, qmax, f16);
          expect(Array.from(got.codeCounts)).toEqual(Array.from(want.codeCounts));
          expect(firstBitDiff(await gpu.read(got.mat, 'F32'), await cpu.read(want.mat, 'F32'))).toBeNull();
          expect(firstBitDiff(await gpu.read(got.mat, 'F16'), await cpu.read(want.mat, 'F16'))).toBeNull();
          const we = await cpu.rowSquaredErrors(c, want.mat);
          const ge = await gpu.rowSquaredErrors(g, got.mat);
          expect(firstBitDiff(ge.diff, we.diff)).toBeNull();
          expect(firstBitDiff(ge.ref, we.ref)).toBeNull();
          gpu.release(got.mat);
        }
        gpu.release(g);
      }
    });

    it('quantizeToCodebook: learned, uniform, 2- and 256-entry codebooks; threshold ties; f16 rounding and counts', async () => {
      for (const [rows, cols, bits] of [[1, 5, 4], [37, 300, 4], [9, 1000, 8], [6, 130, 1]]) {
        const d = randomMatrix(rows, cols, 5 * rows + cols);
        const c = await cpu.upload(f32Bytes(d), 'F32', rows, cols);
        const rowMax = await cpu.rowAbsMax(c);
        const qmax = Math.max(1, 2 ** (bits - 1) - 1);
        const step = new Float32Array(rows);
        const inv = new Float32Array(rows);
        rowMax.forEach((m, r) => {
          // row 0 a power of two (so w·inv lands exactly on a threshold below), then subnormal, overflowing and ordinary steps
          const s = r === 0 ? 2 ** Math.floor(Math.log2(m / qmax)) : r === 1 ? 3e-6 : r === 2 ? 70000 / qmax : roundToF16(m / qmax);
          step[r] = s;
          inv[r] = s > 0 ? 1 / s : 0;
        });
        // The codebook is fitted on ordinary steps; the odd steps above then test the kernel's arithmetic.
        const fitStep = rowMax.map((m) => roundToF16(Math.max(m, 1e-3) / qmax));
        const learned = fitCodebook(d, rows, cols, { bits, rowStep: fitStep, rowInv: fitStep.map((s) => 1 / s) }).entries;
        for (const cb of [learned, uniformCodebook(bits)]) {
          // Row 0 (after the first element): values exactly on the thresholds, and on the entries.
          const t = codebookThresholds(cb);
          const d2 = d.slice();
          for (let j = 1; j < Math.min(cols, 1 + 2 * t.length); j++) d2[j] = Math.fround((j % 2 ? t[(j >> 1) % t.length] : cb[(j >> 1) % cb.length]) * step[0]);
          if (cols > 2) expect(Math.fround(d2[1] * inv[0])).toBe(t[0]); // a real tie
          const c2 = await cpu.upload(f32Bytes(d2), 'F32', rows, cols);
          const g2 = await gpu.upload(f32Bytes(d2), 'F32', rows, cols);
          for (const f16 of [false, true]) {
            const want = await cpu.quantizeToCodebook(c2, step, inv, cb, f16);
            const got = await gpu.quantizeToCodebook(g2, step, inv, cb, f16);
            expect(Array.from(got.codeCounts)).toEqual(Array.from(want.codeCounts));
            expect(want.codeCounts.reduce((a, b) => a + b, 0)).toBe(rows * cols);
            expect(firstBitDiff(await gpu.read(got.mat, 'F32'), await cpu.read(want.mat, 'F32'))).toBeNull();
            expect(firstBitDiff(await gpu.read(got.mat, 'F16'), await cpu.read(want.mat, 'F16'))).toBeNull();
            gpu.release(got.mat);
          }
          gpu.release(g2);
        }
      }
      const g = await gpu.upload(f32Bytes(new Float32Array(4)), 'F32', 2, 2);
      const one = new Float32Array([1, 1]);
      await expect(gpu.quantizeToCodebook(g, one, one, new Float32Array([0, 0]), false)).rejects.toThrow(/entry 1/);
      await expect(gpu.quantizeToCodebook(g, one, one, new Float32Array(512).map((_, i) => i), false)).rejects.toThrow(/512 codebook entries/);
      gpu.release(g);
    });

    it('histogram edge values (bin edges, ±range, beyond range, ±inf)', async () => {
      const rows = 9, cols = 301;
      const d = randomMatrix(rows, cols, 77, 0.5);
      const range = 0.75;
      const bins = 128;
      const w = (2 * range) / bins;
      const edge = [-range, range, 0, -0, 10, -10, Infinity, -Infinity, range - 1e-7, -range + 1e-7];
      edge.forEach((v, i) => (d[i] = v));
      for (let i = 0; i < 200; i++) d[20 + i] = -range + (i % bins) * w; // on bin boundaries
      const c = await cpu.upload(f32Bytes(d), 'F32', rows, cols);
      const g = await gpu.upload(f32Bytes(d), 'F32', rows, cols);
      for (const [r, nb] of [[range, bins], [1, 1], [0.3, 1000], [3e-3, 64]] as [number, number][]) {
        expect(Array.from(await gpu.histogram(g, r, nb))).toEqual(Array.from(await cpu.histogram(c, r, nb)));
      }
      gpu.release(g);
    });

    it('rowSquaredErrors on unrelated matrices (rows not a multiple of 64, cols of 32)', async () => {
      for (const [rows, cols] of [[1, 3], [65, 33], [130, 100]]) {
        const a = randomMatrix(rows, cols, 1 + rows);
        const b = randomMatrix(rows, cols, 2 + rows);
        const ca = await cpu.upload(f32Bytes(a), 'F32', rows, cols);
        const cb = await cpu.upload(f32Bytes(b), 'F32', rows, cols);
        const ga = await gpu.upload(f32Bytes(a), 'F32', rows, cols);
        const gb = await gpu.upload(f32Bytes(b), 'F32', rows, cols);
        const want = await cpu.rowSquaredErrors(ca, cb);
        const got = await gpu.rowSquaredErrors(ga, gb);
        expect(firstBitDiff(got.diff, want.diff)).toBeNull();
        expect(firstBitDiff(got.ref, want.ref)).toBeNull();
        gpu.release(ga);
        gpu.release(gb);
      }
    });

    it('rejects use after release and foreign matrices', async () => {
      const g = await gpu.upload(f32Bytes(new Float32Array(4)), 'F32', 2, 2);
      gpu.release(g);
      await expect(gpu.rowAbsMax(g)).rejects.toThrow(/after release/);
      const c = await cpu.upload(f32Bytes(new Float32Array(4)), 'F32', 2, 2);
      await expect(gpu.rowAbsMax(c)).rejects.toThrow(/another backend/);
    });
  });
}

describe.skipIf(!!env.adapter)('WebGPU kernels (skipped)', () => {
  it.skip(`no adapter: ${skipReason}`, () => undefined);
});
