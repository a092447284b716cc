/**
 * Learned codebooks on the real tinystories-260k weights with real calibration Hessians (CPU
 * forward over 16 × 256 tokens of the second half of eval.txt), on the scales RTN chooses
 * (sp / mse, CPU backend): the learned LUT's weight error below the integer grid's on the same
 * scales for every projection; the Hessian-weighted Lloyd's output error below the unweighted
 * one; every stored F16 weight snaps back to its own entry under ANEMLL's fp16 de-fuse; entries
 * sorted, F16, spaced; GPTQ onto the learned codebook below GPTQ on the grid.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll } from 'vitest';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import { codebookProblem, fitCodebook, type CodebookFit } from '../src/core/quant/codebook';
import { gptqQuantize, HessianAccumulator, outputError } from '../src/core/quant/gptq';
import { chooseScales, gridFor } from '../src/core/quant/scales';
import { dimsFromConfig } from '../src/core/qwen2/config';
import { LINEAR_INPUTS, PROJECTIONS, PROJECTION_INFO, projectionName, type LinearInput } from '../src/core/qwen2/tensors';
import { decodeToF32, encodeF32, roundToF16 } from '../src/core/safetensors/dtype';
import { demoCalibrationFromEval } from '../src/demo/calibration-text';
import { sampleCalibration } from '../src/eval/calibration-set';
import { createQwen2Cpu } from '../src/eval/forward-cpu';
import type { LinearHooks } from '../src/eval/forward';
import type { CpuActivation } from '../src/eval/forward-cpu';
import { weightSource } from './support/bundle';
import { FIXTURE_DIR, HAS_FIXTURE, fixtureSuite } from './support/fixture';
import { loadSafetensorsWeights } from './support/load-weights';
import { nearest } from './support/sp-format';
import { checkCodebookTensor } from './support/codebook-format';
import { describe, expect, it } from 'vitest';

const backend = new CpuBackend();

interface Projection {
  name: string;
  rows: number;
  cols: number;
  w: Float32Array;
  h: Float64Array;
}

/** Every projection of the fixture with the Hessian of its input (H = 2/n Σ x xᵀ). */
async function fixtureProjections(): Promise<Projection[]> {
  const cfg = JSON.parse(readFileSync(join(FIXTURE_DIR, 'config.json'), 'utf8'));
  const dims = dimsFromConfig(cfg);
  const weights = await loadSafetensorsWeights(FIXTURE_DIR);
  const demo = demoCalibrationFromEval(readFileSync(join(FIXTURE_DIR, 'eval.txt'), 'utf8'), JSON.parse(readFileSync(join(FIXTURE_DIR, 'eval.tokens.json'), 'utf8')));
  const samples = sampleCalibration(demo.ids, 16, 256, 0);
  const model = createQwen2Cpu(dims, weightSource(weights));
  const acc = new Map<string, HessianAccumulator>();
  for (const ids of samples) {
    let hidden = await model.embed(ids);
    for (let l = 0; l < dims.layers; l++) {
      const hooks: LinearHooks<CpuActivation> = {};
      for (const input of LINEAR_INPUTS) {
        hooks[input] = (x) => {
          const key = `${l}:${input}`;
          if (!acc.has(key)) acc.set(key, new HessianAccumulator(x.cols));
          acc.get(key)!.addRows(x.data, x.rows);
        };
      }
      hidden = await model.runLayer(l, hidden, { hooks });
    }
  }
  model.dispose();
  const out: Projection[] = [];
  for (let l = 0; l < dims.layers; l++) {
    for (const p of PROJECTIONS) {
      const name = projectionName(l, p);
      const w = weights.get(name)!;
      const input: LinearInput = PROJECTION_INFO[p].input;
      const h = acc.get(`${l}:${input}`)!.hessian();
      const cols = Math.round(Math.sqrt(h.length));
      out.push({ name, rows: w.length / cols, cols, w, h });
    }
  }
  return out;
}

interface Measured {
  name: string;
  fit: CodebookFit;
  fitH: CodebookFit;
  /** ‖W − Ŵ‖² (weight space). */
  wGrid: number;
  wLearned: number;
  /** ‖(W − Ŵ)X‖/‖WX‖ on calibration data. */
  oGrid: number;
  oLearned: number;
  oLearnedH: number;
  oGptqGrid: number;
  oGptqLearnedH: number;
  misSnapped: number;
}

function sq(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return s;
}

