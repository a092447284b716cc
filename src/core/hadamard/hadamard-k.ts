import { InputError } from '../errors';
import { primePowerOf } from './galois';
import { paleyI, paleyII } from './paley';
import { sylvester } from './sylvester';

/** Largest K we construct: the K-stage costs K adds per element, so bigger K is impractical anyway. */
export const MAX_HADAMARD_K = 4096;

export type HadamardConstruction =
  | { kind: 'sylvester'; k: number }
  | { kind: 'paley1'; k: number; q: number }
  | { kind: 'paley2'; k: number; q: number }
  | { kind: 'double'; k: number; half: HadamardConstruction };

function isPrime(q: number): boolean {
  const pk = primePowerOf(q);
  return pk !== null && pk.k === 1;
}

const planCache = new Map<number, HadamardConstruction | null>();
const matrixCache = new Map<number, Int8Array | null>();

/**
 * Which construction hadamardK(K) uses, or null. The choice is fixed (it decides the rotated
 * bytes), first match wins:
 *   1. K a power of two → Sylvester;
 *   2. K ≢ 0 (mod 4) → none (no Hadamard matrix exists);
 *   3. Paley I with prime q = K − 1;   4. Paley II with prime q = K/2 − 1;
 *   5. Paley I with prime power q = K − 1;   6. Paley II with prime power q = K/2 − 1;
 *   7. doubling [[H, H], [H, −H]] of H_{K/2}.
 * (So 28 = Paley II(13), as SPEC §3 lists it, rather than Paley I(27).)
 */
export function hadamardKConstruction(k: number): HadamardConstruction | null {
  if (!Number.isInteger(k) || k < 1 || k > MAX_HADAMARD_K) return null;
  const cached = planCache.get(k);
  if (cached !== undefined) return cached;
  let plan: HadamardConstruction | null = null;
  if ((k & (k - 1)) === 0) plan = { kind: 'sylvester', k };
  else if (k % 4 === 0) {
    const q1 = k - 1; // ≡ 3 (mod 4) automatically
    const q2 = k / 2 - 1;
    const q2ok = q2 % 4 === 1;
    if (isPrime(q1)) plan = { kind: 'paley1', k, q: q1 };
    else if (q2ok && isPrime(q2)) plan = { kind: 'paley2', k, q: q2 };
    else if (primePowerOf(q1)) plan = { kind: 'paley1', k, q: q1 };
    else if (q2ok && primePowerOf(q2)) plan = { kind: 'paley2', k, q: q2 };
    else {
      const half = hadamardKConstruction(k / 2);
      if (half) plan = { kind: 'double', k, half };
    }
  }
  planCache.set(k, plan);
  return plan;
}

/**
 * H_K (K×K row-major, ±1, H·Hᵀ = K·I) or null when no construction here reaches K.
 * Cached: the returned array is shared — do not modify it.
 */
export function hadamardK(k: number): Int8Array | null {
  const cached = matrixCache.get(k);
  if (cached !== undefined) return cached;
  const plan = hadamardKConstruction(k);
  let h: Int8Array | null = null;
  if (plan) {
    switch (plan.kind) {
      case 'sylvester':
        h = sylvester(k);
        break;
      case 'paley1':
        h = paleyI(plan.q);
        break;
      case 'paley2':
        h = paleyII(plan.q);
        break;
      case 'double': {
        const half = hadamardK(k / 2);
        if (!half) throw new Error('unreachable: planned half missing');
        h = doubleHadamard(half, k / 2);
        break;
      }
    }
  }
  if (h && h.length !== k * k) throw new InputError(`internal: H_${k} has wrong size`);
  matrixCache.set(k, h);
  return h;
}

/** [[H, H], [H, −H]] (= H_2 ⊗ H), the same doubling as Sylvester's. */
function doubleHadamard(h: Int8Array, n: number): Int8Array {
  const m = 2 * n;
  const out = new Int8Array(m * m);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const x = h[r * n + c];
      out[r * m + c] = x;
      out[r * m + c + n] = x;
      out[(r + n) * m + c] = x;
      out[(r + n) * m + c + n] = -x;
    }
  }
  return out;
}
