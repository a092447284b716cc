import { describe, expect, it } from 'vitest';
import { dimsFromConfig } from './qwen2-config';

describe('dimsFromConfig', () => {
  it('reads the Qwen2.5-0.5B shape', () => {
    const dims = dimsFromConfig({
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      vocab_size: 151936,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000.0,
      tie_word_embeddings: true,
    });
    expect(dims).toEqual({
      hidden: 896,
      intermediate: 4864,
      layers: 24,
      heads: 14,
      kvHeads: 2,
      headDim: 64,
      vocab: 151936,
      rmsNormEps: 1e-6,
      ropeTheta: 1e6,
      tieWordEmbeddings: true,
    });
  });

  it('accepts JSON text, fills transformers defaults, and reads rope_parameters', () => {
    const dims = dimsFromConfig(
      JSON.stringify({
        hidden_size: 64,
        intermediate_size: 172,
        num_hidden_layers: 5,
        num_attention_heads: 8,
        vocab_size: 512,
        rope_parameters: { rope_theta: 5000, rope_type: 'default' },
      }),
    );
    expect(dims.kvHeads).toBe(8);
    expect(dims.headDim).toBe(8);
    expect(dims.rmsNormEps).toBe(1e-6);
    expect(dims.ropeTheta).toBe(5000);
    expect(dims.tieWordEmbeddings).toBe(false);
  });

  it('honours an explicit head_dim', () => {
    expect(dimsFromConfig({ hidden_size: 64, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 4, head_dim: 32, vocab_size: 10 }).headDim).toBe(32);
  });

  it('names a missing field', () => {
    expect(() => dimsFromConfig({ hidden_size: 64 })).toThrow(/num_attention_heads/);
  });
});
