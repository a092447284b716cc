/**
 * Learned codebooks: the fitter's entries (sorted, F16, spacing rule, fp16 de-fuse snap-back on
 * every row step), Lloyd's objective, determinism, degenerate and bad inputs, the nearest-entry
 * search, and GPTQ onto a codebook.
 */
import { describe, expect, it } from 'vitest';
import { f16BitsToF32, roundToF16 } from '../safetensors/dtype';
import {
  CODEBOOK_ABS_GAP,
  CodebookError,
  codebookProblem,
  codebookThresholds,
  defuseSnapFailures,
  f16Round,
  fitCodebook,
  loaderSnapIndex,
  nearestEntryIndex,
  refitCodebookToCodes,
  requiredGap,
  uniformCodebook,
} from './codebook';
import { gptqQuantize, HessianAccumulator, outputError } from './gptq';

/** mulberry32 → uniform [0, 1). */
function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(seed: number): () => number {
  const u = uniform(seed);
  return () => Math.sqrt(-2 * Math.log(u() || 1e-12)) * Math.cos(2 * Math.PI * u());
}

/** Heavy-tailed weights (Laplace-like, a few outliers), rows of different scales. */
function weights(rows: number, cols: number, seed: number): Float32Array {
  const u = uniform(seed);
  const g = gaussian(seed + 1);
  const w = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const scale = 0.02 * Math.exp(g() * 0.5);
    for (let j = 0; j < cols; j++) {
      const lap = -Math.log(u() || 1e-12) * (u() < 0.5 ? -1 : 1);
      w[r * cols + j] = (u() < 0.003 ? 8 : 1) * scale * lap;
    }
  }
  return w;
}

/** Absmax row steps on the f16 grid, as chooseScales lays them out (step = fp16(s_in·s_out)). */
function steps(w: Float32Array, rows: number, cols: number, qmax: number, alpha = 1): { rowStep: Float32Array; rowInv: Float32Array } {
  const rowStep = new Float32Array(rows);
  const rowInv = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = 0; j < cols; j++) m = Math.max(m, Math.abs(w[r * cols + j]));
    rowStep[r] = roundToF16(Math.max((alpha * m) / qmax, 2 ** -24));
    rowInv[r] = 1 / rowStep[r];
  }
  return { rowStep, rowInv };
}

/** Round-to-nearest onto a codebook, by brute force (ties to the lower entry), f16 values. */
function rtnToCodebook(w: Float32Array, rows: number, cols: number, rowStep: Float32Array, rowInv: Float32Array, cb: Float32Array): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      const x = Math.fround(w[r * cols + j] * rowInv[r]);
      let best = 0;
      for (let k = 1; k < cb.length; k++) if (Math.abs(cb[k] - x) < Math.abs(cb[best] - x)) best = k;
      out[r * cols + j] = roundToF16(Math.fround(rowStep[r] * cb[best]));
    }
  }
  return out;
}

function sse(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s;
}

