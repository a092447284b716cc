import type { RotationSpec } from '../ports';
import { InputError } from '../errors';
import { factorHadamardSize } from './factor';
import { hadamardK } from './hadamard-k';
import { randomSigns } from './signs';

export type { RotationSpec };

/*
 * CPU reference of the transform T(v) = Ĥᵀ·(s ⊙ v), per segment, in the canonical f32 operation
 * order of src/core/ports.ts. Storage is always Float32Array, so every stored intermediate is
 * rounded to f32; JS evaluates one +, −, × of two f32 values in f64, and rounding that to f32 gives
 * the correctly rounded f32 result (53 ≥ 2·24 + 2), so this is exact IEEE f32 arithmetic. Values
 * kept in locals are passed through Math.fround for the same reason.
 */

const fround = Math.fround;

/** Columns processed together by rotateColumnsF32 (a block of `length × 64` f32 stays in L2). */
const COLUMN_BLOCK = 64;

export function makeRotationSpec(opts: { length: number; segment: number; signs: Float32Array }): RotationSpec {
  const { length, segment, signs } = opts;
  if (!Number.isSafeInteger(length) || length < 1) throw new InputError(`rotation length must be a positive integer, got ${length}`);
  if (!Number.isSafeInteger(segment) || segment < 1) throw new InputError(`rotation segment must be a positive integer, got ${segment}`);
  if (length % segment !== 0) throw new InputError(`rotation length ${length} is not a multiple of the segment ${segment}`);
  if (signs.length !== length) throw new InputError(`rotation needs ${length} signs, got ${signs.length}`);
  for (let i = 0; i < length; i++) {
    if (signs[i] !== 1 && signs[i] !== -1) throw new InputError(`rotation sign ${i} is ${signs[i]}, expected ±1`);
  }
  const { k } = factorHadamardSize(segment);
  const hK = hadamardK(k);
  if (!hK) throw new InputError(`internal: no H_${k} although factorHadamardSize chose it`);
  return { length, segment, k, hK, signs, scale: fround(1 / Math.sqrt(segment)) };
}

/** Q = diag(s)·Ĥ for the residual stream: one segment of d ('full') or d/B blocks of B ('block'). */
export function residualRotation(d: number, mode: 'full' | 'block', blockSize: number, seed: number): RotationSpec {
  let segment = d;
  if (mode === 'block') {
    if (!Number.isSafeInteger(blockSize) || blockSize < 1 || (blockSize & (blockSize - 1)) !== 0) {
      throw new InputError(`block size must be a power of two, got ${blockSize}`);
    }
    if (d % blockSize !== 0) throw new InputError(`block size ${blockSize} does not divide the hidden size ${d}`);
    segment = blockSize;
  } else if (mode !== 'full') {
    throw new InputError(`unknown rotation mode ${String(mode)}`);
  }
  return makeRotationSpec({ length: d, segment, signs: randomSigns(seed, 'residual', d) });
}

/** I_heads ⊗ R2 with R2 = diag(s2)·Ĥ_D: the same D signs for every head, so GQA stays exact. */
export function headRotation(headDim: number, numHeads: number, seed: number): RotationSpec {
  if (!Number.isSafeInteger(numHeads) || numHeads < 1) throw new InputError(`number of heads must be a positive integer, got ${numHeads}`);
  if (!Number.isSafeInteger(headDim) || headDim < 1) throw new InputError(`head dim must be a positive integer, got ${headDim}`);
  const s = randomSigns(seed, 'head', headDim);
  const signs = new Float32Array(headDim * numHeads);
  for (let h = 0; h < numHeads; h++) signs.set(s, h * headDim);
  return makeRotationSpec({ length: headDim * numHeads, segment: headDim, signs });
}

/** Float32 elements transformVector needs as scratch. */
export function transformScratchLength(spec: RotationSpec): number {
  return spec.length + spec.segment;
}

