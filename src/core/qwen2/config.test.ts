import { describe, expect, it } from 'vitest';
import { dimsFromConfig, parseQwen2Config } from './config';

describe('dimsFromConfig (lenient, for evaluation)', () => {
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
    const { raw, ...plain } = dims;
    expect(raw.hidden_size).toBe(896);
    expect(plain).toEqual({
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

describe('parseQwen2Config (strict, for quantization)', () => {
  const base = { model_type: 'qwen2', hidden_size: 64, intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, vocab_size: 100 };
  const text = (over: Record<string, unknown>) => JSON.stringify({ ...base, ...over });

  it('reads the same dimensions as the lenient reader on a valid config', () => {
    const strict = parseQwen2Config(text({}));
    expect({ ...strict, raw: null }).toEqual({ ...dimsFromConfig(text({})), raw: null });
    expect(strict.headDim).toBe(16);
  });

  it.each([
    [{ model_type: 'llama' }, /model_type is "llama"; expected "qwen2"/],
    [{ hidden_act: 'gelu' }, /hidden_act is "gelu"; expected "silu"/],
    [{ head_dim: 32 }, /head_dim 32 differs from hidden_size\/num_attention_heads = 16/],
    [{ hidden_size: 66 }, /hidden_size 66 is not divisible by num_attention_heads 4/],
    [{ num_key_value_heads: 3 }, /num_attention_heads 4 is not a multiple of num_key_value_heads 3/],
    [{ vocab_size: 1.5 }, /vocab_size is 1.5; expected a positive integer/],
    [{ rms_norm_eps: -1 }, /rms_norm_eps is -1; expected a positive number/],
  ])('refuses %j', (over, message) => {
    expect(() => parseQwen2Config(text(over))).toThrow(message);
  });

  it('names bad JSON and non-objects', () => {
    expect(() => parseQwen2Config('{')).toThrow(/config.json is not valid JSON/);
    expect(() => parseQwen2Config('[1]')).toThrow(/must be a JSON object/);
  });

  it('lenient mode honours head_dim and skips the model_type check, strict does not', () => {
    expect(dimsFromConfig({ ...base, model_type: undefined, head_dim: 32 }).headDim).toBe(32);
    expect(() => parseQwen2Config(text({ model_type: undefined }))).toThrow(/model_type/);
  });
});