describe('codebook rules', () => {
  it('the integer grids satisfy the spacing rule; close, unsorted, non-F16 or misnumbered entries are named', () => {
    for (const b of [1, 2, 3, 4, 8]) expect(codebookProblem(uniformCodebook(b), 2 ** b)).toBeNull();
    expect(uniformCodebook(4)[0]).toBe(-8);
    expect(uniformCodebook(4)[15]).toBe(7);
    expect(codebookProblem([0, 2 ** -7])).toMatch(/apart; at least 0.015625/);
    expect(codebookProblem([100, 100.5])).toMatch(/at least 0.78515625/); // 2^-7·100.5
    expect(codebookProblem([1, 0])).toMatch(/not strictly increasing/);
    expect(codebookProblem([0, 0.1])).toMatch(/not a finite F16/);
    expect(codebookProblem([0, 1, 2])).toMatch(/3 entries/);
    expect(codebookProblem([0, 1], 4)).toMatch(/expected 4/);
    expect(requiredGap(-3, 0.5)).toBe(3 * 2 ** -7);
    expect(requiredGap(0, 0.25)).toBe(CODEBOOK_ABS_GAP);
    expect(requiredGap(0, 0.25, 0.1)).toBe(0.1);
  });

  it('f16Round equals roundToF16: every F16 value, its midpoints and their neighbours, random doubles, edges', () => {
    const xs: number[] = [0, -0, 65504, 65519.99, 65520, -65520, Infinity, -Infinity, 2 ** -25, 2 ** -25 + 2 ** -40, 3 * 2 ** -25, 2 ** -14, 2 ** -14 - 2 ** -26];
    for (let h = 0; h < 0x7c00; h++) {
      const v = f16BitsToF32(h);
      const next = f16BitsToF32(h + 1);
      const mid = (v + next) / 2;
      xs.push(v, mid, mid * (1 + 2 ** -40), mid * (1 - 2 ** -40), Math.fround(mid), -mid);
    }
    const u = uniform(3);
    for (let i = 0; i < 20000; i++) xs.push((u() - 0.5) * 2 ** Math.floor(u() * 44 - 28));
    let bad = 0;
    for (const x of xs) if (!Object.is(f16Round(x), roundToF16(x))) bad++;
    expect(bad).toBe(0);
    expect(Number.isNaN(f16Round(NaN))).toBe(true);
  });

  it('nearestEntryIndex is the nearest entry (ties to the lower one) for values around and between the entries', () => {
    const u = uniform(5);
    for (const cb of [uniformCodebook(4), uniformCodebook(8), new Float32Array([-3.5, -0.25, 0.0625, 2, 9.5])]) {
      const t = codebookThresholds(cb);
      for (let i = 0; i < 2000; i++) {
        const x = Math.fround((u() - 0.5) * 2.4 * (cb[cb.length - 1] - cb[0]));
        let best = 0;
        for (let k = 1; k < cb.length; k++) if (Math.abs(cb[k] - x) < Math.abs(cb[best] - x)) best = k;
        expect(nearestEntryIndex(x, t)).toBe(best);
      }
      for (let k = 0; k < t.length; k++) {
        expect(nearestEntryIndex(t[k], t)).toBe(k); // on a threshold: the lower entry
        expect(nearestEntryIndex(cb[k], t)).toBe(k);
      }
    }
  });
});

