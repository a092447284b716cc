/**
 * FORMAT.md: keys, shapes and dtypes of an ANEMLL SP bundle; every quantized weight lies on
 * its integer grid; config.json and quantization_config.json fields (SPEC §5).
 */
import { describe, expect, it } from 'vitest';
import { openSafetensorsModel } from '../src/core/safetensors/model';
import { readTensorF32 } from '../src/core/safetensors/read-tensor';
import { memoryModelSource } from './support/memory';
import { FIXTURE_DIR, FIXTURE_SKIP_REASON, HAVE_FIXTURE, readFolder, runInMemory, tinyModelFiles } from './support/bundle';
import { roundToF16 } from '../src/core/safetensors/dtype';
import { checkSpBundle } from './support/sp-format';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

/** A generated model with outliers as in-memory HF files (F32, one file, tied). */
const tinyFiles = (): Promise<Record<string, Uint8Array>> =>
  tinyModelFiles({ hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 2, vocab: 80, tie: true, seed: 7, outliers: true });

const checkBundle = (files: Record<string, Uint8Array>, bits: 4 | 8, layers: number, quantizeEmbeddings: boolean) => checkSpBundle(files, { bits, layers, quantizeEmbeddings });

describe('ANEMLL SP bundle layout', () => {
  it.each([
    [4, 'sp', 'mse'],
    [8, 'per_tensor', 'absmax'],
    [4, 'per_tensor', 'mse'],
  ] as const)('W%i %s/%s: keys, shapes, dtypes, grid membership, configs', async (bits, scheme, clip) => {
    const src = await tinyFiles();
    const { files, result } = await runInMemory(src, { bits, scheme, clip });
    await checkBundle(files, bits, 2, true);
    expect(result.plan.quantizedCount).toBe(2 * 7 + 1);
    const cfg = JSON.parse(text(files['config.json']));
    expect(cfg.tie_word_embeddings).toBe(false);
    expect(cfg.torch_dtype).toBe('float16');
    expect('quantization_config' in cfg).toBe(false);
    expect(cfg.hidden_size).toBe(64);
    const qc = JSON.parse(text(files['quantization_config.json']));
    expect(qc).toMatchObject({
      quantization_method: 'quarot', weight_bits: bits, per_tensor: true, rotated: true, symmetric: true,
      model_type: 'qwen2', layers_quantized: 15, online_had: false, fusion_applied: true, rotation: 'full',
      scheme, clip, seed: 0, quantize_embeddings: true,
    });
    expect(qc.tool_version).toMatch(/^\d+\.\d+\.\d+/);
    expect(text(files['README.md'])).toContain(`bits | ${bits}`);
    // per_tensor: one step for the whole tensor → output_scales all 1 (FORMAT.md).
    if (scheme === 'per_tensor') {
      const model = await openSafetensorsModel(memoryModelSource(files));
      const so = model.tensors.get('model.layers.0.self_attn.q_proj.output_scales')!;
      expect(Array.from(await readTensorF32(model.files.get(so.file)!.source, so.info)).every((v) => v === 1)).toBe(true);
    }
  });

  it('bits 16: plain layout, no scale keys, q/k/v biases only', async () => {
    const { files } = await runInMemory(await tinyFiles(), { bits: 16 });
    const model = await openSafetensorsModel(memoryModelSource(files));
    const names = [...model.tensors.keys()];
    expect(names.some((n) => /scales|codebook/.test(n))).toBe(false);
    expect(names.filter((n) => n.endsWith('.bias')).sort()).toEqual(
      [0, 1].flatMap((l) => ['k', 'q', 'v'].map((p) => `model.layers.${l}.self_attn.${p}_proj.bias`)).sort(),
    );
    expect(JSON.parse(text(files['quantization_config.json'])).layers_quantized).toBe(0);
  });

  it('rotation none, embeddings kept: stays tied, norms unchanged', async () => {
    const src = await tinyFiles();
    const { files } = await runInMemory(src, { bits: 4, rotation: 'none', quantizeEmbeddings: false });
    const model = await openSafetensorsModel(memoryModelSource(files));
    expect(model.tensors.has('lm_head.weight')).toBe(false);
    expect(JSON.parse(text(files['config.json'])).tie_word_embeddings).toBe(true);
    const orig = await openSafetensorsModel(memoryModelSource(src));
    const read = async (m: typeof model, n: string) => Array.from(await readTensorF32(m.files.get(m.tensors.get(n)!.file)!.source, m.tensors.get(n)!.info));
    const g = await read(orig, 'model.layers.0.input_layernorm.weight');
    expect(await read(model, 'model.layers.0.input_layernorm.weight')).toEqual(g.map(roundToF16));
    expect(g.some((v) => Math.abs(v - 1) > 0.1)).toBe(true);
    expect(await read(model, 'model.embed_tokens.weight')).toHaveLength(80 * 64);
  });

  it('rotation none with the embedding quantized: written untied with an FP16 head', async () => {
    const { files } = await runInMemory(await tinyFiles(), { bits: 4, rotation: 'none' });
    const model = await openSafetensorsModel(memoryModelSource(files));
    expect(model.tensors.has('lm_head.weight')).toBe(true);
    expect(JSON.parse(text(files['config.json'])).tie_word_embeddings).toBe(false);
  });
});

describe.skipIf(!HAVE_FIXTURE)(`real tiny model bundle ${HAVE_FIXTURE ? '' : FIXTURE_SKIP_REASON}`, () => {
  it('W4 defaults: layout, grid, 5 layers, tokenizer passed through', async () => {
    const src = readFolder(FIXTURE_DIR);
    const { files, result } = await runInMemory(src, {});
    await checkBundle(files, 4, 5, true);
    expect(result.plan.quantizedCount).toBe(36);
    expect(files['tokenizer.json']).toEqual(src['tokenizer.json']);
    expect(files['generation_config.json']).toEqual(src['generation_config.json']);
  });
});
