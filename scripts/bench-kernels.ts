/**
 * npm run bench:kernels -- [--layers 2] [--runs 3] [--backend cpu|webgpu] [--no-hub] [--no-kernels]
 *
 * 1. Per-kernel times of the chosen backend on 0.5B-sized matrices (median of --runs, GB/s of
 *    the f32 data touched per pass).
 * 2. The whole pipeline (W4 defaults) on a Qwen2.5-0.5B-shaped checkpoint cut to --layers layers
 *    (full embedding: d 896, F 4864, 14/2 heads, V 151936, BF16), local folder → fs sink:
 *    median wall time, input MB/s, peak RSS and ArrayBuffer memory.
 * 3. The same model streamed from the mock hub (its own process) through @huggingface/hub:
 *    MB/s, peak memory, and CPU time spent outside the backend's math.
 * Speed is measured here, never asserted in tests.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Backend, Mat } from '../src/core/ports';
import { runPipeline } from '../src/core/pipeline/run';
import { parseSettings } from '../src/core/settings';
import { residualRotation } from '../src/core/hadamard/rotation';
import { MSE_ALPHAS, MSE_INV_ALPHAS } from '../src/core/quant/scales';
import { fitCodebook } from '../src/core/quant/codebook';
import { roundToF16 } from '../src/core/safetensors/dtype';
import { makeTinyQwen2 } from '../src/demo/tiny-qwen2';
import { writeTinyQwen2 } from '../src/demo/tiny-qwen2-node';
import { createNodeFsSource } from '../src/sources/node-fs-source-node';
import { createHubSource } from '../src/sources/hub/hub-source';
import { createFsSink } from '../src/sinks/fs-sink-node';
import { openCliBackend } from '../src/cli/backend';

const { values } = parseArgs({
  options: {
    layers: { type: 'string', default: '2' }, runs: { type: 'string', default: '3' }, backend: { type: 'string', default: 'cpu' },
    'no-hub': { type: 'boolean' }, 'no-kernels': { type: 'boolean' }, 'no-pipeline': { type: 'boolean' },
  },
});
const layers = Number(values.layers);
const runs = Number(values.runs);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);

/** Peak RSS / ArrayBuffer bytes while `fn` runs (sampled every 20 ms). */
async function withPeakMemory<T>(fn: () => Promise<T>): Promise<{ value: T; peakRss: number; peakArrayBuffers: number }> {
  let peakRss = 0;
  let peakArrayBuffers = 0;
  const sample = (): void => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers);
  };
  const timer = setInterval(sample, 20);
  try {
    const value = await fn();
    sample();
    return { value, peakRss, peakArrayBuffers };
  } finally {
    clearInterval(timer);
  }
}

/** A Backend proxy that adds up the wall time spent inside backend calls. */
function timedBackend(inner: Backend): { backend: Backend; ms: () => number } {
  let total = 0;
  const backend = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        const t0 = performance.now();
        const r = v.apply(target, args);
        if (r instanceof Promise) return r.finally(() => { total += performance.now() - t0; });
        total += performance.now() - t0;
        return r;
      };
    },
  });
  return { backend, ms: () => total };
}

async function benchKernels(backend: Backend): Promise<void> {
  console.log(`\n## Kernels (${backend.description}), median of ${runs}`);
  const rows = 896;
  const cols = 4864;
  const n = rows * cols;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i * 12.9898) * 0.05;
  const bytes = new Uint8Array(data.buffer);
  const gb = (ms: number, passes = 1): string => `${((n * 4 * passes) / (ms / 1000) / 1e9).toFixed(2)} GB/s`;
  const time = async (label: string, fn: (m: Mat) => Promise<unknown>, passes = 1): Promise<void> => {
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      const m = await backend.upload(bytes, 'F32', rows, cols);
      const t0 = performance.now();
      await fn(m);
      times.push(performance.now() - t0);
      backend.release(m);
    }
    console.log(`${label.padEnd(44)} ${fmt(median(times)).padStart(10)}  ${gb(median(times), passes)}`);
  };
  const rowRot = residualRotation(cols === 4864 ? 896 : cols, 'full', 64, 0);
  {
    const bf16 = new Uint8Array(n * 2);
    const times: number[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      backend.release(await backend.upload(bf16, 'BF16', rows, cols));
      times.push(performance.now() - t0);
    }
    console.log(`${'upload+decode BF16 896×4864'.padEnd(44)} ${fmt(median(times)).padStart(10)}  ${gb(median(times))}`);
  }
  await time('rowAbsMax 896×4864', (m) => backend.rowAbsMax(m));
  const wide = await backend.upload(new Uint8Array(new Float32Array(4864 * 896).buffer), 'F32', 4864, 896);
  const t0 = performance.now();
  await backend.rotateRows(wide, rowRot);
  console.log(`${'rotateRows 4864×896 (full, 28·32)'.padEnd(44)} ${fmt(performance.now() - t0).padStart(10)}`);
  backend.release(wide);
  await time('rotateColumns 896×4864 (full, 28·32)', (m) => backend.rotateColumns(m, rowRot));
  const base = new Float32Array(rows).fill(0.05 / 7);
  const invBase = new Float32Array(rows).fill(7 / 0.05);
  await time(`mseRowErrors 896×4864 × ${MSE_ALPHAS.length} candidates`, (m) => backend.mseRowErrors(m, base, invBase, MSE_ALPHAS, MSE_INV_ALPHAS, -8, 7), MSE_ALPHAS.length);
  await time('quantize 896×4864 (+f16 round)', async (m) => backend.release((await backend.quantize(m, base, invBase, -8, 7, true)).mat));
  for (const bits of [4, 8]) {
    const steps = new Float32Array(rows).fill(roundToF16(0.05 / (2 ** (bits - 1) - 1)));
    const invs = steps.map((s) => 1 / s);
    const times: number[] = [];
    let fit = fitCodebook(data, rows, cols, { bits, rowStep: steps, rowInv: invs });
    for (let r = 0; r < runs; r++) {
      const t = performance.now();
      fit = fitCodebook(data, rows, cols, { bits, rowStep: steps, rowInv: invs, columnWeights: new Float64Array(cols).fill(1) });
      times.push(performance.now() - t);
    }
    console.log(`${`fitCodebook W${bits} 896×4864 (host, ${fit.iterations} Lloyd its)`.padEnd(44)} ${fmt(median(times)).padStart(10)}  ${gb(median(times))}`);
    await time(`quantizeToCodebook W${bits} 896×4864 (+f16)`, async (m) => backend.release((await backend.quantizeToCodebook(m, steps, invs, fit.entries, true)).mat));
  }
  await time('histogram 896×4864 (128 bins)', (m) => backend.histogram(m, 0.05, 128));
  await time('read F16 896×4864', (m) => backend.read(m, 'F16'));
}

