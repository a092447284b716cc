/**
 * Learned per-tensor codebooks for ANEMLL's SP format (FORMAT.md): the loader de-fuses every
 * stored weight with W_q = fp16(weight / fp16(s_in·s_out)) and snaps W_q to the nearest entry of
 * the projection's `.codebook`. That codebook may be any 2^b sorted F16 values, so instead of the
 * integer grid −2^(b−1) … 2^(b−1)−1 we fit the entries to the tensor's normalised weights
 * u = w / rowStep_r (rowStep_r = fp16(s_in·s_out_r), the loader's divisor) with a weighted 1-D
 * Lloyd (k-means).
 *
 * The fit works on a weighted histogram of u (a few thousand bins, each keeping its weight and
 * weighted sum, so cluster means are exact means of the points in the bins assigned): one pass
 * over the tensor, then every Lloyd iteration is O(bins + entries) — cheap for 0.5B-size tensors.
 *
 * Each point (r, j) weighs rowStep_r² · h_j: rowStep_r² turns an error in u into an error in the
 * weight itself (w − ŵ = rowStep_r·(u − c)), and h_j (the Hessian diagonal H_jj = 2/n Σ x_j² of
 * the layer input, when calibration is given; 1 otherwise) turns it into the output error
 * Σ_j H_jj (w_rj − ŵ_rj)² (the diagonal part of tr(ΔHΔᵀ)).
 *
 * Quantizing onto a codebook (the `quantizeToCodebook` backend primitive, GPTQ's codebook path)
 * is canonical f32, identical on every backend: x = fround(w · rowInv_r); code = the number of
 * thresholds t_k < x, t_k = fround((C_k + C_{k+1}) / 2) (nearest entry, a tie goes to the lower
 * one); value = fround(rowStep_r · C_code), then f16-rounded when the bundle is F16.
 *
 * Every fitted codebook is F16, strictly increasing, keeps neighbours at least
 * max(2^-7·|c|, 2^-6) apart (FORMAT.md: closer entries made the fp16 de-fuse snap to the wrong
 * one) — more where tiny row steps push the stored products into f16's subnormal range — and is
 * verified against the loader's de-fuse for every row step of the tensor before it is returned.
 */
import { f16BitsToF32, f32ToF16Bits, roundToF16 } from '../safetensors/dtype';

const fround = Math.fround;

/** Relative part of the smallest gap between neighbouring entries (FORMAT.md). */
export const CODEBOOK_REL_GAP = 2 ** -7;
/** Absolute part of the smallest gap between neighbouring entries (FORMAT.md). */
export const CODEBOOK_ABS_GAP = 2 ** -6;
/** Lloyd iterations by default (most tensors converge well before). */
export const DEFAULT_LLOYD_ITERATIONS = 100;
const F16_MAX = 65504;

/** A codebook could not be fitted or honoured (non-finite input, an impossible de-fuse). */
export class CodebookError extends Error {
  readonly tensor?: string;
  constructor(message: string, tensor?: string) {
    super(message);
    this.name = 'CodebookError';
    this.tensor = tensor;
  }
}

/** The integer grid −2^(b−1) … 2^(b−1)−1 as a codebook (what `uniform` stores). */
export function uniformCodebook(bits: number): Float32Array {
  const n = 2 ** bits;
  return Float32Array.from({ length: n }, (_, i) => i - n / 2);
}

/** Smallest allowed distance between neighbouring entries a < b (`floor` adds a tensor-specific minimum). */
export function requiredGap(a: number, b: number, floor = 0): number {
  return Math.max(CODEBOOK_REL_GAP * Math.max(Math.abs(a), Math.abs(b)), CODEBOOK_ABS_GAP, floor);
}

/**
 * What is wrong with a codebook, or null: it must have 2^b entries (b = 1…8, or `expectedLength`),
 * all finite F16 values, strictly increasing, neighbours at least requiredGap(…, floor) apart.
 */