/** Validates a spec; returns m (segment = K·m). */
export function checkSpec(spec: RotationSpec): number {
  const { length, segment, k, hK, signs } = spec;
  const m = segment / k;
  if (
    !Number.isInteger(m) || (m & (m - 1)) !== 0 || length % segment !== 0 ||
    hK.length !== k * k || signs.length !== length || !(spec.scale > 0)
  ) {
    throw new InputError(`inconsistent RotationSpec (length ${length}, segment ${segment}, k ${k})`);
  }
  return m;
}

/*
 * The kernels work on "lanes": element i of lane l lives at buf[base + i·w + l], l < w.
 * rows use w = 1 (one contiguous vector); columns use w = block width, so every butterfly and
 * K-stage add is a run over w adjacent floats. Per element the operations and their order are
 * the same for any w, which is why the two paths agree bit for bit.
 */

/** In-place FWHT over m rows (of w lanes) at base; two butterfly stages per pass. */
function fwhtLanes(buf: Float32Array, base: number, m: number, w: number): void {
  let h = 1;
  for (; h * 4 <= m; h *= 4) {
    const hw = h * w;
    const group = 4 * hw;
    const end = base + m * w;
    for (let g = base; g < end; g += group) {
      const stop = g + hw;
      for (let j = g; j < stop; j++) {
        const x0 = buf[j];
        const x1 = buf[j + hw];
        const x2 = buf[j + 2 * hw];
        const x3 = buf[j + 3 * hw];
        // stage h: pairs (0,1), (2,3); stage 2h: pairs (0,2), (1,3)
        const a = fround(x0 + x1);
        const b = fround(x0 - x1);
        const c = fround(x2 + x3);
        const d = fround(x2 - x3);
        buf[j] = a + c;
        buf[j + hw] = b + d;
        buf[j + 2 * hw] = a - c;
        buf[j + 3 * hw] = b - d;
      }
    }
  }
  if (h < m) {
    // one radix-2 stage left (m = 2·4^j)
    const hw = h * w;
    const stop = base + hw;
    for (let j = base; j < stop; j++) {
      const x = buf[j];
      const y = buf[j + hw];
      buf[j] = x + y;
      buf[j + hw] = x - y;
    }
  }
}

/**
 * K-stage for one segment at base: with run = m·w, element (a, r) (r < run) sits at
 * base + a·run + r, and out(a, r) = Σ_{a'} hK[a'·K + a]·in(a', r), summed sequentially from the
 * a' = 0 term. hK·x is exact (±1), each add is rounded by fround. Four independent r at a time
 * keep the accumulators in registers (about 2× faster than accumulating in memory).
 * tmp[tb, tb + K·run) receives a copy of the input.
 */
function kStage(buf: Float32Array, base: number, k: number, hK: Int8Array, run: number, tmp: Float32Array, tb: number): void {
  const n = k * run;
  for (let i = 0; i < n; i++) tmp[tb + i] = buf[base + i];
  const run4 = run - (run % 4);
  for (let a = 0; a < k; a++) {
    const o = base + a * run;
    const h0 = hK[a];
    let r = 0;
    for (; r < run4; r += 4) {
      const t0 = tb + r;
      let c0 = h0 * tmp[t0];
      let c1 = h0 * tmp[t0 + 1];
      let c2 = h0 * tmp[t0 + 2];
      let c3 = h0 * tmp[t0 + 3];
      for (let ap = 1, t = t0 + run; ap < k; ap++, t += run) {
        const h = hK[ap * k + a];
        c0 = fround(c0 + h * tmp[t]);
        c1 = fround(c1 + h * tmp[t + 1]);
        c2 = fround(c2 + h * tmp[t + 2]);
        c3 = fround(c3 + h * tmp[t + 3]);
      }
      buf[o + r] = c0;
      buf[o + r + 1] = c1;
      buf[o + r + 2] = c2;
      buf[o + r + 3] = c3;
    }
    for (; r < run; r++) {
      let c = h0 * tmp[tb + r];
      for (let ap = 1, t = tb + r + run; ap < k; ap++, t += run) c = fround(c + hK[ap * k + a] * tmp[t]);
      buf[o + r] = c;
    }
  }
}