describe('fitCodebook', () => {
  it.each([4, 8])('W%i: sorted F16 entries, spacing kept, every stored weight snaps back under the fp16 de-fuse', (bits) => {
    const rows = 96;
    const cols = 320;
    const w = weights(rows, cols, 11 + bits);
    const qmax = 2 ** (bits - 1) - 1;
    const { rowStep, rowInv } = steps(w, rows, cols, qmax, 0.8);
    // Tiny and large row steps too: the loader's fp16 products go subnormal / near the top.
    // (the rows' weights scaled with them, as chooseScales would have chosen those steps).
    for (const [r, step] of [[3, 2 ** -23], [4, roundToF16(3e-7)], [5, roundToF16(0.5)]]) {
      for (let j = 0; j < cols; j++) w[r * cols + j] = Math.fround(w[r * cols + j] * (step / rowStep[r]));
      rowStep[r] = step;
      rowInv[r] = Math.fround(1 / step);
    }
    const fit = fitCodebook(w, rows, cols, { bits, rowStep, rowInv });
    const cb = fit.entries;
    expect(cb.length).toBe(2 ** bits);
    expect(codebookProblem(cb, 2 ** bits, fit.spacingFloor)).toBeNull();
    expect(defuseSnapFailures(cb, rowStep)).toEqual([]);
    // Each stored weight, as ANEMLL reads it: fp16(weight / fp16(s_in·s_out)), nearest entry.
    const stored = rtnToCodebook(w, rows, cols, rowStep, rowInv, cb);
    let misSnapped = 0;
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < cols; j++) {
        const v = stored[r * cols + j];
        const k = loaderSnapIndex(cb, roundToF16(v / rowStep[r]));
        if (roundToF16(Math.fround(rowStep[r] * cb[k])) !== v) misSnapped++;
      }
    }
    expect(misSnapped).toBe(0);
    // Tiny row steps raise the spacing floor beyond the format's 2^-6 (subnormal products).
    expect(fit.spacingFloor).toBeGreaterThan(CODEBOOK_ABS_GAP);
  });

  it('lowers the weighted error below the integer grid on the same steps (W4 and W8), and Lloyd lowers its objective', () => {
    for (const bits of [4, 8]) {
      const rows = 64;
      const cols = 256;
      const w = weights(rows, cols, 3 * bits);
      const qmax = 2 ** (bits - 1) - 1;
      const { rowStep, rowInv } = steps(w, rows, cols, qmax, 0.7);
      const learned = fitCodebook(w, rows, cols, { bits, rowStep, rowInv });
      const init = fitCodebook(w, rows, cols, { bits, rowStep, rowInv, iterations: 0 });
      expect(learned.iterations).toBeGreaterThan(3);
      expect(learned.distortion).toBeLessThan(init.distortion);
      const eLearned = sse(w, rtnToCodebook(w, rows, cols, rowStep, rowInv, learned.entries));
      const eGrid = sse(w, rtnToCodebook(w, rows, cols, rowStep, rowInv, uniformCodebook(bits)));
      console.info(`W${bits} synthetic Laplace: learned/grid squared error ${(eLearned / eGrid).toFixed(3)}; Lloyd ${learned.iterations} iterations, objective ${(learned.distortion / init.distortion).toFixed(3)} of the quantile start`);
      // Laplace weights: the learned LUT takes ≥ 25 % (W4) / 15 % (W8) off the grid's squared error.
      expect(eLearned / eGrid).toBeLessThan(bits === 4 ? 0.75 : 0.85);
    }
  });

  it('is deterministic; unit column weights equal no weights; iterations cap the work', () => {
    const rows = 40;
    const cols = 128;
    const w = weights(rows, cols, 21);
    const s = steps(w, rows, cols, 7);
    const a = fitCodebook(w, rows, cols, { bits: 4, ...s });
    const b = fitCodebook(w.slice(), rows, cols, { bits: 4, rowStep: s.rowStep.slice(), rowInv: s.rowInv.slice() });
    expect(Array.from(b.entries)).toEqual(Array.from(a.entries));
    const ones = fitCodebook(w, rows, cols, { bits: 4, ...s, columnWeights: new Float64Array(cols).fill(1) });
    expect(Array.from(ones.entries)).toEqual(Array.from(a.entries));
    const zeros = fitCodebook(w, rows, cols, { bits: 4, ...s, columnWeights: new Float64Array(cols) });
    expect(Array.from(zeros.entries)).toEqual(Array.from(a.entries)); // no signal: uniform
    expect(fitCodebook(w, rows, cols, { bits: 4, ...s, iterations: 2 }).iterations).toBe(2);
  });

  it('with the Hessian diagonal, lowers the output error of columns that see large inputs', () => {
    // Inputs of very different size per column (as after the attention norm), independent columns:
    // the important columns' weights sit at ±0.55 of the row max, the rest are Laplace.
    const rows = 64;
    const cols = 192;
    const tokens = 512;
    const u = uniform(77);
    const g = gaussian(78);
    const colScale = Float64Array.from({ length: cols }, (_, j) => (j % 8 === 0 ? 12 : 0.5));
    const w = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < cols; j++) {
        w[r * cols + j] = j % 8 === 0 ? (u() < 0.5 ? -1 : 1) * (0.55 + 0.03 * g()) * 0.1 : 0.1 * 0.15 * -Math.log(u() || 1e-12) * (u() < 0.5 ? -1 : 1);
      }
      w[r * cols + 1] = 0.1; // every row's max is 0.1
    }
    const x = new Float32Array(tokens * cols);
    for (let t = 0; t < tokens; t++) for (let j = 0; j < cols; j++) x[t * cols + j] = g() * colScale[j];
    const acc = new HessianAccumulator(cols);
    acc.addRows(x, tokens);
    const h = acc.hessian();
    const diag = Float64Array.from({ length: cols }, (_, j) => h[j * cols + j]);
    const s = steps(w, rows, cols, 7);
    const plain = fitCodebook(w, rows, cols, { bits: 4, ...s });
    const weighted = fitCodebook(w, rows, cols, { bits: 4, ...s, columnWeights: diag });
    const ePlain = outputError(w, rtnToCodebook(w, rows, cols, s.rowStep, s.rowInv, plain.entries), rows, cols, h).relError;
    const eWeighted = outputError(w, rtnToCodebook(w, rows, cols, s.rowStep, s.rowInv, weighted.entries), rows, cols, h).relError;
    const eGrid = outputError(w, rtnToCodebook(w, rows, cols, s.rowStep, s.rowInv, uniformCodebook(4)), rows, cols, h).relError;
    console.info(`Hessian-weighted Lloyd: output error ${eWeighted.toFixed(4)} vs unweighted ${ePlain.toFixed(4)}, integer grid ${eGrid.toFixed(4)}`);
    expect(eWeighted).toBeLessThan(0.8 * ePlain);
    expect(eWeighted).toBeLessThan(eGrid);
  });

  it('widens the spacing until tiny row steps de-fuse to their own entries, starting from the format minimum', () => {
    const rows = 8;
    const cols = 256;
    const w = weights(rows, cols, 5);
    // Products step·C in f16's subnormal range (quantum 2^-24 = ½ in units of u).
    const rowStep = new Float32Array(rows).fill(2 ** -23);
    const rowInv = new Float32Array(rows).fill(2 ** 23);
    for (let i = 0; i < w.length; i++) w[i] = Math.fround(w[i] * 2 ** -23); // |u| ≲ 1.5: Lloyd packs 16 entries closer than ½
    const fit = fitCodebook(w, rows, cols, { bits: 4, rowStep, rowInv, spacingFloor: 0 });
    expect(fit.floorRaises).toBeGreaterThan(0);
    // The default floor from the smallest step (2^-22 / step = 2) needs no raise.
    const auto = fitCodebook(w, rows, cols, { bits: 4, rowStep, rowInv });
    expect(auto.spacingFloor).toBe(2);
    expect(auto.floorRaises).toBe(0);
    expect(defuseSnapFailures(auto.entries, rowStep)).toEqual([]);
    expect(defuseSnapFailures(fit.entries, rowStep)).toEqual([]);
    expect(codebookProblem(fit.entries, 16)).toBeNull();
    // Without the floor the same entries would not survive: the check sees it.
    const tight = Float32Array.from(uniformCodebook(4), (v) => roundToF16(v / 8));
    expect(defuseSnapFailures(tight, rowStep).length).toBeGreaterThan(0);
  });

  it('degenerate tensors still give a valid codebook; bad input is refused with the tensor named', () => {
    const one = { rowStep: new Float32Array([0.5, 0.5]), rowInv: new Float32Array([2, 2]) };
    for (const w of [new Float32Array(8), new Float32Array(8).fill(0.25)]) {
      const fit = fitCodebook(w, 2, 4, { bits: 4, ...one });
      expect(codebookProblem(fit.entries, 16, fit.spacingFloor)).toBeNull();
      expect(defuseSnapFailures(fit.entries, one.rowStep)).toEqual([]);
    }
    const bad = new Float32Array(8);
    bad[5] = NaN;
    expect(() => fitCodebook(bad, 2, 4, { bits: 4, ...one, name: 'model.layers.0.mlp.up_proj.weight' })).toThrow(CodebookError);
    expect(() => fitCodebook(bad, 2, 4, { bits: 4, ...one, name: 'model.layers.0.mlp.up_proj.weight' })).toThrow(/up_proj.*weight \[1, 1\] is NaN/);
    expect(() => fitCodebook(new Float32Array(8), 2, 4, { bits: 4, ...one, columnWeights: [1, -1, 1, 1] })).toThrow(/column weight 1 is -1/);
    expect(() => fitCodebook(new Float32Array(8), 2, 4, { bits: 4, ...one, columnWeights: [1, 1] })).toThrow(/2 column weights for 4 columns/);
    expect(() => fitCodebook(new Float32Array(8), 2, 4, { bits: 9, ...one })).toThrow(/bits 9/);
    expect(() => fitCodebook(new Float32Array(7), 2, 4, { bits: 4, ...one })).toThrow(/7 weights/);
  });
});

