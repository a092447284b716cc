import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../../../test/support/cpu';
import { encodeF32, roundToF16 } from '../safetensors/dtype';
import { chooseScales, fitInputScales, gridFor, INPUT_SCALE_FIT_ROWS, INPUT_SCALE_RANGE, MSE_ALPHAS } from './scales';

const backend = new CpuBackend();

/** A matrix with one large outlier per row and small Gaussian-ish values elsewhere. */
function matrix(rows: number, cols: number, seed = 1): Float32Array {
  let s = seed;
  const rand = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const w = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) w[r * cols + c] = (rand() + rand() + rand() - 1.5) * (1 + r);
    w[r * cols + (r % cols)] = 12 * (1 + r); // an outlier absmax would have to cover
  }
  return w;
}

async function scalesOf(w: Float32Array, rows: number, cols: number, bits: 4 | 8, scheme: 'sp' | 'per_tensor', clip: 'absmax' | 'mse') {
  const m = await backend.upload(encodeF32(w), 'F32', rows, cols);
  const rowMax = await backend.rowAbsMax(m);
  return { s: await chooseScales(backend, m, rowMax, bits, scheme, clip), rowMax, m };
}

describe('gridFor', () => {
  it('is the symmetric 2^b grid', () => {
    expect(gridFor(4)).toEqual({ qmin: -8, qmax: 7 });
    expect(gridFor(8)).toEqual({ qmin: -128, qmax: 127 });
  });
});

describe('chooseScales', () => {
  it('per_tensor/absmax: Δ = fp16(max|W| / qmax) in input_scales, output_scales 1', async () => {
    const w = matrix(6, 32);
    const { s, rowMax } = await scalesOf(w, 6, 32, 4, 'per_tensor', 'absmax');
    const max = Math.max(...rowMax);
    expect(s.inputScale).toBe(roundToF16(max / 7));
    expect(Array.from(s.outputScales)).toEqual(new Array(6).fill(1));
    expect(Array.from(s.rowStep)).toEqual(new Array(6).fill(s.inputScale));
    expect(Array.from(s.alphas)).toEqual(new Array(6).fill(1));
  });

  it('sp: c = fp16 geometric mean of the row steps; fp16(c · s_out_r) ≈ Δ_r; rowInv = 1/rowStep', async () => {
    const rows = 6;
    const w = matrix(rows, 32);
    const { s, rowMax } = await scalesOf(w, rows, 32, 8, 'sp', 'absmax');
    const steps = Array.from(rowMax, (m) => m / 127);
    const geo = Math.exp(steps.reduce((a, v) => a + Math.log(v), 0) / rows);
    expect(s.inputScale).toBe(roundToF16(geo));
    for (let r = 0; r < rows; r++) {
      expect(s.outputScales[r]).toBe(roundToF16(steps[r] / s.inputScale));
      expect(s.rowStep[r]).toBe(roundToF16(Math.fround(s.inputScale * s.outputScales[r])));
      expect(Math.abs(s.rowStep[r] / steps[r] - 1)).toBeLessThan(2e-3);
      expect(s.rowInv[r]).toBe(Math.fround(1 / s.rowStep[r]));
    }
  });

  it('mse: clips the outliers (α < 1) and lowers the squared error below absmax for every row', async () => {
    const rows = 5;
    const cols = 64;
    const w = matrix(rows, cols, 3);
    const sse = async (clip: 'absmax' | 'mse') => {
      const { s, m } = await scalesOf(w, rows, cols, 4, 'sp', clip);
      const q = await backend.quantize(m, s.rowStep, s.rowInv, -8, 7, false);
      const e = await backend.rowSquaredErrors(m, q.mat);
      return { e: Array.from(e.diff), alphas: Array.from(s.alphas) };
    };
    const a = await sse('absmax');
    const b = await sse('mse');
    for (let r = 0; r < rows; r++) expect(b.e[r]).toBeLessThan(a.e[r]);
    for (const alpha of b.alphas) {
      expect(alpha).toBeLessThan(1);
      expect(alpha).toBeGreaterThanOrEqual(MSE_ALPHAS[0] * 0.96 - 1e-6);
    }
  });

  it('an all-zero row gets step 1 and inverse 0 (no division by zero, nothing non-finite)', async () => {
    const w = matrix(3, 16);
    w.fill(0, 16, 32);
    const { s } = await scalesOf(w, 3, 16, 4, 'sp', 'mse');
    expect(s.outputScales[1]).toBe(1);
    expect([...s.rowStep, ...s.rowInv, ...s.outputScales, s.inputScale].every(Number.isFinite)).toBe(true);
  });
});

