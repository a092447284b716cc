import { describe, expect, it } from 'vitest';
import { decodeToF32, encodeF16, encodeF32, f16BitsToF32, f32ToF16Bits, roundToF16 } from './dtype';

/** Bytes placed at an odd offset inside a bigger buffer, to exercise unaligned input. */
function atOddOffset(bytes: Uint8Array): Uint8Array {
  const buf = new Uint8Array(bytes.length + 3);
  buf.set(bytes, 1);
  return buf.subarray(1, 1 + bytes.length);
}

describe('f16 scalar conversion', () => {
  it('round-trips every one of the 65536 f16 bit patterns', () => {
    let nans = 0;
    for (let h = 0; h < 65536; h++) {
      const v = f16BitsToF32(h);
      const e = (h >>> 10) & 0x1f;
      const m = h & 0x3ff;
      if (e === 31 && m !== 0) {
        expect(Number.isNaN(v)).toBe(true);
        expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(v)))).toBe(true);
        nans++;
        continue;
      }
      expect(f32ToF16Bits(v)).toBe(h);
    }
    expect(nans).toBe(2 * 1023);
  });

  it('decodes known values', () => {
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0xc000)).toBe(-2);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(f16BitsToF32(0x0400)).toBe(2 ** -14);
    expect(f16BitsToF32(0x7c00)).toBe(Infinity);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
  });

  it('rounds ties to even', () => {
    expect(roundToF16(1 + 2 ** -11)).toBe(1);
    expect(roundToF16(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(roundToF16(1 + 2 ** -11 + 2 ** -30)).toBe(1 + 2 ** -10);
    expect(roundToF16(-(1 + 2 ** -11))).toBe(-1);
    expect(roundToF16(2048 + 1)).toBe(2048);
    expect(roundToF16(2048 + 3)).toBe(2052);
  });

  it('handles overflow, subnormals, zero and NaN', () => {
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(-65520)).toBe(0xfc00);
    expect(roundToF16(65519.99)).toBe(65504);
    expect(f32ToF16Bits(1e10)).toBe(0x7c00);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // tie between 0 and 2^-24 → even (0)
    expect(f32ToF16Bits(2 ** -25 + 2 ** -40)).toBe(1);
    expect(f32ToF16Bits(3 * 2 ** -25)).toBe(2); // tie 1.5 units → 2
    expect(f32ToF16Bits(2 ** -14 - 2 ** -26)).toBe(0x0400); // rounds up into the normals
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(1e-10)).toBe(0);
    expect(f32ToF16Bits(NaN)).toBe(0x7e00);
  });
});

describe('encodeF16', () => {
  it('matches the scalar conversion on special values and random f32s', () => {
    const specials = [
      0, -0, 1, -1, 65504, 65519.99, 65520, -65520, 1e30, Infinity, -Infinity, NaN,
      1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 2 ** -25 + 2 ** -40, 3 * 2 ** -25, 2 ** -24, 2 ** -14,
      2 ** -14 - 2 ** -26, 1e-8, 6.1e-5, 0.1, 3.14159,
    ];
    const n = specials.length + 200000;
    const values = new Float32Array(n);
    values.set(specials);
    // Random bit patterns cover every exponent, including subnormal and huge ones.
    const bits = new Uint32Array(values.buffer);
    let s = 12345;
    for (let i = specials.length; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      bits[i] = s;
    }
    const enc = encodeF16(values);
    expect(enc.length).toBe(2 * n);
    const dv = new DataView(enc.buffer, enc.byteOffset, enc.byteLength);
    for (let i = 0; i < n; i++) {
      const h = dv.getUint16(2 * i, true);
      const v = values[i];
      if (Number.isNaN(v)) {
        expect(h & 0x7c00).toBe(0x7c00);
        expect(h & 0x3ff).not.toBe(0);
      } else if (h !== f32ToF16Bits(v)) {
        expect.fail(`value ${v} (bits ${bits[i].toString(16)}): encodeF16 ${h.toString(16)}, scalar ${f32ToF16Bits(v).toString(16)}`);
      }
    }
  });

  it('writes little-endian bytes', () => {
    expect(Array.from(encodeF16(new Float32Array([1, -2, 65504])))).toEqual([0x00, 0x3c, 0x00, 0xc0, 0xff, 0x7b]);
  });

  it('works on a subarray view', () => {
    const big = new Float32Array([9, 1, 2, 9]);
    expect(Array.from(encodeF16(big.subarray(1, 3)))).toEqual([0x00, 0x3c, 0x00, 0x40]);
  });
});

describe('encodeF32 / decodeToF32', () => {
  it('encodes F32 little-endian and copies', () => {
    const v = new Float32Array([1, -2.5]);
    const b = encodeF32(v);
    expect(Array.from(b)).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0]);
    v[0] = 7;
    expect(b[3]).toBe(0x3f);
  });

  it('decodes F32, F16 and BF16 at unaligned offsets', () => {
    const f32 = atOddOffset(new Uint8Array([0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0]));
    expect(f32.byteOffset % 4).not.toBe(0);
    expect(Array.from(decodeToF32(f32, 'F32'))).toEqual([1, -2.5]);

    const f16 = atOddOffset(new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x01, 0x00, 0x00, 0x7c]));
    expect(Array.from(decodeToF32(f16, 'F16'))).toEqual([1, -2, 2 ** -24, Infinity]);

    // BF16 0x3f80 = 1, 0xc020 = -2.5, 0x4049 = 3.140625
    const bf16 = atOddOffset(new Uint8Array([0x80, 0x3f, 0x20, 0xc0, 0x49, 0x40]));
    expect(Array.from(decodeToF32(bf16, 'BF16'))).toEqual([1, -2.5, 3.140625]);
  });

  it('decodes every f16 pattern like f16BitsToF32', () => {
    const u16 = new Uint16Array(65536);
    for (let i = 0; i < 65536; i++) u16[i] = i;
    const out = decodeToF32(new Uint8Array(u16.buffer), 'F16');
    for (let h = 0; h < 65536; h++) {
      const want = f16BitsToF32(h);
      if (Number.isNaN(want)) expect(Number.isNaN(out[h])).toBe(true);
      else if (!Object.is(out[h], want)) expect.fail(`f16 ${h}: got ${out[h]}, want ${want}`);
    }
  });

  it('does not alias the input', () => {
    const bytes = new Uint8Array([0, 0, 0x80, 0x3f]);
    const out = decodeToF32(bytes, 'F32');
    bytes[3] = 0;
    expect(out[0]).toBe(1);
  });

  it('decodes empty input and rejects partial elements', () => {
    expect(decodeToF32(new Uint8Array(0), 'BF16').length).toBe(0);
    expect(() => decodeToF32(new Uint8Array(3), 'F16')).toThrow('3 bytes is not a whole number of F16 elements');
  });
});