describe('GPTQ onto a codebook', () => {
  it('every value is rowStep·C[code], output error below RTN onto the same codebook, block size changes nothing, bad codebooks refused', () => {
    const rows = 48;
    const cols = 96;
    const tokens = 400;
    const g = gaussian(9);
    const w = weights(rows, cols, 31);
    // Correlated inputs (where GPTQ's error feedback pays).
    const a = Float64Array.from({ length: cols * cols }, () => g());
    const x = new Float32Array(tokens * cols);
    const z = new Float64Array(cols);
    for (let t = 0; t < tokens; t++) {
      for (let k = 0; k < cols; k++) z[k] = g();
      for (let j = 0; j < cols; j++) {
        let s = 0;
        for (let k = 0; k < cols; k++) s += z[k] * a[k * cols + j];
        x[t * cols + j] = s / Math.sqrt(cols);
      }
    }
    const acc = new HessianAccumulator(cols);
    acc.addRows(x, tokens);
    const h = acc.hessian();
    const s = steps(w, rows, cols, 7, 0.8);
    const diag = Float64Array.from({ length: cols }, (_, j) => h[j * cols + j]);
    const cb = fitCodebook(w, rows, cols, { bits: 4, ...s, columnWeights: diag }).entries;
    const opts = { ...s, qmin: -8, qmax: 7, roundToF16: true, codebook: cb };
    const r = gptqQuantize(w, rows, cols, h, opts);
    let bad = 0;
    const counts = new Uint32Array(16);
    for (let i = 0; i < rows * cols; i++) {
      const k = r.codes[i] + 8;
      counts[k]++;
      if (!(k >= 0 && k < 16) || r.values[i] !== roundToF16(Math.fround(s.rowStep[Math.floor(i / cols)] * cb[k]))) bad++;
    }
    expect(bad).toBe(0);
    expect(Array.from(r.codeCounts)).toEqual(Array.from(counts));
    const eGptq = outputError(w, r.values, rows, cols, h).relError;
    const eRtn = outputError(w, rtnToCodebook(w, rows, cols, s.rowStep, s.rowInv, cb), rows, cols, h).relError;
    console.info(`GPTQ onto a learned codebook: output error ${eGptq.toFixed(4)} vs RTN onto it ${eRtn.toFixed(4)}`);
    expect(eGptq).toBeLessThan(0.8 * eRtn);
    // The block size changes nothing, on the codebook path too.
    const r2 = gptqQuantize(w, rows, cols, h, { ...opts, blockSize: 7 });
    expect(Buffer.from(r2.values.buffer).equals(Buffer.from(r.values.buffer))).toBe(true);
    expect(() => gptqQuantize(w, rows, cols, h, { ...opts, codebook: cb.subarray(0, 8) })).toThrow(/8 entries; the grid \[-8, 7\] needs 16/);
    expect(() => gptqQuantize(w, rows, cols, h, { ...opts, codebook: new Float32Array(16) })).toThrow(/entry 1 \(0\) must be finite and above/);
  });
});

