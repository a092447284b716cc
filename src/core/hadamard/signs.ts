import { InputError } from '../errors';

/*
 * Seeded ±1 signs, reproducible in any language. All arithmetic is on unsigned 32-bit words
 * (wrap-around mod 2^32; `imul` = low 32 bits of the product; rotl = rotate left).
 *
 *   h = FNV-1a-32(UTF-8 bytes of `stream`): h = 0x811C9DC5; per byte b: h = (h XOR b)·0x01000193.
 *   SplitMix32 with state z = seed, each call:
 *       z = z + 0x9E3779B9; t = z;
 *       t = (t XOR (t >> 16))·0x21F0AAAD; t = (t XOR (t >> 15))·0x735A2D97; return t XOR (t >> 15).
 *   xoshiro128** state: s0 = sm(); s1 = sm() XOR h; s2 = sm(); s3 = sm()   (four calls, in order).
 *       (s0, s1) is a bijection of (seed, h), so distinct (seed, stream hash) pairs never share a
 *       state; s0, s2, s3 come from distinct states of a bijective mix with mix(0) = 0, so at most
 *       one is 0 and the state is never all-zero.
 *   xoshiro128** next():
 *       r = rotl(s1·5, 7)·9; t = s1 << 9;
 *       s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = rotl(s3, 11); return r.
 *   sign i (i = 0, 1, …) = +1 if bit 31 of the i-th next() is 0, else −1.
 *
 * seed 0, stream "residual": first words are pinned in signs.test.ts.
 */

function utf8(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return out;
}

export function fnv1a32(s: string): number {
  let h = 0x811c9dc5;
  for (const b of utf8(s)) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

function checkSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new InputError(`seed must be an integer in [0, 4294967295], got ${seed}`);
  }
}

/** The first n raw 32-bit outputs of the generator described above. */
export function randomU32(seed: number, stream: string, n: number): Uint32Array {
  checkSeed(seed);
  if (!Number.isSafeInteger(n) || n < 0) throw new InputError(`count must be a non-negative integer, got ${n}`);
  let z = seed | 0;
  const sm = (): number => {
    z = (z + 0x9e3779b9) | 0;
    let t = z;
    t = Math.imul(t ^ (t >>> 16), 0x21f0aaad);
    t = Math.imul(t ^ (t >>> 15), 0x735a2d97);
    return t ^ (t >>> 15);
  };
  const h = fnv1a32(stream);
  let s0 = sm();
  let s1 = sm() ^ h;
  let s2 = sm();
  let s3 = sm();
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const m = Math.imul(s1, 5);
    out[i] = Math.imul((m << 7) | (m >>> 25), 9);
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = (s3 << 11) | (s3 >>> 21);
  }
  return out;
}

/** n signs ±1 for (seed, stream); streams in use: "residual" (length d), "head" (length head_dim). */
export function randomSigns(seed: number, stream: string, n: number): Float32Array {
  const words = randomU32(seed, stream, n);
  const s = new Float32Array(n);
  for (let i = 0; i < n; i++) s[i] = words[i] >>> 31 ? -1 : 1;
  return s;
}
