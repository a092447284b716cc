import { describe, expect, it } from 'vitest';
import { parseSettings } from '../settings';
import type { TensorInfo } from '../safetensors/types';
import { dimsFromConfig, type Qwen2Config } from './config';
import { buildPlan, isDerivedHead, type PlanItem } from './plan';
import { qwen2Tensors } from './tensors';

const cfg: Qwen2Config = dimsFromConfig({
  model_type: 'qwen2', hidden_size: 32, intermediate_size: 48, num_hidden_layers: 3, num_attention_heads: 4,
  num_key_value_heads: 2, vocab_size: 50, tie_word_embeddings: true,
});

/**
 * A checkpoint's tensor index as safetensors writers lay it out: names sorted, so layer 10 comes
 * before layer 2 and mlp before self_attn.
 */
function checkpoint(c: Qwen2Config, opts: { drop?: string; extra?: string; badShape?: string; lmHead?: boolean } = {}) {
  const tensors = new Map<string, { file: string; info: TensorInfo }>();
  let offset = 0;
  const list = qwen2Tensors(c, { lmHead: opts.lmHead ?? !c.tieWordEmbeddings }).map((t) => ({ name: t.name, shape: t.shape }));
  if (opts.extra) list.push({ name: opts.extra, shape: [2] });
  for (const t of list.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (t.name === opts.drop) continue;
    const shape = t.name === opts.badShape ? [t.shape[0] + 1, ...t.shape.slice(1)] : t.shape;
    const bytes = shape.reduce((a, b) => a * b, 1) * 2;
    tensors.set(t.name, { file: 'model.safetensors', info: { dtype: 'BF16', shape, begin: offset, end: offset + bytes } as TensorInfo });
    offset += bytes;
  }
  return tensors;
}

const names = (items: PlanItem[]): string[] => items.map((it) => it.name);

