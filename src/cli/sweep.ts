/**
 * `quantize --sweep [grid]`: the settings advisor in the CLI (src/eval/sweep.ts does the work).
 * Prints the cost estimate, one line per point as it finishes, then a table with the best point
 * marked; `--sweep-json FILE` writes the figures; `--pick best|N --out DIR` writes that point's
 * bundle (the same bytes as quantizing that point alone with the same flags).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { InputError } from '../core/errors';
import { describeGptqCost, gptqCost, measureHostFlops } from '../core/gptq-cost';
import type { PipelineCalibration } from '../core/pipeline/calibration';
import type { GptqCostDims } from '../core/gptq-cost';
import type { Backend, BundleSink, ModelSource } from '../core/ports';
import type { RunTarget } from '../core/link';
import type { QuantSettings } from '../core/settings';
import { BUILTIN_TEXT, BUILTIN_TEXT_LABEL } from '../eval/builtin-text';
import { checkIds, checkSeqlen, SEQLEN_MAX, SEQLEN_MIN } from '../eval/calibration';
import { planSweep, runSweep, sweepJson, type SweepEvalText, type SweepPointResult, type SweepResult } from '../eval/sweep';
import { formatSweepGrid, gridPoints, parseSweepGrid, w8Percent, type SweepGrid } from '../eval/sweep-grid';
import { replayBundle } from '../sinks/memory-sink';

export const SWEEP_USAGE = `the settings advisor (try a grid of settings and compare, instead of one bundle):
  --sweep [GRID]                quantize every point of GRID in memory and score each; GRID is
                                'method=rtn,gptq;codebook=uniform,learned;w8=0,5,10' (the default;
                                w8 in % of the projection parameters; a key left out keeps its default).
                                The other flags apply to every point; --method, --codebook and
                                --w8-budget belong in the grid. GPTQ or W8 points need --calib.
  --eval-text FILE              the text perplexity is scored on              [the built-in evaluation text]
  --eval-tokens FILE            the same as token ids (JSON like eval.tokens.json)
  --eval-seqlen N               tokens per window, ${SEQLEN_MIN}–${SEQLEN_MAX}                     [256]
  --eval-windows N              windows scored (the first N), like eval --windows [8]
  --sweep-json FILE             also write the figures as JSON
  --pick best|N --out DIR       write the best point's (or row N's) bundle to DIR`;

export interface SweepFlags {
  sweep?: string;
  sweepJson?: string;
  pick?: string;
  evalText?: string;
  evalTokens?: string;
  evalSeqlen?: string;
  evalWindows?: string;
}

export interface ParsedSweep {
  grid: SweepGrid;
  pick?: 'best' | number;
  jsonPath?: string;
  evalSpec: { kind: 'builtin' } | { kind: 'text'; file: string } | { kind: 'tokens'; file: string };
  seqlen: number;
  windows: number;
}

/**
 * `--sweep` may be given without a grid: `--sweep` followed by another flag or nothing becomes
 * `--sweep=default`, so parseArgs (which needs a value for a string option) takes it.
 */
export function normalizeSweepArgv(argv: string[]): string[] {
  return argv.map((a, i) => (a === '--sweep' && (i + 1 >= argv.length || argv[i + 1].startsWith('--')) ? '--sweep=default' : a));
}

function intFlag(v: string | undefined, name: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < min || n > max) throw new InputError(`--${name} ${v}: expected an integer from ${min} to ${max}`);
  return n;
}

/** The sweep's flags, checked before anything is read (bad grids and picks → InputError, exit 2). */
export function parseSweepFlags(f: SweepFlags, other: { method?: unknown; codebook?: unknown; w8Budget?: unknown; out?: unknown }): ParsedSweep {
  const grid = parseSweepGrid(f.sweep);
  const clash = (['method', 'codebook', 'w8-budget'] as const).filter((k) => (k === 'w8-budget' ? other.w8Budget : other[k]) !== undefined);
  if (clash.length > 0) {
    throw new InputError(`--sweep sets ${clash.map((k) => `--${k}`).join(', ')} per point; put ${clash.length > 1 ? 'them' : 'it'} in the grid instead (e.g. --sweep 'method=gptq;codebook=learned;w8=10')`);
  }
  const n = gridPoints(grid).length;
  let pick: ParsedSweep['pick'];
  if (f.pick !== undefined) {
    const p = f.pick.trim();
    if (p === 'best') pick = 'best';
    else if (/^\d+$/.test(p) && Number(p) >= 1 && Number(p) <= n) pick = Number(p) - 1;
    else throw new InputError(`--pick ${f.pick}: expected best or a row number from 1 to ${n} (the grid has ${n} points)`);
    if (other.out === undefined) throw new InputError('--pick writes the chosen point\'s bundle: give --out DIR');
  } else if (other.out !== undefined) {
    throw new InputError('--sweep with --out: give --pick best|N to say which point\'s bundle to write (a sweep keeps its bundles in memory)');
  }
  if (f.evalText !== undefined && f.evalTokens !== undefined) throw new InputError('give at most one of --eval-text FILE and --eval-tokens FILE');
  const evalSpec: ParsedSweep['evalSpec'] = f.evalTokens !== undefined ? { kind: 'tokens', file: f.evalTokens } : f.evalText !== undefined ? { kind: 'text', file: f.evalText } : { kind: 'builtin' };
  const seqlen = checkSeqlen(intFlag(f.evalSeqlen, 'eval-seqlen', 256, SEQLEN_MIN, SEQLEN_MAX));
  const windows = intFlag(f.evalWindows, 'eval-windows', 8, 1, 1_000_000);
  return { grid, pick, jsonPath: f.sweepJson, evalSpec, seqlen, windows };
}

