import { InputError } from '../errors';

/** The dimensions of a Qwen2ForCausalLM checkpoint (what the forward pass needs). */
export interface Qwen2Dims {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
}

/** Validated dimensions plus the parsed config.json, passed through (with edits) into the bundle. */
export interface Qwen2Config extends Qwen2Dims {
  raw: Record<string, unknown>;
}

const FILE = 'config.json';

/** Parse and validate `config.json` text: model_type qwen2 and consistent dimensions. */
export function parseQwen2Config(text: string): Qwen2Config {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new InputError(`config.json is not valid JSON (${(e as Error).message})`, { file: FILE });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InputError('config.json must be a JSON object', { file: FILE });
  }
  const cfg = raw as Record<string, unknown>;
  if (cfg.model_type !== 'qwen2') {
    throw new InputError(
      `config.json: model_type is ${JSON.stringify(cfg.model_type)}; expected "qwen2" (Qwen2ForCausalLM, e.g. Qwen/Qwen2.5-0.5B)`,
      { file: FILE },
    );
  }
  const int = (key: string, fallback?: number): number => {
    const v = cfg[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new InputError(`config.json: ${key} is ${JSON.stringify(cfg[key])}; expected a positive integer`, { file: FILE });
    }
    return v;
  };
  const num = (key: string, fallback: number): number => {
    const v = cfg[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new InputError(`config.json: ${key} is ${JSON.stringify(cfg[key])}; expected a positive number`, { file: FILE });
    }
    return v;
  };
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const kvHeads = int('num_key_value_heads', heads);
  if (hidden % heads !== 0) {
    throw new InputError(`config.json: hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`, { file: FILE });
  }
  const headDim = hidden / heads;
  if (cfg.head_dim !== undefined && cfg.head_dim !== null && cfg.head_dim !== headDim) {
    throw new InputError(`config.json: head_dim ${String(cfg.head_dim)} differs from hidden_size/num_attention_heads = ${headDim}`, { file: FILE });
  }
  if (heads % kvHeads !== 0) {
    throw new InputError(`config.json: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`, { file: FILE });
  }
  if (cfg.hidden_act !== undefined && cfg.hidden_act !== 'silu') {
    throw new InputError(`config.json: hidden_act is ${JSON.stringify(cfg.hidden_act)}; expected "silu"`, { file: FILE });
  }
  return {
    hidden,
    intermediate: int('intermediate_size'),
    layers: int('num_hidden_layers'),
    heads,
    kvHeads,
    headDim,
    vocab: int('vocab_size'),
    rmsNormEps: num('rms_norm_eps', 1e-6),
    // transformers 5 moved rope_theta into rope_parameters.
    ropeTheta: cfg.rope_theta === undefined && typeof cfg.rope_parameters === 'object' && cfg.rope_parameters !== null
      ? Number((cfg.rope_parameters as Record<string, unknown>).rope_theta ?? 10000)
      : num('rope_theta', 10000),
    tieWordEmbeddings: cfg.tie_word_embeddings === true,
    raw: cfg,
  };
}
