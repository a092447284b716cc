import { describe, expect, it } from 'vitest';
import { InputError } from '../errors';
import { factorHadamardSize } from './factor';

describe('factorHadamardSize', () => {
  it('factors the Qwen hidden sizes and head dims with the smallest K', () => {
    const cases: [number, number, number][] = [
      [896, 28, 32],
      [1536, 12, 128],
      [2048, 1, 2048],
      [3584, 28, 128],
      [5120, 20, 256],
      [8192, 1, 8192],
      [64, 1, 64],
      [128, 1, 128],
      [1, 1, 1],
      [12, 12, 1],
      [40, 20, 2],
      [11008, 344, 32],
    ];
    for (const [n, k, pow2] of cases) expect(factorHadamardSize(n)).toEqual({ k, pow2 });
  });

  it('fails with the largest usable block size', () => {
    const msg = (n: number) => {
      try {
        factorHadamardSize(n);
      } catch (e) {
        expect(e).toBeInstanceOf(InputError);
        return (e as Error).message;
      }
      throw new Error('expected a failure');
    };
    expect(msg(172)).toMatch(/^no Hadamard construction of order n = 172 \(= K·2\^m with K = 43, 86, 172/);
    expect(msg(172)).toMatch(/largest power-of-two block size that divides 172 is 4 — use rotation 'block' with block size 4$/);
    expect(msg(42)).toMatch(/n = 42 .*K = 21, 42.*divides 42 is 2 — use rotation 'block' with block size 2$/);
    expect(() => factorHadamardSize(0)).toThrow(InputError);
    expect(() => factorHadamardSize(1.5)).toThrow(InputError);
  });
});
