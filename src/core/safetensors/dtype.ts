import { DTYPE_BYTES, type Dtype } from './types';

/** Typed-array views use host byte order; safetensors is little-endian, so big-endian hosts swap. */
const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function swapBytesInPlace(u8: Uint8Array, width: number): void {
  for (let i = 0; i + width <= u8.length; i += width) {
    for (let a = i, b = i + width - 1; a < b; a++, b--) {
      const t = u8[a];
      u8[a] = u8[b];
      u8[b] = t;
    }
  }
}

/**
 * A copy of `bytes` in a fresh ArrayBuffer (offset 0, so any typed view is aligned) in host
 * byte order. One copy is needed anyway: the result must not alias the caller's buffer.
 */
function alignedHostCopy(bytes: Uint8Array, width: number): ArrayBuffer {
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  if (!HOST_LE) swapBytesInPlace(copy, width);
  return copy.buffer;
}

/** A view of `bytes` as u16 elements in host order, copying only when misaligned or big-endian. */
function u16View(bytes: Uint8Array): Uint16Array {
  if (HOST_LE && bytes.byteOffset % 2 === 0) {
    return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  }
  return new Uint16Array(alignedHostCopy(bytes, 2));
}

let f16Table: Float32Array | undefined;

/** All 65536 f16 values, built once: a lookup beats per-element bit fiddling in the decode loop. */
function getF16Table(): Float32Array {
  if (!f16Table) {
    const t = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32(h);
    f16Table = t;
  }
  return f16Table;
}

/** Decode little-endian F32/F16/BF16 bytes into a new Float32Array. */
export function decodeToF32(bytes: Uint8Array, dtype: Dtype): Float32Array {
  const size = DTYPE_BYTES[dtype];
  if (size === undefined) throw new RangeError(`decodeToF32: unknown dtype ${String(dtype)}`);
  if (bytes.length % size !== 0) {
    throw new RangeError(`decodeToF32: ${bytes.length} bytes is not a whole number of ${dtype} elements`);
  }
  const n = bytes.length / size;
  if (dtype === 'F32') return new Float32Array(alignedHostCopy(bytes, 4));
  const src = u16View(bytes);
  if (dtype === 'BF16') {
    // Each BF16 becomes the high half of an f32 whose low half stays zero.
    const out = new Uint16Array(2 * n);
    const hi = HOST_LE ? 1 : 0;
    for (let i = 0; i < n; i++) out[2 * i + hi] = src[i];
    return new Float32Array(out.buffer);
  }
  const table = getF16Table();
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = table[src[i]];
  return out;
}

/** Round a non-negative value to the nearest integer, ties to even (Math.round ties up). */
function roundHalfEven(v: number): number {
  const r = Math.floor(v);
  const d = v - r;
  return d > 0.5 || (d === 0.5 && (r & 1) === 1) ? r + 1 : r;
}

/**
 * IEEE binary16 bits of `x`, rounded to nearest even directly from the double (rounding via
 * f32 first could double-round). NaN → 0x7e00 (sign kept); |x| ≥ 65520 → ±inf.
 */
export function f32ToF16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00;
  if (a < 6.103515625e-5) {
    // Subnormal range: the value in units of 2^-24 is exact in a double.
    return sign | roundHalfEven(a * 16777216);
  }
  let e = Math.floor(Math.log2(a));
  // log2 can be off by one next to powers of two.
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven(a * 2 ** (10 - e)); // in [1024, 2048]
  if (m === 2048) {
    m = 1024;
    e++;
  }
  return sign | ((e + 15) << 10) | (m - 1024);
}

/** The value of IEEE binary16 bits `h` (low 16 bits used). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 5.960464477539063e-8; // 2^-24
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

/** `x` rounded to the nearest f16 value (as a number). */
export function roundToF16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}

/** F32 values → little-endian F16 bytes, round-to-nearest-even. */
export function encodeF16(values: Float32Array): Uint8Array {
  const n = values.length;
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const f = bits[i];
    const sign = (f >>> 16) & 0x8000;
    const a = f & 0x7fffffff;
    let h: number;
    if (a >= 0x477ff000) {
      // ≥ 65520 rounds to inf; above the inf pattern is NaN.
      h = a > 0x7f800000 ? 0x7e00 : 0x7c00;
    } else if (a >= 0x38800000) {
      // Normal: add the rounding bias (ties to even via the lowest kept bit), rebias 127 → 15.
      h = (a + 0xfff + ((a >>> 13) & 1) - 0x38000000) >>> 13;
    } else if (a > 0x33000000) {
      // Subnormal: shift the full significand right, rounding to nearest even by hand.
      const s = 126 - (a >>> 23);
      const m = (a & 0x7fffff) | 0x800000;
      const half = 1 << (s - 1);
      const rem = m & ((1 << s) - 1);
      h = m >>> s;
      if (rem > half || (rem === half && (h & 1) === 1)) h++;
    } else {
      h = 0; // ≤ 2^-25 rounds to zero (2^-25 itself ties to the even zero)
    }
    out[i] = sign | h;
  }
  const u8 = new Uint8Array(out.buffer);
  if (!HOST_LE) swapBytesInPlace(u8, 2);
  return u8;
}

/** F32 values → little-endian F32 bytes (a copy). */
export function encodeF32(values: Float32Array): Uint8Array {
  const u8 = new Uint8Array(values.length * 4);
  u8.set(new Uint8Array(values.buffer, values.byteOffset, values.length * 4));
  if (!HOST_LE) swapBytesInPlace(u8, 4);
  return u8;
}
