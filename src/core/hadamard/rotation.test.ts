import { describe, expect, it } from 'vitest';
import type { RotationSpec } from '../ports';
import { InputError } from '../errors';
import { denseRotationMatrix, denseTransform } from './dense';
import {
  headRotation,
  makeRotationSpec,
  residualRotation,
  rotateColumnsF32,
  rotateRowsF32,
  transformScratchLength,
  transformVector,
} from './rotation';
import { randomSigns } from './signs';

/** Deterministic test data: xorshift32 → roughly N(0, 1) plus a few large outliers. */
function randomData(n: number, seed: number): Float32Array {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const g = (next() + next() + next() + next() - 2) * 1.7;
    out[i] = next() < 0.01 ? g * 50 : g;
  }
  return out;
}

/**
 * Straight transcription of the canonical order in src/core/ports.ts: radix-2 butterflies,
 * then per (segment, b, a) a sequential f32 sum over a' — no shared code with rotation.ts.
 */
function naiveTransform(v: Float32Array, spec: RotationSpec): Float32Array {
  const { length, segment, k, hK, signs, scale } = spec;
  const p = segment / k;
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) x[i] = v[i] * signs[i];
  for (let s = 0; s < length; s += segment) {
    for (let a = 0; a < k; a++) {
      const o = s + a * p;
      for (let h = 1; h < p; h *= 2) {
        for (let i = 0; i < p; i += 2 * h) {
          for (let j = i; j < i + h; j++) {
            const u = x[o + j];
            const w = x[o + j + h];
            x[o + j] = Math.fround(u + w);
            x[o + j + h] = Math.fround(u - w);
          }
        }
      }
    }
    if (k > 1) {
      const out = new Float32Array(segment);
      for (let b = 0; b < p; b++) {
        for (let a = 0; a < k; a++) {
          let acc = Math.fround(hK[a] * x[s + b]);
          for (let ap = 1; ap < k; ap++) acc = Math.fround(acc + Math.fround(hK[ap * k + a] * x[s + ap * p + b]));
          out[a * p + b] = acc;
        }
      }
      x.set(out, s);
    }
  }
  for (let i = 0; i < length; i++) x[i] = Math.fround(x[i] * scale);
  return x;
}