/** Gaussian-ish weights with a few input columns (channels) `boost` times larger, like a fused outlier γ. */
function outlierColumns(rows: number, cols: number, boosted: number[], boost: number, seed = 5): Float32Array {
  let s = seed;
  const rand = (): number => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const w = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) w[r * cols + c] = (rand() + rand() + rand() - 1.5) * (boosted.includes(c) ? boost : 1);
  return w;
}

describe('fitInputScales', () => {
  const rows = 24;
  const cols = 40;
  const boosted = [3, 17, 30];

  it('balances outlier columns: their s is the largest, the proxy error drops well below uniform scales', () => {
    const w = outlierColumns(rows, cols, boosted, 20);
    const fit = fitInputScales(w, rows, cols, 4);
    const others = Array.from(fit.scales).filter((_, j) => !boosted.includes(j));
    for (const j of boosted) expect(fit.scales[j]).toBeGreaterThan(Math.max(...others));
    expect(fit.alpha).toBeGreaterThan(0);
    expect(fit.beta).toBe(0); // no importance: activation-free
    expect(fit.proxyError).toBeLessThan(0.5 * fit.uniformProxyError);
  });

  it('stores F16 values, median 1, within [1/16, 16]; deterministic to the bit', () => {
    const w = outlierColumns(rows, cols, boosted, 400);
    const a = fitInputScales(w, rows, cols, 4);
    const b = fitInputScales(Float32Array.from(w), rows, cols, 4);
    expect(Array.from(b.scales)).toEqual(Array.from(a.scales));
    expect(a.scales.every((v) => roundToF16(v) === v && v >= 1 / INPUT_SCALE_RANGE && v <= INPUT_SCALE_RANGE)).toBe(true);
    const sorted = Array.from(a.scales).sort((x, y) => x - y);
    expect(sorted[cols / 2 - 1]).toBeLessThanOrEqual(1);
    expect(sorted[cols / 2]).toBeGreaterThanOrEqual(1);
    expect(Math.max(...a.scales)).toBe(INPUT_SCALE_RANGE); // 400× columns: balanced up to the clamp
  });

  it('with importance (diag H): an important column gets a finer step than the activation-free fit gives it', () => {
    const w = outlierColumns(rows, cols, [], 1);
    const d = Array.from({ length: cols }, (_, j) => (j === 7 ? 400 : 1));
    const free = fitInputScales(w, rows, cols, 4);
    const fit = fitInputScales(w, rows, cols, 4, d);
    expect(fit.beta).toBeGreaterThan(0);
    expect(fit.scales[7]).toBeLessThan(free.scales[7]);
    expect(fit.scales[7]).toBeLessThan(1);
    expect(fit.proxyError).toBeLessThanOrEqual(fit.uniformProxyError);
  });

  it('never scores worse than uniform scales (uniform is a candidate), also on an unremarkable matrix', () => {
    const w = outlierColumns(rows, cols, [], 1, 9);
    for (const bits of [4, 8] as const) {
      const fit = fitInputScales(w, rows, cols, bits);
      expect(fit.proxyError).toBeLessThanOrEqual(fit.uniformProxyError);
    }
  });

  it('fits a tall tensor on INPUT_SCALE_FIT_ROWS evenly strided rows: the same scales as fitting those rows alone', () => {
    const tall = INPUT_SCALE_FIT_ROWS * 3 + 5;
    const c = 16;
    const w = outlierColumns(tall, c, [2, 9], 12, 13);
    const sample = new Float32Array(INPUT_SCALE_FIT_ROWS * c);
    for (let k = 0; k < INPUT_SCALE_FIT_ROWS; k++) {
      const r = Math.floor((k * tall) / INPUT_SCALE_FIT_ROWS);
      sample.set(w.subarray(r * c, (r + 1) * c), k * c);
    }
    const fit = fitInputScales(w, tall, c, 4);
    expect(Array.from(fit.scales)).toEqual(Array.from(fitInputScales(sample, INPUT_SCALE_FIT_ROWS, c, 4).scales));
    expect(fit.scales[2]).toBeGreaterThan(1);
    expect(fit.scales[9]).toBeGreaterThan(1);
  });

  it('rejects bad input with the reason', () => {
    expect(() => fitInputScales(new Float32Array(5), 2, 3, 4)).toThrow(/5 weights for 2×3/);
    expect(() => fitInputScales(new Float32Array(6), 2, 3, 4, [1, 2])).toThrow(/2 importances for 3 columns/);
    expect(() => fitInputScales(new Float32Array(6), 2, 3, 4, [1, NaN, 1])).toThrow(/importance\[1\] = NaN/);
  });
});
