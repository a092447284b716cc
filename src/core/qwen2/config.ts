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

/**
 * The one config.json reader. Strict (quantization): model_type qwen2, silu, head_dim consistent
 * with hidden/heads, every dimension a positive integer — errors are InputErrors naming the key.
 * Lenient (evaluation, hand-built test configs): no model_type or activation check, an explicit
 * head_dim honoured; missing dimensions are still named.
 */
function readQwen2Config(json: unknown, strict: boolean): Qwen2Config {
  let raw = json;
  if (typeof json === 'string') {
    try {
      raw = JSON.parse(json);
    } catch (e) {
      throw new InputError(`config.json is not valid JSON (${(e as Error).message})`, { file: FILE });
    }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InputError('config.json must be a JSON object', { file: FILE });
  }
  const cfg = raw as Record<string, unknown>;
  if (strict && cfg.model_type !== 'qwen2') {
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
  const num = (key: string, value: unknown, fallback: number): number => {
    const v = value ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new InputError(`config.json: ${key} is ${JSON.stringify(value)}; expected a positive number`, { file: FILE });
    }
    return v;
  };
  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const kvHeads = int('num_key_value_heads', heads);
  let headDim: number;
  if (strict) {
    if (hidden % heads !== 0) {
      throw new InputError(`config.json: hidden_size ${hidden} is not divisible by num_attention_heads ${heads}`, { file: FILE });
    }
    headDim = hidden / heads;
    if (cfg.head_dim !== undefined && cfg.head_dim !== null && cfg.head_dim !== headDim) {
      throw new InputError(`config.json: head_dim ${String(cfg.head_dim)} differs from hidden_size/num_attention_heads = ${headDim}`, { file: FILE });
    }
  } else {
    // head_dim is optional in Qwen2 configs; transformers derives it as hidden / heads.
    headDim = cfg.head_dim === undefined || cfg.head_dim === null ? hidden / heads : int('head_dim');
  }
  if (heads % kvHeads !== 0) {
    throw new InputError(`config.json: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`, { file: FILE });
  }
  if (strict && cfg.hidden_act !== undefined && cfg.hidden_act !== 'silu') {
    throw new InputError(`config.json: hidden_act is ${JSON.stringify(cfg.hidden_act)}; expected "silu"`, { file: FILE });
  }
  // transformers 5 moved rope_theta into rope_parameters; accept either place.
  const ropeParams = typeof cfg.rope_parameters === 'object' && cfg.rope_parameters !== null ? (cfg.rope_parameters as Record<string, unknown>) : undefined;
  return {
    hidden,
    intermediate: int('intermediate_size'),
    layers: int('num_hidden_layers'),
    heads,
    kvHeads,
    headDim,
    vocab: int('vocab_size'),
    // Defaults are transformers' Qwen2Config defaults.
    rmsNormEps: num('rms_norm_eps', cfg.rms_norm_eps, 1e-6),
    ropeTheta: cfg.rope_theta === undefined && ropeParams
      ? num('rope_parameters.rope_theta', ropeParams.rope_theta, 10000)
      : num('rope_theta', cfg.rope_theta, 10000),
    tieWordEmbeddings: cfg.tie_word_embeddings === true,
    raw: cfg,
  };
}

/** Parse and validate `config.json` text for quantization (strict). */
export function parseQwen2Config(text: string): Qwen2Config {
  return readQwen2Config(text, true);
}

/** The dimensions for evaluation (lenient): config.json as an object or JSON text. */
export function dimsFromConfig(json: unknown): Qwen2Config {
  return readQwen2Config(json, false);
}
