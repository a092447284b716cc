import { describe, expect, it } from 'vitest';
import { InputError } from '../errors';
import { encodeF16, encodeF32 } from './dtype';
import { readSafetensorsHeader } from './header';
import { firstNonFinite, readFiniteTensorBytes, readFiniteTensorRowBytes, readTensorBytes, readTensorF32, readTensorRowsF32 } from './read-tensor';
import { memorySink, memorySource, rawSafetensors } from '../../../test/support/memory';
import { planSafetensorsShards, SafetensorsStreamWriter, type TensorSpec } from './writer';

function bf16Bytes(values: number[]): Uint8Array {
  // Values chosen exactly representable in BF16: the upper half of the f32 bits.
  const u32 = new Uint32Array(new Float32Array(values).buffer);
  const out = new Uint8Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    out[2 * i] = (u32[i] >>> 16) & 0xff;
    out[2 * i + 1] = u32[i] >>> 24;
  }
  return out;
}

describe('writer → header parser → tensor reader round trip', () => {
  const a = Float32Array.from({ length: 15 }, (_, i) => i * 0.25 - 1.5); // [3,5] F32
  const b = new Float32Array([65504]); // [1] F16
  const c = [1, -2, 0.5, 3.5, -0.125, 1024]; // [2,3] BF16
  const specs: TensorSpec[] = [
    { name: 'a', dtype: 'F32', shape: [3, 5] },
    { name: 'empty', dtype: 'F16', shape: [0] },
    { name: 'b', dtype: 'F16', shape: [1] },
    { name: 'c', dtype: 'BF16', shape: [2, 3] },
  ];

  it('reads back every tensor exactly', async () => {
    const layout = planSafetensorsShards(specs, { maxShardBytes: 1 << 20 });
    const sink = memorySink();
    const w = new SafetensorsStreamWriter(sink, layout);
    await w.writeTensor('a', encodeF32(a));
    await w.writeTensor('empty', new Uint8Array(0));
    await w.writeTensor('b', encodeF16(b));
    await w.writeTensor('c', bf16Bytes(c));
    await w.finish();

    const file = sink.files['model.safetensors'];
    expect(file.length).toBe(layout.files[0].size);
    const src = memorySource('model.safetensors', file);
    const h = await readSafetensorsHeader(src);
    expect(h.dataStart % 8).toBe(0);
    expect(h.metadata).toEqual({ format: 'pt' });
    expect(h.tensors.map((t) => [t.name, t.dtype, t.shape, t.end - t.begin])).toEqual([
      ['a', 'F32', [3, 5], 60],
      ['empty', 'F16', [0], 0],
      ['b', 'F16', [1], 2],
      ['c', 'BF16', [2, 3], 12],
    ]);
    const byName = Object.fromEntries(h.tensors.map((t) => [t.name, t]));
    expect(Array.from(await readTensorF32(src, byName.a))).toEqual(Array.from(a));
    expect((await readTensorF32(src, byName.empty)).length).toBe(0);
    expect(Array.from(await readTensorF32(src, byName.b))).toEqual([65504]);
    expect(Array.from(await readTensorF32(src, byName.c))).toEqual(c);
    expect(Array.from(await readTensorBytes(src, byName.b))).toEqual([0xff, 0x7b]);
    expect(Array.from(await readTensorRowsF32(src, byName.a, 1, 2))).toEqual(Array.from(a.subarray(5, 15)));
    expect(Array.from(await readTensorRowsF32(src, byName.c, 1, 1))).toEqual(c.slice(3));
  });

  it('only reads the tensor range', async () => {
    const file = rawSafetensors({ v: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, w: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12);
    const src = memorySource('m.safetensors', file);
    const h = await readSafetensorsHeader(src);
    src.reads.length = 0;
    await readTensorF32(src, h.tensors[1]);
    expect(src.reads).toEqual([[h.dataStart + 4, 8]]);
  });

  it('reports a file that shrank after its header was read', async () => {
    const file = rawSafetensors({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 16);
    const info = (await readSafetensorsHeader(memorySource('m.safetensors', file))).tensors[0];
    const shrunk = memorySource('m.safetensors', file.subarray(0, file.length - 4));
    const err = await readTensorBytes(shrunk, info).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toBe(
      `tensor w in file m.safetensors: data ends at byte ${info.end} but the file is only ${file.length - 4} bytes; truncated file`,
    );
    expect((err as InputError).tensor).toBe('w');
  });

  it('rejects row ranges outside the tensor', async () => {
    const info = { name: 't', dtype: 'F32' as const, shape: [2, 2], begin: 0, end: 16 };
    await expect(readTensorRowsF32(memorySource('s', new Uint8Array(16)), info, 1, 2)).rejects.toThrow(
      'rows [1, 3) outside tensor t with 2 rows',
    );
  });
});

describe('non-finite weights', () => {
  it('finds the first NaN or ±Inf in F32, F16 and BF16 bytes, at any alignment', () => {
    const values = [1, -2, 65504, 3.5, 0, -0];
    for (const [bad, shown] of [[Infinity, '+Inf'], [-Infinity, '-Inf'], [NaN, 'NaN']] as const) {
      const v = [...values, bad, 7, bad];
      for (const [dtype, bytes] of [['F32', encodeF32(new Float32Array(v))], ['F16', encodeF16(new Float32Array(v))], ['BF16', bf16Bytes(v)]] as const) {
        expect(firstNonFinite(bytes, dtype)).toEqual({ index: 6, value: shown });
        // A view at an odd offset (a Hub block subarray) reads the same.
        const shifted = new Uint8Array(bytes.length + 1);
        shifted.set(bytes, 1);
        expect(firstNonFinite(shifted.subarray(1), dtype)).toEqual({ index: 6, value: shown });
        expect(firstNonFinite(bytes.subarray(0, 6 * (dtype === 'F32' ? 4 : 2)), dtype)).toBeUndefined();
      }
    }
    // The largest finite values and subnormals are fine.
    expect(firstNonFinite(encodeF32(new Float32Array([3.4028234663852886e38, -3.4028234663852886e38, 1e-45])), 'F32')).toBeUndefined();
    expect(firstNonFinite(new Uint8Array([0xff, 0x7b, 0x01, 0x00]), 'F16')).toBeUndefined();
  });

  it('readFiniteTensorBytes refuses naming the tensor, the file and the element', async () => {
    const w = new Float32Array(12).map((_, i) => i);
    w[7] = Infinity;
    const file = rawSafetensors({ w: { dtype: 'F32', shape: [3, 4], data_offsets: [0, 48] } }, encodeF32(w));
    const src = memorySource('model-00002-of-00003.safetensors', file);
    const [info] = (await readSafetensorsHeader(src)).tensors;
    const err = await readFiniteTensorBytes(src, info).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).message).toBe(
      'tensor w in file model-00002-of-00003.safetensors holds a non-finite value (+Inf) at element 7 (index [1, 3]); quantizing it would give NaN weights. Use a checkpoint without NaN/Inf weights',
    );
    expect((err as InputError).tensor).toBe('w');
    w[7] = 7;
    const ok = rawSafetensors({ w: { dtype: 'F32', shape: [3, 4], data_offsets: [0, 48] } }, encodeF32(w));
    expect(Array.from(new Float32Array((await readFiniteTensorBytes(memorySource('m', ok), info)).slice().buffer))).toEqual(Array.from(w));
  });

  it('readFiniteTensorRowBytes reads a row range and names a bad element by its place in the whole tensor', async () => {
    const w = new Float32Array(12).map((_, i) => i);
    w[9] = NaN;
    const file = rawSafetensors({ w: { dtype: 'F32', shape: [3, 4], data_offsets: [0, 48] } }, encodeF32(w));
    const src = memorySource('m.safetensors', file);
    const [info] = (await readSafetensorsHeader(src)).tensors;
    const rows = await readFiniteTensorRowBytes(src, info, 1, 1);
    expect(Array.from(new Float32Array(rows.slice().buffer))).toEqual([4, 5, 6, 7]);
    expect(src.reads.at(-1)).toEqual([info.begin + 16, 16]);
    await expect(readFiniteTensorRowBytes(src, info, 1, 2)).rejects.toThrow(
      'tensor w in file m.safetensors holds a non-finite value (NaN) at element 9 (index [2, 1]); quantizing it would give NaN weights',
    );
    await expect(readFiniteTensorRowBytes(src, info, 2, 2)).rejects.toThrow('readFiniteTensorRowBytes: rows [2, 4) outside tensor w with 3 rows');
  });
});
