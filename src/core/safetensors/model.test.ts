import { describe, expect, it } from 'vitest';
import { InputError } from '../errors';
import { encodeF32 } from './dtype';
import { openSafetensorsModel } from './model';
import { readTensorF32 } from './read-tensor';
import { memoryModelSource, memorySink, rawSafetensors } from '../../../test/support/memory';
import { planSafetensorsShards, SafetensorsStreamWriter, type TensorSpec } from './writer';

const specs: TensorSpec[] = [
  { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [4, 3] }, // 48 bytes
  { name: 'model.norm.weight', dtype: 'F32', shape: [3] }, // 12
  { name: 'lm_head.weight', dtype: 'F32', shape: [4, 3] }, // 48
  { name: 'extra', dtype: 'F32', shape: [5] }, // 20
];

function valuesFor(i: number, s: TensorSpec): Float32Array {
  const n = s.shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, (_, k) => 100 * i + k);
}

async function writeModel(maxShardBytes: number): Promise<Record<string, Uint8Array>> {
  const sink = memorySink();
  const w = new SafetensorsStreamWriter(sink, planSafetensorsShards(specs, { maxShardBytes }));
  for (const [i, s] of specs.entries()) await w.writeTensor(s.name, encodeF32(valuesFor(i, s)));
  await w.finish();
  return sink.files;
}

async function openErr(files: Record<string, Uint8Array | string>): Promise<InputError> {
  const err = await openSafetensorsModel(memoryModelSource(files, 'test-model')).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(InputError);
  return err as InputError;
}

describe('openSafetensorsModel', () => {
  it('opens a single model.safetensors', async () => {
    const files = await writeModel(1 << 20);
    expect(Object.keys(files)).toEqual(['model.safetensors']);
    const m = await openSafetensorsModel(memoryModelSource({ ...files, 'config.json': '{}' }));
    expect([...m.files.keys()]).toEqual(['model.safetensors']);
    expect([...m.tensors.keys()]).toEqual(specs.map((s) => s.name));
    expect(m.totalBytes).toBe(128);
  });

  it('reads back a sharded bundle through its index, reading headers only', async () => {
    const files = await writeModel(60);
    expect(Object.keys(files).sort()).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    const src = memoryModelSource(files);
    const m = await openSafetensorsModel(src);
    expect(m.files.size).toBe(3);
    expect(m.totalBytes).toBe(128);
    expect(Object.fromEntries([...m.tensors].map(([k, v]) => [k, v.file]))).toEqual({
      'model.embed_tokens.weight': 'model-00001-of-00003.safetensors',
      'model.norm.weight': 'model-00001-of-00003.safetensors',
      'lm_head.weight': 'model-00002-of-00003.safetensors',
      extra: 'model-00003-of-00003.safetensors',
    });
    // Two small reads per shard: the 8-byte prefix and the JSON header.
    for (const [name, s] of src.opened) {
      if (name.endsWith('.json')) continue;
      const hdr = m.files.get(name)!.header;
      expect(s.reads).toEqual([
        [0, 8],
        [8, hdr.headerLength],
      ]);
    }
    for (const [i, s] of specs.entries()) {
      const t = m.tensors.get(s.name)!;
      const got = await readTensorF32(m.files.get(t.file)!.source, t.info);
      expect(Array.from(got)).toEqual(Array.from(valuesFor(i, s)));
    }
  });

  it('reports a missing model', async () => {
    const e = await openErr({ 'config.json': '{}' });
    expect(e.message).toBe('no model.safetensors or model.safetensors.index.json in test-model');
  });

  it('reports shards named by the index that are missing', async () => {
    const files = await writeModel(60);
    delete files['model-00002-of-00003.safetensors'];
    delete files['model-00003-of-00003.safetensors'];
    const e = await openErr(files);
    expect(e.message).toBe(
      'model.safetensors.index.json names shard files missing from test-model: model-00002-of-00003.safetensors, model-00003-of-00003.safetensors',
    );
  });

  it('reports a tensor in the index but missing from its shard', async () => {
    const files = await writeModel(60);
    const index = JSON.parse(new TextDecoder().decode(files['model.safetensors.index.json']));
    index.weight_map['model.layers.0.mlp.up_proj.weight'] = 'model-00002-of-00003.safetensors';
    const e = await openErr({ ...files, 'model.safetensors.index.json': JSON.stringify(index) });
    expect(e.message).toBe(
      'tensor model.layers.0.mlp.up_proj.weight is listed in model.safetensors.index.json under shard model-00002-of-00003.safetensors, but model-00002-of-00003.safetensors does not contain it',
    );
    expect(e.tensor).toBe('model.layers.0.mlp.up_proj.weight');
    expect(e.file).toBe('model-00002-of-00003.safetensors');
  });

  it('reports a tensor in a shard but not in the index, or mapped to another shard', async () => {
    const files = await writeModel(60);
    const index = JSON.parse(new TextDecoder().decode(files['model.safetensors.index.json']));
    delete index.weight_map['model.norm.weight'];
    let e = await openErr({ ...files, 'model.safetensors.index.json': JSON.stringify(index) });
    expect(e.message).toBe(
      'tensor model.norm.weight is in shard model-00001-of-00003.safetensors but not in the weight_map of model.safetensors.index.json',
    );
    index.weight_map['model.norm.weight'] = 'model-00002-of-00003.safetensors';
    e = await openErr({ ...files, 'model.safetensors.index.json': JSON.stringify(index) });
    expect(e.message).toBe(
      'tensor model.norm.weight is in shard model-00001-of-00003.safetensors but model.safetensors.index.json maps it to model-00002-of-00003.safetensors',
    );
  });

  it('reports the same tensor in two shards', async () => {
    const shard = (name: string) => rawSafetensors({ [name]: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4);
    const e = await openErr({
      'model.safetensors.index.json': JSON.stringify({ weight_map: { t: 'a.safetensors', u: 'b.safetensors' } }),
      'a.safetensors': shard('t'),
      'b.safetensors': rawSafetensors(
        { t: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, u: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } },
        8,
      ),
    });
    expect(e.message).toBe('tensor t appears twice: in a.safetensors and in b.safetensors; expected it in one file');
  });

  it('reports bad index JSON', async () => {
    expect((await openErr({ 'model.safetensors.index.json': '{oops' })).message).toMatch(
      /^model\.safetensors\.index\.json in test-model is not valid UTF-8 JSON \(.+\); expected a JSON object with a weight_map$/,
    );
    expect((await openErr({ 'model.safetensors.index.json': '{"metadata": {}}' })).message).toBe(
      'model.safetensors.index.json in test-model has no weight_map object (found nothing); expected {"weight_map": {tensor: shard file}}',
    );
    expect((await openErr({ 'model.safetensors.index.json': '{"weight_map": {"t": 3}}' })).message).toBe(
      'model.safetensors.index.json in test-model: weight_map entry for tensor t must be a shard file name; found 3',
    );
  });

  it('passes header errors through with the shard name', async () => {
    const e = await openErr({ 'model.safetensors': rawSafetensors({ w: { dtype: 'I8', shape: [1], data_offsets: [0, 1] } }, 1) });
    expect(e.message).toBe('unsupported dtype I8 for tensor w in file model.safetensors; expected F32, F16 or BF16');
  });
});
