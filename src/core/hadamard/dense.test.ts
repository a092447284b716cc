import { describe, expect, it } from 'vitest';
import { denseHadamard, denseRotationMatrix, denseTransform } from './dense';
import { makeRotationSpec } from './rotation';

describe('dense oracle', () => {
  it('denseHadamard is orthonormal and equals H_K ⊗ H_{2^m} / √n', () => {
    for (const [n, k] of [[8, 1], [12, 12], [24, 12], [56, 28], [80, 20]]) {
      const h = denseHadamard(n, k);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let dot = 0;
          for (let c = 0; c < n; c++) dot += h[i * n + c] * h[j * n + c];
          expect(dot).toBeCloseTo(i === j ? 1 : 0, 12);
        }
      }
    }
    // 24 = 12·2: entry (a·2 + b, a'·2 + b') = H12[a][a']·H2[b][b'] / √24
    const h = denseHadamard(24, 12);
    expect(h[1 * 24 + 1] * Math.sqrt(24)).toBeCloseTo(-1, 12);
    expect(h[0] * Math.sqrt(24)).toBeCloseTo(1, 12);
  });

  it('denseRotationMatrix is block-diagonal and denseTransform applies Mᵀ·(s ⊙ v)', () => {
    const signs = new Float32Array([1, -1, 1, 1, -1, -1, 1, -1]);
    const spec = makeRotationSpec({ length: 8, segment: 4, signs });
    const m = denseRotationMatrix(spec);
    expect(m[0 * 8 + 4]).toBe(0);
    expect(m[5 * 8 + 5]).toBeCloseTo(-0.5, 15);
    // e_1 ↦ s_1 · (row 1 of M) = −(1/2)(1, −1, 1, −1, 0, 0, 0, 0)
    const out = denseTransform(spec, [0, 1, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(out)).toEqual([-0.5, 0.5, -0.5, 0.5, 0, 0, 0, 0]);
  });
});
