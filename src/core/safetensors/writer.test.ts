import { describe, expect, it } from 'vitest';
import { planSafetensorsShards, SafetensorsStreamWriter, type TensorSpec } from './writer';
import { memorySink } from '../../../test/support/memory';

const te = new TextDecoder();

function headerJson(file: Uint8Array): string {
  const len = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  return te.decode(file.subarray(8, 8 + len));
}

describe('planSafetensorsShards', () => {
  const specs: TensorSpec[] = [
    { name: 'a', dtype: 'F32', shape: [3, 5] }, // 60 bytes
    { name: 'b', dtype: 'F16', shape: [1] }, // 2
    { name: 'c', dtype: 'BF16', shape: [0] }, // 0
    { name: 'd', dtype: 'F16', shape: [20] }, // 40
  ];

  it('plans a single padded model.safetensors when everything fits', () => {
    const layout = planSafetensorsShards(specs, { maxShardBytes: 102, metadata: { tool: 'x' } });
    expect(layout.totalDataBytes).toBe(102);
    expect(layout.indexJson).toBeUndefined();
    expect(layout.files.length).toBe(1);
    const f = layout.files[0];
    expect(f.fileName).toBe('model.safetensors');
    expect(f.header.length % 8).toBe(0);
    expect(f.size).toBe(f.header.length + 102);
    const text = headerJson(f.header);
    expect(text.trimEnd()).toBe(
      '{"__metadata__":{"format":"pt","tool":"x"},' +
        '"a":{"dtype":"F32","shape":[3,5],"data_offsets":[0,60]},' +
        '"b":{"dtype":"F16","shape":[1],"data_offsets":[60,62]},' +
        '"c":{"dtype":"BF16","shape":[0],"data_offsets":[62,62]},' +
        '"d":{"dtype":"F16","shape":[20],"data_offsets":[62,102]}}',
    );
    expect(text.length - text.trimEnd().length).toBeLessThan(8);
    expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
  });

  it('shards greedily in order with Hugging Face names and an index', () => {
    const layout = planSafetensorsShards(specs, { maxShardBytes: 50 });
    expect(layout.files.map((f) => [f.fileName, f.specs.map((s) => s.name)])).toEqual([
      ['model-00001-of-00002.safetensors', ['a']], // 60 > 50: alone
      ['model-00002-of-00002.safetensors', ['b', 'c', 'd']], // 2 + 0 + 40
    ]);
    expect(JSON.parse(layout.indexJson!)).toEqual({
      metadata: { total_size: 102 },
      weight_map: {
        a: 'model-00001-of-00002.safetensors',
        b: 'model-00002-of-00002.safetensors',
        c: 'model-00002-of-00002.safetensors',
        d: 'model-00002-of-00002.safetensors',
      },
    });
    expect(headerJson(layout.files[1].header)).toContain('"d":{"dtype":"F16","shape":[20],"data_offsets":[2,42]}');
  });

  it('keeps integer-like tensor names in the given order', () => {
    const layout = planSafetensorsShards(
      [
        { name: 'z', dtype: 'F32', shape: [1] },
        { name: '1', dtype: 'F32', shape: [1] },
      ],
      { maxShardBytes: 4 },
    );
    expect(layout.indexJson!.indexOf('"z"')).toBeLessThan(layout.indexJson!.indexOf('"1"'));
  });

  it('rejects duplicate names and bad shapes', () => {
    expect(() => planSafetensorsShards([specs[0], specs[0]], { maxShardBytes: 10 })).toThrow('tensor a given twice');
    expect(() => planSafetensorsShards([{ name: 'q', dtype: 'F32', shape: [-1] }], { maxShardBytes: 10 })).toThrow(
      'tensor q has invalid shape [-1]',
    );
  });
});

