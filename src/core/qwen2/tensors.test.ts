import { describe, expect, it } from 'vitest';
import type { Qwen2Dims } from './config';
import {
  linearInputWidth, parseProjectionName, PROJECTIONS, PROJECTIONS_BY_INPUT, PROJECTION_INFO, projectionName, projectionShape, qwen2Tensors,
} from './tensors';

const QWEN25_05B: Qwen2Dims = {
  hidden: 896, intermediate: 4864, layers: 24, heads: 14, kvHeads: 2, headDim: 64, vocab: 151936,
  rmsNormEps: 1e-6, ropeTheta: 1e6, tieWordEmbeddings: true,
};

describe('Qwen2 tensor description', () => {
  it('lists Qwen2.5-0.5B: 290 tensors (tied), the SPEC §2 shapes', () => {
    const t = qwen2Tensors(QWEN25_05B, { lmHead: false });
    expect(t.length).toBe(1 + 24 * (2 + 7 + 3) + 1);
    const shape = new Map(t.map((x) => [x.name, x.shape]));
    expect(shape.get('model.embed_tokens.weight')).toEqual([151936, 896]);
    expect(shape.get('model.layers.3.self_attn.q_proj.weight')).toEqual([896, 896]);
    expect(shape.get('model.layers.3.self_attn.k_proj.bias')).toEqual([128]);
    expect(shape.get('model.layers.3.self_attn.v_proj.weight')).toEqual([128, 896]);
    expect(shape.get('model.layers.3.self_attn.o_proj.weight')).toEqual([896, 896]);
    expect(shape.get('model.layers.23.mlp.gate_proj.weight')).toEqual([4864, 896]);
    expect(shape.get('model.layers.23.mlp.down_proj.weight')).toEqual([896, 4864]);
    expect(shape.get('model.layers.0.post_attention_layernorm.weight')).toEqual([896]);
    expect(shape.get('model.norm.weight')).toEqual([896]);
    expect(shape.has('lm_head.weight')).toBe(false);
    expect(qwen2Tensors(QWEN25_05B, { lmHead: true }).at(-1)).toMatchObject({ name: 'lm_head.weight', shape: [151936, 896], role: 'lm_head' });
    expect(new Set(t.map((x) => x.name)).size).toBe(t.length);
  });

  it('puts each layer in forward order, biases right after their weights', () => {
    const names = qwen2Tensors({ ...QWEN25_05B, layers: 1 }, { lmHead: false }).map((x) => x.name.replace('model.layers.0.', ''));
    expect(names).toEqual([
      'model.embed_tokens.weight', 'input_layernorm.weight',
      'self_attn.q_proj.weight', 'self_attn.q_proj.bias', 'self_attn.k_proj.weight', 'self_attn.k_proj.bias',
      'self_attn.v_proj.weight', 'self_attn.v_proj.bias', 'self_attn.o_proj.weight', 'post_attention_layernorm.weight',
      'mlp.gate_proj.weight', 'mlp.up_proj.weight', 'mlp.down_proj.weight', 'model.norm.weight',
    ]);
  });

  it('parses every projection name it writes and refuses others', () => {
    for (const proj of PROJECTIONS) {
      for (const part of ['weight', 'bias', 'input_scales', 'output_scales', 'codebook'] as const) {
        expect(parseProjectionName(projectionName(17, proj, part))).toEqual({ layer: 17, proj, part });
      }
    }
    expect(parseProjectionName('model.layers.0.mlp.q_proj.weight')).toBeNull();
    expect(parseProjectionName('model.layers.x.self_attn.q_proj.weight')).toBeNull();
    expect(parseProjectionName('model.norm.weight')).toBeNull();
  });

  it('groups projections by the input they read, with consistent widths', () => {
    expect(Object.values(PROJECTIONS_BY_INPUT).flat().sort()).toEqual([...PROJECTIONS].sort());
    for (const [input, projs] of Object.entries(PROJECTIONS_BY_INPUT)) {
      for (const p of projs) {
        expect(PROJECTION_INFO[p].input).toBe(input);
        expect(projectionShape(QWEN25_05B, p)[1]).toBe(linearInputWidth(QWEN25_05B, PROJECTION_INFO[p].input));
      }
    }
    expect(linearInputWidth(QWEN25_05B, 'mlp_mid')).toBe(4864);
    expect(linearInputWidth(QWEN25_05B, 'attn_out')).toBe(896);
  });
});
