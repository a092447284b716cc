/**
 * What a run would do, from config.json and the safetensors headers only (no tensor data): the
 * model's size, the bundle's size, the Hadamard chosen — or why the chosen settings cannot run,
 * with settings that can. The app shows it before Run; the CLI checks it before writing anything.
 */
import { InputError } from '../errors';
import { factorHadamardSize } from '../hadamard/factor';
import type { ModelSource } from '../ports';
import { validBlockSizes, type QuantSettings } from '../settings';
import type { PlanItem, ProjName } from '../qwen2/plan';
import { planSafetensorsShards } from '../safetensors/writer';
import { DEFAULT_MAX_SHARD_BYTES, PASS_THROUGH_FILES, prepareRun } from './run';

/** A change of settings that makes a refused run possible, for a one-click "apply". */
export interface SettingsSuggestion {
  label: string;
  settings: Partial<QuantSettings>;
}

/**
 * One matrix of the plan with the bits it will get as far as the headers tell: the run's bits,
 * or an explicit override's. A W8 budget is not in it (calibration decides; see `budget`).
 */
export interface PlannedTensor {
  name: string;
  kind: 'embedding' | 'lm_head' | 'projection';
  layer: number | null;
  proj: ProjName | null;
  rows: number;
  cols: number;
  /** 4 or 8 when quantized; 16 = written unquantized (F16/F32). */
  bits: 4 | 8 | 16;
  /** The `.codebook` of a quantized projection; null for the embedding (grid, no codebook tensor) and unquantized ones. */
  codebook: 'uniform' | 'learned' | null;
  /** An explicit override set its bits (they differ from the run's choice). */
  overridden: boolean;
  /** A 4-bit projection the W8 budget may raise to 8 bits (ranked on calibration data during the run). */
  budgetCandidate: boolean;
}

export interface Preflight {
  label: string;
  repo?: string;
  revision?: string;
  files: { path: string; size: number }[];
  /** Sum of every file's size. */
  fileBytes: number;
  /** Tensor data the run reads. */
  tensorBytes: number;
  tensorCount: number;
  /** Plan items (norms + matrices) the run processes. */
  planItems: number;
  quantizedCount: number;
  parameters: number;
  /** Elements of the largest tensor (what the run holds in memory at once). */
  largestTensor: number;
  /** The largest decoder-layer matrix's element count (what the app's memory estimate holds whole). */
  largestProjection: number;
  dtypes: string[];
  /** Bytes of the bundle's safetensors files plus pass-through files (README/JSON excluded). */
  outputBytes: number;
  config: { hidden: number; intermediate: number; layers: number; heads: number; kvHeads: number; headDim: number; vocab: number; tied: boolean };
  /** Hadamard chosen for the residual stream (null without rotation). */
  hadamard: string | null;
  /** Why a run with these settings would fail (the run is refused); null when it can run. */
  blocking: string | null;
  /** Settings that would run, when `blocking` is set. */
  suggestions: SettingsSuggestion[];
  /** Block sizes rotation 'block' accepts for this model (powers of two dividing the hidden size). */
  blockSizes: number[];
  /** Every matrix with its planned bits (layers × projections, embeddings, head). */
  tensors: PlannedTensor[];
  /** Why the bits overrides cannot apply to this model (a pattern matching no quantized tensor); null when they do. Also in `blocking`. */
  overrideError: string | null;
  /** With a W8 budget at 4 bits: the parameters it is a fraction of (all 4-bit projections) and at most how many go to 8 bits. */
  budget: { totalParams: number; maxParams8: number } | null;
}

export interface PreflightOptions {
  /** The model's files with sizes, when the source knows them without opening each (a Hub listing). */
  files?: { path: string; size: number }[];
  signal?: AbortSignal;
}

