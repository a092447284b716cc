import { clipForMessage, InputError } from '../errors';
import type { QuantSettings } from '../settings';
import type { Dtype, TensorInfo } from '../safetensors/types';
import type { TensorSpec } from '../safetensors/writer';
import type { Qwen2Config } from './config';

export const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type ProjName = (typeof PROJECTIONS)[number];

/** Which rotation a transform uses: the d-wide residual Q, or the per-head R2 (D-wide segments). */
export type RotationKind = 'residual' | 'head';

/** One unit of streaming work: a source tensor (plus its bias) and everything done to it. */
export interface PlanItem {
  kind: 'embedding' | 'lm_head' | 'norm' | 'projection';
  /** Output tensor name (the `.weight` for projections). */
  name: string;
  layer: number | null;
  proj: ProjName | null;
  /** Source tensor read (a tied head reads the embedding). */
  source: string;
  /** The q/k/v bias source tensor. */
  biasSource: string | null;
  rows: number;
  cols: number;
  /** RMSNorm γ fused into the columns (W ← W·diag(γ)). */
  fuseNorm: string | null;
  /** Transform along every row (input side W·Q, or o_proj's per-head R2). */
  rotateRows: RotationKind | null;
  /** Transform along every column (output side Qᵀ·W, or v_proj's per-head R2ᵀ). */
  rotateCols: RotationKind | null;
  /** v_proj's bias gets (I ⊗ R2ᵀ)·b. */
  rotateBias: RotationKind | null;
  quantize: boolean;
  /** A norm whose γ was fused away: written as ones. */
  writeOnes: boolean;
  /** The output tensors this item writes, in file order. */
  outputs: TensorSpec[];
}

export interface QuantPlan {
  items: PlanItem[];
  writesLmHead: boolean;
  rotated: boolean;
  /** Number of quantized tensors (projections + embedding when quantized). */
  quantizedCount: number;
  outputDtype: 'F16' | 'F32';
}

type SourceTensor = { file: string; info: TensorInfo };

/** A tied model's LM head is derived from the embedding already in memory, not read from the source. */
export function isDerivedHead(it: PlanItem): boolean {
  return it.kind === 'lm_head' && it.source !== 'lm_head.weight';
}

const shapeText = (s: number[]): string => `[${s.join(', ')}]`;

/**
 * Validate the checkpoint's tensors against the config and build the streaming plan
 * (SPEC §3 steps 1–4, FORMAT.md keys). Items come in source order (file, then offset) so
 * range reads move forward through each shard; a tied LM head follows the embedding it is
 * derived from.
 */
