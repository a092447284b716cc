import { clipForMessage, InputError } from '../errors';
import type { Clip, QuantSettings, Scheme } from '../settings';
import type { TensorInfo } from '../safetensors/types';
import type { TensorSpec } from '../safetensors/writer';
import type { Qwen2Config } from './config';
import {
  EMBEDDING, FINAL_NORM, LM_HEAD, PROJECTION_INFO, layerNormName, projectionName, qwen2Tensors,
  type ProjName,
} from './tensors';

export { PROJECTIONS, type ProjName } from './tensors';

/** Which rotation a transform uses: the d-wide residual Q, or the per-head R2 (D-wide segments). */
export type RotationKind = 'residual' | 'head';

/**
 * How one tensor is quantized. Each plan item carries its own, so mixed precision (or a method per
 * tensor) is a change to the plan alone.
 */
export interface QuantChoice {
  bits: 4 | 8;
  scheme: Scheme;
  clip: Clip;
  /** Round-to-nearest, or GPTQ with calibration Hessians. */
  method: 'rtn' | 'gptq';
  /** The SP `.codebook`: the integer grid, or entries fitted to the tensor. */
  codebook: 'uniform' | 'learned';
  /** `input_scales`: one value per tensor (absent = 'uniform'), or fitted per input column (projections only). */
  inputScales?: 'uniform' | 'fitted';
}

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
  /** How it is quantized; null = written in the output dtype as it is. */
  quant: QuantChoice | null;
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

/** Per-tensor choice hook: given the default choice for an item, return the one to use (or null to keep it unquantized). */
export type ChooseQuant = (item: Readonly<PlanItem>, defaultChoice: QuantChoice) => QuantChoice | null;

/** A tied model's LM head is derived from the embedding already in memory, not read from the source. */
export function isDerivedHead(it: PlanItem): boolean {
  return it.kind === 'lm_head' && it.source !== LM_HEAD;
}

/** The quantization choice every item gets from run-wide settings. */
export function defaultQuantChoice(settings: QuantSettings): QuantChoice | null {
  if (settings.bits === 16) return null;
  return {
    bits: settings.bits, scheme: settings.scheme, clip: settings.clip, method: settings.method, codebook: settings.codebook,
    ...(settings.inputScales === 'fitted' ? { inputScales: 'fitted' as const } : {}),
  };
}

export interface PlanOptions {
  /** Per-tensor override of the run-wide choice (mixed precision, explicit overrides). */
  choose?: ChooseQuant;
  /**
   * 'source' (default for RTN): file order, so range reads move forward through each shard.
   * 'forward': embedding, then layers 0, 1, 2, …, then the head — what sequential GPTQ needs
   * (a checkpoint stores layer 10 before layer 2); chosen automatically when any item uses GPTQ.
   */
  order?: 'source' | 'forward';
}

const shapeText = (s: number[]): string => `[${s.join(', ')}]`;

/**
 * Validate the checkpoint's tensors against the config and build the streaming plan
 * (SPEC §3 steps 1–4, FORMAT.md keys). Items come in source order (file, then offset) so
 * range reads move forward through each shard; a tied LM head follows the embedding it is
 * derived from.
 */