/** Steps 2–3 (FWHTs and K-stage) on every segment of a laned vector; signs/scale done by callers. */
function mixLanes(buf: Float32Array, base: number, spec: RotationSpec, m: number, w: number, tmp: Float32Array, tb: number): void {
  const { length, segment, k, hK } = spec;
  for (let s = 0; s < length; s += segment) {
    const sb = base + s * w;
    for (let a = 0; a < k; a++) fwhtLanes(buf, sb + a * m * w, m, w);
    if (k > 1) kStage(buf, sb, k, hK, m * w, tmp, tb);
  }
}

/**
 * In place on v[offset + i·stride], i < spec.length: v ↦ Ĥᵀ·(s ⊙ v), canonical f32 order.
 * `scratch` (≥ transformScratchLength(spec) floats) avoids an allocation per call.
 */
export function transformVector(
  v: Float32Array,
  offset: number,
  stride: number,
  spec: RotationSpec,
  scratch?: Float32Array,
): void {
  const m = checkSpec(spec);
  const n = spec.length;
  if (!Number.isInteger(offset) || !Number.isInteger(stride) || stride < 1 || offset < 0 || offset + (n - 1) * stride >= v.length) {
    throw new InputError(`transformVector: ${n} elements from offset ${offset} with stride ${stride} exceed the array (${v.length})`);
  }
  const need = transformScratchLength(spec);
  const buf = scratch && scratch.length >= need ? scratch : new Float32Array(need);
  const { signs, scale } = spec;
  for (let i = 0; i < n; i++) buf[i] = v[offset + i * stride] * signs[i];
  mixLanes(buf, 0, spec, m, 1, buf, n);
  for (let i = 0; i < n; i++) v[offset + i * stride] = buf[i] * scale;
}

/** Each row of the row-major rows×cols matrix (a vector of cols elements) ↦ T(row). */
export function rotateRowsF32(data: Float32Array, rows: number, cols: number, spec: RotationSpec): void {
  const m = checkSpec(spec);
  checkMatrix(data, rows, cols);
  if (spec.length !== cols) throw new InputError(`rotateRows: spec length ${spec.length} ≠ ${cols} columns`);
  const tmp = new Float32Array(spec.segment);
  const { signs, scale } = spec;
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let i = 0; i < cols; i++) data[base + i] *= signs[i];
    mixLanes(data, base, spec, m, 1, tmp, 0);
    for (let i = base; i < base + cols; i++) data[i] *= scale;
  }
}

/** Each column (a vector of rows elements) ↦ T(column); bit-identical to transformVector per column. */
export function rotateColumnsF32(data: Float32Array, rows: number, cols: number, spec: RotationSpec): void {
  const m = checkSpec(spec);
  checkMatrix(data, rows, cols);
  if (spec.length !== rows) throw new InputError(`rotateColumns: spec length ${spec.length} ≠ ${rows} rows`);
  const bw = Math.min(COLUMN_BLOCK, cols);
  const blk = new Float32Array(rows * bw);
  const tmp = new Float32Array(spec.segment * bw);
  const { signs, scale } = spec;
  for (let c0 = 0; c0 < cols; c0 += bw) {
    const w = Math.min(bw, cols - c0);
    // gather with the sign flip (exact), transform, scatter with the scale
    for (let i = 0; i < rows; i++) {
      const s = signs[i];
      const src = i * cols + c0;
      const dst = i * w;
      for (let l = 0; l < w; l++) blk[dst + l] = data[src + l] * s;
    }
    mixLanes(blk, 0, spec, m, w, tmp, 0);
    for (let i = 0; i < rows; i++) {
      const dst = i * cols + c0;
      const src = i * w;
      for (let l = 0; l < w; l++) data[dst + l] = blk[src + l] * scale;
    }
  }
}

export function checkMatrix(data: Float32Array, rows: number, cols: number): void {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 1 || cols < 1 || data.length !== rows * cols) {
    throw new InputError(`matrix ${rows}×${cols} does not match its ${data.length} elements`);
  }
}
