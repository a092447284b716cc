/**
 * npm run bench:mixed [-- --only fixture|outlier] [--rotation full|none] [--embeddings 16|w4]
 *
 * Issue 12's closing table: what learned codebooks and mixed 4/8-bit precision buy, and the wall
 * time each step adds. CPU backend, CPU calibration forward, W4 sp/mse, act-order on. Rows, per
 * rotation (full, none) and embeddings (16-bit, quantized at 4 bits):
 *   RTN · GPTQ · GPTQ + learned codebook · + 5 % at 8 bits · + 10 % at 8 bits
 * (the last two: GPTQ + learned codebook + --w8-budget 0.05 / 0.10, ranked by layer-output
 * sensitivity on the calibration data; the measuring pass is part of their wall time).
 *  - the real TinyStories fixture: perplexity on the first 40 windows of 256 tokens of eval.txt;
 *    calibration 64 × 256 from the demo's built-in calibration (second half of eval.txt), seed 0;
 *  - a random Qwen2 with outlier channels (test/support tinyModelFiles: hidden 128, intermediate
 *    256, 2 layers, vocab 256, seed 11): mean KL to the original on 8 × 64 held-out random tokens;
 *    calibration 64 × 128 random ids.
 * Each line is printed as soon as its run is done (markdown table rows). Quality and speed are
 * measured here, never asserted in timed tests.
 */
import { parseArgs } from 'node:util';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import { runPipeline, type PipelineResult } from '../src/core/pipeline/run';
import type { PipelineCalibration } from '../src/core/pipeline/calibration';
import { parseSettings, type QuantSettings } from '../src/core/settings';
import { evaluate } from '../src/eval/perplexity';
import { memoryModelSource, memorySink } from '../test/support/memory';
import { cpuModel, fixtureData, outlierData } from './quality-bench-data';

const { values } = parseArgs({ options: { only: { type: 'string' }, rotation: { type: 'string' }, embeddings: { type: 'string' } } });
const ROTATIONS = (['full', 'none'] as const).filter((r) => !values.rotation || values.rotation === r);
const EMBEDDINGS = ([false, true] as const).filter((q) => !values.embeddings || values.embeddings === (q ? 'w4' : '16'));

type Settings = Partial<Record<keyof QuantSettings, unknown>>;
const STEPS: { label: string; settings: Settings; calibrated: boolean }[] = [
  { label: 'RTN', settings: {}, calibrated: false },
  { label: 'GPTQ', settings: { method: 'gptq' }, calibrated: true },
  { label: 'GPTQ + learned codebook', settings: { method: 'gptq', codebook: 'learned' }, calibrated: true },
  { label: '+ 5 % at 8 bits', settings: { method: 'gptq', codebook: 'learned', w8Budget: '0.05' }, calibrated: true },
  { label: '+ 10 % at 8 bits', settings: { method: 'gptq', codebook: 'learned', w8Budget: '0.10' }, calibrated: true },
];

async function quantize(files: Record<string, Uint8Array>, settings: Settings, calib?: PipelineCalibration) {
  const sink = memorySink();
  const t0 = performance.now();
  const result = await runPipeline({
    source: memoryModelSource(files), sink, backend: new CpuBackend(), settings: parseSettings(settings), target: { model: 'bench' }, calibration: calib,
  });
  return { files: sink.files, result, ms: performance.now() - t0 };
}

/** "8.3 % (2: layers.0 q, k)": the 8-bit share of the quantized projection parameters and which. */
function w8Summary(result: PipelineResult): string {
  const proj = result.reports.filter((r) => r.kind === 'projection' && r.bits !== undefined);
  const at8 = proj.filter((r) => r.bits === 8);
  if (at8.length === 0) return '—';
  const params = (rs: typeof proj) => rs.reduce((n, r) => n + r.shape[0] * r.shape[1], 0);
  const names = at8.map((r) => `${r.layer}.${(r.proj ?? r.name).replace(/_proj$/, '')}`);
  return `${((100 * params(at8)) / params(proj)).toFixed(1)} % (${names.join(', ')})`;
}

const f4 = (x: number): string => x.toFixed(4);
const s1 = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const signed = (ms: number): string => `${ms >= 0 ? '+' : '−'}${(Math.abs(ms) / 1000).toFixed(1)} s`;

/** The table for one model: `measure` gives the quality figure of a quantized bundle. */
async function table(files: Record<string, Uint8Array>, calib: PipelineCalibration, metric: string, measure: (q: Record<string, Uint8Array>) => Promise<number>): Promise<void> {
  process.stdout.write(`| rotation | embeddings | method | ${metric} | 8-bit share (projections) | wall time | adds |\n|---|---|---|---|---|---|---|\n`);
  for (const rotation of ROTATIONS) {
    for (const quantizeEmbeddings of EMBEDDINGS) {
      let prev: number | null = null;
      for (const step of STEPS) {
        const q = await quantize(files, { ...step.settings, rotation, quantizeEmbeddings }, step.calibrated ? calib : undefined);
        const v = await measure(q.files);
        process.stdout.write(
          `| ${rotation} | ${quantizeEmbeddings ? 'W4' : '16-bit'} | ${step.label} | ${f4(v)} | ${w8Summary(q.result)} | ${s1(q.ms)} | ${prev === null ? '' : signed(q.ms - prev)} |\n`,
        );
        prev = q.ms;
      }
    }
  }
}

async function fixture(): Promise<void> {
  const { files, tokens, calib, firstCalibToken } = await fixtureData();
  const fp = await cpuModel(files);
  const base = await evaluate(fp, fp, tokens, 256, 40);
  process.stdout.write(`fixture tinystories-260k, W4 sp/mse, perplexity on the first 40 windows × 256 (FP ${f4(base.pplA)}); calibration 64 × 256 (demo's calib text, eval ids ${firstCalibToken}+)\n`);
  await table(files, calib, 'perplexity', async (q) => (await evaluate(fp, await cpuModel(q), tokens, 256, 40)).pplB!);
}

async function outlier(): Promise<void> {
  const { files, ids, calib } = await outlierData();
  const fp = await cpuModel(files);
  process.stdout.write('\noutlier model (hidden 128, intermediate 256, 2 layers, vocab 256, seed 11, outliers), W4 sp/mse; mean KL to FP on 8 × 64 random tokens; calibration 64 × 128 random ids\n');
  await table(files, calib, 'mean KL', async (q) => (await evaluate(fp, await cpuModel(q), ids, 64)).klMean!);
}

if (values.only !== 'outlier') await fixture();
if (values.only !== 'fixture') await outlier();
