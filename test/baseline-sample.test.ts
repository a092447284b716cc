// The plain-RTN baseline of large matrices is estimated on sampled rows (issue 14): which rows,
// that the figure is exactly plain RTN of those rows, and how close it is to the full figure.
import { describe, expect, test } from 'vitest';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import type { Backend } from '../src/core/ports';
import { BASELINE_SAMPLE_ELEMENTS, baselineError, baselineSampleRows, quantizationError, quantizeMatrix } from '../src/core/pipeline/quantize';
import type { QuantChoice } from '../src/core/qwen2/plan';
import { runPipeline } from '../src/core/pipeline/run';
import { parseSettings } from '../src/core/settings';
import { makeTinyQwen2, tinyQwen2Files } from '../src/demo/tiny-qwen2';
import { memoryModelSource, memorySink } from './support/memory';

function matrix(rows: number, cols: number, seed: number): Float32Array {
  let s = seed;
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    out[i] = ((s / 2 ** 32) - 0.5) * 0.1 * (1 + (i % 7 === 0 ? 3 : 0));
  }
  return out;
}

describe('baseline on sampled rows', () => {
  test('small matrices use every row; large ones every s-th row plus the absmax row', () => {
    const rowMax = new Float32Array(3000).fill(1);
    expect(baselineSampleRows(1024, 1024, rowMax.subarray(0, 1024))).toBeNull(); // exactly the limit
    rowMax[1001] = 5;
    const pick = baselineSampleRows(3000, 1024, rowMax)!;
    const stride = Math.ceil((3000 * 1024) / BASELINE_SAMPLE_ELEMENTS);
    expect(stride).toBe(3);
    expect(pick.length).toBe(1000 + 1);
    expect(Array.from(pick.subarray(0, 5))).toEqual([0, 3, 6, 9, 12]);
    expect(pick.includes(1001)).toBe(true);
    for (let i = 1; i < pick.length; i++) expect(pick[i]).toBeGreaterThan(pick[i - 1]);
    rowMax[1001] = 1;
    rowMax[2999] = 9; // after the last multiple of the stride
    const tail = baselineSampleRows(3000, 1024, rowMax)!;
    expect(tail[tail.length - 1]).toBe(2999);
  });

  for (const choice of [
    { bits: 4, scheme: 'sp', clip: 'mse' },
    { bits: 4, scheme: 'per_tensor', clip: 'absmax' },
    { bits: 8, scheme: 'per_tensor', clip: 'mse' },
  ] as const) {
    test(`${choice.scheme}/${choice.clip} W${choice.bits}: plain RTN of exactly the sampled rows, within 3 % of the full figure`, async () => {
      const rows = 2600;
      const cols = 1024;
      const data = matrix(rows, cols, 7);
      const bytes = new Uint8Array(data.buffer);
      const q: QuantChoice = { ...choice, method: 'rtn', codebook: 'uniform' } as QuantChoice;
      const cpu = new CpuBackend();
      const w0 = await cpu.upload(bytes, 'F32', rows, cols);
      const rowMax = await cpu.rowAbsMax(w0);
      const est = await baselineError(cpu, w0, rowMax, q, true);
      const pick = baselineSampleRows(rows, cols, rowMax)!;
      expect(est.sampled).toEqual({ rows: pick.length, of: rows });
      // the same figure computed by hand on the sampled rows
      const sub = await cpu.takeRows(w0, pick);
      const qm = await quantizeMatrix(cpu, sub, Float32Array.from(pick, (r) => rowMax[r]), q, true);
      const direct = await quantizationError(cpu, sub, qm.mat);
      expect(est.relError).toBe(direct.relError);
      expect(est.sqnrDb).toBe(direct.sqnrDb);
      // a backend without takeRows computes it on every row
      const full: Backend = Object.assign(Object.create(Object.getPrototypeOf(cpu)), cpu, { takeRows: undefined });
      const all = await baselineError(full, w0, rowMax, q, true);
      expect(all.sampled).toBeUndefined();
      expect(Math.abs(est.relError / all.relError - 1)).toBeLessThan(0.03);
    });
  }

  test('whole-matrix and tiled processing sample the same rows and report the same baseline', async () => {
    // embedding 2100×512 = 1 075 200 elements > 2^20: sampled; the layers' matrices are not
    const model = makeTinyQwen2({ hidden: 512, intermediate: 64, layers: 1, heads: 8, kvHeads: 2, vocab: 2100, tie: true, seed: 5, outliers: true });
    const files = Object.fromEntries((await tinyQwen2Files(model, { dtype: 'BF16' })).map((f) => [f.path, f.bytes]));
    const reports = [];
    for (const tileBytes of [Infinity, 64 * 1024]) {
      const result = await runPipeline({
        source: memoryModelSource(files, 'sample'), sink: memorySink(), settings: parseSettings({}), backend: new CpuBackend(), target: { model: 'sample' }, tileBytes,
      });
      reports.push(result.reports);
    }
    const [whole, tiled] = reports;
    const emb = whole.find((r) => r.name === 'model.embed_tokens.weight')!;
    const stride = Math.ceil((2100 * 512) / BASELINE_SAMPLE_ELEMENTS);
    expect(stride).toBe(2);
    expect(emb.baselineError!.sampled!.of).toBe(2100);
    expect([1050, 1051]).toContain(emb.baselineError!.sampled!.rows);
    expect(tiled.find((r) => r.name === emb.name)!.baselineError).toEqual(emb.baselineError);
    for (const r of whole) if (r.name !== emb.name && r.baselineError) expect(r.baselineError.sampled, r.name).toBeUndefined();
    expect(tiled).toEqual(whole);
  });
});
