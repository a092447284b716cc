import { InputError } from '../errors';
import { finiteField, primePowerOf, quadraticCharacter } from './galois';

/** Q[x][y] = χ(x − y) over GF(q), x, y the field elements in their integer encoding (see galois.ts). */
function jacobsthal(q: number): Int8Array {
  const f = finiteField(q);
  const chi = quadraticCharacter(f);
  const m = new Int8Array(q * q);
  for (let x = 0; x < q; x++) for (let y = 0; y < q; y++) m[x * q + y] = chi[f.sub(x, y)];
  return m;
}

function checkQ(q: number, residue: 1 | 3, kind: string): void {
  if (!primePowerOf(q) || q % 4 !== residue) {
    throw new InputError(`${kind} needs a prime power q ≡ ${residue} (mod 4), got ${q}`);
  }
}

/**
 * Paley I, order K = q + 1 for a prime power q ≡ 3 (mod 4). With Q the Jacobsthal matrix
 * (skew-symmetric here because χ(−1) = −1), S = [[0, 1ᵀ], [−1, Q]] and H = I + S; row/column 0
 * is the "∞" point, row 1 + x the field element x. H·Hᵀ = I + S + Sᵀ + S·Sᵀ = (q + 1)·I.
 */
export function paleyI(q: number): Int8Array {
  checkQ(q, 3, 'Paley I');
  const n = q + 1;
  const jq = jacobsthal(q);
  const h = new Int8Array(n * n);
  for (let j = 1; j < n; j++) {
    h[j] = 1;
    h[j * n] = -1;
  }
  for (let x = 0; x < q; x++) for (let y = 0; y < q; y++) h[(x + 1) * n + y + 1] = jq[x * q + y];
  for (let i = 0; i < n; i++) h[i * n + i] += 1;
  return h;
}

/**
 * Paley II, order K = 2(q + 1) for a prime power q ≡ 1 (mod 4). C = [[0, 1ᵀ], [1, Q]] is a
 * symmetric conference matrix (C·Cᵀ = q·I); each entry becomes a 2×2 block:
 * 0 → [[1, −1], [−1, −1]], ±1 → ±[[1, 1], [1, −1]]. Row 2i + r is block row i, sub-row r.
 */
export function paleyII(q: number): Int8Array {
  checkQ(q, 1, 'Paley II');
  const c = q + 1;
  const n = 2 * c;
  const jq = jacobsthal(q);
  const h = new Int8Array(n * n);
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < c; j++) {
      const e = i === 0 ? (j === 0 ? 0 : 1) : j === 0 ? 1 : jq[(i - 1) * q + (j - 1)];
      const o = 2 * i * n + 2 * j;
      if (e === 0) {
        h[o] = 1;
        h[o + 1] = -1;
        h[o + n] = -1;
        h[o + n + 1] = -1;
      } else {
        h[o] = e;
        h[o + 1] = e;
        h[o + n] = e;
        h[o + n + 1] = -e;
      }
    }
  }
  return h;
}