export function buildPlan(cfg: Qwen2Config, settings: QuantSettings, tensors: Map<string, SourceTensor>, opts: PlanOptions = {}): QuantPlan {
  const { choose } = opts;
  const { hidden: d, vocab: V, layers } = cfg;
  const rotated = settings.rotation !== 'none';
  const runChoice = defaultQuantChoice(settings);
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
  const sourceHasHead = tensors.has(LM_HEAD);
  const described = qwen2Tensors(cfg, { lmHead: !cfg.tieWordEmbeddings || sourceHasHead });
  const expected = new Map(described.map((t) => [t.name, t]));

  const missing: string[] = [];
  for (const [name, { shape }] of expected) {
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

  const quantizeEmbedding = runChoice !== null && settings.quantizeEmbeddings;
  // The head is written whenever it differs from the embedding, or the source has its own.
  const writesLmHead = sourceHasHead || !cfg.tieWordEmbeddings || rotated || quantizeEmbedding;
  const items: PlanItem[] = [];
  const tensorSpec = (name: string, shape: number[]): TensorSpec => ({ name, dtype: outputDtype, shape });
  const decide = (item: PlanItem, wanted: boolean): QuantChoice | null => {
    if (!wanted || !runChoice) return null;
    // Embeddings keep round-to-nearest: GPTQ applies to the linears calibration data passes through.
    const base: QuantChoice = item.kind === 'projection' ? { ...runChoice } : { ...runChoice, method: 'rtn', codebook: 'uniform', inputScales: 'uniform' };
    return choose ? choose(item, base) : base;
  };

  for (const t of described) {
    if (t.role === 'bias') continue; // travels with its projection
    const [rows, cols] = t.shape.length === 2 ? t.shape : [t.shape[0], 1];
    const base = {
      name: t.name, source: t.name, biasSource: null, rows, cols, fuseNorm: null, rotateRows: null, rotateCols: null,
      rotateBias: null, quant: null, writeOnes: false, layer: t.layer, proj: t.proj,
    } as const;
    if (t.role === 'embedding') {
      const item: PlanItem = { ...base, kind: 'embedding', rotateRows: rotated ? 'residual' : null, outputs: [tensorSpec(t.name, [V, d])] };
      item.quant = decide(item, quantizeEmbedding);
      items.push(item);
    } else if (t.role === 'lm_head') {
      items.push(headItem(t.name, rows, cols));
    } else if (t.role === 'norm') {
      items.push({ ...base, kind: 'norm', writeOnes: rotated, outputs: [tensorSpec(t.name, [d])] });
    } else {
      const layer = t.layer!;
      const proj = t.proj!;
      const info = PROJECTION_INFO[proj];
      const item: PlanItem = {
        ...base,
        kind: 'projection',
        biasSource: info.bias ? projectionName(layer, proj, 'bias') : null,
        outputs: [],
      };
      if (rotated) {
        item.fuseNorm = info.fusedNorm ? layerNormName(layer, info.fusedNorm) : null;
        const head: RotationKind | null = info.headSide ? 'head' : null;
        item.rotateRows = info.residualSide === 'input' ? 'residual' : info.headSide === 'input' ? head : null;
        item.rotateCols = info.residualSide === 'output' ? 'residual' : info.headSide === 'output' ? head : null;
        item.rotateBias = info.bias && info.headSide === 'output' ? 'head' : null;
      }
      item.quant = decide(item, true);
      item.outputs.push(tensorSpec(t.name, [rows, cols]));
      if (item.quant) {
        item.outputs.push(
          tensorSpec(projectionName(layer, proj, 'bias'), [rows]),
          tensorSpec(projectionName(layer, proj, 'input_scales'), [1, cols]),
          tensorSpec(projectionName(layer, proj, 'output_scales'), [rows, 1]),
          tensorSpec(projectionName(layer, proj, 'codebook'), [2 ** item.quant.bits]),
        );
      } else if (item.biasSource) {
        item.outputs.push(tensorSpec(projectionName(layer, proj, 'bias'), [rows]));
      }
      items.push(item);
    }
  }

  function headItem(source: string, rows: number, cols: number): PlanItem {
    return {
      kind: 'lm_head', name: LM_HEAD, layer: null, proj: null, source, biasSource: null, rows, cols,
      fuseNorm: rotated ? FINAL_NORM : null,
      rotateRows: rotated ? 'residual' : null, rotateCols: null, rotateBias: null,
      quant: null, writeOnes: false, outputs: [tensorSpec(LM_HEAD, [V, d])],
    };
  }

  if (writesLmHead && !sourceHasHead) items.push(headItem(EMBEDDING, V, d));

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
    if (it.name === FINAL_NORM) return tiedHead && rotated ? 'embedding' : 'head';
    return 'head';
  };
  const groupStart = new Map<string, number>();
  for (const it of items) {
    if (it.kind === 'lm_head' && tiedHead) continue; // derived, not read
    const g = group(it);
    groupStart.set(g, Math.min(groupStart.get(g) ?? Infinity, pos(it)));
  }
  const forwardOrder = opts.order === 'forward' || items.some((it) => it.quant?.method === 'gptq');
  const groupRank = (it: PlanItem): number => {
    if (!forwardOrder) return groupStart.get(group(it))!;
    const g = group(it);
    return g === 'embedding' ? -1 : g === 'head' ? layers : it.layer!;
  };
  // In forward order a layer's projections also come in compute order (q, k, v, o, gate, up, down):
  // true-sequential GPTQ finishes them, and the writer takes them, in that order.
  const describedIndex = new Map(described.map((t, i) => [t.name, i]));
  const rank = (it: PlanItem): number[] => [
    groupRank(it),
    it.kind === 'norm' ? 0 : 1,
    it.kind === 'lm_head' && tiedHead ? Infinity : forwardOrder ? describedIndex.get(it.source)! : pos(it), // a tied head follows the embedding
  ];
  items.sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    return ra[0] - rb[0] || ra[1] - rb[1] || (ra[2] === rb[2] ? 0 : ra[2] < rb[2] ? -1 : 1);
  });
  const quantizedCount = items.filter((it) => it.quant !== null).length;
  return { items, writesLmHead, rotated, quantizedCount, outputDtype };
}
