import type { QuantSettings } from '../settings';
import { TOOL_NAME, TOOL_VERSION } from '../version';

export interface QuantizationConfigInput {
  settings: QuantSettings;
  quantizedCount: number;
  rotated: boolean;
  residualHadamard: string | null;
  headHadamard: string | null;
  sourceRepo: string;
  sourceRevision: string | null;
}

/**
 * quantization_config.json: the original tool's keys (quantization_method … fusion_applied)
 * plus everything needed to reproduce the run.
 */
export function quantizationConfigJson(q: QuantizationConfigInput): string {
  const s = q.settings;
  const body = {
    quantization_method: 'quarot',
    weight_bits: s.bits,
    per_tensor: true,
    rotated: q.rotated,
    symmetric: true,
    model_type: 'qwen2',
    layers_quantized: q.quantizedCount,
    block_size: s.rotation === 'block' ? s.blockSize : null,
    online_had: false,
    fusion_applied: q.rotated,
    rotation: s.rotation,
    residual_hadamard: q.residualHadamard,
    head_hadamard: q.headHadamard,
    scheme: s.scheme,
    clip: s.clip,
    seed: s.seed,
    quantize_embeddings: s.quantizeEmbeddings && s.bits !== 16,
    lm_head_quantized: false,
    dtype: s.dtype === 'f32' ? 'float32' : 'float16',
    format: s.bits === 16 ? 'plain' : 'anemll_sp',
    source_repo: q.sourceRepo,
    source_revision: q.sourceRevision,
    tool: TOOL_NAME,
    tool_version: TOOL_VERSION,
  };
  return JSON.stringify(body, null, 2) + '\n';
}