async function main(): Promise<void> {
  const backendKind = String(values.backend);
  const makeBackend = () => openCliBackend(backendKind, (msg) => console.log(`notice: ${msg}`));
  if (!values['no-kernels']) {
    const b = await makeBackend();
    await benchKernels(b);
    await b.dispose();
  }
  if (values['no-pipeline']) return;

  const tmp = mkdtempSync(join(tmpdir(), 'quarot-bench-'));
  try {
    const dir = join(tmp, 'qwen2.5-0.5b-shaped');
    console.log(`\n## Generating a Qwen2.5-0.5B-shaped checkpoint with ${layers} layer(s) (BF16)…`);
    const model = makeTinyQwen2({ hidden: 896, intermediate: 4864, layers, heads: 14, kvHeads: 2, vocab: 151936, tie: true, seed: 1, outliers: true, ropeTheta: 1e6, eps: 1e-6 });
    await writeTinyQwen2(dir, model, { dtype: 'BF16' });
    let params = 0;
    for (const t of model.tensors.values()) params += t.data.length;
    model.tensors.clear();
    const inBytes = params * 2;
    console.log(`${(params / 1e6).toFixed(1)} M parameters, ${(inBytes / 1e6).toFixed(0)} MB`);
    const settings = parseSettings({});

    const report = (label: string, walls: number[], peakRss: number, peakAb: number, mathMs: number, cpuMs: number): void => {
      const wall = median(walls);
      console.log(
        `${label}: median ${fmt(wall)} (runs: ${walls.map(fmt).join(', ')}), ${(inBytes / 1e6 / (wall / 1000)).toFixed(1)} MB/s in; ` +
          `peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB, peak ArrayBuffers ${(peakAb / 2 ** 20).toFixed(0)} MiB; ` +
          `backend math ${fmt(mathMs)} (${((100 * mathMs) / wall).toFixed(0)} % of wall), everything else (I/O, parsing, encoding, network) ${fmt(wall - mathMs)}; process CPU ${fmt(cpuMs)}`,
      );
    };
    const measure = async (label: string, openSource: () => Promise<{ source: Parameters<typeof runPipeline>[0]['source']; close: () => Promise<void> }>): Promise<void> => {
      const walls: number[] = [];
      let peakRss = 0;
      let peakAb = 0;
      let math = 0;
      let cpu = 0;
      for (let r = 0; r < runs; r++) {
        const { source, close } = await openSource();
        const timed = timedBackend(await makeBackend());
        const out = join(tmp, `out-${r}`);
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const run = await withPeakMemory(async () =>
          runPipeline({ source, sink: await createFsSink({ out }), settings, backend: timed.backend, target: { model: 'bench' } }),
        );
        walls.push(performance.now() - t0);
        const c = process.cpuUsage(cpu0);
        cpu = (c.user + c.system) / 1000;
        math = timed.ms();
        peakRss = Math.max(peakRss, run.peakRss);
        peakAb = Math.max(peakAb, run.peakArrayBuffers);
        await timed.backend.dispose();
        await close();
        rmSync(out, { recursive: true, force: true });
      }
      report(label, walls, peakRss, peakAb, math, cpu);
    };

    console.log(`\n## Pipeline, W4 sp/mse full, ${backendKind} backend (median of ${runs})`);
    await measure('local folder → fs sink', async () => {
      const source = await createNodeFsSource(dir);
      return { source, close: () => source.close() };
    });

    if (!values['no-hub']) {
      const server = spawn(process.execPath, ['--import', 'tsx', 'scripts/mock-hub-serve.ts', `bench/qwen2.5-0.5b-shaped=${dir}`], { stdio: ['pipe', 'pipe', 'inherit'] });
      const url = await new Promise<string>((resolve, reject) => {
        let buf = '';
        server.stdout!.on('data', (d: Buffer) => {
          buf += d.toString();
          const m = /MOCK_HUB_URL=(\S+)/.exec(buf);
          if (m) resolve(m[1]);
        });
        server.on('exit', (code) => reject(new Error(`mock hub exited with ${code}`)));
      });
      try {
        await measure(`mock hub (${url}) → fs sink`, async () => {
          const source = await createHubSource({ repo: 'bench/qwen2.5-0.5b-shaped', hubUrl: url });
          return { source, close: async () => source.close() };
        });
      } finally {
        server.kill('SIGTERM');
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