export function codebookProblem(entries: ArrayLike<number>, expectedLength?: number, floor = 0): string | null {
  const n = entries.length;
  if (expectedLength !== undefined ? n !== expectedLength : !(n >= 2 && n <= 256 && (n & (n - 1)) === 0)) {
    return `has ${n} entries; expected ${expectedLength ?? 'a power of two from 2 to 256'}`;
  }
  for (let i = 0; i < n; i++) {
    const c = entries[i];
    if (!Number.isFinite(c) || roundToF16(c) !== c) return `entry ${i} (${c}) is not a finite F16 value`;
  }
  for (let i = 1; i < n; i++) {
    const a = entries[i - 1];
    const b = entries[i];
    if (!(b > a)) return `entries ${i - 1} and ${i} (${a}, ${b}) are not strictly increasing`;
    const gap = requiredGap(a, b, floor);
    if (b - a < gap) return `entries ${i - 1} and ${i} (${a}, ${b}) are ${b - a} apart; at least ${gap} needed for ANEMLL's fp16 de-fuse to tell them apart`;
  }
  return null;
}

/** Decision thresholds between neighbouring entries: t_k = fround((C_k + C_{k+1}) / 2). */
export function codebookThresholds(entries: ArrayLike<number>): Float32Array {
  const t = new Float32Array(Math.max(0, entries.length - 1));
  for (let k = 0; k < t.length; k++) t[k] = fround((entries[k] + entries[k + 1]) / 2);
  return t;
}

/**
 * Index of the nearest entry of x: the number of thresholds below x (binary search; thresholds
 * non-decreasing, a value on a threshold goes to the lower entry). The WGSL kernel runs the same search.
 */
export function nearestEntryIndex(x: number, thresholds: Float32Array): number {
  let lo = 0;
  let hi = thresholds.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x > thresholds[mid]) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * ANEMLL's snap: the index of the entry of a sorted codebook nearest to y (the first of two
 * equally near). Binary search on the exact midpoints (two F16 values add exactly in f64).
 */
