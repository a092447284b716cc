import { InputError } from '../errors';

/** q = p^k with p prime, or null. */
export function primePowerOf(q: number): { p: number; k: number } | null {
  if (!Number.isInteger(q) || q < 2) return null;
  let p = 0;
  for (let d = 2; d * d <= q; d++) {
    if (q % d === 0) {
      p = d;
      break;
    }
  }
  if (p === 0) return { p: q, k: 1 };
  let k = 0;
  let r = q;
  while (r % p === 0) {
    r /= p;
    k++;
  }
  return r === 1 ? { p, k } : null;
}

/**
 * GF(q), q = p^k. Element x ∈ [0, q) encodes the polynomial Σ e_i·t^i with base-p digits e_i of x
 * (for k = 1 that is just the residue). Multiplication is modulo the monic irreducible
 * t^k + Σ c_i t^i whose lower coefficients, read as the integer Σ c_i·p^i, are smallest —
 * a fixed, documented choice, since another modulus would relabel elements and so change the
 * Paley matrices (and every rotated byte).
 */
export interface FiniteField {
  readonly q: number;
  readonly p: number;
  readonly k: number;
  /** c_0 … c_{k−1} of the modulus t^k + Σ c_i t^i (empty for k = 1). */
  readonly modulus: readonly number[];
  sub(a: number, b: number): number;
  mul(a: number, b: number): number;
}

function digits(x: number, p: number, k: number): number[] {
  const d: number[] = new Array(k);
  for (let i = 0; i < k; i++) {
    d[i] = x % p;
    x = Math.floor(x / p);
  }
  return d;
}

function undigits(d: readonly number[], p: number): number {
  let x = 0;
  for (let i = d.length - 1; i >= 0; i--) x = x * p + d[i];
  return x;
}

/** Is the monic polynomial f (coefficients by degree, f[deg] = 1) divisible by the monic g? */
function divides(g: readonly number[], f: readonly number[], p: number): boolean {
  const r = f.slice();
  const dg = g.length - 1;
  for (let i = r.length - 1; i >= dg; i--) {
    const c = r[i];
    if (c === 0) continue;
    for (let j = 0; j <= dg; j++) r[i - dg + j] = (((r[i - dg + j] - c * g[j]) % p) + p) % p;
  }
  for (let i = 0; i < dg; i++) if (r[i] !== 0) return false;
  return true;
}

function isIrreducible(f: readonly number[], p: number): boolean {
  const k = f.length - 1;
  // A reducible f has a monic factor of degree ≤ k/2; try them all (tiny for the q we use).
  for (let d = 1; 2 * d <= k; d++) {
    const count = p ** d;
    for (let c = 0; c < count; c++) {
      const g = [...digits(c, p, d), 1];
      if (divides(g, f, p)) return false;
    }
  }
  return true;
}

export function finiteField(q: number): FiniteField {
  const pk = primePowerOf(q);
  if (!pk) throw new InputError(`GF(q) needs a prime power q, got ${q}`);
  const { p, k } = pk;
  if (k === 1) {
    return {
      q, p, k, modulus: [],
      sub: (a, b) => (a - b + p) % p,
      mul: (a, b) => (a * b) % p,
    };
  }
  let modulus: number[] | null = null;
  for (let c = 0; c < q && !modulus; c++) {
    const lower = digits(c, p, k);
    if (isIrreducible([...lower, 1], p)) modulus = lower;
  }
  if (!modulus) throw new Error(`no irreducible polynomial of degree ${k} over GF(${p})`); // impossible
  const m = modulus;
  return {
    q, p, k, modulus: m,
    sub(a, b) {
      // Digit-wise (a_i − b_i) mod p without allocating: Paley needs q² of these.
      let r = 0;
      let w = 1;
      for (let i = 0; i < k; i++) {
        const da = a % p;
        const db = b % p;
        a = (a - da) / p;
        b = (b - db) / p;
        r += ((da - db + p) % p) * w;
        w *= p;
      }
      return r;
    },
    mul(a, b) {
      const da = digits(a, p, k);
      const db = digits(b, p, k);
      const prod = new Array<number>(2 * k - 1).fill(0);
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) prod[i + j] = (prod[i + j] + da[i] * db[j]) % p;
      // Reduce with t^k ≡ −Σ c_i t^i, from the top degree down.
      for (let d = 2 * k - 2; d >= k; d--) {
        const c = prod[d];
        if (c === 0) continue;
        prod[d] = 0;
        for (let i = 0; i < k; i++) prod[d - k + i] = (((prod[d - k + i] - c * m[i]) % p) + p) % p;
      }
      return undigits(prod.slice(0, k), p);
    },
  };
}

/** χ(x): 0 for x = 0, +1 for a nonzero square of GF(q), −1 otherwise. */
export function quadraticCharacter(f: FiniteField): Int8Array {
  const chi = new Int8Array(f.q).fill(-1);
  chi[0] = 0;
  for (let y = 1; y < f.q; y++) chi[f.mul(y, y)] = 1;
  return chi;
}
