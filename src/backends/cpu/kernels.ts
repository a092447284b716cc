/**
 * The CPU implementation of every per-tensor kernel. This is the fallback backend and the
 * oracle the WGSL kernels are tested against: each function follows the f32 operation order
 * documented on the Backend interface (src/core/ports.ts) to the letter. Float32Array
 * storage and Math.fround make every intermediate an f32; f64 arithmetic on two f32 operands
 * followed by fround is the correctly rounded f32 result for + − × ÷.
 */
import { codebookThresholds, nearestEntryIndex } from '../../core/quant/codebook';

const fround = Math.fround;

export function scaleColumnsF32(data: Float32Array, rows: number, cols: number, gamma: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) data[o + c] = data[o + c] * gamma[c];
  }
}

export function rowAbsMaxF32(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    const o = r * cols;
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(data[o + c]);
      if (a > m) m = a;
    }
    out[r] = m;
  }
  return out;
}

/**
 * Round half to even, for |x| < 2^51: adding and subtracting 1.5·2^52 leaves the f64 rounding
 * (which is half-to-even) to do the work. Two adds, no branches — this is the hottest loop.
 */
const RNE_MAGIC = 6755399441055744;
function rne(x: number): number {
  return x + RNE_MAGIC - RNE_MAGIC;
}

export function mseRowErrorsF32(
  data: Float32Array,
  rows: number,
  cols: number,
  rowBase: Float32Array,
  rowInvBase: Float32Array,
  alphas: Float32Array,
  invAlphas: Float32Array,
  qmin: number,
  qmax: number,
): Float32Array {
  const n = alphas.length;
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let k = 0; k < n; k++) {
      const step = fround(rowBase[r] * alphas[k]);
      const inv = fround(rowInvBase[r] * invAlphas[k]);
      let sum = 0;
      for (let c = o, end = o + cols; c < end; c++) {
        const w = data[c];
        let q = fround(w * inv) + RNE_MAGIC - RNE_MAGIC;
        q = q < qmin ? qmin : q > qmax ? qmax : q;
        const e = fround(w - fround(step * q));
        sum = fround(sum + fround(e * e));
      }
      out[r * n + k] = sum;
    }
  }
  return out;
}

// f16 round-to-nearest-even of an f32, done with integer ops on its bits (same as the WGSL kernel).
const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);
export function roundF32ToF16Value(x: number): number {
  f32buf[0] = x;
  const bits = u32buf[0];
  const sign = bits & 0x80000000;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) return x; // inf / NaN unchanged
  if (abs >= 0x477ff000) { // ≥ 65520 rounds to inf
    u32buf[0] = sign | 0x7f800000;
    return f32buf[0];
  }
  if (abs < 0x38800000) {
    // f16 subnormal range: quantum 2^-24; x·2^24 rounded half-even, times 2^-24 (exact in f64).
    const v = Math.abs(x) * 16777216;
    const r = rne(v) / 16777216;
    return sign ? -r : r;
  }
  // Normal: keep 10 mantissa bits, RNE on the 13 dropped bits.
  const lsb = (abs >>> 13) & 1;
  const rounded = (abs + 0x0fff + lsb) & 0xffffe000;
  u32buf[0] = (sign | rounded) >>> 0;
  return f32buf[0];
}

export function quantizeF32(
  data: Float32Array,
  rows: number,
  cols: number,
  rowStep: Float32Array,
  rowInv: Float32Array,
  qmin: number,
  qmax: number,
  roundToF16: boolean,
): { values: Float32Array; codeCounts: Uint32Array } {
  const values = new Float32Array(rows * cols);
  const codeCounts = new Uint32Array(qmax - qmin + 1);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const step = rowStep[r];
    const inv = rowInv[r];
    for (let c = 0; c < cols; c++) {
      const x = fround(data[o + c] * inv);
      let q = rne(x);
      if (q === 0) q = x * 0; // keep the sign of zero, as WGSL round(-0.3) = -0 (the F16 bytes differ)
      if (q < qmin) q = qmin;
      else if (q > qmax) q = qmax;
      codeCounts[q - qmin]++;
      const v = fround(step * q);
      values[o + c] = roundToF16 ? roundF32ToF16Value(v) : v;
    }
  }
  return { values, codeCounts };
}

/**
 * Nearest-entry quantization onto a sorted codebook (src/core/quant/codebook.ts): x = fround(w ·
 * rowInv[r]); k = number of thresholds fround((C_k + C_{k+1}) / 2) below x; v = fround(rowStep[r] ·
 * C_k), f16-rounded when asked; codeCounts[k] counts entry k.
 */
export function quantizeToCodebookF32(
  data: Float32Array,
  rows: number,
  cols: number,
  rowStep: Float32Array,
  rowInv: Float32Array,
  entries: Float32Array,
  roundToF16: boolean,
): { values: Float32Array; codeCounts: Uint32Array } {
  const t = codebookThresholds(entries);
  const values = new Float32Array(rows * cols);
  const codeCounts = new Uint32Array(entries.length);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const step = rowStep[r];
    const inv = rowInv[r];
    for (let c = 0; c < cols; c++) {
      const k = nearestEntryIndex(fround(data[o + c] * inv), t);
      codeCounts[k]++;
      const v = fround(step * entries[k]);
      values[o + c] = roundToF16 ? roundF32ToF16Value(v) : v;
    }
  }
  return { values, codeCounts };
}

export function histogramF32(data: Float32Array, range: number, bins: number): Uint32Array {
  const counts = new Uint32Array(bins);
  const r = fround(range);
  const inv = fround(bins / (2 * r));
  const last = bins - 1;
  for (let i = 0; i < data.length; i++) {
    let b = Math.floor(fround(fround(data[i] + r) * inv));
    if (!(b >= 0)) b = 0; // also NaN
    else if (b > last) b = last;
    counts[b]++;
  }
  return counts;
}

export function rowSquaredErrorsF32(
  a: Float32Array,
  b: Float32Array,
  rows: number,
  cols: number,
): { diff: Float32Array; ref: Float32Array } {
  const diff = new Float32Array(rows);
  const ref = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let sd = 0;
    let sr = 0;
    for (let c = 0; c < cols; c++) {
      const x = a[o + c];
      const e = fround(x - b[o + c]);
      sd = fround(sd + fround(e * e));
      sr = fround(sr + fround(x * x));
    }
    diff[r] = sd;
    ref[r] = sr;
  }
  return { diff, ref };
}
