// GPTQ's WebGPU kernels against the CPU oracle (src/core/quant/gptq.ts): the Hessian
// (gptq_hessian.wgsl, compensated f32 vs f64), the trailing block update (gptq_update.wgsl vs an
// f64 product), and the whole GPU GPTQ (gptq_columns + gptq_update on the host's f64 Cholesky
// factor) vs gptqQuantize: ≥ 99.9 % of codes equal, the same output error, values on the grid,
// deterministic, independent of row tiling.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebGpuGptqEngine } from '../../src/backends/webgpu/gptq-engine';
import { gptqQuantize, HessianAccumulator, outputError, type GptqResult } from '../../src/core/quant/gptq';
import { cpuGptqEngine } from '../../src/core/quant/gptq-engine';
import { roundToF16 } from '../../src/core/safetensors/dtype';
import type { DeviceRows } from '../../src/gpu/device-rows';
import { createGpuRuntime, Transients, type GpuRuntime } from '../../src/gpu/runtime';
import { requestNodeAdapter } from '../../src/gpu/node';
import { absmaxSteps, codeAgreement, gaussian, gptqCase } from '../support/gptq-cases';
import { gpuEnv } from '../support/gpu';

const env = await gpuEnv();
if (!env.adapter) console.warn(`WebGPU GPTQ tests skipped: ${env.reason}`);

const hostRows = (x: Float32Array, rows: number, cols: number) => ({ rows, cols, host: x, read: async () => x.slice() });

function maxRelToDiag(a: Float64Array, b: Float64Array, d: number): number {
  let diag = 0;
  for (let i = 0; i < d; i++) diag = Math.max(diag, Math.abs(b[i * d + i]));
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m / diag;
}

function expectOnGrid(r: GptqResult, rows: number, cols: number, rowStep: Float32Array, qmin: number, qmax: number, f16: boolean): void {
  let bad = 0;
  const counts = new Uint32Array(qmax - qmin + 1);
  for (let i = 0; i < rows * cols; i++) {
    const q = r.codes[i];
    counts[q - qmin]++;
    const v = Math.fround(rowStep[Math.floor(i / cols)] * q);
    if (!(q >= qmin && q <= qmax) || r.values[i] !== (f16 ? roundToF16(v) : v)) bad++;
  }
  expect(bad).toBe(0);
  expect(Array.from(r.codeCounts)).toEqual(Array.from(counts));
}

const bytes = (r: GptqResult) => [new Uint8Array(r.values.buffer.slice(0)), new Uint8Array(r.codes.buffer.slice(0))];

