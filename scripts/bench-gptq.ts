/**
 * npx tsx scripts/bench-gptq.ts [--runs 3] [--tokens 1024] [--shapes 4864x896,896x4864]
 *
 * CPU time of the GPTQ core (src/core/quant/gptq.ts) on Qwen2.5-0.5B linear shapes
 * ([rows, cols] = [outputs, inputs]: gate/up 4864×896, down 896×4864): median of --runs for
 * gptqQuantize (W4, act-order, 1 % damp, block 128) and, separately, for its Cholesky factor
 * of H⁻¹ alone; plus the Hessian accumulator's throughput. Speed is measured here, never
 * asserted in tests.
 */
import { parseArgs } from 'node:util';
import { gptqQuantize, HessianAccumulator, outputError, upperCholeskyOfInverse } from '../src/core/quant/gptq';
import { roundToF16 } from '../src/core/safetensors/dtype';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, tokens: { type: 'string', default: '1024' }, shapes: { type: 'string', default: '4864x896,896x4864' } },
});
const runs = Number(values.runs);
const tokens = Number(values.tokens);
const shapes = String(values.shapes).split(',').map((s) => s.split('x').map(Number) as [number, number]);

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

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

for (const [rows, cols] of shapes) {
  const g = gaussian(rows * 7 + cols);
  const w = Float32Array.from({ length: rows * cols }, () => g() * 0.02);
  // Inputs with 32 shared latent factors and uneven channel scales (correlated, like activations).
  const F = 32;
  const load = Float64Array.from({ length: F * cols }, () => g());
  const chan = Float64Array.from({ length: cols }, () => Math.exp(0.7 * g()));
  const x = new Float32Array(tokens * cols);
  for (let t = 0; t < tokens; t++) {
    const f = Array.from({ length: F }, () => g());
    for (let j = 0; j < cols; j++) {
      let v = g();
      for (let k = 0; k < F; k++) v += f[k] * load[k * cols + j] * 0.3;
      x[t * cols + j] = v * chan[j];
    }
  }
  const acc = new HessianAccumulator(cols);
  let t0 = performance.now();
  acc.addRows(x, tokens);
  const hMs = performance.now() - t0;
  const h = acc.hessian();
  const madds = (cols * (cols + 1) / 2) * tokens;
  process.stdout.write(`[${rows}×${cols}] Hessian of ${tokens} tokens: ${s(hMs)} (${(madds / hMs / 1e6).toFixed(2)} G multiply-adds/s; ${((cols * (cols + 1)) / 2 / 1e6).toFixed(2)} M per token)\n`);

  // Row steps as SP absmax gives them.
  const rowStep = new Float32Array(rows);
  const rowInv = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = 0; j < cols; j++) m = Math.max(m, Math.abs(w[r * cols + j]));
    rowStep[r] = roundToF16(m / 7);
    rowInv[r] = 1 / rowStep[r];
  }

  const chol: number[] = [];
  const full: number[] = [];
  let last;
  for (let k = 0; k < runs; k++) {
    let diagSum = 0;
    for (let i = 0; i < cols; i++) diagSum += h[i * cols + i];
    t0 = performance.now();
    upperCholeskyOfInverse(h, cols, (0.01 * diagSum) / cols);
    chol.push(performance.now() - t0);
    t0 = performance.now();
    last = gptqQuantize(w, rows, cols, h, { rowStep, rowInv, qmin: -8, qmax: 7, roundToF16: true });
    full.push(performance.now() - t0);
  }
  const rtn = new Float32Array(rows * cols);
  for (let i = 0; i < rows * cols; i++) {
    const r = Math.floor(i / cols);
    rtn[i] = roundToF16(Math.fround(rowStep[r] * Math.max(-8, Math.min(7, Math.round(Math.fround(w[i] * rowInv[r]))))));
  }
  const eR = outputError(w, rtn, rows, cols, h).relError;
  const eG = outputError(w, last!.values, rows, cols, h).relError;
  process.stdout.write(
    `[${rows}×${cols}] gptqQuantize median ${s(median(full))} (runs ${full.map(s).join(', ')}); of which Cholesky of H⁻¹ [${cols}²] median ${s(median(chol))}; ` +
      `output error on the calibration rows RTN ${eR.toFixed(4)} → GPTQ ${eG.toFixed(4)}${tokens < cols ? ' (fewer tokens than inputs: H is rank-deficient, so this is optimistic)' : ''}\n`,
  );
}
