/**
 * The handful of Qwen2 dimensions the CPU forward pass needs. Deliberately tolerant: the
 * validating parser lives in src/core/qwen2; this one only fills defaults so that the eval
 * path can also run on hand-built configs in tests.
 */
import type { Qwen2Dims } from '../core/qwen2/config';

export type { Qwen2Dims };

function num(v: unknown, what: string, fallback?: number): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (fallback !== undefined) return fallback;
  throw new Error(`config.json: "${what}" missing or not a number`);
}

/** Reads HF `config.json` (object or JSON text) into {@link Qwen2Dims}. */
export function dimsFromConfig(json: unknown): Qwen2Dims {
  const c = (typeof json === 'string' ? JSON.parse(json) : json) as Record<string, unknown>;
  if (c === null || typeof c !== 'object') throw new Error('config.json: not an object');
  const hidden = num(c.hidden_size, 'hidden_size');
  const heads = num(c.num_attention_heads, 'num_attention_heads');
  // head_dim is optional in Qwen2 configs; transformers derives it as hidden / heads.
  const headDim = num(c.head_dim, 'head_dim', hidden / heads);
  return {
    hidden,
    intermediate: num(c.intermediate_size, 'intermediate_size'),
    layers: num(c.num_hidden_layers, 'num_hidden_layers'),
    heads,
    // transformers defaults num_key_value_heads to num_attention_heads (plain MHA).
    kvHeads: num(c.num_key_value_heads, 'num_key_value_heads', heads),
    headDim,
    vocab: num(c.vocab_size, 'vocab_size'),
    // Defaults are transformers' Qwen2Config defaults.
    rmsNormEps: num(c.rms_norm_eps, 'rms_norm_eps', 1e-6),
    // transformers 5 moved rope_theta into `rope_parameters`; accept either place.
    ropeTheta: num(
      c.rope_theta ?? (c.rope_parameters as Record<string, unknown> | undefined)?.rope_theta,
      'rope_theta',
      10000,
    ),
    tieWordEmbeddings: c.tie_word_embeddings === undefined ? false : c.tie_word_embeddings === true,
  };
}
