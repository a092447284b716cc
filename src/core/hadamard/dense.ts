import type { RotationSpec } from '../ports';
import { InputError } from '../errors';
import { hadamardK } from './hadamard-k';
import { sylvester } from './sylvester';

/*
 * Float64 test oracle. Index convention for an order n = K·2^m: i = a·2^m + b (a < K, b < 2^m).
 */

/** Ĥ_n = (H_K ⊗ H_{2^m}) / √n, n×n row-major: Ĥ[a·2^m + b][a'·2^m + b'] = hK[a][a']·H[b][b'] / √n. */
export function denseHadamard(n: number, k: number): Float64Array {
  const p = n / k;
  if (!Number.isInteger(p) || p < 1 || (p & (p - 1)) !== 0) throw new InputError(`order ${n} is not ${k}·2^m`);
  const hk = hadamardK(k);
  if (!hk) throw new InputError(`no H_${k}`);
  const hp = sylvester(p);
  const inv = 1 / Math.sqrt(n);
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const a = Math.floor(i / p);
    const b = i % p;
    for (let j = 0; j < n; j++) {
      const a2 = Math.floor(j / p);
      const b2 = j % p;
      out[i * n + j] = hk[a * k + a2] * hp[b * p + b2] * inv;
    }
  }
  return out;
}

/**
 * M = I_{length/segment} ⊗ Ĥ_segment (length×length, row-major, no signs; Ĥ built with spec.k
 * and spec.hK), so that the transform of types.ts is exactly T(v) = Mᵀ·(s ⊙ v), i.e.
 * T(v)[i] = Σ_j M[j][i]·s[j]·v[j]; the full rotation is Q = diag(s)·M and T(v) = Qᵀ·v.
 * Ĥ uses the exact 1/√segment, not spec.scale (which is its f32 rounding).
 */
export function denseRotationMatrix(spec: RotationSpec): Float64Array {
  const { length, segment, k, hK } = spec;
  const p = segment / k;
  if (!Number.isInteger(p) || (p & (p - 1)) !== 0 || length % segment !== 0 || hK.length !== k * k) {
    throw new InputError('inconsistent RotationSpec');
  }
  const hp = sylvester(p);
  const inv = 1 / Math.sqrt(segment);
  const out = new Float64Array(length * length);
  for (let s0 = 0; s0 < length; s0 += segment) {
    for (let i = 0; i < segment; i++) {
      const a = Math.floor(i / p);
      const b = i % p;
      const row = (s0 + i) * length + s0;
      for (let j = 0; j < segment; j++) {
        out[row + j] = hK[a * k + Math.floor(j / p)] * hp[b * p + (j % p)] * inv;
      }
    }
  }
  return out;
}

/** T(v) = Mᵀ·(s ⊙ v) in float64 with M = denseRotationMatrix(spec). */
export function denseTransform(spec: RotationSpec, v: ArrayLike<number>, m = denseRotationMatrix(spec)): Float64Array {
  const n = spec.length;
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const x = spec.signs[j] * v[j];
    if (x === 0) continue;
    const row = j * n;
    for (let i = 0; i < n; i++) out[i] += m[row + i] * x;
  }
  return out;
}
