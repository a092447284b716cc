import { describe, expect, it } from 'vitest';
import { InputError } from '../errors';
import { finiteField, primePowerOf, quadraticCharacter } from './galois';

describe('primePowerOf', () => {
  it('factors prime powers and rejects the rest', () => {
    expect(primePowerOf(2)).toEqual({ p: 2, k: 1 });
    expect(primePowerOf(13)).toEqual({ p: 13, k: 1 });
    expect(primePowerOf(27)).toEqual({ p: 3, k: 3 });
    expect(primePowerOf(343)).toEqual({ p: 7, k: 3 });
    expect(primePowerOf(1)).toBeNull();
    expect(primePowerOf(15)).toBeNull();
    expect(primePowerOf(171)).toBeNull();
  });
});

describe('finiteField', () => {
  it('picks the smallest monic irreducible modulus', () => {
    expect(finiteField(9).modulus).toEqual([1, 0]); // t² + 1 over GF(3)
    expect(finiteField(25).modulus).toEqual([2, 0]); // t² + 2 over GF(5)
    expect(finiteField(27).modulus).toEqual([1, 2, 0]); // t³ + 2t + 1 over GF(3)
    expect(() => finiteField(12)).toThrow(InputError);
  });

  it('is a field: every nonzero element has an inverse, mul distributes over sub', () => {
    for (const q of [7, 9, 25, 27, 49, 125]) {
      const f = finiteField(q);
      for (let a = 1; a < q; a++) {
        let inv = 0;
        for (let b = 1; b < q; b++) if (f.mul(a, b) === 1) inv++;
        expect(inv).toBe(1);
      }
      for (let a = 0; a < q; a += 3) {
        for (let b = 0; b < q; b += 2) {
          for (let c = 0; c < q; c += 5) {
            expect(f.mul(a, f.sub(b, c))).toBe(f.sub(f.mul(a, b), f.mul(a, c)));
          }
          expect(f.sub(f.sub(a, b), a)).toBe(f.sub(0, b));
        }
      }
    }
  });

  it('χ has (q−1)/2 squares and χ(−1) = −1 exactly when q ≡ 3 (mod 4)', () => {
    for (const q of [3, 5, 7, 9, 11, 13, 25, 27, 49]) {
      const f = finiteField(q);
      const chi = quadraticCharacter(f);
      expect(chi[0]).toBe(0);
      expect(Array.from(chi).filter((x) => x === 1).length).toBe((q - 1) / 2);
      expect(chi[f.sub(0, 1)]).toBe(q % 4 === 3 ? -1 : 1);
    }
  });
});
