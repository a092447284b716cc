import { describe, expect, it } from 'vitest';
import { InputError } from '../errors';
import { sylvester } from './sylvester';
import { isHadamard } from '../../../test/support/hadamard';

function popcount(x: number): number {
  let c = 0;
  for (; x; x &= x - 1) c++;
  return c;
}

describe('sylvester', () => {
  it('gives the natural-order small matrices', () => {
    expect(Array.from(sylvester(1))).toEqual([1]);
    expect(Array.from(sylvester(2))).toEqual([1, 1, 1, -1]);
    expect(Array.from(sylvester(4))).toEqual([1, 1, 1, 1, 1, -1, 1, -1, 1, 1, -1, -1, 1, -1, -1, 1]);
  });

  it('H[i][j] = (−1)^popcount(i & j) and H·Hᵀ = nI for n ≤ 256', () => {
    for (let n = 1; n <= 256; n *= 2) {
      const h = sylvester(n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(h[i * n + j]).toBe(popcount(i & j) % 2 ? -1 : 1);
      expect(isHadamard(h, n)).toBe(true);
    }
  });

  it('rejects non powers of two', () => {
    for (const n of [0, 3, 6, 12, -4, 2.5]) expect(() => sylvester(n)).toThrow(InputError);
  });
});
