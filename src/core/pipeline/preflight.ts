/**
 * What a run would do, from config.json and the safetensors headers only (no tensor data): the
 * model's size, the bundle's size, the Hadamard chosen — or why the chosen settings cannot run,
 * with settings that can. The app shows it before Run; the CLI checks it before writing anything.
 */
import { InputError } from '../errors';
import { factorHadamardSize } from '../hadamard/factor';
import type { ModelSource } from '../ports';
import { validBlockSizes, type QuantSettings } from '../settings';
import { planSafetensorsShards } from '../safetensors/writer';
import { DEFAULT_MAX_SHARD_BYTES, PASS_THROUGH_FILES, prepareRun } from './run';

/** A change of settings that makes a refused run possible, for a one-click "apply". */
export interface SettingsSuggestion {
  label: string;
  settings: Partial<QuantSettings>;
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
}

export interface PreflightOptions {
  /** The model's files with sizes, when the source knows them without opening each (a Hub listing). */
  files?: { path: string; size: number }[];
  signal?: AbortSignal;
}

/** Throws InputError when the model itself cannot be processed (no config, bad headers); a rotation the model refuses is reported in `blocking`. */
export async function preflight(source: ModelSource, settings: QuantSettings, opts: PreflightOptions = {}): Promise<Preflight> {
  const { signal } = opts;
  // Without rotation first: it checks everything but the Hadamard constructions.
  const prep = await prepareRun(source, { ...settings, rotation: 'none' }, signal);
  const { config, model, plan } = prep;
  const files = opts.files ? [...opts.files] : [];
  if (!opts.files) for (const p of await source.listFiles()) files.push({ path: p, size: (await source.open(p)).size });

  let hadamard: string | null = null;
  let blocking: string | null = null;
  let outPlan = plan;
  const suggestions: SettingsSuggestion[] = [];
  const blockSizes = validBlockSizes(config.hidden);
  if (settings.rotation !== 'none') {
    try {
      outPlan = (await prepareRun(source, settings, signal)).plan;
      const n = settings.rotation === 'full' ? config.hidden : settings.blockSize;
      const { k, pow2 } = factorHadamardSize(n);
      hadamard = k === 1 ? `H${n} (Sylvester)` : `H${k}⊗H${pow2} = H${n}`;
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      blocking = `rotation ${settings.rotation}${settings.rotation === 'block' ? ` (block size ${settings.blockSize})` : ''}: ${e.message}`;
      suggestions.push(...rotationSuggestions(config.hidden, config.headDim, settings, blockSizes));
    }
  }
  const outLayout = planSafetensorsShards(outPlan.items.flatMap((it) => it.outputs), { maxShardBytes: DEFAULT_MAX_SHARD_BYTES });
  const passThrough = files.filter((f) => PASS_THROUGH_FILES.includes(f.path)).reduce((s, f) => s + f.size, 0);
  let parameters = 0;
  let largestTensor = 0;
  const dtypes = new Set<string>();
  for (const { info } of model.tensors.values()) {
    const n = info.shape.reduce((a, b) => a * b, 1);
    parameters += n;
    largestTensor = Math.max(largestTensor, n);
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
  };
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
  if (pf.blocking) {
    const missing = pf.suggestions.filter((s) => !pf.blocking!.includes(`block size ${s.settings.blockSize}`) || s.settings.rotation !== 'block');
    const hint = missing.length ? ` (or ${missing.map((s) => s.label).join(', or ')})` : '';
    throw new InputError(`${pf.label}: ${pf.blocking}${hint}`, { file: 'config.json' });
  }
}
