import type { CalibrationRecord } from '../pipeline/calibration';
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
  /** The calibration data of a GPTQ run. */
  calibration?: CalibrationRecord | null;
  /** Each quantized tensor's own bits and codebook kind (written when they are not all the run's). */
  tensors?: { name: string; bits: 4 | 8; codebook: 'uniform' | 'learned' }[];
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
    method: s.bits === 16 ? null : s.method,
    ...(s.method === 'gptq' && s.bits !== 16 ? {
      gptq: { damp: s.damp, act_order: s.actOrder, sequential: true, embeddings: 'rtn', lm_head: 'float16' },
      calibration: q.calibration ? {
        source: q.calibration.source, samples: q.calibration.samples, seqlen: q.calibration.seqlen,
        tokens: q.calibration.tokens, token_ids_sha256: q.calibration.sha256,
      } : null,
    } : {}),
    ...(s.bits !== 16 && (s.codebook !== 'uniform' || s.w8Budget > 0 || s.bitsOverride || (q.tensors ?? []).some((t) => t.bits !== s.bits || t.codebook !== s.codebook)) ? {
      codebook: s.codebook,
      w8_budget: s.w8Budget,
      bits_override: s.bitsOverride || null,
      weight_bits_per_tensor: Object.fromEntries((q.tensors ?? []).map((t) => [t.name, { bits: t.bits, codebook: t.codebook }])),
    } : {}),
    // Fitted per-column input scales (absent: one value per tensor, as before).
    ...(s.inputScales === 'fitted' && s.bits !== 16 ? { input_scales: 'fitted' } : {}),
    dtype: s.dtype === 'f32' ? 'float32' : 'float16',
    format: s.bits === 16 ? 'plain' : 'anemll_sp',
    source_repo: q.sourceRepo,
    source_revision: q.sourceRevision,
    tool: TOOL_NAME,
    tool_version: TOOL_VERSION,
  };
  return JSON.stringify(body, null, 2) + '\n';
}
