import { describe, expect, it } from 'vitest';
import { InputError } from '../errors';
import { parseSafetensorsHeader, readSafetensorsHeader } from './header';
import { memorySource, rawSafetensors } from '../../../test/support/memory';

function parse(file: Uint8Array, name = 'model.safetensors') {
  const len = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return parseSafetensorsHeader(file.subarray(0, 8), file.subarray(8, 8 + len), name, file.length);
}

async function readErr(file: Uint8Array, name = 'model.safetensors'): Promise<InputError> {
  try {
    await readSafetensorsHeader(memorySource(name, file));
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected an InputError');
}

describe('parseSafetensorsHeader', () => {
  it('parses tensors, sorts them by offset and keeps metadata', () => {
    const header = {
      b: { dtype: 'F16', shape: [3, 5], data_offsets: [8, 38] },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      z: { dtype: 'BF16', shape: [0, 4], data_offsets: [38, 38] },
      __metadata__: { format: 'pt' },
    };
    const file = rawSafetensors(header, 38);
    const json = JSON.stringify(header).length;
    const h = parse(file);
    expect(h.fileName).toBe('model.safetensors');
    expect(h.fileSize).toBe(8 + json + 38);
    expect(h.headerLength).toBe(json);
    expect(h.dataStart).toBe(8 + json);
    expect(h.metadata).toEqual({ format: 'pt' });
    expect(h.tensors).toEqual([
      { name: 'a', dtype: 'F32', shape: [2], begin: 8 + json, end: 16 + json },
      { name: 'b', dtype: 'F16', shape: [3, 5], begin: 16 + json, end: 46 + json },
      { name: 'z', dtype: 'BF16', shape: [0, 4], begin: 46 + json, end: 46 + json },
    ]);
  });

  it('allows holes between tensors, scalars and no metadata', () => {
    const h = parse(rawSafetensors({ s: { dtype: 'F32', shape: [], data_offsets: [16, 20] } }, 24));
    expect(h.metadata).toBeUndefined();
    expect(h.tensors[0].shape).toEqual([]);
    expect(h.tensors[0].end - h.tensors[0].begin).toBe(4);
  });
});

describe('bad headers', () => {
  it('rejects a file shorter than 8 bytes', async () => {
    const e = await readErr(new Uint8Array(5), 'tiny.safetensors');
    expect(e.message).toBe('tiny.safetensors is too short to be a safetensors file: 5 bytes, expected at least 8 (the header length)');
    expect(e.file).toBe('tiny.safetensors');
  });

  it('rejects a zero header length', async () => {
    const e = await readErr(rawSafetensors('', 16));
    expect(e.message).toBe('model.safetensors: safetensors header length is 0; expected a JSON header of at least 2 bytes');
  });

  it('rejects an absurd header length without reading it', async () => {
    const file = rawSafetensors('{}', 0, 2n ** 40n);
    const src = memorySource('model.safetensors', file);
    await expect(readSafetensorsHeader(src)).rejects.toThrow(
      'model.safetensors: safetensors header length 1099511627776 bytes is absurd (limit 104857600 bytes = 100 MB); the file is corrupt or not safetensors',
    );
    expect(src.reads).toEqual([[0, 8]]);
  });

  it('rejects a header length past the end of the file', async () => {
    const e = await readErr(rawSafetensors('{}', 0, 1000));
    expect(e.message).toBe(
      'model.safetensors: safetensors header length 1000 bytes runs past the end of the file (header would end at byte 1008, file is 10 bytes); truncated file or not safetensors',
    );
  });

  it('rejects bad JSON, non-objects and bad UTF-8', async () => {
    expect((await readErr(rawSafetensors('{"a": '))).message).toMatch(
      /^model\.safetensors: safetensors header is not valid JSON \(.+\); expected a JSON object$/,
    );
    expect((await readErr(rawSafetensors('[1,2]'))).message).toBe(
      'model.safetensors: safetensors header must be a JSON object; found an array',
    );
    const badUtf8 = rawSafetensors('{"x":1}');
    badUtf8[10] = 0xff;
    expect((await readErr(badUtf8)).message).toBe(
      'model.safetensors: safetensors header is not valid UTF-8; expected a UTF-8 JSON object',
    );
  });

  it('rejects bad __metadata__', async () => {
    expect((await readErr(rawSafetensors({ __metadata__: { n: 1 } }))).message).toBe(
      'model.safetensors: __metadata__ value for "n" must be a string; found number 1',
    );
    expect((await readErr(rawSafetensors({ __metadata__: 'x' }))).message).toBe(
      'model.safetensors: __metadata__ must be an object of string values; found the string "x"',
    );
  });

  it('rejects unsupported dtypes', async () => {
    for (const dtype of ['I8', 'F64', 'F8_E4M3']) {
      const e = await readErr(rawSafetensors({ w: { dtype, shape: [2], data_offsets: [0, 2] } }, 16));
      expect(e.message).toBe(`unsupported dtype ${dtype} for tensor w in file model.safetensors; expected F32, F16 or BF16`);
      expect(e.tensor).toBe('w');
      expect(e.file).toBe('model.safetensors');
    }
  });

  it('rejects bad shapes and offsets', async () => {
    expect((await readErr(rawSafetensors({ w: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, 8))).message).toBe(
      'tensor w in file model.safetensors: shape must be an array of non-negative integers; found [2,-1]',
    );
    expect((await readErr(rawSafetensors({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, 8))).message).toBe(
      'tensor w in file model.safetensors: shape must be an array of non-negative integers; found [1.5]',
    );
    expect((await readErr(rawSafetensors({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }, 8))).message).toBe(
      'tensor w in file model.safetensors: data_offsets must be [begin, end] with non-negative integers; found [0]',
    );
    expect((await readErr(rawSafetensors({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, 8))).message).toBe(
      'tensor w in file model.safetensors: data_offsets [8, 0] has begin after end; expected begin ≤ end',
    );
    expect((await readErr(rawSafetensors({ w: 5 }, 8))).message).toBe(
      'tensor w in file model.safetensors: header entry must be an object with dtype, shape and data_offsets; found number 5',
    );
  });

  it('rejects a span that disagrees with the shape', async () => {
    const e = await readErr(rawSafetensors({ w: { dtype: 'F16', shape: [3, 5], data_offsets: [0, 32] } }, 32));
    expect(e.message).toBe('tensor w in file model.safetensors: data_offsets [0, 32] span 32 bytes but shape [3,5] of F16 needs 30 bytes');
  });

  it('rejects offsets past the end of the file (truncated or lying)', async () => {
    const header = { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } };
    const json = JSON.stringify(header).length;
    const e = await readErr(rawSafetensors(header, 12));
    expect(e.message).toBe(
      `tensor w in file model.safetensors: data_offsets [0, 16] end at byte ${8 + json + 16} of the file, past its end (file is ${8 + json + 12} bytes); truncated file or lying header`,
    );
  });

  it('rejects overlapping tensors', async () => {
    const e = await readErr(
      rawSafetensors(
        {
          a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
          b: { dtype: 'F32', shape: [2], data_offsets: [12, 20] },
        },
        20,
      ),
    );
    expect(e.message).toBe(
      'model.safetensors: tensors a (data_offsets [0, 16]) and b (data_offsets [12, 20]) overlap; expected disjoint byte ranges',
    );
    expect(e.tensor).toBe('b');
  });

  it('lets zero-size tensors sit anywhere', () => {
    const h = parse(
      rawSafetensors(
        { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] }, e: { dtype: 'F16', shape: [0], data_offsets: [4, 4] } },
        16,
      ),
    );
    expect(h.tensors.map((t) => t.name)).toEqual(['a', 'e']);
  });

  it('refuses to start when already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(readSafetensorsHeader(memorySource('m', rawSafetensors({})), ac.signal)).rejects.toThrow('cancelled');
  });
});
