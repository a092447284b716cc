/**
 * The quality check of a bundle against its original (SPEC §7): perplexity of both on the same
 * token windows, mean KL(original ‖ quantized) per prediction, top-1 agreement, and a greedy
 * generation of each from a prompt. Runs the WebGPU forward when asked (and available), the
 * CPU forward otherwise; a GPU that fails (no adapter, device lost, out of memory) falls back to
 * the CPU with a notice. Browser and Node alike; the UI panel calls runQualityCheck.
 */
import { isGpuUnavailable } from '../gpu/errors';
import { createGpuRuntime, type GpuRuntime } from '../gpu/runtime';
import { CancelledError, InputError, throwIfAborted } from '../core/errors';
import type { ModelSource } from '../core/ports';
import type { Activation, Qwen2Forward } from './forward';
import { createQwen2Cpu } from './forward-cpu';
import { createQwen2WebGpu } from './forward-webgpu';
import { eosIds, lazyWeights, loadAllWeights, mapWeights, openEvalModel, type EvalModel } from './load-model';
import { evaluate, greedy } from './perplexity';
import { loadTokenizer, type TextTokenizer } from './tokenizer';

export type EvalDevice = 'cpu' | 'webgpu';

export interface QualityProgress {
  /** 'open' | 'load-original' | 'load-bundle' | 'tokenize' | 'evaluate' | 'generate' */
  stage: string;
  done: number;
  total: number;
}

export interface QualityCheckOptions {
  original: ModelSource;
  bundle: ModelSource;
  /** Pre-tokenized evaluation ids; or `text`, tokenized once with the bundle's (else original's) tokenizer. */
  tokens?: number[];
  text?: string;
  /** What the text is, for the report ("WikiText-2 raw test"). */
  textLabel?: string;
  seqlen: number;
  /** Windows to evaluate (the first N); undefined = all. */
  windows?: number;
  prompt?: string;
  /** New tokens to generate from `prompt` (default 20 when a prompt is given). */
  genTokens?: number;
  device?: EvalDevice;
  /**
   * The GPU runtime to run on (Node: createNodeGpuRuntime(); it may be shared with a quantization
   * backend). Without it, 'webgpu' creates one on navigator.gpu and destroys it at the end.
   */
  gpu?: GpuRuntime;
  /** GPU weight budget per model; above it layers are streamed. */
  gpuMemoryBudgetBytes?: number;
  signal?: AbortSignal;
  onProgress?: (p: QualityProgress) => void;
}

export interface QualityGeneration {
  prompt: string;
  original: string;
  quantized: string;
  originalIds: number[];
  quantizedIds: number[];
}

export interface QualityCheckResult {
  pplOriginal: number;
  pplQuantized: number;
  /** Mean KL(original ‖ quantized), nats per prediction. */
  klMean: number;
  /** Fraction of predictions whose argmax agrees. */
  top1Agreement: number;
  windows: number;
  seqlen: number;
  /** Next-token predictions scored: windows · (seqlen − 1). */
  predictions: number;
  /** Per-window mean NLL of each model. */
  windowNllOriginal: number[];
  windowNllQuantized: number[];
  generation?: QualityGeneration;
  /** Where it actually ran. */
  device: EvalDevice;
  adapter?: string;
  /** E.g. why WebGPU was not used. */
  notice?: string;
  textLabel?: string;
  /** Tokens of the evaluation text and the windows they allow. */
  tokenCount: number;
  windowsAvailable: number;
  elapsedMs: number;
}

type Runnable = Qwen2Forward<Activation, unknown>;

function pickTokenizer(a: EvalModel, b: EvalModel): TextTokenizer | undefined {
  const src = b.tokenizerJson ? b : a.tokenizerJson ? a : undefined;
  return src ? loadTokenizer(src.tokenizerJson!, src.tokenizerConfig) : undefined;
}

