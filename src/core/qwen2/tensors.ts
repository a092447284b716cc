/**
 * The Qwen2ForCausalLM tensor description, written once as data (SPEC §2): every tensor's name,
 * shape and role, and for each projection which input it reads, which RMSNorm is fused into it
 * and how QuaRot rotates it (SPEC §3). The plan, both forward passes, the demo generator and the
 * tests derive names and shapes from here.
 */
import type { Qwen2Dims } from './config';

export const PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type ProjName = (typeof PROJECTIONS)[number];

export const LAYER_NORMS = ['input_layernorm', 'post_attention_layernorm'] as const;
export type LayerNormName = (typeof LAYER_NORMS)[number];

/**
 * The activations a layer's linears read. Projections that share one read the same matrix
 * (q/k/v, gate/up), so calibration statistics (GPTQ's Hessian) are collected once per input.
 *  - attn_in:  input_layernorm(x), hidden wide
 *  - attn_out: the attention output per head, heads·headDim wide
 *  - mlp_in:   post_attention_layernorm(x), hidden wide
 *  - mlp_mid:  silu(gate)·up, intermediate wide
 */
export const LINEAR_INPUTS = ['attn_in', 'attn_out', 'mlp_in', 'mlp_mid'] as const;
export type LinearInput = (typeof LINEAR_INPUTS)[number];

type Width = 'hidden' | 'intermediate' | 'q' | 'kv';

export interface ProjectionInfo {
  readonly module: 'self_attn' | 'mlp';
  readonly input: LinearInput;
  readonly out: Width;
  readonly in: Width;
  /** The checkpoint has a bias (q/k/v). */
  readonly bias: boolean;
  /** The RMSNorm whose γ is fused into the input columns. */
  readonly fusedNorm: LayerNormName | null;
  /** Which side the residual rotation Q acts on: input (W·Q, along rows) or output (Qᵀ·W, along columns). */
  readonly residualSide: 'input' | 'output';
  /** The per-head rotation R2: v_proj's output side (and its bias), o_proj's input side. */
  readonly headSide: 'input' | 'output' | null;
}

export const PROJECTION_INFO: Readonly<Record<ProjName, ProjectionInfo>> = {
  q_proj: { module: 'self_attn', input: 'attn_in', out: 'q', in: 'hidden', bias: true, fusedNorm: 'input_layernorm', residualSide: 'input', headSide: null },
  k_proj: { module: 'self_attn', input: 'attn_in', out: 'kv', in: 'hidden', bias: true, fusedNorm: 'input_layernorm', residualSide: 'input', headSide: null },
  v_proj: { module: 'self_attn', input: 'attn_in', out: 'kv', in: 'hidden', bias: true, fusedNorm: 'input_layernorm', residualSide: 'input', headSide: 'output' },
  o_proj: { module: 'self_attn', input: 'attn_out', out: 'hidden', in: 'q', bias: false, fusedNorm: null, residualSide: 'output', headSide: 'input' },
  gate_proj: { module: 'mlp', input: 'mlp_in', out: 'intermediate', in: 'hidden', bias: false, fusedNorm: 'post_attention_layernorm', residualSide: 'input', headSide: null },
  up_proj: { module: 'mlp', input: 'mlp_in', out: 'intermediate', in: 'hidden', bias: false, fusedNorm: 'post_attention_layernorm', residualSide: 'input', headSide: null },
  down_proj: { module: 'mlp', input: 'mlp_mid', out: 'hidden', in: 'intermediate', bias: false, fusedNorm: null, residualSide: 'output', headSide: null },
};

/** The projections that read each linear input, in PROJECTIONS order. */
export const PROJECTIONS_BY_INPUT: Readonly<Record<LinearInput, readonly ProjName[]>> = {
  attn_in: ['q_proj', 'k_proj', 'v_proj'],
  attn_out: ['o_proj'],
  mlp_in: ['gate_proj', 'up_proj'],
  mlp_mid: ['down_proj'],
};

function width(dims: Qwen2Dims, w: Width): number {
  switch (w) {
    case 'hidden': return dims.hidden;
    case 'intermediate': return dims.intermediate;
    case 'q': return dims.heads * dims.headDim;
    case 'kv': return dims.kvHeads * dims.headDim;
  }
}

