/**
 * What a GPTQ run costs in arithmetic (SPEC §4's table, from the model's dimensions and the
 * calibration token count), so the CLI and the app can say so before a long CPU run starts.
 * FLOP = 2 × multiply-adds. The figures follow the pipeline as built (src/core/pipeline/gptq-layer.ts):
 * each layer runs the calibration batch once per linear input (attn_in, attn_out, mlp_in,
 * mlp_mid — true-sequential) and once more through the quantized layer, so 5 passes; Hessians
 * use the symmetric half; every projection factors its own H⁻¹.
 */
import { HessianAccumulator } from './quant/gptq';

export interface GptqCostDims {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
}

export interface GptqCost {
  /** Calibration forward passes per layer. */
  passesPerLayer: number;
  /** The layers' linear maps over every pass, FLOP. */
  forward: number;
  /** Causal attention (QKᵀ and AV) over every pass, FLOP. */
  attention: number;
  /** H = 2XᵀX of each linear input (symmetric half), FLOP. */
  hessians: number;
  /** Cholesky factor and inverse of each projection's H (≈ 4/3 n³ each), FLOP. */
  cholesky: number;
  /** GPTQ's column updates (≈ rows × cols² per projection), FLOP. */
  updates: number;
  total: number;
  /** The largest Hessian (down_proj's, intermediate²) in f64 bytes, and the largest layer input over all tokens in f32. */
  largestHessianBytes: number;
  largestInputBytes: number;
}

export const GPTQ_PASSES_PER_LAYER = 5;

/** `samples` sequences of `seqlen` tokens (calib.json samples may differ: pass their mean length and count). */
export function gptqCost(d: GptqCostDims, samples: number, seqlen: number): GptqCost {
  const tokens = samples * seqlen;
  const h = d.hidden;
  const q = d.heads * d.headDim;
  const kv = d.kvHeads * d.headDim;
  const f = d.intermediate;
  const L = d.layers;
  const passes = GPTQ_PASSES_PER_LAYER;
  // Linear maps per token: q, k, v, o, gate, up, down.
  const linearMacs = h * (q + 2 * kv) + q * h + 3 * h * f;
  const forward = 2 * linearMacs * tokens * L * passes;
  // Causal: each of seqlen positions attends to (t+1) keys, twice (scores, values), per head.
  const attention = 2 * 2 * d.heads * d.headDim * ((seqlen * (seqlen + 1)) / 2) * samples * L * passes;
  const sym = (n: number): number => (n * (n + 1)) / 2;
  const hessians = 2 * tokens * L * (2 * sym(h) + sym(q) + sym(f));
  const cube = (n: number): number => (4 / 3) * n * n * n;
  const cholesky = L * (3 * cube(h) + cube(q) + 2 * cube(h) + cube(f));
  const updates = L * (q * h * h + 2 * kv * h * h + h * q * q + 2 * f * h * h + h * f * f);
  const total = forward + attention + hessians + cholesky + updates;
  return {
    passesPerLayer: passes, forward, attention, hessians, cholesky, updates, total,
    largestHessianBytes: Math.max(h, q, f) ** 2 * 8,
    largestInputBytes: tokens * Math.max(h, q, f) * 4,
  };
}

/** "1.2 TFLOP", "340 GFLOP". */
export function formatFlop(x: number): string {
  if (x >= 1e15) return `${(x / 1e15).toFixed(1)} PFLOP`;
  if (x >= 1e12) return `${(x / 1e12).toFixed(1)} TFLOP`;
  if (x >= 1e9) return `${(x / 1e9).toFixed(1)} GFLOP`;
  return `${(x / 1e6).toFixed(1)} MFLOP`;
}

/** One line per part and the total, for the CLI's and the app's warning. */
export function describeGptqCost(c: GptqCost): string {
  return `≈ ${formatFlop(c.total)}: calibration forward ${formatFlop(c.forward)} (${c.passesPerLayer} passes per layer) + attention ${formatFlop(c.attention)}, ` +
    `Hessians ${formatFlop(c.hessians)}, Cholesky ${formatFlop(c.cholesky)}, column updates ${formatFlop(c.updates)}`;
}

/**
 * FLOP/s of this thread on GPTQ's dominant CPU kernel (the Hessian accumulation, f64), timed on a
 * small input for a rough run-time estimate: the best repetition after the JIT has warmed up
 * (at least `minReps`, and until `minMs` have passed).
 */
export function measureHostFlops(cols = 128, rows = 256, minReps = 5, minMs = 40): number {
  const x = new Float32Array(rows * cols);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.37);
  let best = Infinity;
  const start = performance.now();
  for (let r = 0; r < minReps || (performance.now() - start < minMs && r < 200); r++) {
    const acc = new HessianAccumulator(cols);
    const t0 = performance.now();
    acc.addRows(x, rows);
    best = Math.min(best, performance.now() - t0);
  }
  return (2 * ((cols * (cols + 1)) / 2) * rows) / (Math.max(best, 0.01) / 1000);
}