function checkCompatible(a: EvalModel, b: EvalModel): void {
  for (const k of ['hidden', 'intermediate', 'layers', 'heads', 'kvHeads', 'headDim', 'vocab'] as const) {
    if (a.dims[k] !== b.dims[k]) {
      throw new InputError(`the bundle does not match the original model: ${k} ${b.dims[k]} vs ${a.dims[k]} (${b.label} vs ${a.label})`);
    }
  }
}

async function buildModel(
  m: EvalModel,
  device: EvalDevice,
  gpu: GpuRuntime | undefined,
  opts: QualityCheckOptions,
  stage: string,
): Promise<Runnable> {
  const progress = (done: number, total: number) => opts.onProgress?.({ stage, done, total });
  if (device === 'webgpu') {
    const names = m.tensorNames.length;
    let read = 0;
    const lazy = lazyWeights(m, opts.signal);
    return createQwen2WebGpu(
      gpu!,
      m.dims,
      {
        has: lazy.has,
        get: async (n) => {
          const t = await lazy.get(n);
          if (read < names) progress(++read, names);
          return t;
        },
      },
      { memoryBudgetBytes: opts.gpuMemoryBudgetBytes },
    ) as Promise<Runnable>;
  }
  const w = await loadAllWeights(m, { signal: opts.signal, onTensor: progress });
  return createQwen2Cpu(m.dims, mapWeights(w)) as Runnable;
}