export function loaderSnapIndex(entries: ArrayLike<number>, y: number): number {
  let lo = 0;
  let hi = entries.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (y > (entries[mid] + entries[mid + 1]) / 2) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const f64 = new Float64Array(1);
const f64hi = new Uint32Array(f64.buffer, 4, 1);
const RNE_MAGIC = 6755399441055744;

/**
 * x rounded to the nearest F16 value, ties to even (±inf beyond 65520) — the same value as
 * roundToF16 (safetensors/dtype.ts), by scaling with the binade's quantum instead of log2: the
 * verification below rounds millions of values for a 0.5B-size 8-bit tensor.
 */
export function f16Round(x: number): number {
  const a = Math.abs(x);
  if (!(a < 65520)) return Number.isNaN(x) ? x : x < 0 ? -Infinity : Infinity;
  let quantum = 2 ** -24; // subnormal quantum
  if (a >= 2 ** -14) {
    f64[0] = a;
    const e = ((f64hi[0] >>> 20) & 0x7ff) - 1023;
    quantum = 2 ** (e - 10);
  }
  const r = (a / quantum + RNE_MAGIC - RNE_MAGIC) * quantum; // a/quantum < 2^11: exact scaling
  return x < 0 || Object.is(x, -0) ? -r : r;
}

/** One entry that the loader's de-fuse does not recover for some row step. */
export interface SnapFailure {
  entry: number;
  value: number;
  rowStep: number;
  stored: number;
  defused: number;
  snappedTo: number;
  storedAs: 'F16' | 'F32';
}

/**
 * Every (distinct positive row step, entry) pair checked the way ANEMLL loads it: the stored weight
 * (F16: fp16(fround(step·C_k)); F32: fround(step·C_k)) divided by the step and rounded to fp16 —
 * both from the exact quotient and from its f32 rounding (a half-precision division computed in
 * f32) — then snapped to the nearest entry: it must come back to k. Returns the failures (empty
 * when all snap back).
 */
export function defuseSnapFailures(entries: ArrayLike<number>, rowStep: ArrayLike<number>, limit = 16): SnapFailure[] {
  const steps = [...new Set(Array.from(rowStep).filter((s) => s > 0))].sort((a, b) => a - b);
  const failures: SnapFailure[] = [];
  for (const s of steps) {
    for (let k = 0; k < entries.length; k++) {
      const p = fround(s * entries[k]);
      for (const storedAs of ['F16', 'F32'] as const) {
        const stored = storedAs === 'F16' ? f16Round(p) : p;
        const q = stored / s;
        for (const defused of [f16Round(q), f16Round(fround(q))]) {
          const snapped = loaderSnapIndex(entries, defused);
          if (snapped !== k || !Number.isFinite(stored)) {
            failures.push({ entry: k, value: entries[k], rowStep: s, stored, defused, snappedTo: snapped, storedAs });
            if (failures.length >= limit) return failures;
            break;
          }
        }
      }
    }
  }
  return failures;
}

/** The next F16 value above a finite F16 value x. */
function nextF16Up(x: number): number {
  const h = f32ToF16Bits(x);
  if (h === 0x8000 || h === 0) return f16BitsToF32(1);
  return f16BitsToF32(h & 0x8000 ? h - 1 : h + 1);
}

/** The smallest F16 value ≥ x. */
function f16AtLeast(x: number): number {
  const r = roundToF16(x);
  return r >= x ? r : nextF16Up(r);
}

/**
 * Round sorted entries to F16 and push each one up as far as the spacing rule needs
 * (left to right; deterministic). Returns how many entries moved beyond their F16 rounding.
 */
function enforceSpacing(entries: Float64Array, floor: number): { out: Float32Array; moved: number } {
  const out = new Float32Array(entries.length);
  let moved = 0;
  for (let k = 0; k < entries.length; k++) {
    let c = roundToF16(entries[k]);
    if (k > 0) {
      const a = out[k - 1];
      const start = c;
      if (c < a + requiredGap(a, a, floor)) c = f16AtLeast(a + requiredGap(a, a, floor));
      // The gap grows with |c| on the positive side: step up until it holds.
      while (c - a < requiredGap(a, c, floor)) c = nextF16Up(c);
      if (c !== start) moved++;
    }
    out[k] = c;
  }
  return { out, moved };
}

/**
 * Sorted real entries → F16 entries spaced for the loader (enforceSpacing from `floor`), verified
 * against ANEMLL's de-fuse for every row step, the floor doubled until every entry snaps back.
 */
function loaderSafeEntries(c: Float64Array, rowStep: ArrayLike<number>, floor: number, name?: string): { entries: Float32Array; moved: number; floor: number; floorRaises: number } {
  const what = name ? ` (${name})` : '';
  let floorRaises = 0;
  for (;;) {
    const { out, moved } = enforceSpacing(c, floor);
    const bad = defuseSnapFailures(out, rowStep, 1);
    if (bad.length === 0) return { entries: out, moved, floor, floorRaises };
    const f = bad[0];
    if (!Number.isFinite(f.stored) || Math.abs(f.value) * f.rowStep > F16_MAX || floorRaises >= 40) {
      throw new CodebookError(
        `codebook${what}: entry ${f.entry} (${f.value}) × row step ${f.rowStep} is stored as ${f.stored} (${f.storedAs}), which ANEMLL's fp16 de-fuse ` +
          `reads back as ${f.defused} and snaps to entry ${f.snappedTo}; the tensor's scales do not fit F16 — use the uniform codebook for it`,
        name,
      );
    }
    floor = floor > 0 ? floor * 2 : CODEBOOK_ABS_GAP * 2;
    floorRaises++;
  }
}

/** The starting spacing floor for a tensor's row steps: stored products in f16's subnormal range still de-fuse to their own entry. */
function subnormalSpacingFloor(rowStep: ArrayLike<number>): number {
  let minStep = Infinity;
  for (let r = 0; r < rowStep.length; r++) if (rowStep[r] > 0 && rowStep[r] < minStep) minStep = rowStep[r];
  const f = minStep < Infinity ? 2 ** -22 / minStep : 0;
  return f > CODEBOOK_ABS_GAP ? f : 0;
}

export interface FitCodebookOptions {
  /** Entries: 2^bits. */
  bits: number;
  /** The loader's divisor per row: fp16(s_in · s_out_r) (TensorScales.rowStep). */
  rowStep: Float32Array;
  /** fround(1 / rowStep_r), 0 where the step is 0 (TensorScales.rowInv). */
  rowInv: Float32Array;
  /** Per input column weight, the Hessian diagonal H_jj; uniform when absent (or all zero). */
  columnWeights?: ArrayLike<number>;
  /** Lloyd iterations per start (at most; it stops early at a fixed point). Default 100. */
  iterations?: number;
  /** Histogram bins. Default max(4096, 64·2^bits). */
  bins?: number;
  /**
   * Starting minimum gap beyond the format's rule. Default: from the smallest row step, so that
   * stored products in f16's subnormal range (quantum 2^-24) still de-fuse to their own entry.
   * The verification raises it (×2 per round) when some entry does not snap back.
   */
  spacingFloor?: number;
  /** Tensor name for error messages. */
  name?: string;
}

export interface CodebookFit {
  /** 2^bits sorted F16 values (what `.codebook` stores). */
  entries: Float32Array;
  /** Lloyd iterations run (fewer than asked when it reached a fixed point). */
  iterations: number;
  /** Entries the spacing rule moved beyond their F16 rounding. */
  spacingAdjusted: number;
  /** Minimum gap finally enforced beyond the format's rule (0 when none). */
  spacingFloor: number;
  /** Times the de-fuse verification had to widen the spacing. */
  floorRaises: number;
  /** Σ weight · (u − C(u))² over the histogram (the fit's objective, in weight units · column weight). */
  distortion: number;
}

/**
 * Fit 2^bits codebook entries to u = fround(w · rowInv_r) of a [rows, cols] f32 matrix (weights
 * already transformed, scales already chosen). Deterministic: quantile initialisation, a fixed
 * maximum number of Lloyd iterations, sums in a fixed order.
 */
export function fitCodebook(w: Float32Array, rows: number, cols: number, opts: FitCodebookOptions): CodebookFit {
  const { bits, rowStep, rowInv, name } = opts;
  const what = name ? ` (${name})` : '';
  const K = 2 ** bits;
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new RangeError(`fitCodebook${what}: bits ${bits} must be 1…8`);
  if (w.length !== rows * cols) throw new RangeError(`fitCodebook${what}: ${w.length} weights for [${rows}, ${cols}]`);
  if (rowStep.length !== rows || rowInv.length !== rows) throw new RangeError(`fitCodebook${what}: ${rows} rows need ${rows} row steps and inverses`);
  const iterations = opts.iterations ?? DEFAULT_LLOYD_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 0) throw new RangeError(`fitCodebook${what}: iterations ${iterations} must be a non-negative integer`);
  const B = opts.bins ?? Math.max(4096, 64 * K);
  if (!Number.isInteger(B) || B < K) throw new RangeError(`fitCodebook${what}: bins ${B} must be an integer ≥ ${K}`);

  // Column weights: the Hessian diagonal, or uniform.
  let colW: Float64Array | null = null;
  if (opts.columnWeights) {
    const cw = opts.columnWeights;
    if (cw.length !== cols) throw new RangeError(`fitCodebook${what}: ${cw.length} column weights for ${cols} columns`);
    let any = false;
    colW = new Float64Array(cols);
    for (let j = 0; j < cols; j++) {
      const v = cw[j];
      if (!(v >= 0) || !Number.isFinite(v)) throw new CodebookError(`fitCodebook${what}: column weight ${j} is ${v}; Hessian diagonal entries must be finite and ≥ 0`, name);
      colW[j] = v;
      if (v > 0) any = true;
    }
    if (!any) colW = null; // no calibration signal at all: uniform
  }

  // Pass 1: range of u over the rows that carry weight.
  let lo = Infinity;
  let hi = -Infinity;
  let minStep = Infinity;
  for (let r = 0; r < rows; r++) {
    const s = rowStep[r];
    if (!Number.isFinite(s) || !Number.isFinite(rowInv[r])) throw new CodebookError(`fitCodebook${what}: row ${r} step ${s} / inverse ${rowInv[r]} not finite`, name);
    if (!(s > 0)) continue;
    if (s < minStep) minStep = s;
    const inv = rowInv[r];
    const o = r * cols;
    for (let j = 0; j < cols; j++) {
      const u = fround(w[o + j] * inv);
      if (!Number.isFinite(u)) throw new CodebookError(`fitCodebook${what}: weight [${r}, ${j}] is ${w[o + j]}`, name);
      if (u < lo) lo = u;
      if (u > hi) hi = u;
    }
  }
  if (Math.max(Math.abs(lo), Math.abs(hi)) > F16_MAX / 2) {
    throw new CodebookError(`fitCodebook${what}: weights ÷ row steps reach ${Math.abs(lo) > Math.abs(hi) ? lo : hi}, beyond what an F16 codebook holds; the row steps do not match the weights`, name);
  }
  if (!(hi >= lo)) {
    // No row with a positive step: nothing to fit; the integer grid is as good as anything.
    return { entries: uniformCodebook(bits), iterations: 0, spacingAdjusted: 0, spacingFloor: 0, floorRaises: 0, distortion: 0 };
  }

  // Pass 2: weighted histogram (weight, weighted sum, weighted sum of squares per bin).
  const width = hi > lo ? (hi - lo) / B : 1;
  const binInv = 1 / width;
  const hw = new Float64Array(B);
  const hs = new Float64Array(B);
  const hq = new Float64Array(B);
  for (let r = 0; r < rows; r++) {
    const s = rowStep[r];
    if (!(s > 0)) continue;
    const inv = rowInv[r];
    const rw = s * s;
    const o = r * cols;
    for (let j = 0; j < cols; j++) {
      const p = colW ? rw * colW[j] : rw;
      if (p === 0) continue;
      const u = fround(w[o + j] * inv);
      let b = Math.floor((u - lo) * binInv);
      if (b >= B) b = B - 1;
      else if (b < 0) b = 0;
      hw[b] += p;
      hs[b] += p * u;
      hq[b] += p * u * u;
    }
  }
  // Prefix sums over bins.
  const P0 = new Float64Array(B + 1);
  const P1 = new Float64Array(B + 1);
  const P2 = new Float64Array(B + 1);
  for (let b = 0; b < B; b++) {
    P0[b + 1] = P0[b] + hw[b];
    P1[b + 1] = P1[b] + hs[b];
    P2[b + 1] = P2[b] + hq[b];
  }
  const total = P0[B];
  // Weighted mean of each bin (its representative for the assignment); empty bins follow their left neighbour.
  const mean = new Float64Array(B);
  for (let b = 0; b < B; b++) mean[b] = hw[b] > 0 ? hs[b] / hw[b] : b > 0 ? mean[b - 1] : lo;

  // Starting points, each run through Lloyd; the one ending lowest wins (ties: the earlier).
  //  1. companded quantiles: entry k at the (k + ½)/K quantile of the bin weights^(1/3) — the
  //     point density of an MSE-optimal quantizer (Panter & Dite), so tails get their entries;
  //  2. plain weighted quantiles;
  //  3. the integer grid itself — Lloyd from it never ends above it on this objective.
  // 1-D Lloyd only moves entries locally, so where it ends depends on where it starts.
  const starts = total > 0 ? [quantiles(1 / 3), quantiles(1), Float64Array.from(uniformCodebook(bits))] : [Float64Array.from(uniformCodebook(bits))];
  const subnormalFloor = minStep < Infinity ? 2 ** -22 / minStep : 0;
  const floor = opts.spacingFloor ?? (subnormalFloor > CODEBOOK_ABS_GAP ? subnormalFloor : 0);
  let best: { c: Float64Array; ran: number; d: number } | null = null;
  for (const c of starts) {
    const ran = lloyd(c);
    const d = distortion(enforceSpacing(c, floor).out);
    if (!best || d < best.d) best = { c, ran, d };
  }
  const c = best!.c;

  // F16 entries, spaced for the loader; verified against its de-fuse for every row step.
  const done = loaderSafeEntries(c, rowStep, floor, name);
  return { entries: done.entries, iterations: best!.ran, spacingAdjusted: done.moved, spacingFloor: done.floor, floorRaises: done.floorRaises, distortion: distortion(done.entries) };

  /** Entry k at the (k + ½)/K quantile of the bin weights raised to `power`, linear inside its bin. */
  function quantiles(power: number): Float64Array {
    const cw = new Float64Array(B + 1);
    for (let b = 0; b < B; b++) cw[b + 1] = cw[b] + (hw[b] > 0 ? hw[b] ** power : 0);
    const out = new Float64Array(K);
    let b = 0;
    for (let k = 0; k < K; k++) {
      const target = ((k + 0.5) / K) * cw[B];
      while (b < B - 1 && cw[b + 1] <= target) b++;
      const wb = cw[b + 1] - cw[b];
      const frac = wb > 0 ? Math.min(1, Math.max(0, (target - cw[b]) / wb)) : 0.5;
      out[k] = lo + (b + frac) * width;
    }
    return out;
  }

  /**
   * Lloyd in place: bins go to the entry nearest their mean, entries move to their clusters'
   * weighted means; at most `iterations` rounds, fewer at a fixed point. Returns the rounds run.
   */
  function lloyd(c: Float64Array): number {
    const start = new Int32Array(K + 1);
    let ran = 0;
    for (let it = 0; it < iterations && total > 0; it++) {
      let b = 0;
      for (let k = 0; k < K - 1; k++) {
        start[k] = b;
        const t = (c[k] + c[k + 1]) / 2;
        while (b < B && mean[b] <= t) b++;
      }
      start[K - 1] = b;
      start[K] = B;
      let changed = false;
      for (let k = 0; k < K; k++) {
        const wsum = P0[start[k + 1]] - P0[start[k]];
        if (!(wsum > 0)) continue; // an empty cluster keeps its place
        const m = (P1[start[k + 1]] - P1[start[k]]) / wsum;
        if (m !== c[k]) { c[k] = m; changed = true; }
      }
      ran++;
      if (!changed) break;
      // Cluster means of consecutive bin ranges are ordered; keep the order strict anyway.
      for (let k = 1; k < K; k++) if (c[k] < c[k - 1]) c[k] = c[k - 1];
    }
    return ran;
  }

  /** Σ weight·(u − nearest entry)² from the histogram (bins assigned by their mean). */
  function distortion(entries: Float32Array): number {
    const t = codebookThresholds(entries);
    let d = 0;
    for (let b = 0; b < B; b++) {
      if (!(hw[b] > 0)) continue;
      const e = entries[nearestEntryIndex(mean[b], t)];
      d += hq[b] - 2 * e * hs[b] + e * e * hw[b];
    }
    return Math.max(0, d);
  }
}