describe('SafetensorsStreamWriter', () => {
  const specs: TensorSpec[] = [
    { name: 'x', dtype: 'F32', shape: [2] },
    { name: 'y', dtype: 'F16', shape: [3] },
    { name: 'z', dtype: 'F16', shape: [4] },
  ];

  it('writes shards in order, closing each when done, and the index last', async () => {
    const layout = planSafetensorsShards(specs, { maxShardBytes: 8 });
    expect(layout.files.length).toBe(3);
    const sink = memorySink();
    const w = new SafetensorsStreamWriter(sink, layout);
    await w.writeTensor('x', new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));
    expect(Object.keys(sink.files)).toEqual(['model-00001-of-00003.safetensors']);
    await w.writeTensor('y', new Uint8Array(6).fill(9));
    await w.writeTensor('z', new Uint8Array(8).fill(7));
    expect(Object.keys(sink.files).length).toBe(3);
    await w.finish();
    expect(sink.created).toEqual([
      { path: 'model-00001-of-00003.safetensors', size: layout.files[0].size },
      { path: 'model-00002-of-00003.safetensors', size: layout.files[1].size },
      { path: 'model-00003-of-00003.safetensors', size: layout.files[2].size },
      { path: 'model.safetensors.index.json', size: layout.indexJson!.length },
    ]);
    const f1 = sink.files['model-00001-of-00003.safetensors'];
    expect(Array.from(f1.subarray(layout.files[0].header.length))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(te.decode(sink.files['model.safetensors.index.json'])).toBe(layout.indexJson);
    // Chunks are the headers, single tensors and the index: nothing is batched together.
    expect(sink.maxChunk()).toBe(Math.max(8, layout.indexJson!.length, ...layout.files.map((f) => f.header.length)));
  });

  it('rejects out-of-order tensors, wrong lengths, early finish and writes after finish', async () => {
    const layout = planSafetensorsShards(specs, { maxShardBytes: 1000 });
    const w = new SafetensorsStreamWriter(memorySink(), layout);
    await expect(w.writeTensor('y', new Uint8Array(6))).rejects.toThrow(
      'SafetensorsStreamWriter.writeTensor: got tensor y out of order; expected x next (in model.safetensors)',
    );
    await expect(w.writeTensor('x', new Uint8Array(7))).rejects.toThrow(
      'SafetensorsStreamWriter.writeTensor: tensor x has 7 bytes; expected 8 (F32 [2])',
    );
    await w.writeTensor('x', new Uint8Array(8));
    await expect(w.finish()).rejects.toThrow('SafetensorsStreamWriter.finish: 2 tensor(s) not written yet; next expected is y');
    await w.writeTensor('y', new Uint8Array(6));
    await w.writeTensor('z', new Uint8Array(8));
    await expect(w.writeTensor('z', new Uint8Array(8))).rejects.toThrow('every planned tensor is already written');
    await w.finish();
    await expect(w.finish()).rejects.toThrow('already finished');
  });

  it('rejects a concurrent call', async () => {
    const w = new SafetensorsStreamWriter(memorySink(), planSafetensorsShards(specs, { maxShardBytes: 1000 }));
    const p = w.writeTensor('x', new Uint8Array(8));
    await expect(w.writeTensor('y', new Uint8Array(6))).rejects.toThrow('called before the previous call finished');
    await p;
  });

  it('writes a header-only file for an empty layout', async () => {
    const layout = planSafetensorsShards([], { maxShardBytes: 10 });
    const sink = memorySink();
    const w = new SafetensorsStreamWriter(sink, layout);
    await w.finish();
    expect(headerJson(sink.files['model.safetensors']).trimEnd()).toBe('{"__metadata__":{"format":"pt"}}');
  });
});

describe('SafetensorsStreamWriter: a tensor in pieces', () => {
  const specs: TensorSpec[] = [
    { name: 'x', dtype: 'F32', shape: [2] },
    { name: 'y', dtype: 'F16', shape: [3] },
  ];

  it('writes the same file from chunks as from whole tensors, each chunk passed on as it comes', async () => {
    const layout = planSafetensorsShards(specs, { maxShardBytes: 1000 });
    const whole = memorySink();
    const a = new SafetensorsStreamWriter(whole, layout);
    await a.writeTensor('x', Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    await a.writeTensor('y', Uint8Array.from([9, 10, 11, 12, 13, 14]));
    await a.finish();
    const pieces = memorySink();
    const b = new SafetensorsStreamWriter(pieces, layout);
    await b.beginTensor('x');
    for (const c of [[1, 2, 3], [], [4, 5, 6, 7], [8]]) await b.writeChunk(Uint8Array.from(c));
    await b.endTensor();
    await b.writeTensor('y', Uint8Array.from([9, 10, 11, 12, 13, 14]));
    await b.finish();
    expect(Array.from(pieces.files['model.safetensors'])).toEqual(Array.from(whole.files['model.safetensors']));
    expect(pieces.maxChunk()).toBe(layout.files[0].header.length);
  });

  it('refuses too many or too few bytes, another tensor while one is open, and chunks with none open', async () => {
    const layout = planSafetensorsShards(specs, { maxShardBytes: 1000 });
    const w = new SafetensorsStreamWriter(memorySink(), layout);
    await expect(w.writeChunk(new Uint8Array(1))).rejects.toThrow('SafetensorsStreamWriter.writeChunk: no tensor is being written; call beginTensor first');
    await expect(w.beginTensor('y')).rejects.toThrow('got tensor y out of order; expected x next');
    await w.beginTensor('x');
    await expect(w.writeTensor('x', new Uint8Array(8))).rejects.toThrow('SafetensorsStreamWriter.writeTensor: got tensor x while x is still being written');
    await w.writeChunk(new Uint8Array(5));
    await expect(w.writeChunk(new Uint8Array(4))).rejects.toThrow('SafetensorsStreamWriter.writeChunk: tensor x would get 9 bytes; expected 8');
    await expect(w.endTensor()).rejects.toThrow('SafetensorsStreamWriter.endTensor: tensor x got 5 bytes; expected 8');
    await expect(w.finish()).rejects.toThrow('SafetensorsStreamWriter.finish: tensor x is still being written');
    await w.writeChunk(new Uint8Array(3));
    await w.endTensor();
    await expect(w.endTensor()).rejects.toThrow('SafetensorsStreamWriter.endTensor: no tensor is being written');
  });
});