export async function runQualityCheck(opts: QualityCheckOptions): Promise<QualityCheckResult> {
  const t0 = performance.now();
  const { signal } = opts;
  throwIfAborted(signal);
  opts.onProgress?.({ stage: 'open', done: 0, total: 2 });
  const orig = await openEvalModel(opts.original, signal);
  opts.onProgress?.({ stage: 'open', done: 1, total: 2 });
  const bund = await openEvalModel(opts.bundle, signal);
  opts.onProgress?.({ stage: 'open', done: 2, total: 2 });
  checkCompatible(orig, bund);
  if (!Number.isInteger(opts.seqlen) || opts.seqlen < 2) throw new InputError(`seqlen ${opts.seqlen}: expected an integer ≥ 2`);
  if (opts.windows !== undefined && (!Number.isInteger(opts.windows) || opts.windows < 1)) {
    throw new InputError(`windows ${opts.windows}: expected a positive integer`);
  }

  const tokenizer = pickTokenizer(orig, bund);
  let ids: number[];
  if (opts.tokens) {
    ids = opts.tokens;
  } else if (opts.text !== undefined) {
    if (!tokenizer) throw new InputError('neither the bundle nor the original has a tokenizer.json; pass token ids instead of text');
    opts.onProgress?.({ stage: 'tokenize', done: 0, total: 1 });
    ids = tokenizer.encode(opts.text);
    opts.onProgress?.({ stage: 'tokenize', done: 1, total: 1 });
  } else {
    throw new InputError('no evaluation text: give tokens or text');
  }
  const V = orig.dims.vocab;
  const bad = ids.findIndex((x) => !Number.isInteger(x) || x < 0 || x >= V);
  if (bad >= 0) throw new InputError(`token id ${ids[bad]} at index ${bad} is outside the vocabulary [0, ${V})`);
  const windowsAvailable = Math.floor(ids.length / opts.seqlen);
  if (windowsAvailable === 0) throw new InputError(`the evaluation text has ${ids.length} tokens, fewer than one window of ${opts.seqlen}`);
  const prompt = opts.prompt;
  const genTokens = prompt !== undefined ? (opts.genTokens ?? 20) : 0;
  if (prompt !== undefined && !tokenizer) throw new InputError('a prompt needs a tokenizer.json in the bundle or the original');

  let device: EvalDevice = opts.device ?? 'cpu';
  let gpu = opts.gpu;
  let ownGpu: GpuRuntime | undefined;
  let notice: string | undefined;
  if (device === 'webgpu' && !gpu) {
    try {
      gpu = ownGpu = await createGpuRuntime();
    } catch (e) {
      notice = `WebGPU unavailable (${(e as Error).message}); ran on the CPU`;
      device = 'cpu';
    }
  }

  const run = async (dev: EvalDevice) => {
    const a = await buildModel(orig, dev, gpu, opts, 'load-original');
    let b: Runnable | undefined;
    try {
      b = await buildModel(bund, dev, gpu, opts, 'load-bundle');
      const ev = await evaluate(a, b, ids, opts.seqlen, opts.windows, {
        signal,
        onWindow: (done, total) => opts.onProgress?.({ stage: 'evaluate', done, total }),
      });
      let generation: QualityGeneration | undefined;
      if (prompt !== undefined && genTokens > 0) {
        const pIds = tokenizer!.encode(prompt);
        if (pIds.length === 0) throw new InputError('the prompt tokenizes to nothing');
        const eos = eosIds(orig);
        opts.onProgress?.({ stage: 'generate', done: 0, total: 2 });
        const oIds = await greedy(a, pIds, genTokens, eos, signal);
        opts.onProgress?.({ stage: 'generate', done: 1, total: 2 });
        const qIds = await greedy(b, pIds, genTokens, eos, signal);
        opts.onProgress?.({ stage: 'generate', done: 2, total: 2 });
        generation = {
          prompt,
          original: tokenizer!.decode([...pIds, ...oIds]),
          quantized: tokenizer!.decode([...pIds, ...qIds]),
          originalIds: oIds,
          quantizedIds: qIds,
        };
      }
      return { ev, generation };
    } finally {
      a.dispose();
      b?.dispose();
    }
  };

  let out: Awaited<ReturnType<typeof run>>;
  try {
    out = await run(device);
  } catch (e) {
    if (signal?.aborted || e instanceof CancelledError || (e as Error)?.name === 'AbortError') throw new CancelledError();
    if (device !== 'webgpu' || !isGpuUnavailable(e)) throw e;
    notice = `WebGPU failed (${(e as Error).message}); ran on the CPU`;
    device = 'cpu';
    out = await run('cpu');
  } finally {
    ownGpu?.destroy();
  }
  const { ev, generation } = out;
  return {
    pplOriginal: ev.pplA,
    pplQuantized: ev.pplB!,
    klMean: ev.klMean!,
    top1Agreement: ev.top1Agreement!,
    windows: ev.windows,
    seqlen: opts.seqlen,
    predictions: ev.predictions,
    windowNllOriginal: ev.windowNllA,
    windowNllQuantized: ev.windowNllB!,
    generation,
    device,
    adapter: device === 'webgpu' ? gpu?.adapterName : undefined,
    notice,
    textLabel: opts.textLabel,
    tokenCount: ids.length,
    windowsAvailable,
    elapsedMs: performance.now() - t0,
  };
}

/**
 * The check's figures for the bundle's model card (model-card.ts `quality`, and the CLI's
 * --update-card): readable metric names, numbers unrounded (the card formats them).
 */
export function qualityFigures(r: QualityCheckResult): Record<string, number | string> {
  const f: Record<string, number | string> = {
    'perplexity, original': r.pplOriginal,
    'perplexity, quantized': r.pplQuantized,
    'perplexity change': `${r.pplQuantized >= r.pplOriginal ? '+' : ''}${((r.pplQuantized / r.pplOriginal - 1) * 100).toFixed(2)} %`,
    'mean KL(original ‖ quantized), nats/token': r.klMean,
    'top-1 agreement': r.top1Agreement,
    'evaluation text': `${r.textLabel ?? 'calibration text'}: ${r.windows} windows × ${r.seqlen} tokens (${r.predictions} predictions)`,
  };
  if (r.generation) {
    f['greedy tokens equal to the original'] = `${leadingEqual(r.generation.originalIds, r.generation.quantizedIds)} of ${r.generation.originalIds.length}`;
  }
  return f;
}

function leadingEqual(a: number[], b: number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}
