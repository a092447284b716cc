/**
 * Forward-pass throughput of the quality check, and (with --table) the quality table of the
 * real tiny model over bits × rotation × scheme/clip.
 *
 *   EGL_PLATFORM=surfaceless npx tsx scripts/bench-eval.ts [--table] [--windows 40] [--no-gpu]
 *
 * CPU: the fixture model (one 256-token window) and one Qwen2.5-0.5B-shaped layer (d 896,
 * F 4864, 14/2 heads, D 64) with a small vocabulary as a stand-in (the full model does not
 * fit the point of a benchmark here); WebGPU: the same inputs on the adapter found (named).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import { runPipeline } from '../src/core/pipeline/run';
import { memoryModelSource, memorySink } from '../test/support/memory';
import { parseSettings, type QuantSettings } from '../src/core/settings';
import type { LogitsModel, WeightSource } from '../src/eval/forward';
import { createQwen2Cpu } from '../src/eval/forward-cpu';
import { createQwen2WebGpu } from '../src/eval/forward-webgpu';
import type { GpuRuntime } from '../src/gpu/runtime';
import { loadAllWeights, mapWeights, openEvalModel } from '../src/eval/load-model';
import { evaluate } from '../src/eval/perplexity';
import { dimsFromConfig, type Qwen2Dims } from '../src/core/qwen2/config';
import { createNodeFsSource } from '../src/sources/node-fs-source-node';
import { makeTinyQwen2, tinyWeights } from '../test/support/tiny-qwen2';

const FIXTURE = resolve(import.meta.dirname, '../../shared/fixtures/tinystories-260k');

const { values } = parseArgs({
  options: { table: { type: 'boolean' }, windows: { type: 'string' }, 'no-gpu': { type: 'boolean' } },
});

function readFolder(dir: string): Record<string, Uint8Array> {
  const out: Record<string, Uint8Array> = {};
  for (const f of readdirSync(dir)) if (statSync(join(dir, f)).isFile()) out[f] = new Uint8Array(readFileSync(join(dir, f)));
  return out;
}

function ids(n: number, V: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 7919 + 13) % V);
}

/** Median wall time of `reps` runs (after one warm-up). */
async function time(reps: number, fn: () => unknown): Promise<number> {
  await fn();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[Math.floor(ts.length / 2)];
}

function line(what: string, T: number, ms: number): void {
  console.log(`${what.padEnd(58)} ${T} tokens  ${ms.toFixed(1).padStart(8)} ms  ${((T / ms) * 1000).toFixed(0).padStart(7)} tokens/s`);
}

async function throughput(gpu: GpuRuntime | undefined): Promise<void> {
  const cases: { name: string; dims: Qwen2Dims; w: WeightSource; T: number; reps: number }[] = [];
  if (existsSync(resolve(FIXTURE, 'model.safetensors'))) {
    const m = await openEvalModel(await createNodeFsSource(FIXTURE));
    cases.push({ name: 'tinystories-260k (d 64, 5 layers, V 512)', dims: m.dims, w: mapWeights(await loadAllWeights(m)), T: 256, reps: 5 });
  } else {
    console.log(`(fixture not found at ${FIXTURE}; skipping it)`);
  }
  const layer = makeTinyQwen2({ hidden: 896, intermediate: 4864, layers: 1, heads: 14, kvHeads: 2, vocab: 1024, tie: true, seed: 1, ropeTheta: 1e6 });
  cases.push({ name: '0.5B-shaped single layer (d 896, F 4864, V 1024)', dims: dimsFromConfig(layer.config), w: tinyWeights(layer), T: 128, reps: 2 });

  for (const c of cases) {
    const cpu = createQwen2Cpu(c.dims, c.w);
    const x = ids(c.T, c.dims.vocab);
    line(`CPU    ${c.name}`, c.T, await time(c.reps, () => cpu.logits(x)));
    if (gpu) {
      const g = await createQwen2WebGpu(gpu, c.dims, c.w);
      line(`WebGPU ${c.name}`, c.T, await time(c.reps, () => g.logits(x)));
      g.dispose();
    }
  }
  console.log('A full Qwen2.5-0.5B forward ≈ 24 × the layer + the 151936 × 896 LM head (≈ 6.6 × one layer\'s MACs per token).');
}

/** The original's logits per window, computed once and shared by every row of the table. */
function cached(model: LogitsModel): LogitsModel {
  const memo = new Map<string, Float32Array>();
  return {
    vocab: model.vocab,
    async logits(w: number[]) {
      const k = w.join(',');
      let z = memo.get(k);
      if (!z) memo.set(k, (z = await model.logits(w)));
      return z;
    },
  };
}

async function table(nWindows: number): Promise<void> {
  const files = readFolder(FIXTURE);
  const ids = (JSON.parse(new TextDecoder().decode(files['eval.tokens.json'])) as { ids: number[] }).ids;
  const orig = await openEvalModel(memoryModelSource(files));
  const original = cached(createQwen2Cpu(orig.dims, mapWeights(await loadAllWeights(orig))));
  const base = await evaluate(original, undefined, ids, 256, nWindows);
  console.log(`\nreal tiny model, first ${base.windows} windows × 256 tokens (${base.predictions} predictions); FP32 original ppl ${base.pplA.toFixed(4)}`);
  console.log('| bits | rotation | scheme | clip | ppl | Δppl | KL(orig‖q) | top-1 |');
  console.log('|---|---|---|---|---|---|---|---|');
  const rotations: [string, Partial<QuantSettings>][] = [
    ['none', { rotation: 'none' }],
    ['block 16', { rotation: 'block', blockSize: 16 }],
    ['block 64', { rotation: 'block', blockSize: 64 }],
    ['full', { rotation: 'full' }],
  ];
  const rows: [number, string, string][] = [[16, '—', '—']];
  for (const bits of [8, 4]) for (const scheme of ['per_tensor', 'sp']) for (const clip of ['absmax', 'mse']) rows.push([bits, scheme, clip]);
  for (const [bits, scheme, clip] of rows) {
    for (const [rname, rot] of rotations) {
      const sink = memorySink();
      const settings = parseSettings({ ...rot, bits, ...(bits === 16 ? {} : { scheme, clip }) } as never);
      await runPipeline({ source: memoryModelSource(files), sink, settings, backend: new CpuBackend(), target: { model: 'tinystories-260k' } });
      const bm = await openEvalModel(memoryModelSource(sink.files));
      const q = createQwen2Cpu(bm.dims, mapWeights(await loadAllWeights(bm)));
      const r = await evaluate(original, q, ids, 256, nWindows);
      const d = (r.pplB! / r.pplA - 1) * 100;
      console.log(
        `| ${bits === 16 ? 'FP16' : `W${bits}`} | ${rname} | ${scheme} | ${clip} | ${r.pplB!.toFixed(4)} | ${d >= 0 ? '+' : ''}${d.toFixed(2)} % | ${r.klMean!.toFixed(5)} | ${(r.top1Agreement! * 100).toFixed(2)} % |`,
      );
    }
  }
}

let gpu: GpuRuntime | undefined;
if (!values['no-gpu']) {
  try {
    const { createNodeGpuRuntime } = await import('../src/gpu/node');
    gpu = await createNodeGpuRuntime();
    console.log(`WebGPU adapter: ${gpu.adapterName}`);
  } catch (e) {
    console.log(`WebGPU unavailable: ${(e as Error).message}`);
  }
}
await throughput(gpu);
if (values.table) await table(values.windows === 'all' ? Infinity : Number(values.windows ?? 40));
gpu?.destroy();
process.exit(0);
