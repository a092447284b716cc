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

  it('allows scalars and no metadata', () => {
    const h = parse(rawSafetensors({ s: { dtype: 'F32', shape: [], data_offsets: [0, 4] } }, 4));
    expect(h.metadata).toBeUndefined();
    expect(h.tensors[0].shape).toEqual([]);
    expect(h.tensors[0].end - h.tensors[0].begin).toBe(4);
  });

  it('keeps a __metadata__ key named __proto__ as data', () => {
    const json = '{"__metadata__":{"__proto__":"x","format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    const h = parse(rawSafetensors(json, 4));
    expect(Object.keys(h.metadata!)).toEqual(['__proto__', 'format']);
    expect(Object.getOwnPropertyDescriptor(h.metadata, '__proto__')?.value).toBe('x');
    expect(Object.getPrototypeOf(h.metadata)).toBe(Object.prototype);
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
      'model.safetensors: the safetensors header writes the number 1.5 in the entry of tensor w (shape); shapes and data_offsets must be plain integers (no fraction, exponent or -0)',
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

  it('refuses a header length that points into its own padding (every tensor would be read shifted)', async () => {
    // What the issue found: a space-padded header whose length prefix is 3 short still parses as
    // JSON, and every tensor is then read 3 bytes early. The 3 bytes left at the end give it away.
    const json = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}   ';
    const good = rawSafetensors(json, 12);
    expect(parse(good).tensors).toHaveLength(2);
    const shifted = rawSafetensors(json, 12, json.length - 3);
    const e = await readErr(shifted);
    expect(e.message).toBe(
      `model.safetensors: the data section after the ${json.length - 3}-byte header is 15 bytes, but the tensors cover only 12; 3 bytes at the end belong to no tensor (wrong header length in the first 8 bytes, or extra bytes appended); safetensors requires the data section to be covered exactly`,
    );
  });

  it('refuses holes and trailing bytes in the data section', async () => {
    const hole = await readErr(
      rawSafetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, 12),
    );
    expect(hole.message).toBe(
      'model.safetensors: no tensor covers data bytes [4, 8) between a and b; safetensors requires the data section to be covered without holes (corrupt file or wrong header length)',
    );
    expect(hole.tensor).toBe('b');
    const lead = await readErr(rawSafetensors({ s: { dtype: 'F32', shape: [], data_offsets: [16, 20] } }, 20));
    expect(lead.message).toContain('no tensor covers data bytes [0, 16) before s');
    const extra = await readErr(rawSafetensors({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 5));
    expect(extra.message).toContain('1 bytes at the end belong to no tensor');
    const onlyMetadata = await readErr(rawSafetensors({ __metadata__: { format: 'pt' } }, 4));
    expect(onlyMetadata.message).toContain('the tensors cover only 0; 4 bytes at the end belong to no tensor');
  });

  it('refuses duplicate keys instead of letting the last one win', async () => {
    const top = await readErr(
      rawSafetensors('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
    );
    expect(top.message).toBe(
      'model.safetensors: the safetensors header has the key "a" twice at the top level; readers disagree on which one counts, so the file is ambiguous — re-save it',
    );
    const inner = await readErr(rawSafetensors('{"a":{"dtype":"F16","dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4));
    expect(inner.message).toContain('has the key "dtype" twice in the entry of tensor a');
    const meta = await readErr(rawSafetensors('{"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4));
    expect(meta.message).toContain('has the key "k" twice in __metadata__');
    // Escapes are compared decoded: "\u0061" is "a".
    const escaped = await readErr(
      rawSafetensors('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"\\u0061":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8),
    );
    expect(escaped.message).toContain('has the key "a" twice');
  });

  it('refuses shape and offset entries written as 1.0, 1e0 or -0', async () => {
    for (const [text, shown] of [['1.0', '1.0'], ['1e0', '1e0'], ['10E-1', '10E-1'], ['-0', '-0']] as const) {
      const e = await readErr(rawSafetensors(`{"a":{"dtype":"F32","shape":[${text}],"data_offsets":[0,4]}}`, 4));
      expect(e.message).toBe(
        `model.safetensors: the safetensors header writes the number ${shown} in the entry of tensor a (shape); shapes and data_offsets must be plain integers (no fraction, exponent or -0)`,
      );
    }
    const off = await readErr(rawSafetensors('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}', 4));
    expect(off.message).toContain('number 4.0 in the entry of tensor a (data_offsets)');
  });

  it('refuses a byte order mark before the JSON', async () => {
    const json = '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(json)]);
    const e = await readErr(rawSafetensors(bom, 4));
    expect(e.message).toBe(
      'model.safetensors: safetensors header starts with a byte order mark (EF BB BF); expected the JSON object right after the 8-byte length',
    );
  });

  it('refuses 10,000-deep nesting with an InputError, not a stack overflow', async () => {
    const deep = '['.repeat(10_000) + '0' + ']'.repeat(10_000);
    for (const field of ['shape', 'data_offsets']) {
      const other = field === 'shape' ? '"data_offsets":[0,4]' : '"shape":[1]';
      const e = await readErr(rawSafetensors(`{"a":{"dtype":"F32",${other},"${field}":[${deep}]}}`, 4));
      expect(e.message).toBe(
        `model.safetensors: the safetensors header nests JSON deeper than 3 levels in the entry of tensor a (${field}); expected {tensor: {dtype, shape: [..], data_offsets: [..]}}`,
      );
    }
  });

  it('clips a huge tensor name in its messages', async () => {
    const name = 'n'.repeat(5_000_000);
    const e = await readErr(rawSafetensors(JSON.stringify({ [name]: { dtype: 'I8', shape: [1], data_offsets: [0, 1] } }), 1));
    expect(e.message.length).toBeLessThan(300);
    expect(e.message).toContain('… (5000000 characters)');
    expect(e.tensor!.length).toBeLessThan(200);
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