/** Argument checks shared by every backend's `quantizeToCodebook` (same message everywhere). */
export function checkCodebookArgs(m: { rows: number }, rowStep: Float32Array, rowInv: Float32Array, codebook: Float32Array): void {
  if (rowStep.length !== m.rows || rowInv.length !== m.rows) throw new Error(`quantizeToCodebook: row vectors must have ${m.rows} entries`);
  const n = codebook.length;
  if (n < 2 || n > 256) throw new Error(`quantizeToCodebook: ${n} codebook entries unsupported (2…256)`);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(codebook[i]) || (i > 0 && !(codebook[i] > codebook[i - 1]))) {
      throw new Error(`quantizeToCodebook: codebook entry ${i} (${codebook[i]}) must be finite and above entry ${i - 1}`);
    }
  }
}

export interface CodebookRefit {
  /** 2^bits sorted F16 entries, spaced and verified for the loader's de-fuse like a fitted codebook. */
  entries: Float32Array;
  /** The codes relabelled onto `entries` (entry indices, row-major [rows, cols]); the same as given unless the solve reordered entries. */
  codes: Uint8Array;
  /** Entries no weight uses (kept where they were; they cost nothing). */
  unused: number;
  /** Entries the spacing rule moved beyond their F16 rounding. */
  spacingAdjusted: number;
}