/** Flags only meaningful with --sweep, refused without it. */
export function sweepOnlyFlags(f: SweepFlags): string[] {
  const names: [keyof SweepFlags, string][] = [['sweepJson', 'sweep-json'], ['pick', 'pick'], ['evalText', 'eval-text'], ['evalTokens', 'eval-tokens'], ['evalSeqlen', 'eval-seqlen'], ['evalWindows', 'eval-windows']];
  return names.filter(([k]) => f[k] !== undefined).map(([, n]) => `--${n}`);
}

/** The evaluation text the flags name, read now (a bad file fails before any weight is read). */
export async function readSweepEvalText(p: ParsedSweep): Promise<SweepEvalText> {
  const base = { seqlen: p.seqlen, windows: p.windows };
  if (p.evalSpec.kind === 'builtin') return { ...base, text: BUILTIN_TEXT, label: BUILTIN_TEXT_LABEL };
  const file = p.evalSpec.file;
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new InputError(`--eval-${p.evalSpec.kind} ${file}: cannot read the file (${e.code ?? e.message})`, { file });
  });
  if (p.evalSpec.kind === 'text') return { ...base, text, label: file };
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new InputError(`--eval-tokens ${file}: not valid JSON (${(e as Error).message})`, { file });
  }
  const ids = Array.isArray(parsed) ? parsed : (parsed as { ids?: unknown } | null)?.ids;
  return { ...base, tokens: checkIds(ids, `--eval-tokens ${file} "ids"`), label: `token ids from ${file}` };
}

function secs(ms: number): string {
  return (ms / 1000).toFixed(1);
}

function pointLine(r: SweepPointResult, n: number): string {
  const d = r.deltaPpl;
  return `[${r.index + 1}/${n}] ${r.point.method} ${r.point.codebook} W8 ${w8Percent(r.point.w8Budget)} %: ppl ${r.ppl.toFixed(4)} (Δ ${d >= 0 ? '+' : ''}${d.toFixed(4)}), ${(r.bytes / 1e6).toFixed(3)} MB, ${secs(r.aloneMs)} s`;
}

/** The final table: one row per point, the best marked with "*". */
export function formatSweepTable(r: SweepResult): string {
  const rows = [
    ['#', 'method', 'codebook', 'W8 %', 'ppl', 'Δppl vs FP', 'size MB', 'time s'],
    ...r.points.map((p) => [
      `${p.index === r.best ? '*' : ' '}${p.index + 1}`, p.point.method, p.point.codebook, w8Percent(p.point.w8Budget), p.ppl.toFixed(4),
      `${p.deltaPpl >= 0 ? '+' : ''}${p.deltaPpl.toFixed(4)}`, (p.bytes / 1e6).toFixed(3), secs(p.aloneMs),
    ]),
  ];
  const widths = rows[0].map((_, j) => Math.max(...rows.map((row) => row[j].length)));
  const lines = rows.map((row) => row.map((x, j) => (j === 1 || j === 2 ? x.padEnd(widths[j]) : x.padStart(widths[j]))).join('  '));
  const b = r.points[r.best];
  return [
    `perplexity on ${r.evalLabel}: ${r.windows} windows × ${r.seqlen} tokens (${r.predictions} predictions); original (FP) ${r.pplOriginal.toFixed(4)}`,
    ...lines,
    `* best: row ${r.best + 1} (${b.label}), lowest perplexity${r.points.filter((p) => p.ppl === b.ppl).length > 1 ? ', smallest of the tied' : ''}.` +
      ` time s = making that bundle alone${r.sensitivityMs > 0 ? ` (W8 rows include the sensitivity pass, ${secs(r.sensitivityMs)} s, which the sweep ran once)` : ''}; sweep ${secs(r.elapsedMs)} s in all.`,
  ].join('\n');
}

