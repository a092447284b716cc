import { describe, expect, it } from 'vitest';
import { hadamardK, hadamardKConstruction } from './hadamard-k';
import { isHadamard } from '../../../test/support/hadamard';

describe('hadamardK', () => {
  it('covers the orders the pipeline needs', () => {
    for (const k of [1, 2, 4, 8, 12, 20, 28, 36, 40, 44, 52, 60, 76, 344]) expect(hadamardK(k)).not.toBeNull();
  });

  it('uses the documented construction', () => {
    const kinds = (k: number) => {
      const c = hadamardKConstruction(k);
      return c && (c.kind === 'paley1' || c.kind === 'paley2' ? `${c.kind}(${c.q})` : c.kind);
    };
    expect(kinds(4)).toBe('sylvester');
    expect(kinds(12)).toBe('paley1(11)');
    expect(kinds(20)).toBe('paley1(19)');
    expect(kinds(28)).toBe('paley2(13)');
    expect(kinds(36)).toBe('paley2(17)');
    expect(kinds(40)).toBe('double');
    expect(kinds(52)).toBe('paley2(25)');
    expect(kinds(76)).toBe('paley2(37)');
    expect(kinds(344)).toBe('paley1(343)');
    expect(Array.from(hadamardK(40)!.subarray(0, 40))).toEqual([
      ...Array.from(hadamardK(20)!.subarray(0, 20)),
      ...Array.from(hadamardK(20)!.subarray(0, 20)),
    ]);
  });

  it('has none where none exists or none is reachable', () => {
    for (const k of [0, 3, 5, 6, 10, 14, 18, 92, 2.5, -4]) expect(hadamardK(k)).toBeNull();
  });

  it('every claimed K ≤ 256 satisfies H·Hᵀ = K·I exactly', () => {
    const supported: number[] = [];
    for (let k = 1; k <= 256; k++) {
      const h = hadamardK(k);
      if (!h) continue;
      supported.push(k);
      expect(isHadamard(h, k), `K = ${k}`).toBe(true);
    }
    // multiples of 4 up to 256 that this construction set misses
    const missing = [];
    for (let k = 4; k <= 256; k += 4) if (!supported.includes(k)) missing.push(k);
    expect(missing).toEqual([92, 116, 156, 172, 184, 188, 232, 236]);
  });

  it('caches', () => {
    expect(hadamardK(28)).toBe(hadamardK(28));
  });
});