/**
 * Codebook entries refitted to fixed codes (after GPTQ has chosen them): with ŵ_rj = s_r·C[k_rj],
 * the entries minimising the output error tr((W − Ŵ) H (W − Ŵ)ᵀ) solve the 2^b × 2^b system
 *   M C = b,  M_ab = Σ_r s_r² Σ_{i: k_ri = a} Σ_{j: k_rj = b} H_ij,  b_a = Σ_r s_r Σ_{i: k_ri = a} (H w_r)_i
 * (one pass over the rows, rows·cols² multiply-adds — as much as GPTQ itself). GPTQ's codes carry
 * its error feedback, so the entries that suit them are not the Lloyd entries fitted to the
 * weights before it. Entries no code uses keep their value; the solution is sorted (codes
 * relabelled with it), rounded to F16, spaced and verified against ANEMLL's de-fuse for every row
 * step exactly as fitCodebook's. Deterministic (fixed summation order, f64).
 */
export function refitCodebookToCodes(
  w: Float32Array, rows: number, cols: number, codes: ArrayLike<number>, h: Float64Array, entries: Float32Array, rowStep: Float32Array, name?: string,
): CodebookRefit {
  const what = name ? ` (${name})` : '';
  const K = entries.length;
  if (K < 2 || K > 256 || (K & (K - 1)) !== 0) throw new RangeError(`refitCodebookToCodes${what}: ${K} entries; expected a power of two from 2 to 256`);
  if (w.length !== rows * cols || codes.length !== rows * cols) throw new RangeError(`refitCodebookToCodes${what}: weights and codes must hold ${rows}×${cols} values`);
  if (h.length !== cols * cols) throw new RangeError(`refitCodebookToCodes${what}: Hessian must be ${cols}×${cols}`);
  if (rowStep.length !== rows) throw new RangeError(`refitCodebookToCodes${what}: ${rows} rows need ${rows} row steps`);
  const M = new Float64Array(K * K);
  const bv = new Float64Array(K);
  const row = new Int32Array(cols);
  for (let r = 0; r < rows; r++) {
    const s = rowStep[r];
    if (!(s > 0)) continue;
    const o = r * cols;
    for (let j = 0; j < cols; j++) {
      const k = codes[o + j];
      if (!(k >= 0 && k < K) || !Number.isInteger(k)) throw new RangeError(`refitCodebookToCodes${what}: code [${r}, ${j}] is ${k}; expected an entry index 0…${K - 1}`);
      row[j] = k;
    }
    const s2 = s * s;
    for (let i = 0; i < cols; i++) {
      const hi = i * cols;
      if (h[hi + i] === 0) continue; // a dead input channel: its row of H is zero
      const mo = row[i] * K;
      let hw = 0;
      for (let j = 0; j < cols; j++) {
        const hij = h[hi + j];
        M[mo + row[j]] += s2 * hij;
        hw += hij * w[o + j];
      }
      bv[row[i]] += s * hw;
    }
  }
  // Entries nobody uses (zero row of M) keep their value; the rest solve the reduced system.
  const used: number[] = [];
  for (let a = 0; a < K; a++) if (M[a * K + a] > 0) used.push(a);
  const c = Float64Array.from(entries);
  const sol = solveSymmetric(used.map((a) => used.map((b2) => M[a * K + b2])), used.map((a) => bv[a]));
  if (sol) used.forEach((a, n) => { if (Number.isFinite(sol[n])) c[a] = sol[n]; });
  // Sorted (stable: equal values keep their index order), codes relabelled.
  const order = Array.from({ length: K }, (_, k) => k).sort((a, b2) => c[a] - c[b2] || a - b2);
  const relabel = new Uint8Array(K);
  order.forEach((k, n) => { relabel[k] = n; });
  const sorted = Float64Array.from(order, (k) => c[k]);
  const done = loaderSafeEntries(sorted, rowStep, subnormalSpacingFloor(rowStep), name);
  const out = new Uint8Array(rows * cols);
  for (let i = 0; i < out.length; i++) out[i] = relabel[codes[i]];
  return { entries: done.entries, codes: out, unused: K - used.length, spacingAdjusted: done.moved };
}