describe('refitCodebookToCodes (entries by least squares on tr(ΔHΔᵀ) for fixed codes)', () => {
  /** Correlated-input Hessian H = XᵀX/n of `tokens` rows. */
  function hessian(cols: number, tokens: number, seed: number): Float64Array {
    const g = gaussian(seed);
    const a = Float64Array.from({ length: cols * cols }, () => g());
    const x = new Float32Array(tokens * cols);
    const z = new Float64Array(cols);
    for (let t = 0; t < tokens; t++) {
      for (let k = 0; k < cols; k++) z[k] = g();
      for (let j = 0; j < cols; j++) {
        let v = 0;
        for (let k = 0; k < cols; k++) v += z[k] * a[k * cols + j];
        x[t * cols + j] = v / Math.sqrt(cols);
      }
    }
    const acc = new HessianAccumulator(cols);
    acc.addRows(x, tokens);
    return acc.hessian();
  }
  const energy = (w: Float32Array, v: Float32Array, rows: number, cols: number, h: Float64Array) => outputError(w, v, rows, cols, h).errorEnergy;
  const valuesOf = (codes: ArrayLike<number>, entries: Float32Array, rowStep: Float32Array, cols: number) =>
    Float32Array.from({ length: codes.length }, (_, i) => roundToF16(Math.fround(rowStep[Math.floor(i / cols)] * entries[codes[i]])));

  it('recovers the entries that generated the weights exactly, from the integer grid, relabelling codes when the solve reorders entries', () => {
    const rows = 12;
    const cols = 24;
    const u = uniform(5);
    const truth = Float32Array.from([-7.5, -5.25, -3.5, -2.25, -1.375, -0.75, -0.3125, 0, 0.25, 0.625, 1.125, 1.875, 2.75, 4, 5.5, 8]);
    const rowStep = Float32Array.from({ length: rows }, (_, r) => roundToF16(0.01 * (1 + r / 4)));
    // Codes index the true entries reversed (code k ↦ truth[15 − k]): the solve gives a descending codebook.
    const codes = Uint8Array.from({ length: rows * cols }, () => Math.floor(u() * 16));
    const w = Float32Array.from(codes, (k, i) => Math.fround(rowStep[Math.floor(i / cols)] * truth[15 - k]));
    const h = hessian(cols, 200, 3);
    const fit = refitCodebookToCodes(w, rows, cols, codes, h, uniformCodebook(4), rowStep, 'model.layers.0.mlp.up_proj.weight');
    expect(Array.from(fit.entries)).toEqual(Array.from(truth));
    expect(fit.unused).toBe(0);
    for (let i = 0; i < codes.length; i++) if (fit.codes[i] !== 15 - codes[i]) throw new Error(`code ${i}: ${fit.codes[i]} ≠ ${15 - codes[i]}`);
    const v = Float32Array.from(fit.codes, (k, i) => Math.fround(rowStep[Math.floor(i / cols)] * fit.entries[k]));
    expect(energy(w, v, rows, cols, h)).toBe(0);
    expect(codebookProblem(fit.entries, 16)).toBeNull();
    expect(defuseSnapFailures(fit.entries, rowStep)).toEqual([]);
  });

  it('after GPTQ onto a Lloyd codebook: lowers the output error; no perturbed entry does better; unused entries stay; deterministic', () => {
    const rows = 40;
    const cols = 64;
    const w = weights(rows, cols, 41);
    const h = hessian(cols, 300, 7);
    const s = steps(w, rows, cols, 7, 0.8);
    const diag = Float64Array.from({ length: cols }, (_, j) => h[j * cols + j]);
    const cb = fitCodebook(w, rows, cols, { bits: 4, ...s, columnWeights: diag }).entries;
    const r = gptqQuantize(w, rows, cols, h, { ...s, qmin: -8, qmax: 7, roundToF16: true, codebook: cb });
    const codes = Uint8Array.from(r.codes, (q) => q + 8);
    const fit = refitCodebookToCodes(w, rows, cols, codes, h, cb, s.rowStep);
    const before = energy(w, r.values, rows, cols, h);
    const after = energy(w, valuesOf(fit.codes, fit.entries, s.rowStep, cols), rows, cols, h);
    console.info(`refit after GPTQ: output error energy ${before.toExponential(4)} → ${after.toExponential(4)} (×${(after / before).toFixed(4)})`);
    expect(after).toBeLessThan(before);
    expect(codebookProblem(fit.entries, 16)).toBeNull();
    expect(defuseSnapFailures(fit.entries, s.rowStep)).toEqual([]);
    // A least-squares optimum (up to F16 rounding of the entries): moving any entry by 2 % of the
    // grid step or by one F16 step either way does not lower the error by more than rounding could.
    const real = (e: Float32Array) => energy(w, Float32Array.from(fit.codes, (k, i) => s.rowStep[Math.floor(i / cols)] * e[k]), rows, cols, h);
    const base = real(fit.entries);
    for (let k = 0; k < 16; k++) {
      for (const d of [-0.02, 0.02]) {
        const e = Float32Array.from(fit.entries);
        e[k] += d;
        expect(real(e)).toBeGreaterThan(base * (1 - 1e-4));
      }
    }
    // An entry no weight uses keeps its value (codes 0…14 only: entry 15 unused).
    const clipped = Uint8Array.from(codes, (k) => Math.min(k, 14));
    const fit2 = refitCodebookToCodes(w, rows, cols, clipped, h, cb, s.rowStep);
    expect(fit2.unused).toBe(1);
    expect(fit2.entries[15]).toBe(cb[15]);
    const again = refitCodebookToCodes(w, rows, cols, codes, h, cb, s.rowStep);
    expect(Array.from(again.entries)).toEqual(Array.from(fit.entries));
    expect(Buffer.from(again.codes).equals(Buffer.from(fit.codes))).toBe(true);
    expect(() => refitCodebookToCodes(w, rows, cols, Uint8Array.from(codes, () => 16), h, cb, s.rowStep, 'x.weight')).toThrow(/\(x\.weight\): code \[0, 0\] is 16/);
    expect(() => refitCodebookToCodes(w, rows, cols, codes, h.subarray(1), cb, s.rowStep)).toThrow(/Hessian must be 64×64/);
  });
});