describe.skipIf(!env.adapter)('GPTQ on WebGPU vs the CPU oracle', () => {
  let rt: GpuRuntime;
  let engine: WebGpuGptqEngine;
  beforeAll(async () => {
    const r = await requestNodeAdapter();
    if (!r.adapter) throw new Error(r.reason);
    rt = await createGpuRuntime({ adapter: r.adapter });
    engine = new WebGpuGptqEngine(rt);
  });
  afterAll(() => rt?.destroy());

  it('Hessian: host rows and device rows, uneven sizes, row-tiled H; within 2e-7 of f64 (relative to the largest diagonal), deterministic', async () => {
    const cols = 100;
    const c = gptqCase(1, cols, 331, 5, [7]);
    const want = new HessianAccumulator(cols);
    want.addRows(c.x, c.tokens);
    const h64 = want.hessian();
    // Tiles of 64 H rows (two tiles for 100), samples of 1, 17, 100 and 213 rows, half of them from a device buffer.
    const tiled = new WebGpuGptqEngine(rt, { maxBindingBytes: 64 * cols * 4 });
    const temps = new Transients(rt);
    const runOnce = async () => {
      const acc = tiled.hessian(cols, 'test');
      let t0 = 0;
      for (const [k, n] of [1, 17, 100, 213].entries()) {
        const part = c.x.subarray(t0 * cols, (t0 + n) * cols);
        if (k % 2 === 0) await acc.add(hostRows(part, n, cols));
        else {
          const dev: DeviceRows & { read(): Promise<Float32Array> } = { runtime: rt, buffer: temps.filled('x', part), rows: n, cols, read: async () => part.slice() };
          await acc.add(dev);
        }
        t0 += n;
      }
      expect(acc.samples).toBe(c.tokens);
      const h = await acc.hessian();
      acc.dispose();
      return h;
    };
    try {
      const h = await runOnce();
      const rel = maxRelToDiag(h, h64, cols);
      console.log(`Hessian 100×100 over 331 rows: max |ΔH| / max diag = ${rel.toExponential(2)}`);
      expect(rel).toBeLessThan(2e-7);
      expect(h[7 * cols + 7]).toBe(0);
      for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) expect(h[i * cols + j]).toBe(h[j * cols + i]);
      const again = await runOnce();
      expect(new Uint8Array(again.buffer)).toEqual(new Uint8Array(h.buffer));
    } finally {
      temps.destroyAll();
    }
  });

  it('Hessian: the compensated sum keeps 200 samples as accurate as one (f32 alone would drift)', async () => {
    const cols = 64;
    const g = gaussian(9);
    const rows = 32;
    const acc = engine.hessian(cols);
    const want = new HessianAccumulator(cols);
    // A large common offset makes every entry's sum grow: the case plain f32 accumulation loses.
    for (let s = 0; s < 200; s++) {
      const x = Float32Array.from({ length: rows * cols }, () => 3 + g());
      await acc.add(hostRows(x, rows, cols));
      want.addRows(x, rows);
    }
    const rel = maxRelToDiag(await acc.hessian(), want.hessian(), cols);
    acc.dispose();
    console.log(`Hessian, 200 samples × 32 rows with offset 3: max |ΔH| / max diag = ${rel.toExponential(2)}`);
    expect(rel).toBeLessThan(2e-7);
  });

  it('Hessian: a non-finite activation is refused with the input named', async () => {
    const acc = engine.hessian(4, 'layer 0 attn_in');
    await expect(acc.add(hostRows(Float32Array.from([1, 2, NaN, 4]), 1, 4))).rejects.toThrow(/calibration input of layer 0 attn_in has a non-finite value \(NaN\) at row 0, column 2/);
    acc.dispose();
  });

  it('block update kernel (double-f32): W[:, j0:] −= Err·U[:, j0:] within 1e-12 of f64 (plain f32: ~1e-7)', async () => {
    const rows = 70, cols = 150, nb = 37, j0 = 40, B = 48;
    const g = gaussian(3);
    // f64 operands split into (hi, lo) f32 pairs, the way the engine uploads U.
    const pairs = (x: Float64Array) => {
      const out = new Float32Array(2 * x.length);
      x.forEach((v, i) => { out[2 * i] = Math.fround(v); out[2 * i + 1] = v - Math.fround(v); });
      return out;
    };
    const w = Float64Array.from({ length: rows * cols }, () => g());
    const u = Float64Array.from({ length: nb * cols }, () => g());
    const err = Float64Array.from({ length: rows * B }, () => g());
    const temps = new Transients(rt);
    try {
      const wb = temps.filled('w', pairs(w));
      const enc = rt.device.createCommandEncoder();
      const pass = enc.beginComputePass();
      rt.dispatch(pass, 'gptq_update', [temps.uniform('p', [rows, cols, nb, j0, B, 0, 0, 0]), wb, temps.filled('u', pairs(u)), temps.filled('e', pairs(err))], [Math.ceil((cols - j0) / 16), Math.ceil(rows / 16)]);
      pass.end();
      rt.device.queue.submit([enc.finish()]);
      const got = await rt.readF32(wb, 2 * rows * cols);
      const before = pairs(w);
      let maxErr = 0;
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < cols; j++) {
          const i = r * cols + j;
          if (j < j0) {
            expect([got[2 * i], got[2 * i + 1]]).toEqual([before[2 * i], before[2 * i + 1]]);
            continue;
          }
          let s = 0;
          for (let k = 0; k < nb; k++) s += err[r * B + k] * u[k * cols + j];
          maxErr = Math.max(maxErr, Math.abs(got[2 * i] + got[2 * i + 1] - (w[i] - s)) / (1 + Math.abs(w[i] - s)));
        }
      }
      console.log(`gptq_update double-f32: max error ${maxErr.toExponential(2)} relative to 1 + |W|`);
      expect(maxErr).toBeLessThan(1e-12);
    } finally {
      temps.destroyAll();
    }
  });

  for (const [label, bits, actOrder, f16] of [['W4 act-order', 4, true, false], ['W4 natural order, f16 values', 4, false, true], ['W8 act-order', 8, true, false]] as const) {
    it(`whole GPTQ (${label}): ≥ 99.9 % of codes equal to the CPU's, same output error, on the grid, deterministic, tiling-independent`, async () => {
      const rows = 96, cols = 160, tokens = 600;
      const c = gptqCase(rows, cols, tokens, 21 + bits, [3, 77]);
      const acc = new HessianAccumulator(cols);
      acc.addRows(c.x, tokens);
      const h = acc.hessian();
      const qmax = (1 << (bits - 1)) - 1;
      const qmin = -qmax - 1;
      const { rowStep, rowInv } = absmaxSteps(c.w, rows, cols, qmax);
      const opts = { rowStep, rowInv, qmin, qmax, actOrder, roundToF16: f16, blockSize: 32, name: 'test' };
      const want = gptqQuantize(c.w, rows, cols, h, opts);
      const got = await engine.quantize(c.w, rows, cols, h, opts);
      const agree = codeAgreement(got.codes, want.codes);
      const eGpu = outputError(c.w, got.values, rows, cols, h).relError;
      const eCpu = outputError(c.w, want.values, rows, cols, h).relError;
      console.log(`GPTQ ${label} 96×160: codes equal ${(agree * 100).toFixed(3)} %, output error GPU ${eGpu.toFixed(5)} vs CPU ${eCpu.toFixed(5)}`);
      expect(agree).toBeGreaterThanOrEqual(0.999);
      expect(Math.abs(eGpu - eCpu)).toBeLessThanOrEqual(0.01 * eCpu);
      expectOnGrid(got, rows, cols, rowStep, qmin, qmax, f16);
      expect(got.deadColumns).toBe(2);
      for (let r = 0; r < rows; r++) expect([got.codes[r * cols + 3], got.codes[r * cols + 77]]).toEqual([0, 0]);
      const again = await engine.quantize(c.w, rows, cols, h, opts);
      expect(bytes(again)).toEqual(bytes(got));
      const tiled = await new WebGpuGptqEngine(rt, { maxBindingBytes: 40 * cols * 8 }).quantize(c.w, rows, cols, h, opts);
      expect(bytes(tiled)).toEqual(bytes(got));
    });
  }

  it('GPTQ at 256 × 896 on a 2048-token Hessian: H within 2e-7, ≥ 99.9 % of codes as on the CPU', { timeout: 300_000 }, async () => {
    const rows = 256, cols = 896, tokens = 2048;
    const g = gaussian(77);
    // Cheap correlated inputs at this size: a few shared factors plus noise.
    const f = 16;
    const mix = Float32Array.from({ length: f * cols }, () => g());
    const x = new Float32Array(tokens * cols);
    for (let t = 0; t < tokens; t++) {
      const z = Array.from({ length: f }, () => g());
      for (let j = 0; j < cols; j++) {
        let s = 0.3 * g();
        for (let k = 0; k < f; k++) s += z[k] * mix[k * cols + j];
        x[t * cols + j] = s;
      }
    }
    const hAcc = engine.hessian(cols);
    await hAcc.add(hostRows(x, tokens, cols));
    const h = await hAcc.hessian();
    hAcc.dispose();
    const hc = await cpuGptqEngine.hessian(cols);
    await hc.add(hostRows(x, tokens, cols));
    const hCpu = await hc.hessian();
    const hRel = maxRelToDiag(h, hCpu, cols);
    console.log(`Hessian 896² over 2048 rows: max |ΔH| / max diag = ${hRel.toExponential(2)}`);
    expect(hRel).toBeLessThan(2e-7);
    const w = Float32Array.from({ length: rows * cols }, () => 0.05 * g());
    const { rowStep, rowInv } = absmaxSteps(w, rows, cols, 7);
    const opts = { rowStep, rowInv, qmin: -8, qmax: 7 };
    const want = gptqQuantize(w, rows, cols, hCpu, opts);
    const got = await engine.quantize(w, rows, cols, h, opts);
    const agree = codeAgreement(got.codes, want.codes);
    const sameH = codeAgreement((await engine.quantize(w, rows, cols, hCpu, opts)).codes, want.codes);
    console.log(`GPTQ W4 256×896: codes equal to the all-CPU run: ${(agree * 100).toFixed(3)} % (GPU Hessian and updates), ${(sameH * 100).toFixed(3)} % (CPU Hessian, GPU updates)`);
    expect(agree).toBeGreaterThanOrEqual(0.999);
  });
});
