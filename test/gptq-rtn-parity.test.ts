/**
 * GPTQ on the steps the pipeline's chooseScales picks, against the CPU backend's quantize
 * kernel: with no cross terms in H (diagonal) GPTQ must reproduce RTN byte for byte (same
 * rounding, sign of zero, f16 rounding, histogram); with correlated inputs it must stay on the
 * same grid and cut the output error.
 */
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import { gptqQuantize, HessianAccumulator, outputError } from '../src/core/quant/gptq';
import { chooseScales, gridFor } from '../src/core/quant/scales';
import { roundToF16 } from '../src/core/safetensors/dtype';
import type { Clip, Scheme } from '../src/core/settings';

function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u() || 1e-12)) * Math.cos(2 * Math.PI * u());
}

describe('GPTQ on chooseScales steps vs the CPU quantize kernel', () => {
  const rows = 40;
  const cols = 64;
  const g = gaussian(42);
  const w = Float32Array.from({ length: rows * cols }, () => g() * (1 + (g() > 2.5 ? 8 : 0)));

  for (const [scheme, clip, bits] of [['sp', 'mse', 4], ['per_tensor', 'absmax', 8], ['sp', 'absmax', 4]] as [Scheme, Clip, 4 | 8][]) {
    it(`${scheme}/${clip} W${bits}: diagonal H → identical to RTN; correlated H → same grid, lower output error`, async () => {
      const be = new CpuBackend();
      const m = await be.upload(new Uint8Array(w.buffer.slice(0)), 'F32', rows, cols);
      const scales = await chooseScales(be, m, await be.rowAbsMax(m), bits, scheme, clip);
      const { qmin, qmax } = gridFor(bits);
      const rtn = await be.quantize(m, scales.rowStep, scales.rowInv, qmin, qmax, true);
      const rtnBytes = await be.read(rtn.mat, 'F16');
      const rtnValues = new Float32Array((await be.read(rtn.mat, 'F32')).slice().buffer);

      const hd = new Float64Array(cols * cols);
      for (let j = 0; j < cols; j++) hd[j * cols + j] = 2 + Math.sin(j);
      const same = gptqQuantize(w, rows, cols, hd, { rowStep: scales.rowStep, rowInv: scales.rowInv, qmin, qmax, roundToF16: true });
      const sameMat = await be.upload(new Uint8Array(same.values.buffer), 'F32', rows, cols);
      expect(await be.read(sameMat, 'F16')).toEqual(rtnBytes);
      expect(Array.from(same.codeCounts)).toEqual(Array.from(rtn.codeCounts));

      // Correlated inputs: X = Z·A.
      const a = Float64Array.from({ length: cols * cols }, () => g());
      const tokens = 256;
      const x = new Float32Array(tokens * cols);
      for (let t = 0; t < tokens; t++) {
        const z = Array.from({ length: cols }, () => g());
        for (let j = 0; j < cols; j++) {
          let s = 0;
          for (let k = 0; k < cols; k++) s += z[k] * a[k * cols + j];
          x[t * cols + j] = s / 8;
        }
      }
      const acc = new HessianAccumulator(cols);
      acc.addRows(x, tokens);
      const h = acc.hessian();
      const q = gptqQuantize(w, rows, cols, h, { rowStep: scales.rowStep, rowInv: scales.rowInv, qmin, qmax, roundToF16: true });
      for (let i = 0; i < rows * cols; i++) {
        const r = Math.floor(i / cols);
        // The F16 bundle stores f16(rowStep·q) (the loader's fp16 arithmetic), as RTN does.
        const c = q.codes[i];
        if (!(c >= qmin && c <= qmax && q.values[i] === roundToF16(Math.fround(scales.rowStep[r] * c)))) throw new Error(`off grid at ${i}: ${q.values[i]} vs code ${c} × ${scales.rowStep[r]}`);
      }
      const eRtn = outputError(w, rtnValues, rows, cols, h).relError;
      const eGptq = outputError(w, q.values, rows, cols, h).relError;
      console.log(`${scheme}/${clip} W${bits} [${rows}×${cols}]: ‖ΔX‖/‖WX‖ RTN ${eRtn.toFixed(5)} → GPTQ ${eGptq.toFixed(5)} (×${(eGptq / eRtn).toFixed(3)})`);
      expect(eGptq / eRtn).toBeLessThan(0.8);
      await be.dispose();
    });
  }
});