export function buildPlan(cfg: Qwen2Config, settings: QuantSettings, tensors: Map<string, SourceTensor>): QuantPlan {
  const { hidden: d, intermediate: F, heads: H, kvHeads: KV, headDim: D, vocab: V, layers } = cfg;
  const rotated = settings.rotation !== 'none';
  const quantizing = settings.bits !== 16;
  const outputDtype: 'F16' | 'F32' = settings.dtype === 'f32' ? 'F32' : 'F16';

  // Checked before the expected-tensor map is built: num_hidden_layers 1e9 must not allocate 12e9
  // names. Loose (a layer has 12 tensors), so a few missing tensors still get the specific message below.
  if (layers > tensors.size) {
    throw new InputError(
      `config.json: num_hidden_layers is ${layers}, but the checkpoint holds only ${tensors.size} tensors (each Qwen2 layer has 12); config.json does not match these weights`,
      { file: 'config.json' },
    );
  }
  // Every tensor Qwen2ForCausalLM has, with its shape.
  const expected = new Map<string, number[]>();
  expected.set('model.embed_tokens.weight', [V, d]);
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}`;
    expected.set(`${p}.input_layernorm.weight`, [d]);
    expected.set(`${p}.post_attention_layernorm.weight`, [d]);
    expected.set(`${p}.self_attn.q_proj.weight`, [H * D, d]);
    expected.set(`${p}.self_attn.q_proj.bias`, [H * D]);
    expected.set(`${p}.self_attn.k_proj.weight`, [KV * D, d]);
    expected.set(`${p}.self_attn.k_proj.bias`, [KV * D]);
    expected.set(`${p}.self_attn.v_proj.weight`, [KV * D, d]);
    expected.set(`${p}.self_attn.v_proj.bias`, [KV * D]);
    expected.set(`${p}.self_attn.o_proj.weight`, [d, H * D]);
    expected.set(`${p}.mlp.gate_proj.weight`, [F, d]);
    expected.set(`${p}.mlp.up_proj.weight`, [F, d]);
    expected.set(`${p}.mlp.down_proj.weight`, [d, F]);
  }
  expected.set('model.norm.weight', [d]);
  const sourceHasHead = tensors.has('lm_head.weight');
  if (!cfg.tieWordEmbeddings || sourceHasHead) expected.set('lm_head.weight', [V, d]);

  const missing: string[] = [];
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) { missing.push(name); continue; }
    if (t.info.shape.length !== shape.length || t.info.shape.some((v, j) => v !== shape[j])) {
      throw new InputError(
        `tensor ${name} in ${t.file} has shape ${shapeText(t.info.shape)}; config.json implies ${shapeText(shape)}`,
        { file: t.file, tensor: name },
      );
    }
  }
  if (missing.length > 0) {
    const more = missing.length > 5 ? ` and ${missing.length - 5} more` : '';
    throw new InputError(`the checkpoint is missing ${missing.length} tensor(s) a Qwen2 model with this config needs: ${missing.slice(0, 5).join(', ')}${more}`, { tensor: missing[0] });
  }
  for (const [name, t] of tensors) {
    if (!expected.has(name)) {
      throw new InputError(`unexpected tensor ${clipForMessage(name)} in ${t.file}: not part of a Qwen2ForCausalLM with this config.json`, { file: t.file, tensor: clipForMessage(name) });
    }
  }

  const quantizeEmbedding = quantizing && settings.quantizeEmbeddings;
  // The head is written whenever it differs from the embedding, or the source has its own.
  const writesLmHead = sourceHasHead || !cfg.tieWordEmbeddings || rotated || quantizeEmbedding;
  const items: PlanItem[] = [];
  const tensorSpec = (name: string, shape: number[]): TensorSpec => ({ name, dtype: outputDtype, shape });

  for (const [name] of expected) {
    if (name.endsWith('.bias')) continue; // travels with its projection
    const src = tensors.get(name)!;
    const [rows, cols] = src.info.shape.length === 2 ? src.info.shape : [src.info.shape[0], 1];
    const base = { name, source: name, biasSource: null, rows, cols, fuseNorm: null, rotateRows: null, rotateCols: null, rotateBias: null, quantize: false, writeOnes: false, layer: null, proj: null } as const;
    if (name === 'model.embed_tokens.weight') {
      items.push({ ...base, kind: 'embedding', rotateRows: rotated ? 'residual' : null, quantize: quantizeEmbedding, outputs: [tensorSpec(name, [V, d])] });
    } else if (name === 'lm_head.weight') {
      items.push(headItem(name, rows, cols));
    } else if (name.endsWith('layernorm.weight') || name === 'model.norm.weight') {
      const layer = name === 'model.norm.weight' ? null : Number(name.split('.')[2]);
      items.push({ ...base, kind: 'norm', layer, writeOnes: rotated, outputs: [tensorSpec(name, [d])] });
    } else {
      const parts = name.split('.');
      const layer = Number(parts[2]);
      const proj = parts[4] as ProjName;
      const prefix = name.slice(0, -'.weight'.length);
      const item: PlanItem = {
        ...base,
        kind: 'projection',
        layer,
        proj,
        biasSource: proj === 'q_proj' || proj === 'k_proj' || proj === 'v_proj' ? `${prefix}.bias` : null,
        quantize: quantizing,
        outputs: [],
      };
      if (rotated) {
        if (proj === 'q_proj' || proj === 'k_proj' || proj === 'v_proj') {
          item.fuseNorm = `model.layers.${layer}.input_layernorm.weight`;
          item.rotateRows = 'residual';
          if (proj === 'v_proj') { item.rotateCols = 'head'; item.rotateBias = 'head'; }
        } else if (proj === 'gate_proj' || proj === 'up_proj') {
          item.fuseNorm = `model.layers.${layer}.post_attention_layernorm.weight`;
          item.rotateRows = 'residual';
        } else if (proj === 'o_proj') {
          item.rotateRows = 'head';
          item.rotateCols = 'residual';
        } else {
          item.rotateCols = 'residual';
        }
      }
      item.outputs.push(tensorSpec(name, [rows, cols]));
      if (quantizing) {
        item.outputs.push(
          tensorSpec(`${prefix}.bias`, [rows]),
          tensorSpec(`${prefix}.input_scales`, [1, cols]),
          tensorSpec(`${prefix}.output_scales`, [rows, 1]),
          tensorSpec(`${prefix}.codebook`, [2 ** settings.bits]),
        );
      } else if (item.biasSource) {
        item.outputs.push(tensorSpec(`${prefix}.bias`, [rows]));
      }
      items.push(item);
    }
  }

  function headItem(source: string, rows: number, cols: number): PlanItem {
    return {
      kind: 'lm_head', name: 'lm_head.weight', layer: null, proj: null, source, biasSource: null, rows, cols,
      fuseNorm: rotated ? 'model.norm.weight' : null,
      rotateRows: rotated ? 'residual' : null, rotateCols: null, rotateBias: null,
      quantize: false, writeOnes: false, outputs: [tensorSpec('lm_head.weight', [V, d])],
    };
  }

  if (writesLmHead && !sourceHasHead) items.push(headItem('model.embed_tokens.weight', V, d));

  // Streaming order. Items are grouped — one group per layer, the embedding (with a tied head),
  // and the head with the final norm — and a group's norms come first, so every γ is read just
  // before the linears it is fused into and nothing waits for a norm further on. Groups follow
  // their first tensor's position (shard file, byte offset) and so do the items inside a group:
  // range reads move forward through each shard.
  const fileOrder = new Map<string, number>();
  for (const f of [...tensors.values()].map((t) => t.file).sort()) if (!fileOrder.has(f)) fileOrder.set(f, fileOrder.size);
  const pos = (it: PlanItem): number => {
    const t = tensors.get(it.source)!;
    return fileOrder.get(t.file)! * 2 ** 52 + t.info.begin;
  };
  const tiedHead = writesLmHead && !sourceHasHead;
  const group = (it: PlanItem): string => {
    if (it.layer !== null) return `layer ${it.layer}`;
    if (it.kind === 'embedding' || (it.kind === 'lm_head' && tiedHead)) return 'embedding';
    if (it.name === 'model.norm.weight') return tiedHead && rotated ? 'embedding' : 'head';
    return 'head';
  };
  const groupStart = new Map<string, number>();
  for (const it of items) {
    if (it.kind === 'lm_head' && tiedHead) continue; // derived, not read
    const g = group(it);
    groupStart.set(g, Math.min(groupStart.get(g) ?? Infinity, pos(it)));
  }
  const rank = (it: PlanItem): number[] => [
    groupStart.get(group(it))!,
    it.kind === 'norm' ? 0 : 1,
    it.kind === 'lm_head' && tiedHead ? Infinity : pos(it), // a tied head follows the embedding
  ];
  items.sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    return ra[0] - rb[0] || ra[1] - rb[1] || (ra[2] === rb[2] ? 0 : ra[2] < rb[2] ? -1 : 1);
  });
  const quantizedCount = items.filter((it) => it.quantize).length;
  return { items, writesLmHead, rotated, quantizedCount, outputDtype };
}
