/**
 * SPEC §7 evaluation protocol: non-overlapping windows of `seqlen` tokens (tail dropped),
 * each window evaluated on its own with transformers' `labels = input_ids` convention (the
 * seqlen−1 next-token predictions), ppl = exp(mean NLL over all predictions). With a second
 * model also the mean KL(A‖B) per prediction and the top-1 agreement.
 */
import type { CausalLM } from './forward-cpu';
import type { AsyncCausalLM } from './forward-webgpu';

/** Only `logits` is needed for perplexity; any model with that shape can be evaluated. */
export type LogitsModel = Pick<CausalLM, 'vocab' | 'logits'>;

export interface EvalResult {
  pplA: number;
  pplB?: number;
  /** Mean KL(A‖B) in nats per prediction. */
  klMean?: number;
  /** Fraction of predictions where argmax A == argmax B. */
  top1Agreement?: number;
  /** Windows evaluated. */
  windows: number;
  /** Next-token predictions scored (windows · (seqlen − 1)). */
  predictions: number;
  /** Mean NLL of each window, model A (and B). */
  windowNllA: number[];
  windowNllB?: number[];
}

export interface EvalOptions {
  /** Called after every window (the UI shows progress). */
  onWindow?(done: number, total: number): void;
}

/** Non-overlapping windows of exactly `seqlen` ids; the incomplete tail is dropped. */
export function windows(ids: ArrayLike<number>, seqlen: number, maxWindows?: number): number[][] {
  if (!Number.isInteger(seqlen) || seqlen < 2) throw new Error(`seqlen must be an integer ≥ 2, got ${seqlen}`);
  let n = Math.floor(ids.length / seqlen);
  if (maxWindows !== undefined && maxWindows >= 0) n = Math.min(n, maxWindows);
  const out: number[][] = [];
  for (let w = 0; w < n; w++) out.push(Array.from({ length: seqlen }, (_, i) => ids[w * seqlen + i]));
  return out;
}

/** log-softmax of row `r` of `[rows × V]` logits into `out` (f64). */
function logSoftmaxRow(logits: Float32Array, r: number, V: number, out: Float64Array): number {
  const o = r * V;
  let max = -Infinity;
  let arg = 0;
  for (let i = 0; i < V; i++) {
    const z = logits[o + i];
    if (z > max) {
      max = z;
      arg = i;
    }
  }
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(logits[o + i] - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < V; i++) out[i] = logits[o + i] - lse;
  return arg;
}

export function evaluate(
  modelA: LogitsModel,
  modelB: LogitsModel | undefined,
  ids: ArrayLike<number>,
  seqlen: number,
  maxWindows?: number,
  opts: EvalOptions = {},
): EvalResult {
  const V = modelA.vocab;
  if (modelB && modelB.vocab !== V) throw new Error(`vocab sizes differ: ${V} vs ${modelB.vocab}`);
  const wins = windows(ids, seqlen, maxWindows);
  if (wins.length === 0) throw new Error(`need at least ${seqlen} tokens for one window, have ${ids.length}`);
  const la = new Float64Array(V);
  const lb = new Float64Array(V);
  let nllA = 0;
  let nllB = 0;
  let kl = 0;
  let agree = 0;
  let predictions = 0;
  const windowNllA: number[] = [];
  const windowNllB: number[] = [];

  wins.forEach((win, wi) => {
    const za = modelA.logits(win);
    const zb = modelB?.logits(win);
    let wa = 0;
    let wb = 0;
    for (let t = 0; t < seqlen - 1; t++) {
      const target = win[t + 1];
      const argA = logSoftmaxRow(za, t, V, la);
      wa -= la[target];
      if (zb) {
        const argB = logSoftmaxRow(zb, t, V, lb);
        wb -= lb[target];
        let k = 0;
        for (let i = 0; i < V; i++) {
          const a = la[i];
          // p·(log p − log q) with p = 0 contributes 0 (avoids 0·∞ if q underflows too).
          if (a > -745) k += Math.exp(a) * (a - lb[i]);
        }
        kl += k;
        if (argA === argB) agree++;
      }
    }
    const n = seqlen - 1;
    nllA += wa;
    nllB += wb;
    predictions += n;
    windowNllA.push(wa / n);
    if (zb) windowNllB.push(wb / n);
    opts.onWindow?.(wi + 1, wins.length);
  });

  const res: EvalResult = {
    pplA: Math.exp(nllA / predictions),
    windows: wins.length,
    predictions,
    windowNllA,
  };
  if (modelB) {
    res.pplB = Math.exp(nllB / predictions);
    res.klMean = kl / predictions;
    res.top1Agreement = agree / predictions;
    res.windowNllB = windowNllB;
  }
  return res;
}

/** argmax, first index on ties (like torch.argmax). */
export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

/**
 * Greedy decoding of up to `n` new tokens after `promptIds`. Returns the new tokens only; an EOS
 * id, when produced, is included and ends the generation (as transformers' `generate` does).
 */
