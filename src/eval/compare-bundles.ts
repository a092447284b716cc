/**
 * "Which setting is better?" answered by measurement: several bundles of the same model scored
 * against the original on the same token windows (runQualityCheck per bundle), side by side,
 * with a verdict by perplexity and KL — and whether the difference is larger than the
 * window-to-window noise (a paired comparison of the per-window NLLs).
 */
import { InputError } from '../core/errors';
import type { ModelSource } from '../core/ports';
import { runQualityCheck, type QualityCheckOptions, type QualityCheckResult, type QualityProgress } from './check';

export interface BundleUnderTest {
  /** What the table calls it: "chosen settings", "plain RTN", a folder name. */
  label: string;
  source: ModelSource;
}

export interface ComparedBundle {
  label: string;
  pplQuantized: number;
  /** Percent change of perplexity against the original. */
  pplChangePct: number;
  klMean: number;
  top1Agreement: number;
  result: QualityCheckResult;
}

export interface BundleComparison {
  pplOriginal: number;
  textLabel?: string;
  windows: number;
  seqlen: number;
  predictions: number;
  device: QualityCheckResult['device'];
  bundles: ComparedBundle[];
  /** Index of the bundle with the lowest mean KL (perplexity breaks a tie). */
  best: number;
  /** Whether the best beats each other bundle by more than twice the paired standard error of the per-window NLL. */
  clear: boolean[];
  verdict: string;
}

export interface CompareOptions extends Omit<QualityCheckOptions, 'bundle' | 'onProgress'> {
  bundles: BundleUnderTest[];
  onProgress?: (p: QualityProgress & { bundle: number; bundles: number }) => void;
}

/** Mean and standard error of the per-window difference b − a. */
export function pairedDifference(a: number[], b: number[]): { mean: number; se: number } {
  const n = Math.min(a.length, b.length);
  if (n === 0) return { mean: 0, se: Infinity };
  const d = Array.from({ length: n }, (_, i) => b[i] - a[i]);
  const mean = d.reduce((s, x) => s + x, 0) / n;
  if (n < 2) return { mean, se: Infinity };
  const v = d.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1);
  return { mean, se: Math.sqrt(v / n) };
}

export async function compareBundles(opts: CompareOptions): Promise<BundleComparison> {
  if (opts.bundles.length < 1) throw new InputError('compare: give at least one bundle');
  const { bundles, onProgress, ...rest } = opts;
  const out: ComparedBundle[] = [];
  for (let i = 0; i < bundles.length; i++) {
    const r = await runQualityCheck({
      ...rest,
      bundle: bundles[i].source,
      onProgress: onProgress ? (p) => onProgress({ ...p, bundle: i, bundles: bundles.length }) : undefined,
    });
    out.push({
      label: bundles[i].label,
      pplQuantized: r.pplQuantized,
      pplChangePct: (r.pplQuantized / r.pplOriginal - 1) * 100,
      klMean: r.klMean,
      top1Agreement: r.top1Agreement,
      result: r,
    });
  }
  return summarize(out);
}

/** The table's verdict from already-measured bundles (exported for the app, which measures them one by one). */
export function summarize(bundles: ComparedBundle[]): BundleComparison {
  const first = bundles[0].result;
  for (const b of bundles) {
    if (b.result.windows !== first.windows || b.result.seqlen !== first.seqlen || b.result.tokenCount !== first.tokenCount) {
      throw new InputError(`compare: ${b.label} was scored on different windows than ${bundles[0].label}`);
    }
  }
  let best = 0;
  for (let i = 1; i < bundles.length; i++) {
    const a = bundles[i];
    const b = bundles[best];
    if (a.klMean < b.klMean || (a.klMean === b.klMean && a.pplQuantized < b.pplQuantized)) best = i;
  }
  const clear = bundles.map((b, i) => {
    if (i === best) return true;
    const d = pairedDifference(bundles[best].result.windowNllQuantized, b.result.windowNllQuantized);
    return d.mean > 2 * d.se;
  });
  return {
    pplOriginal: first.pplOriginal,
    textLabel: first.textLabel,
    windows: first.windows,
    seqlen: first.seqlen,
    predictions: first.predictions,
    device: first.device,
    bundles,
    best,
    clear,
    verdict: verdictText(bundles, best, clear),
  };
}

function verdictText(bundles: ComparedBundle[], best: number, clear: boolean[]): string {
  if (bundles.length === 1) {
    const b = bundles[0];
    return `${b.label}: perplexity ${b.pplQuantized.toFixed(4)} (${signed(b.pplChangePct)} % vs the original), mean KL ${b.klMean.toExponential(3)}.`;
  }
  const w = bundles[best];
  const parts: string[] = [];
  for (let i = 0; i < bundles.length; i++) {
    if (i === best) continue;
    const o = bundles[i];
    const pplAgrees = w.pplQuantized <= o.pplQuantized;
    const base =
      `${w.label} vs ${o.label}: mean KL ${w.klMean.toExponential(3)} vs ${o.klMean.toExponential(3)}, ` +
      `perplexity ${w.pplQuantized.toFixed(4)} vs ${o.pplQuantized.toFixed(4)}`;
    if (!pplAgrees) parts.push(`${base} — KL favours ${w.label}, perplexity favours ${o.label}: no clear winner on this text.`);
    else if (!clear[i]) parts.push(`${base} — ${w.label} is ahead, but by less than the window-to-window noise; score more windows to be sure.`);
    else parts.push(`${base} — ${w.label} is better by measurement.`);
  }
  return parts.join(' ');
}

function signed(x: number): string {
  return `${x >= 0 ? '+' : ''}${x.toFixed(2)}`;
}
