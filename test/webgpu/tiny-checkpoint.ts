// A small random Qwen2 checkpoint (BF16, tied embeddings) held in memory, for whole-pipeline
// tests: hidden 112 = 28·4 (full rotation uses H_28 ⊗ H_4), 7 heads of 16, 1 KV head.
import { planSafetensorsShards, SafetensorsStreamWriter, type TensorSpec } from '../../src/core/safetensors/writer';
import { memoryModelSource, memorySink, type MemoryModelSource } from '../../src/core/safetensors/test-helpers';
import { rng } from './gpu';

export interface TinyDims {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  vocab: number;
}

export const TINY: TinyDims = { hidden: 112, intermediate: 96, layers: 2, heads: 7, kvHeads: 1, vocab: 160 };

function bf16(values: Float32Array): Uint8Array {
  const u = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < u.length; i++) out[i] = u[i] >>> 16; // truncation is fine for test data
  return new Uint8Array(out.buffer);
}

export async function tinyCheckpoint(dims: TinyDims = TINY, seed = 1): Promise<MemoryModelSource> {
  const { hidden: d, intermediate: F, layers, heads: H, kvHeads: KV, vocab: V } = dims;
  const D = d / H;
  const r = rng(seed);
  const gauss = (): number => (r() + r() + r() + r() - 2) * 1.7;
  const mat = (n: number, scale: number, outlierCols = 0, cols = 1): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let v = gauss() * scale;
      if (outlierCols && i % cols < outlierCols) v *= 8; // LLM-like outlier input channels
      a[i] = v;
    }
    return a;
  };
  const tensors: [string, number[], Float32Array][] = [];
  tensors.push(['model.embed_tokens.weight', [V, d], mat(V * d, 0.05, 2, d)]);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    const norm = (): Float32Array => Float32Array.from({ length: d }, (_, i) => (i < 2 ? 6 : 1) + 0.2 * gauss());
    tensors.push([`${p}.input_layernorm.weight`, [d], norm()]);
    tensors.push([`${p}.self_attn.q_proj.weight`, [H * D, d], mat(H * D * d, 0.08)]);
    tensors.push([`${p}.self_attn.q_proj.bias`, [H * D], mat(H * D, 0.1)]);
    tensors.push([`${p}.self_attn.k_proj.weight`, [KV * D, d], mat(KV * D * d, 0.08)]);
    tensors.push([`${p}.self_attn.k_proj.bias`, [KV * D], mat(KV * D, 0.1)]);
    tensors.push([`${p}.self_attn.v_proj.weight`, [KV * D, d], mat(KV * D * d, 0.08)]);
    tensors.push([`${p}.self_attn.v_proj.bias`, [KV * D], mat(KV * D, 0.1)]);
    tensors.push([`${p}.self_attn.o_proj.weight`, [d, H * D], mat(d * H * D, 0.08)]);
    tensors.push([`${p}.post_attention_layernorm.weight`, [d], norm()]);
    tensors.push([`${p}.mlp.gate_proj.weight`, [F, d], mat(F * d, 0.08)]);
    tensors.push([`${p}.mlp.up_proj.weight`, [F, d], mat(F * d, 0.08)]);
    tensors.push([`${p}.mlp.down_proj.weight`, [d, F], mat(d * F, 0.08)]);
  }
  tensors.push(['model.norm.weight', [d], Float32Array.from({ length: d }, () => 1 + 0.2 * gauss())]);

  const specs: TensorSpec[] = tensors.map(([name, shape]) => ({ name, dtype: 'BF16', shape }));
  const layout = planSafetensorsShards(specs, { maxShardBytes: 1e12 });
  const sink = memorySink();
  const writer = new SafetensorsStreamWriter(sink, layout);
  for (const [name, , data] of tensors) await writer.writeTensor(name, bf16(data));
  await writer.finish();
  const config = {
    architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', hidden_size: d, intermediate_size: F,
    num_hidden_layers: layers, num_attention_heads: H, num_key_value_heads: KV, vocab_size: V,
    rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, hidden_act: 'silu', torch_dtype: 'bfloat16',
  };
  return memoryModelSource({ 'config.json': JSON.stringify(config), ...sink.files }, 'tiny-qwen2');
}