export function greedy(
  model: Pick<CausalLM, 'prefill' | 'step'>,
  promptIds: number[],
  n: number,
  eosIds: number[] = [],
): number[] {
  const out: number[] = [];
  if (n <= 0) return out;
  let z = model.prefill(promptIds);
  for (;;) {
    const next = argmax(z);
    out.push(next);
    if (out.length >= n || eosIds.includes(next)) return out;
    z = model.step(next);
  }
}

/**
 * A model evaluate-able asynchronously: `logits` (sync or async); with `logProbs` the
 * log-softmax rows come from the model (e.g. computed on the GPU) instead of the CPU.
 */
export interface AsyncLogitsModel {
  readonly vocab: number;
  logits(ids: number[]): Float32Array | Promise<Float32Array>;
  logProbs?(ids: number[]): Promise<Float32Array>;
}

export interface AsyncEvalOptions extends EvalOptions {
  signal?: AbortSignal;
}

/**
 * Row accessor for one window's log-probabilities: the model's own rows when it has
 * `logProbs`, else the CPU log-softmax of its logits in f64 (the same numbers as `evaluate`).
 */
async function logProbRows(model: AsyncLogitsModel, win: number[]): Promise<(t: number) => ArrayLike<number>> {
  const V = model.vocab;
  if (model.logProbs) {
    const lp = await model.logProbs(win);
    return (t) => lp.subarray(t * V, (t + 1) * V);
  }
  const z = await model.logits(win);
  const row = new Float64Array(V);
  return (t) => {
    logSoftmaxRow(z, t, V, row);
    return row;
  };
}

/**
 * {@link evaluate} for async models (the WebGPU forward) with cancellation. Models with
 * `logProbs` are scored from those rows; others from their logits, like `evaluate`. One window
 * of each model at a time (memory: two `[seqlen × V]` arrays).
 */
export async function evaluateAsync(
  modelA: AsyncLogitsModel,
  modelB: AsyncLogitsModel | undefined,
  ids: ArrayLike<number>,
  seqlen: number,
  maxWindows?: number,
  opts: AsyncEvalOptions = {},
): Promise<EvalResult> {
  const V = modelA.vocab;
  if (modelB && modelB.vocab !== V) throw new Error(`vocab sizes differ: ${V} vs ${modelB.vocab}`);
  const wins = windows(ids, seqlen, maxWindows);
  if (wins.length === 0) throw new Error(`need at least ${seqlen} tokens for one window, have ${ids.length}`);
  let nllA = 0;
  let nllB = 0;
  let kl = 0;
  let agree = 0;
  let predictions = 0;
  const windowNllA: number[] = [];
  const windowNllB: number[] = [];
  for (let wi = 0; wi < wins.length; wi++) {
    opts.signal?.throwIfAborted();
    const win = wins[wi];
    const rowA = await logProbRows(modelA, win);
    const rowB = modelB ? await logProbRows(modelB, win) : undefined;
    let wa = 0;
    let wb = 0;
    for (let t = 0; t < seqlen - 1; t++) {
      const target = win[t + 1];
      const la = rowA(t);
      wa -= la[target];
      if (rowB) {
        const lb = rowB(t);
        wb -= lb[target];
        let k = 0;
        for (let i = 0; i < V; i++) {
          const x = la[i];
          if (x > -745) k += Math.exp(x) * (x - lb[i]);
        }
        kl += k;
        if (argmax(la) === argmax(lb)) agree++;
      }
    }
    const n = seqlen - 1;
    nllA += wa;
    nllB += wb;
    predictions += n;
    windowNllA.push(wa / n);
    if (rowB) windowNllB.push(wb / n);
    opts.onWindow?.(wi + 1, wins.length);
  }
  const res: EvalResult = { pplA: Math.exp(nllA / predictions), windows: wins.length, predictions, windowNllA };
  if (modelB) {
    res.pplB = Math.exp(nllB / predictions);
    res.klMean = kl / predictions;
    res.top1Agreement = agree / predictions;
    res.windowNllB = windowNllB;
  }
  return res;
}

/** {@link greedy} for models whose prefill/step may be async (the WebGPU forward). */
export async function greedyAsync(
  model: { prefill(ids: number[]): Float32Array | Promise<Float32Array>; step(id: number): Float32Array | Promise<Float32Array> },
  promptIds: number[],
  n: number,
  eosIds: number[] = [],
  signal?: AbortSignal,
): Promise<number[]> {
  const out: number[] = [];
  if (n <= 0) return out;
  let z = await model.prefill(promptIds);
  for (;;) {
    const next = argmax(z);
    out.push(next);
    if (out.length >= n || eosIds.includes(next)) return out;
    signal?.throwIfAborted();
    z = await model.step(next);
  }
}

/** max |a − b| / max |b|: error relative to the reference's scale (per-element ratios blow up near 0). */
export function maxRelError(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  if (a.length !== ref.length) throw new Error(`lengths differ: ${a.length} vs ${ref.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return scale === 0 ? diff : diff / scale;
}