describe('buildPlan', () => {
  it('rotation full, W4: every projection quantized with its transform, norms written as ones, tied head derived', () => {
    const plan = buildPlan(cfg, parseSettings({}), checkpoint(cfg));
    expect(plan.rotated).toBe(true);
    expect(plan.writesLmHead).toBe(true);
    expect(plan.quantizedCount).toBe(3 * 7 + 1); // projections + embedding
    const q = plan.items.find((it) => it.name === 'model.layers.1.self_attn.v_proj.weight')!;
    expect(q).toMatchObject({
      fuseNorm: 'model.layers.1.input_layernorm.weight', rotateRows: 'residual', rotateCols: 'head', rotateBias: 'head',
      biasSource: 'model.layers.1.self_attn.v_proj.bias', rows: 16, cols: 32,
      quant: { bits: 4, scheme: 'sp', clip: 'mse', method: 'rtn', codebook: 'uniform' },
    });
    expect(q.outputs.map((o) => [o.name.split('.').pop(), o.shape])).toEqual([
      ['weight', [16, 32]], ['bias', [16]], ['input_scales', [1, 32]], ['output_scales', [16, 1]], ['codebook', [16]],
    ]);
    const o = plan.items.find((it) => it.name === 'model.layers.0.self_attn.o_proj.weight')!;
    expect(o).toMatchObject({ fuseNorm: null, rotateRows: 'head', rotateCols: 'residual', rotateBias: null });
    const down = plan.items.find((it) => it.name === 'model.layers.2.mlp.down_proj.weight')!;
    expect(down).toMatchObject({ fuseNorm: null, rotateRows: null, rotateCols: 'residual' });
    const gate = plan.items.find((it) => it.name === 'model.layers.2.mlp.gate_proj.weight')!;
    expect(gate).toMatchObject({ fuseNorm: 'model.layers.2.post_attention_layernorm.weight', rotateRows: 'residual', rotateCols: null });
    expect(plan.items.filter((it) => it.kind === 'norm').every((it) => it.writeOnes)).toBe(true);
    const head = plan.items.find((it) => it.kind === 'lm_head')!;
    expect(isDerivedHead(head)).toBe(true);
    expect(head).toMatchObject({ source: 'model.embed_tokens.weight', fuseNorm: 'model.norm.weight', quant: null });
    // A tied head follows the embedding it is copied from.
    expect(plan.items.indexOf(head)).toBe(plan.items.findIndex((it) => it.kind === 'embedding') + 1);
  });

  it('source order for RTN (norms first in each group); forward order, compute order inside a layer, for GPTQ', () => {
    const big = { ...cfg, layers: 11 };
    const rtn = buildPlan(big, parseSettings({}), checkpoint(big));
    const layersRtn = [...new Set(rtn.items.filter((it) => it.layer !== null).map((it) => it.layer))];
    expect(layersRtn.slice(0, 4)).toEqual([0, 1, 10, 2]); // the file's order
    const gptq = buildPlan(big, parseSettings({ method: 'gptq' }), checkpoint(big));
    const layersGptq = [...new Set(gptq.items.filter((it) => it.layer !== null).map((it) => it.layer))];
    expect(layersGptq).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(gptq.items.findIndex((it) => it.kind === 'embedding')).toBeLessThan(gptq.items.findIndex((it) => it.layer === 0));
    expect(names(gptq.items.filter((it) => it.layer === 4)).map((n) => n.split('.').slice(3).join('.'))).toEqual([
      'input_layernorm.weight', 'post_attention_layernorm.weight',
      'self_attn.q_proj.weight', 'self_attn.k_proj.weight', 'self_attn.v_proj.weight', 'self_attn.o_proj.weight',
      'mlp.gate_proj.weight', 'mlp.up_proj.weight', 'mlp.down_proj.weight',
    ]);
    // GPTQ applies to projections; the embedding keeps round-to-nearest.
    expect(gptq.items.find((it) => it.kind === 'embedding')!.quant!.method).toBe('rtn');
    expect(gptq.items.filter((it) => it.kind === 'projection').every((it) => it.quant!.method === 'gptq')).toBe(true);
  });

  it('a choose hook sets each item\'s own choice: mixed precision is a change to the plan alone', () => {
    const plan = buildPlan(cfg, parseSettings({}), checkpoint(cfg), {
      choose: (it, base) => (it.proj === 'down_proj' ? { ...base, bits: 8 } : it.layer === 0 && it.proj === 'q_proj' ? null : base),
    });
    const down = plan.items.find((it) => it.name === 'model.layers.1.mlp.down_proj.weight')!;
    expect(down.quant!.bits).toBe(8);
    expect(down.outputs.at(-1)).toMatchObject({ name: 'model.layers.1.mlp.down_proj.codebook', shape: [256] });
    const q0 = plan.items.find((it) => it.name === 'model.layers.0.self_attn.q_proj.weight')!;
    expect(q0.quant).toBeNull();
    expect(q0.outputs.map((o) => o.name)).toEqual(['model.layers.0.self_attn.q_proj.weight', 'model.layers.0.self_attn.q_proj.bias']);
    expect(plan.quantizedCount).toBe(3 * 7 + 1 - 1);
  });

  it('rotation none: no fusion, norms kept, tied embedding stays tied when it is not quantized', () => {
    const plan = buildPlan(cfg, parseSettings({ rotation: 'none', quantizeEmbeddings: false }), checkpoint(cfg));
    expect(plan.rotated).toBe(false);
    expect(plan.writesLmHead).toBe(false);
    expect(plan.items.every((it) => it.fuseNorm === null && it.rotateRows === null && it.rotateCols === null && !it.writeOnes)).toBe(true);
    expect(buildPlan(cfg, parseSettings({ bits: 16 }), checkpoint(cfg)).quantizedCount).toBe(0);
  });

  it.each([
    [{ drop: 'model.layers.2.mlp.up_proj.weight' }, /missing 1 tensor\(s\).*model\.layers\.2\.mlp\.up_proj\.weight/],
    [{ extra: 'model.layers.0.self_attn.rotary_emb.inv_freq' }, /unexpected tensor model\.layers\.0\.self_attn\.rotary_emb\.inv_freq in model\.safetensors/],
    [{ badShape: 'model.layers.1.self_attn.k_proj.weight' }, /tensor model\.layers\.1\.self_attn\.k_proj\.weight in model\.safetensors has shape \[17, 32\]; config\.json implies \[16, 32\]/],
  ])('refuses %j with a specific message', (opts, message) => {
    expect(() => buildPlan(cfg, parseSettings({}), checkpoint(cfg, opts))).toThrow(message);
  });

  it('an untied checkpoint reads its own lm_head', () => {
    const untied = { ...cfg, tieWordEmbeddings: false };
    const plan = buildPlan(untied, parseSettings({}), checkpoint(untied));
    const head = plan.items.find((it) => it.kind === 'lm_head')!;
    expect(isDerivedHead(head)).toBe(false);
    expect(head.source).toBe('lm_head.weight');
  });
});