async function measure(p: Projection, bits: 4 | 8): Promise<Measured> {
  const m = await backend.upload(encodeF32(p.w), 'F32', p.rows, p.cols);
  const s = await chooseScales(backend, m, await backend.rowAbsMax(m), bits, 'sp', 'mse');
  const { qmin, qmax } = gridFor(bits);
  const diag = Float64Array.from({ length: p.cols }, (_, j) => p.h[j * p.cols + j]);
  const fit = fitCodebook(p.w, p.rows, p.cols, { bits, rowStep: s.rowStep, rowInv: s.rowInv, name: p.name });
  const fitH = fitCodebook(p.w, p.rows, p.cols, { bits, rowStep: s.rowStep, rowInv: s.rowInv, columnWeights: diag, name: p.name });
  const values = async (q: { mat: import('../src/core/ports').Mat }) => {
    const v = decodeToF32(await backend.read(q.mat, 'F32'), 'F32');
    backend.release(q.mat);
    return v;
  };
  const grid = await values(await backend.quantize(m, s.rowStep, s.rowInv, qmin, qmax, true));
  const learned = await values(await backend.quantizeToCodebook(m, s.rowStep, s.rowInv, fit.entries, true));
  const learnedH = await values(await backend.quantizeToCodebook(m, s.rowStep, s.rowInv, fitH.entries, true));
  backend.release(m);
  const gptqOpts = { rowStep: s.rowStep, rowInv: s.rowInv, qmin, qmax, roundToF16: true, name: p.name };
  const gGrid = gptqQuantize(p.w, p.rows, p.cols, p.h, gptqOpts).values;
  const gLearnedH = gptqQuantize(p.w, p.rows, p.cols, p.h, { ...gptqOpts, codebook: fitH.entries }).values;
  // ANEMLL's de-fuse of every stored weight: fp16(weight / fp16(s_in·s_out)), nearest entry; it
  // must be the entry the weight was stored from (fp16(step · C_k) again), and the bundle check
  // (the scales as the bundle stores them) must find every weight on its entry.
  let misSnapped = 0;
  const inputScales = new Float32Array(p.cols).fill(s.inputScale);
  for (const [vals, cb] of [[learned, fit.entries], [learnedH, fitH.entries], [gLearnedH, fitH.entries]] as const) {
    for (let r = 0; r < p.rows; r++) {
      const step = roundToF16(Math.fround(s.inputScale * s.outputScales[r]));
      for (let j = 0; j < p.cols; j++) {
        const v = vals[r * p.cols + j];
        const c = nearest(cb, roundToF16(v / step));
        if (roundToF16(Math.fround(step * c)) !== v) misSnapped++;
      }
    }
    const check = checkCodebookTensor(vals, inputScales, s.outputScales, cb, p.rows, p.cols);
    expect({ ...check, firstBad: undefined }, `${p.name}: ${check.firstBad}`).toMatchObject({ bits, codebookProblem: null, offCodebook: 0, misSnapped: 0 });
    expect(check.distinct).toBeGreaterThan(2 ** bits / 4);
  }
  const o = (v: Float32Array) => outputError(p.w, v, p.rows, p.cols, p.h).relError;
  return {
    name: p.name, fit, fitH,
    wGrid: sq(p.w, grid), wLearned: sq(p.w, learned),
    oGrid: o(grid), oLearned: o(learned), oLearnedH: o(learnedH), oGptqGrid: o(gGrid), oGptqLearnedH: o(gLearnedH),
    misSnapped,
  };
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

describe.skipIf(!HAS_FIXTURE)(fixtureSuite('learned codebooks on tinystories-260k (real calibration Hessians)'), () => {
  let projections: Projection[];
  beforeAll(async () => {
    projections = await fixtureProjections();
  }, 300_000);

  it.each([4, 8] as const)('W%i sp/mse: learned below the grid on the same scales; Hessian weighting lowers the output error; every weight snaps back', async (bits) => {
    const rows: Measured[] = [];
    for (const p of projections) rows.push(await measure(p, bits));
    expect(rows.length).toBe(35);
    for (const r of rows) {
      for (const f of [r.fit, r.fitH]) {
        expect(f.entries.length).toBe(2 ** bits);
        expect(codebookProblem(f.entries, 2 ** bits, f.spacingFloor), r.name).toBeNull();
      }
      expect(r.misSnapped, r.name).toBe(0);
      // Same scales, learned entries: never worse than the integer grid, in weight space.
      expect(r.wLearned, r.name).toBeLessThan(r.wGrid);
    }
    const wRatio = mean(rows.map((r) => r.wLearned / r.wGrid));
    const oRatio = mean(rows.map((r) => r.oLearned / r.oGrid));
    const hRatio = mean(rows.map((r) => r.oLearnedH / r.oLearned));
    const hWins = rows.filter((r) => r.oLearnedH < r.oLearned).length;
    const gRatio = mean(rows.map((r) => r.oGptqLearnedH / r.oGptqGrid));
    console.info(
      `W${bits} fixture, 35 projections (mean ratios): weight error² learned/grid ${wRatio.toFixed(3)}; ` +
        `output error learned/grid ${oRatio.toFixed(3)}; Hessian-weighted/unweighted ${hRatio.toFixed(3)} (lower on ${hWins}/35); ` +
        `GPTQ learned(H)/GPTQ grid ${gRatio.toFixed(3)}; mean output error grid ${mean(rows.map((r) => r.oGrid)).toFixed(4)}, ` +
        `learned ${mean(rows.map((r) => r.oLearned)).toFixed(4)}, learned(H) ${mean(rows.map((r) => r.oLearnedH)).toFixed(4)}, ` +
        `GPTQ grid ${mean(rows.map((r) => r.oGptqGrid)).toFixed(4)}, GPTQ learned(H) ${mean(rows.map((r) => r.oGptqLearnedH)).toFixed(4)}`,
    );
    expect(wRatio).toBeLessThan(bits === 4 ? 0.9 : 0.9);
    expect(oRatio).toBeLessThan(1);
    expect(hRatio).toBeLessThan(1);
    expect(gRatio).toBeLessThan(1);
  }, 300_000);
});
