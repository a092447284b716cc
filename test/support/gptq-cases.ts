// Correlated GPTQ test problems (the shape of real layer inputs: mixed channels, uneven scales,
// a few dead ones) and SP-style row steps, shared by the CPU and WebGPU GPTQ tests.
import { roundToF16 } from '../../src/core/safetensors/dtype';

/** mulberry32 → uniform [0, 1); Box–Muller for N(0, 1). */
export function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    const u = uniform() || 1e-12;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
}

export interface GptqCase {
  w: Float32Array;
  /** tokens × cols */
  x: Float32Array;
  rows: number;
  cols: number;
  tokens: number;
}

/** W ~ N(0, 1); X = Z·A / √cols with a random mixing A, column scales e^N(0,1), `dead` columns 0. */
export function gptqCase(rows: number, cols: number, tokens: number, seed: number, dead: number[] = []): GptqCase {
  const g = gaussian(seed);
  const w = Float32Array.from({ length: rows * cols }, () => g());
  const a = Float64Array.from({ length: cols * cols }, () => g());
  const colScale = Float64Array.from({ length: cols }, () => Math.exp(g()));
  const x = new Float32Array(tokens * cols);
  const z = new Float64Array(cols);
  const isDead = new Uint8Array(cols);
  for (const j of dead) isDead[j] = 1;
  for (let t = 0; t < tokens; t++) {
    for (let k = 0; k < cols; k++) z[k] = g();
    for (let j = 0; j < cols; j++) {
      let s = 0;
      for (let k = 0; k < cols; k++) s += z[k] * a[k * cols + j];
      x[t * cols + j] = isDead[j] ? 0 : (s * colScale[j]) / Math.sqrt(cols);
    }
  }
  return { w, x, rows, cols, tokens };
}

/** Row steps as the SP absmax layout gives them: f16 steps, f32 inverses. */
export function absmaxSteps(w: Float32Array, rows: number, cols: number, qmax: number): { rowStep: Float32Array; rowInv: Float32Array } {
  const rowStep = new Float32Array(rows);
  const rowInv = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = 0; j < cols; j++) m = Math.max(m, Math.abs(w[r * cols + j]));
    rowStep[r] = roundToF16(m / qmax);
    rowInv[r] = rowStep[r] > 0 ? 1 / rowStep[r] : 0;
  }
  return { rowStep, rowInv };
}

/** Fraction of equal entries of two code arrays. */
export function codeAgreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`codeAgreement: ${a.length} vs ${b.length} codes`);
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
}