function bitsEqual(a: Float32Array, b: Float32Array): boolean {
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (ua.length !== ub.length) return false;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

const spec = (length: number, segment: number, seed = 0) =>
  makeRotationSpec({ length, segment, signs: randomSigns(seed, 'test', length) });

// segment (K·2^m) and a few multi-segment (block / per-head) layouts
const SPECS: [number, number][] = [
  [8, 8], [12, 12], [28, 28], [64, 64], [896, 896], [1536, 1536], [320, 320],
  [896, 64], [896, 16], [896, 128], [1536, 768], [448, 56], [384, 96], [2048, 2048], [40, 40], [4, 1],
];

describe('makeRotationSpec and friends', () => {
  it('fills k, hK, scale', () => {
    const s = spec(896, 896);
    expect(s.k).toBe(28);
    expect(s.hK.length).toBe(28 * 28);
    expect(s.scale).toBe(Math.fround(1 / Math.sqrt(896)));
    const b = residualRotation(896, 'block', 64, 0);
    expect([b.length, b.segment, b.k]).toEqual([896, 64, 1]);
    expect(b.signs).toEqual(randomSigns(0, 'residual', 896));
    const f = residualRotation(1536, 'full', 0, 3);
    expect([f.length, f.segment, f.k]).toEqual([1536, 1536, 12]);
  });

  it('headRotation repeats the head signs per head', () => {
    const h = headRotation(64, 14, 5);
    expect([h.length, h.segment, h.k]).toEqual([896, 64, 1]);
    const s = randomSigns(5, 'head', 64);
    for (let i = 0; i < 14; i++) expect(h.signs.subarray(i * 64, (i + 1) * 64)).toEqual(s);
  });

  it('rejects bad input', () => {
    expect(() => spec(100, 30)).toThrow(InputError);
    expect(() => spec(172, 172)).toThrow(/block size 4/);
    expect(() => makeRotationSpec({ length: 4, segment: 4, signs: new Float32Array([1, 1, 0, 1]) })).toThrow(InputError);
    expect(() => makeRotationSpec({ length: 4, segment: 4, signs: new Float32Array(3) })).toThrow(InputError);
    expect(() => residualRotation(896, 'block', 48, 0)).toThrow(InputError);
    expect(() => residualRotation(896, 'block', 256, 0)).toThrow(InputError);
    expect(() => residualRotation(896, 'full', 0, -1)).toThrow(InputError);
    expect(() => transformVector(new Float32Array(10), 0, 1, spec(12, 12))).toThrow(InputError);
    expect(() => rotateRowsF32(new Float32Array(24), 2, 12, spec(8, 8))).toThrow(InputError);
  });
});

describe('transformVector', () => {
  it('is bit-identical to a naive transcription of the canonical order', () => {
    for (const [length, segment] of SPECS) {
      const s = spec(length, segment, length + segment);
      for (let t = 0; t < 3; t++) {
        const v = randomData(length, 1000 * t + length);
        const want = naiveTransform(v, s);
        const got = v.slice();
        transformVector(got, 0, 1, s);
        expect(bitsEqual(got, want), `${length}/${segment}`).toBe(true);
      }
    }
  });

  it('is bit-identical to the naive order for large K·2^m segments and signed zeros', () => {
    for (const [length, segment] of [[5120, 5120], [3584, 3584], [3584, 128], [1536, 1536]]) {
      const s = spec(length, segment, 3);
      const v = randomData(length, 31);
      // zeros of both signs and exact cancellations exercise the ±0 results of the ±1 products
      for (let i = 0; i < length; i += 3) v[i] = i % 2 ? -0 : 0;
      for (let i = 1; i < 64; i += 2) v[i] = v[i - 1 === 0 ? 2 : i - 1];
      const want = naiveTransform(v, s);
      const got = v.slice();
      transformVector(got, 0, 1, s);
      expect(bitsEqual(got, want), `${length}/${segment}`).toBe(true);
    }
    // FWHT of (−0, −0): (−0) + (−0) = −0, (−0) − (−0) = +0
    const two = makeRotationSpec({ length: 2, segment: 2, signs: new Float32Array([1, 1]) });
    const mz = new Float32Array([-0, -0]);
    transformVector(mz, 0, 1, two);
    expect(Object.is(mz[0], -0) && Object.is(mz[1], 0)).toBe(true);
    const z = spec(12, 12, 9);
    const zero = new Float32Array(12);
    const wantZero = naiveTransform(zero, z);
    transformVector(zero, 0, 1, z);
    expect(bitsEqual(zero, wantZero)).toBe(true);
  });

  it('matches the float64 dense oracle (rel 1e-5) and preserves the norm (rel 1e-6)', () => {
    for (const [length, segment] of SPECS) {
      const s = spec(length, segment, 7);
      const m = denseRotationMatrix(s);
      for (let t = 0; t < 2; t++) {
        const v = randomData(length, 77 + t);
        const want = denseTransform(s, v, m);
        const got = v.slice();
        transformVector(got, 0, 1, s);
        let err = 0;
        for (let i = 0; i < length; i++) err = Math.max(err, Math.abs(got[i] - want[i]));
        const scaleRef = Math.max(...Array.from(want, Math.abs));
        expect(err / scaleRef, `${length}/${segment}`).toBeLessThan(1e-5);
        expect(Math.abs(norm(got) / norm(v) - 1), `${length}/${segment}`).toBeLessThan(1e-6);
      }
    }
  });

  it('honours offset and stride and leaves other elements alone', () => {
    const s = spec(28, 28, 1);
    const v = randomData(28, 5);
    const want = naiveTransform(v, s);
    const big = randomData(3 + 28 * 5, 9);
    const before = big.slice();
    for (let i = 0; i < 28; i++) big[3 + i * 5] = v[i];
    const scratch = new Float32Array(transformScratchLength(s));
    transformVector(big, 3, 5, s, scratch);
    for (let i = 0; i < big.length; i++) {
      if (i >= 3 && (i - 3) % 5 === 0) expect(big[i]).toBe(want[(i - 3) / 5]);
      else expect(big[i]).toBe(before[i]);
    }
  });

  it('maps e_0 of a 12-segment to s_0 · column 0 of H_12 / √12', () => {
    const s = spec(12, 12, 2);
    const v = new Float32Array(12);
    v[0] = 1;
    transformVector(v, 0, 1, s);
    const sc = Math.fround(1 / Math.sqrt(12));
    for (let a = 0; a < 12; a++) expect(v[a]).toBe(Math.fround(s.signs[0] * s.hK[a] * sc));
  });
});

describe('rotateRowsF32 / rotateColumnsF32', () => {
  it('rows equal transformVector per row; columns equal transformVector per column, bit for bit', () => {
    for (const [n, segment, other] of [[896, 896, 70], [1536, 1536, 3], [896, 64, 129], [12, 12, 64], [40, 40, 1]]) {
      const s = spec(n, segment, 11);
      const a = randomData(other * n, n + other); // other × n: rows of length n
      const rows = a.slice();
      rotateRowsF32(rows, other, n, s);
      const want = a.slice();
      for (let r = 0; r < other; r++) transformVector(want, r * n, 1, s);
      expect(bitsEqual(rows, want)).toBe(true);

      const at = transpose(a, other, n); // n × other: columns of length n
      const cols = at.slice();
      rotateColumnsF32(cols, n, other, s);
      const wantCols = at.slice();
      const scratch = new Float32Array(transformScratchLength(s));
      for (let c = 0; c < other; c++) transformVector(wantCols, c, other, s, scratch);
      expect(bitsEqual(cols, wantCols), `${n}/${segment}/${other}`).toBe(true);
      // rotateColumns(Aᵀ) = (rotateRows(A))ᵀ exactly
      expect(bitsEqual(cols, transpose(rows, other, n))).toBe(true);
    }
  });

  it('timing (not asserted): 896 × 4864', () => {
    const s = residualRotation(896, 'full', 0, 0);
    const a = randomData(4864 * 896, 3);
    let t0 = performance.now();
    rotateRowsF32(a, 4864, 896, s); // 4864 rows of length 896 (gate/up input side)
    const tr = performance.now() - t0;
    const b = randomData(896 * 4864, 4);
    t0 = performance.now();
    rotateColumnsF32(b, 896, 4864, s); // 4864 columns of length 896 (down_proj output side)
    const tc = performance.now() - t0;
    const blk = residualRotation(896, 'block', 64, 0);
    t0 = performance.now();
    rotateRowsF32(a, 4864, 896, blk);
    const tb = performance.now() - t0;
    console.log(
      `rotate 896×4864 (4.36M f32): rows ${tr.toFixed(1)} ms, columns ${tc.toFixed(1)} ms, rows block-64 ${tb.toFixed(1)} ms`,
    );
  });
});