/** `[out, in]` of a projection's weight. */
export function projectionShape(dims: Qwen2Dims, proj: ProjName): [number, number] {
  const p = PROJECTION_INFO[proj];
  return [width(dims, p.out), width(dims, p.in)];
}

/** Width of a linear input (the `in` of the projections that read it). */
export function linearInputWidth(dims: Qwen2Dims, input: LinearInput): number {
  return projectionShape(dims, PROJECTIONS_BY_INPUT[input][0])[1];
}

/** The parts of a projection in a checkpoint (weight, bias) and in an ANEMLL SP bundle (scales, codebook). */
export type ProjectionPart = 'weight' | 'bias' | 'input_scales' | 'output_scales' | 'codebook';

export const EMBEDDING = 'model.embed_tokens.weight';
export const FINAL_NORM = 'model.norm.weight';
export const LM_HEAD = 'lm_head.weight';

export const layerPrefix = (layer: number): string => `model.layers.${layer}`;
export const layerNormName = (layer: number, norm: LayerNormName): string => `${layerPrefix(layer)}.${norm}.weight`;
export const projectionPrefix = (layer: number, proj: ProjName): string => `${layerPrefix(layer)}.${PROJECTION_INFO[proj].module}.${proj}`;
export const projectionName = (layer: number, proj: ProjName, part: ProjectionPart = 'weight'): string => `${projectionPrefix(layer, proj)}.${part}`;

export type TensorRole = 'embedding' | 'lm_head' | 'norm' | 'weight' | 'bias';

/** One tensor of a Qwen2ForCausalLM checkpoint. */
export interface Qwen2Tensor {
  readonly name: string;
  readonly shape: number[];
  readonly role: TensorRole;
  readonly layer: number | null;
  readonly proj: ProjName | null;
  /** For norms: which one (the final norm is 'norm'). */
  readonly norm: LayerNormName | 'norm' | null;
}

/**
 * Every tensor the checkpoint holds, in forward order (embedding; per layer: input norm, q/k/v
 * with their biases, o, post-attention norm, gate, up, down; final norm; the LM head when the
 * checkpoint has its own — untied, or tied but stored anyway).
 */
export function qwen2Tensors(dims: Qwen2Dims, opts: { lmHead: boolean }): Qwen2Tensor[] {
  const d = dims.hidden;
  const out: Qwen2Tensor[] = [{ name: EMBEDDING, shape: [dims.vocab, d], role: 'embedding', layer: null, proj: null, norm: null }];
  const norm = (layer: number, n: LayerNormName): Qwen2Tensor => ({ name: layerNormName(layer, n), shape: [d], role: 'norm', layer, proj: null, norm: n });
  for (let layer = 0; layer < dims.layers; layer++) {
    for (const proj of PROJECTIONS) {
      if (proj === 'q_proj') out.push(norm(layer, 'input_layernorm'));
      if (proj === 'gate_proj') out.push(norm(layer, 'post_attention_layernorm'));
      const shape = projectionShape(dims, proj);
      out.push({ name: projectionName(layer, proj), shape, role: 'weight', layer, proj, norm: null });
      if (PROJECTION_INFO[proj].bias) out.push({ name: projectionName(layer, proj, 'bias'), shape: [shape[0]], role: 'bias', layer, proj, norm: null });
    }
  }
  out.push({ name: FINAL_NORM, shape: [d], role: 'norm', layer: null, proj: null, norm: 'norm' });
  if (opts.lmHead) out.push({ name: LM_HEAD, shape: [dims.vocab, d], role: 'lm_head', layer: null, proj: null, norm: null });
  return out;
}

const PROJECTION_RE = /^model\.layers\.(\d+)\.(self_attn|mlp)\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.(weight|bias|input_scales|output_scales|codebook)$/;

/** The layer, projection and part of a projection tensor's name; null for any other name. */
export function parseProjectionName(name: string): { layer: number; proj: ProjName; part: ProjectionPart } | null {
  const m = PROJECTION_RE.exec(name);
  if (!m) return null;
  const proj = m[3] as ProjName;
  if (PROJECTION_INFO[proj].module !== m[2]) return null;
  return { layer: Number(m[1]), proj, part: m[4] as ProjectionPart };
}
