import { InputError } from '../errors';
import { hadamardKConstruction } from './hadamard-k';

/**
 * n = k·pow2 with pow2 = 2^m as large as possible (k as small as possible) such that H_k exists
 * (hadamardK(k) !== null). The transform then does one FWHT of length pow2 per a < k and a dense
 * k×k stage, so a small k is also the fastest choice.
 */
export function factorHadamardSize(n: number): { k: number; pow2: number } {
  if (!Number.isSafeInteger(n) || n < 1) throw new InputError(`Hadamard order must be a positive integer, got ${n}`);
  let odd = n;
  let twos = 1;
  while (odd % 2 === 0) {
    odd /= 2;
    twos *= 2;
  }
  const tried: number[] = [];
  for (let k = odd; k <= n; k *= 2) {
    tried.push(k);
    if (hadamardKConstruction(k)) return { k, pow2: n / k };
  }
  throw new InputError(
    `no Hadamard construction of order n = ${n} (= K·2^m with K = ${tried.join(', ')}: ` +
      `none is a power of two or reachable by Paley I/II and doubling); ` +
      `the largest power-of-two block size that divides ${n} is ${twos} — ` +
      `use rotation 'block' with block size ${twos}`,
  );
}
