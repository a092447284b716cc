/**
 * SPEC §7 evaluation protocol: non-overlapping windows of `seqlen` tokens (tail dropped),
 * each window evaluated on its own with transformers' `labels = input_ids` convention (the
 * seqlen−1 next-token predictions), ppl = exp(mean NLL over all predictions). With a second
 * model also the mean KL(A‖B) per prediction and the top-1 agreement.
 */

export type { GenerativeModel, LogitsModel } from './forward';

/**
 * What evaluate() scores: `logits` (sync results are accepted too, for hand-built test models);
 * with `logProbs` the log-softmax rows come from the model (e.g. the GPU) instead of the host.
 */
export interface ScoredModel {
  readonly vocab: number;
  logits(ids: number[]): Float32Array | Promise<Float32Array>;
  logProbs?(ids: number[]): Promise<Float32Array>;
}

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
function logSoftmaxRow(logits: Float32Array, r: number, V: number, out: Float64Array): void {
  const o = r * V;
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (logits[o + i] > max) max = logits[o + i];
  let sum = 0;
  for (let i = 0; i < V; i++) sum += Math.exp(logits[o + i] - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < V; i++) out[i] = logits[o + i] - lse;
}

type Rows = (t: number) => ArrayLike<number>;

/** Row accessor over `[T × V]` logits: the f64 log-softmax of row t (one reused buffer). */
function logitRows(z: Float32Array, V: number): Rows {
  const row = new Float64Array(V);
  return (t) => {
    logSoftmaxRow(z, t, V, row);
    return row;
  };
}

/** Running NLL / KL / top-1 over the windows of one evaluation . */
class WindowScores {
  readonly wins: number[][];
  private nllA = 0;
  private nllB = 0;
  private kl = 0;
  private agree = 0;
  private predictions = 0;
  private readonly windowNllA: number[] = [];
  private readonly windowNllB: number[] = [];
  private paired = false;

  constructor(private readonly V: number, vocabB: number | undefined, ids: ArrayLike<number>, private readonly seqlen: number, maxWindows?: number) {
    if (vocabB !== undefined && vocabB !== V) throw new Error(`vocab sizes differ: ${V} vs ${vocabB}`);
    this.paired = vocabB !== undefined;
    this.wins = windows(ids, seqlen, maxWindows);
    if (this.wins.length === 0) throw new Error(`need at least ${seqlen} tokens for one window, have ${ids.length}`);
  }

  add(win: number[], rowA: Rows, rowB?: Rows): void {
    let wa = 0;
    let wb = 0;
    for (let t = 0; t < this.seqlen - 1; t++) {
      const target = win[t + 1];
      const la = rowA(t);
      wa -= la[target];
      if (rowB) {
        const lb = rowB(t);
        wb -= lb[target];
        let k = 0;
        for (let i = 0; i < this.V; i++) {
          const a = la[i];
          // p·(log p − log q) with p = 0 contributes 0 (avoids 0·∞ if q underflows too).
          if (a > -745) k += Math.exp(a) * (a - lb[i]);
        }
        this.kl += k;
        if (argmax(la) === argmax(lb)) this.agree++;
      }
    }
    const n = this.seqlen - 1;
    this.nllA += wa;
    this.nllB += wb;
    this.predictions += n;
    this.windowNllA.push(wa / n);
    if (rowB) this.windowNllB.push(wb / n);
  }

  result(): EvalResult {
    const res: EvalResult = { pplA: Math.exp(this.nllA / this.predictions), windows: this.wins.length, predictions: this.predictions, windowNllA: this.windowNllA };
    if (this.paired) {
      res.pplB = Math.exp(this.nllB / this.predictions);
      res.klMean = this.kl / this.predictions;
      res.top1Agreement = this.agree / this.predictions;
      res.windowNllB = this.windowNllB;
    }
    return res;
  }
}

/** argmax, first index on ties (like torch.argmax). */
export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}

export interface EvalOptions {
  /** Called after every window (the UI shows progress). */
  onWindow?(done: number, total: number): void;
  signal?: AbortSignal;
}

/**
 * Row accessor for one window's log-probabilities: the model's own rows when it has
 * `logProbs`, else the f64 log-softmax of its logits on the host.
 */
async function logProbRows(model: ScoredModel, win: number[]): Promise<Rows> {
  const V = model.vocab;
  if (model.logProbs) {
    const lp = await model.logProbs(win);
    return (t) => lp.subarray(t * V, (t + 1) * V);
  }
  return logitRows(await model.logits(win), V);
}

/**
 * Perplexity of model A (and, with model B, KL(A‖B) and top-1 agreement) over the
 * non-overlapping windows of `ids`, with cancellation. One window of each model at a time
 * (memory: two `[seqlen × V]` arrays).
 */
export async function evaluate(
  modelA: ScoredModel,
  modelB: ScoredModel | undefined,
  ids: ArrayLike<number>,
  seqlen: number,
  maxWindows?: number,
  opts: EvalOptions = {},
): Promise<EvalResult> {
  const acc = new WindowScores(modelA.vocab, modelB?.vocab, ids, seqlen, maxWindows);
  for (let wi = 0; wi < acc.wins.length; wi++) {
    opts.signal?.throwIfAborted();
    const win = acc.wins[wi];
    const rowA = await logProbRows(modelA, win);
    const rowB = modelB ? await logProbRows(modelB, win) : undefined;
    acc.add(win, rowA, rowB);
    opts.onWindow?.(wi + 1, acc.wins.length);
  }
  return acc.result();
}

/**
 * Greedy decoding of up to `n` new tokens after `promptIds`. Returns the new tokens only; an EOS
 * id, when produced, is included and ends the generation (as transformers' `generate` does).
 */
export async function greedy(
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