/**
 * Solve the symmetric positive semi-definite system A x = b (small, dense) by Gaussian
 * elimination with partial pivoting in f64, after a ridge of 1e-12 × the mean diagonal; null when
 * it is singular even so.
 */
function solveSymmetric(a: number[][], b: number[]): Float64Array | null {
  const n = b.length;
  if (n === 0) return new Float64Array(0);
  let tr = 0;
  for (let i = 0; i < n; i++) tr += a[i][i];
  const ridge = (1e-12 * tr) / n;
  const m = a.map((r, i) => { const x = Float64Array.from(r); x[i] += ridge; return x; });
  const x = Float64Array.from(b);
  for (let col = 0; col < n; col++) {
    let p = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r][col]) > Math.abs(m[p][col])) p = r;
    if (!(Math.abs(m[p][col]) > 0)) return null;
    if (p !== col) { [m[p], m[col]] = [m[col], m[p]]; [x[p], x[col]] = [x[col], x[p]]; }
    const piv = m[col][col];
    for (let r = col + 1; r < n; r++) {
      const f = m[r][col] / piv;
      if (f === 0) continue;
      for (let k = col; k < n; k++) m[r][k] -= f * m[col][k];
      x[r] -= f * x[col];
    }
  }
  for (let r = n - 1; r >= 0; r--) {
    let acc = x[r];
    for (let k = r + 1; k < n; k++) acc -= m[r][k] * x[k];
    x[r] = acc / m[r][r];
  }
  return x;
}
