import { describe, expect, it } from 'vitest';
import { InputError } from '../errors';
import { fnv1a32, randomSigns, randomU32 } from './signs';

// Constants below were cross-checked with an independent Python implementation of the
// algorithm documented in signs.ts.
describe('randomSigns', () => {
  it('hashes stream names with FNV-1a-32', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c); // published FNV-1a test vector
    expect(fnv1a32('residual')).toBe(0x64c1a136);
    expect(fnv1a32('head')).toBe(0x32694bc3);
  });

  it('pins the raw words and the first 16 signs of seed 0 / "residual"', () => {
    expect(Array.from(randomU32(0, 'residual', 4))).toEqual([0xa98af418, 0x8722f55f, 0xdbe75225, 0x8a737b39]);
    expect(Array.from(randomU32(12345, 'head', 4))).toEqual([0xe05bc101, 0x61e07939, 0x8b6d8437, 0x61da7458]);
    expect(Array.from(randomSigns(0, 'residual', 16))).toEqual([
      -1, -1, -1, -1, 1, -1, -1, 1, -1, -1, -1, -1, 1, 1, -1, 1,
    ]);
  });

  it('is deterministic and a prefix of longer draws', () => {
    const a = randomSigns(7, 'head', 1000);
    expect(randomSigns(7, 'head', 1000)).toEqual(a);
    expect(randomSigns(7, 'head', 100)).toEqual(a.subarray(0, 100));
  });

  it('differs across seeds and streams', () => {
    const n = 4096;
    const base = randomSigns(0, 'residual', n);
    for (const other of [randomSigns(1, 'residual', n), randomSigns(0, 'head', n), randomSigns(0xffffffff, 'residual', n)]) {
      let same = 0;
      for (let i = 0; i < n; i++) if (other[i] === base[i]) same++;
      // independent streams agree on about half of the signs
      expect(Math.abs(same - n / 2)).toBeLessThan(4 * Math.sqrt(n));
    }
  });

  it('is roughly balanced and only ±1', () => {
    const n = 4096;
    for (const [seed, stream] of [[0, 'residual'], [0, 'head'], [42, 'residual'], [3, 'x']] as const) {
      const s = randomSigns(seed, stream, n);
      let plus = 0;
      for (const x of s) {
        expect(x === 1 || x === -1).toBe(true);
        if (x === 1) plus++;
      }
      expect(Math.abs(plus - n / 2)).toBeLessThan(4 * Math.sqrt(n));
    }
  });

  it('rejects bad seeds', () => {
    for (const seed of [-1, 1.5, 2 ** 32, Number.NaN]) expect(() => randomSigns(seed, 'residual', 4)).toThrow(InputError);
  });
});
