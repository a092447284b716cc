import { describe, expect, it } from 'vitest';
import { InputError } from '../errors';
import { paleyI, paleyII } from './paley';
import { isHadamard } from '../../../test/support/hadamard';

describe('Paley I', () => {
  it('q = 3 gives the expected 4×4', () => {
    // χ over GF(3): χ(1) = 1, χ(2) = −1; Q[x][y] = χ(x − y); H = I + [[0, 1ᵀ], [−1, Q]]
    expect(Array.from(paleyI(3))).toEqual([1, 1, 1, 1, -1, 1, -1, 1, -1, 1, 1, -1, -1, -1, 1, 1]);
  });

  it('is Hadamard of order q + 1 for primes and prime powers q ≡ 3 (mod 4)', () => {
    for (const q of [3, 7, 11, 19, 23, 27, 31, 43, 59, 243, 343]) {
      expect(isHadamard(paleyI(q), q + 1)).toBe(true);
    }
  });

  it('rejects q ≢ 3 (mod 4) and non prime powers', () => {
    for (const q of [5, 9, 13, 15, 35]) expect(() => paleyI(q)).toThrow(InputError);
  });
});

describe('Paley II', () => {
  it('is Hadamard of order 2(q + 1) for primes and prime powers q ≡ 1 (mod 4)', () => {
    for (const q of [5, 9, 13, 17, 25, 29, 37, 49, 81, 125]) {
      expect(isHadamard(paleyII(q), 2 * (q + 1))).toBe(true);
    }
  });

  it('rejects q ≢ 1 (mod 4) and non prime powers', () => {
    for (const q of [3, 7, 21, 45]) expect(() => paleyII(q)).toThrow(InputError);
  });
});