export interface SweepCommand {
  parsed: ParsedSweep;
  evalText: SweepEvalText;
  source: ModelSource;
  target: RunTarget;
  modelArg: string;
  settings: QuantSettings;
  backend: Backend;
  backendKind: string;
  config: GptqCostDims;
  calibration?: PipelineCalibration;
  /** Calibration size, for the cost estimate. */
  calibSamples?: number;
  calibTokens?: number;
  maxShardBytes?: number;
  signal: AbortSignal;
  quiet: boolean;
  /** The folder sink for --pick (created only once the chosen bundle is complete in memory). */
  makeSink?: () => Promise<BundleSink>;
  outDir?: string;
  out: (s: string) => void;
  err: (s: string) => void;
}

/** Runs the sweep, prints it, and writes --sweep-json / the picked bundle. Returns the exit code. */
export async function runSweepCommand(c: SweepCommand): Promise<number> {
  const { parsed, settings } = c;
  const plan = planSweep(settings, parsed.grid);
  let cost = `sweep: ${plan.points} points (${formatSweepGrid(parsed.grid)}) on top of ${JSON.stringify({ bits: settings.bits, scheme: settings.scheme, clip: settings.clip, rotation: settings.rotation, quantizeEmbeddings: settings.quantizeEmbeddings, dtype: settings.dtype })}\n` +
    `  ${plan.rtnPoints} RTN run${plan.rtnPoints === 1 ? '' : 's'}, ${plan.gptqPoints} GPTQ run${plan.gptqPoints === 1 ? '' : 's'}` +
    `${plan.sensitivityPass ? ', one W8 sensitivity pass (a 4-bit RTN run through the calibration data, shared by the W8 points)' : ''}` +
    `; ${plan.scoringRuns} perplexity runs (the original once, each point once) of ${parsed.windows} windows × ${parsed.seqlen} tokens on ${c.evalText.label}\n`;
  if (plan.gptqPoints > 0 && c.calibSamples !== undefined && c.calibTokens !== undefined) {
    const g = gptqCost(c.config, c.calibSamples, c.calibTokens / c.calibSamples);
    let when = '';
    if (c.backendKind === 'cpu') {
      const flops = measureHostFlops();
      when = `; all ${plan.gptqPoints} on the CPU path at least ${Math.max(1, Math.round((plan.gptqPoints * g.total) / flops))} s (≈ ${(flops / 1e9).toFixed(1)} GFLOP/s on the Hessian kernel just now; the whole sweep is slower)`;
    }
    cost += `  each GPTQ run ${describeGptqCost(g)}${when}\n`;
  }
  c.out(cost);
  const n = plan.points;
  let lastStage = '';
  const result = await runSweep({
    source: c.source, target: c.target, modelArg: c.modelArg, settings, grid: parsed.grid, backend: c.backend, calibration: c.calibration,
    evalText: c.evalText, maxShardBytes: c.maxShardBytes, keep: parsed.pick, signal: c.signal,
    onProgress: (p) => {
      if (c.quiet) return;
      const key = `${p.stage}:${p.point}`;
      if (key === lastStage) return;
      lastStage = key;
      c.err(`  ${p.message}\n`);
    },
    onPoint: (r) => c.out(`${pointLine(r, n)}\n`),
  });
  c.out(`\n${formatSweepTable(result)}\n`);
  if (parsed.jsonPath !== undefined) {
    await writeFile(parsed.jsonPath, JSON.stringify(sweepJson(result), null, 1) + '\n').catch((e: NodeJS.ErrnoException) => {
      throw new InputError(`--sweep-json ${parsed.jsonPath}: cannot write the file (${e.code ?? e.message})`, { file: parsed.jsonPath });
    });
  }
  if (parsed.pick !== undefined) {
    const kept = result.kept!;
    const chosen = result.points[kept.index];
    await replayBundle(kept.files, await c.makeSink!(), c.signal);
    c.out(`wrote row ${kept.index + 1} (${chosen.label}): ${kept.files.size} files, ${(chosen.bytes / 1e6).toFixed(2)} MB, to ${c.outDir}\n` +
      `  the same bundle as: npm run quantize -- … --method ${chosen.point.method} --codebook ${chosen.point.codebook} --w8-budget ${w8Percent(chosen.point.w8Budget)}%\n`);
  }
  return 0;
}
