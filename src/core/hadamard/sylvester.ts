import { InputError } from '../errors';

/** Largest Sylvester order we build densely (16 MiB of Int8); the transform itself never needs it. */
const MAX_SYLVESTER = 4096;

/**
 * Sylvester Hadamard matrix H_n (n a power of two), natural order: H_1 = [1],
 * H_{2n} = [[H_n, H_n], [H_n, −H_n]], so H[i][j] = (−1)^popcount(i & j). Row-major n×n, ±1.
 */
export function sylvester(n: number): Int8Array {
  if (!Number.isInteger(n) || n < 1 || (n & (n - 1)) !== 0 || n > MAX_SYLVESTER) {
    throw new InputError(`Sylvester Hadamard order must be a power of two in [1, ${MAX_SYLVESTER}], got ${n}`);
  }
  const h = new Int8Array(n * n);
  h[0] = 1;
  // Grow the top-left block in place: each doubling copies it right, down, and negated diagonally.
  for (let s = 1; s < n; s *= 2) {
    for (let r = 0; r < s; r++) {
      for (let c = 0; c < s; c++) {
        const x = h[r * n + c];
        h[r * n + c + s] = x;
        h[(r + s) * n + c] = x;
        h[(r + s) * n + c + s] = -x;
      }
    }
  }
  return h;
}