/** Throws InputError when the model itself cannot be processed (no config, bad headers); a rotation the model refuses is reported in `blocking`. */
export async function preflight(source: ModelSource, settings: QuantSettings, opts: PreflightOptions = {}): Promise<Preflight> {
  const { signal } = opts;
  // Without rotation or overrides first: it checks everything but the Hadamard constructions and the patterns.
  const prep = await prepareRun(source, { ...settings, rotation: 'none', bitsOverride: '' }, signal);
  const { config, model } = prep;
  let plan = prep.plan;
  let overrideError: string | null = null;
  let runSettings = settings;
  if (settings.bitsOverride) {
    try {
      plan = (await prepareRun(source, { ...settings, rotation: 'none' }, signal)).plan;
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      overrideError = e.message;
      runSettings = { ...settings, bitsOverride: '' }; // the rest of the preflight as if there were none
    }
  }
  const files = opts.files ? [...opts.files] : [];
  if (!opts.files) for (const p of await source.listFiles()) files.push({ path: p, size: (await source.open(p)).size });

  let hadamard: string | null = null;
  let blocking: string | null = null;
  let outPlan = plan;
  const suggestions: SettingsSuggestion[] = [];
  const blockSizes = validBlockSizes(config.hidden);
  if (settings.rotation !== 'none') {
    try {
      outPlan = (await prepareRun(source, runSettings, signal)).plan;
      const n = settings.rotation === 'full' ? config.hidden : settings.blockSize;
      const { k, pow2 } = factorHadamardSize(n);
      hadamard = k === 1 ? `H${n} (Sylvester)` : `H${k}⊗H${pow2} = H${n}`;
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      blocking = `rotation ${settings.rotation}${settings.rotation === 'block' ? ` (block size ${settings.blockSize})` : ''}: ${e.message}`;
      suggestions.push(...rotationSuggestions(config.hidden, config.headDim, settings, blockSizes));
    }
  }
  if (overrideError) blocking = blocking ? `${blocking}; ${overrideError}` : overrideError;
  const tensors = plannedTensors(prep.plan.items, outPlan.items, settings);
  const candidates = tensors.filter((t) => t.budgetCandidate);
  const budgetTotal = candidates.reduce((n, t) => n + t.rows * t.cols, 0);
  const budget = settings.bits === 4 && settings.w8Budget > 0 ? { totalParams: budgetTotal, maxParams8: Math.floor(settings.w8Budget * budgetTotal) } : null;
  const outLayout = planSafetensorsShards(outPlan.items.flatMap((it) => it.outputs), { maxShardBytes: DEFAULT_MAX_SHARD_BYTES });
  const passThrough = files.filter((f) => PASS_THROUGH_FILES.includes(f.path)).reduce((s, f) => s + f.size, 0);
  let parameters = 0;
  let largestTensor = 0;
  let largestProjection = 0;
  const dtypes = new Set<string>();
  for (const [name, { info }] of model.tensors) {
    const n = info.shape.reduce((a, b) => a * b, 1);
    parameters += n;
    largestTensor = Math.max(largestTensor, n);
    if (info.shape.length === 2 && name.startsWith('model.layers.')) largestProjection = Math.max(largestProjection, n);
    dtypes.add(info.dtype);
  }
  return {
    label: source.label,
    repo: source.repo,
    revision: source.revision,
    files,
    fileBytes: files.reduce((s, f) => s + f.size, 0),
    tensorBytes: model.totalBytes,
    tensorCount: model.tensors.size,
    planItems: outPlan.items.length,
    quantizedCount: outPlan.quantizedCount,
    parameters,
    largestTensor,
    largestProjection,
    dtypes: [...dtypes].sort(),
    outputBytes: outLayout.files.reduce((s, f) => s + f.size, 0) + passThrough,
    config: {
      hidden: config.hidden, intermediate: config.intermediate, layers: config.layers, heads: config.heads,
      kvHeads: config.kvHeads, headDim: config.headDim, vocab: config.vocab, tied: config.tieWordEmbeddings,
    },
    hadamard,
    blocking,
    suggestions,
    blockSizes,
    tensors,
    overrideError,
    budget,
  };
}

/** The plan's matrices with their bits; `base` is the plan without overrides (to tell what they changed). */
function plannedTensors(base: readonly PlanItem[], items: readonly PlanItem[], s: QuantSettings): PlannedTensor[] {
  const before = new Map(base.map((it) => [it.name, it.quant?.bits ?? 16]));
  return items
    .filter((it): it is PlanItem & { kind: PlannedTensor['kind'] } => it.kind !== 'norm')
    .map((it) => {
      const bits = it.quant?.bits ?? 16;
      return {
        name: it.name, kind: it.kind, layer: it.layer, proj: it.proj, rows: it.rows, cols: it.cols, bits,
        codebook: it.quant && it.kind === 'projection' ? it.quant.codebook : null,
        overridden: (before.get(it.name) ?? 16) !== bits,
        // The sensitivity pass ranks the 4-bit projections; an override wins over the budget.
        budgetCandidate: s.bits === 4 && it.kind === 'projection' && bits === 4 && (before.get(it.name) ?? 16) === 4,
      };
    });
}

function constructible(n: number): boolean {
  try {
    factorHadamardSize(n);
    return true;
  } catch {
    return false;
  }
}

/** Settings that rotate this model after all (block rotation at the largest valid size), else none. */
function rotationSuggestions(hidden: number, headDim: number, s: QuantSettings, blockSizes: number[]): SettingsSuggestion[] {
  const out: SettingsSuggestion[] = [];
  if (constructible(headDim)) {
    const usable = blockSizes.filter((b) => b !== s.blockSize || s.rotation !== 'block');
    const largest = usable[usable.length - 1];
    if (largest !== undefined && !(s.rotation === 'full' && largest === hidden)) {
      out.push({ label: `use rotation "block" with block size ${largest}`, settings: { rotation: 'block', blockSize: largest } });
    }
  }
  out.push({ label: 'use rotation "none" (plain RTN)', settings: { rotation: 'none' } });
  return out;
}

/** Refuse settings the model cannot run with, before a sink is opened (the CLI; the app disables Run). */
export function assertRunnable(pf: Preflight): void {
  if (pf.overrideError && pf.blocking === pf.overrideError) throw new InputError(pf.overrideError);
  if (pf.blocking) {
    const missing = pf.suggestions.filter((s) => !pf.blocking!.includes(`block size ${s.settings.blockSize}`) || s.settings.rotation !== 'block');
    const hint = missing.length ? ` (or ${missing.map((s) => s.label).join(', or ')})` : '';
    throw new InputError(`${pf.label}: ${pf.blocking}${hint}`, { file: 'config.json' });
  }
}
