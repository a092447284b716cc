/**
 * Per-kernel timings of the WebGPU backend (and the CPU backend for comparison) on
 * Qwen2.5-0.5B-like shapes. Not wired into package.json; run e.g.
 *
 *   EGL_PLATFORM=surfaceless npx tsx scripts/bench-webgpu.ts
 *   QUAROT_WEBGPU_BACKEND=vulkan VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json npx tsx scripts/bench-webgpu.ts
 *
 * Options: --embed-rows N (default 151936; 0 skips the embedding shape), --no-cpu, --reps N,
 * --mse-embed (also run the MSE search on the whole embedding; slow on software adapters).
 * GPU time is from timestamp queries where the adapter has `timestamp-query`, else wall time
 * from submit to onSubmittedWorkDone (includes submission overhead). GB/s counts the bytes
 * each primitive must move at least once (reads + writes of f32 data).
 */
import { CpuBackend } from '../src/backends/cpu/cpu-backend';
import type { Backend, Mat, RotationSpec } from '../src/core/ports';
import { headRotation, residualRotation } from '../src/core/hadamard/rotation';
import { MSE_ALPHAS, MSE_INV_ALPHAS } from '../src/core/quant/scales';
import { createWebGpuBackend, type WebGpuBackend } from '../src/backends/webgpu/webgpu-backend';
import { requestNodeAdapter } from '../src/gpu/node';

const args = process.argv.slice(2);
const opt = (name: string, def: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const embedRows = opt('--embed-rows', 151936);
const reps = opt('--reps', 1);
const withCpu = !args.includes('--no-cpu');
const mseEmbed = args.includes('--mse-embed');

function randomBf16(n: number, seed: number): Uint8Array {
  const out = new Uint16Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const v = ((s >>> 8) / 2 ** 24 - 0.5) * 0.1;
    out[i] = new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16;
  }
  return new Uint8Array(out.buffer);
}

interface Row { shape: string; op: string; backend: string; ms: number; gbs: number; kernels?: string }

const rows: Row[] = [];

async function timeOp(b: Backend, label: string, shape: string, bytes: number, f: () => Promise<unknown>): Promise<unknown> {
  const gpu = b.name === 'webgpu' ? (b as WebGpuBackend) : null;
  let best = Infinity;
  let result: unknown;
  let kernels = '';
  for (let r = 0; r < reps; r++) {
    if (gpu) { await gpu.sync(); await gpu.takeTimings(); }
    const t0 = performance.now();
    result = await f();
    if (gpu) await gpu.sync();
    let ms = performance.now() - t0;
    if (gpu && gpu.hasTimestamps) {
      const t = await gpu.takeTimings();
      if (t.length > 0) {
        const sum = new Map<string, number>();
        for (const k of t) sum.set(k.kernel, (sum.get(k.kernel) ?? 0) + k.ms);
        const gpuMs = [...sum.values()].reduce((a, v) => a + v, 0);
        kernels = [...sum].map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
        ms = gpuMs;
      }
    }
    if (ms < best) best = ms;
    if (r < reps - 1 && result && typeof result === 'object' && 'mat' in (result as object)) b.release((result as { mat: Mat }).mat);
  }
  rows.push({ shape, op: label, backend: b.name, ms: best, gbs: bytes / (best / 1e3) / 1e9, kernels });
  return result;
}

async function benchShape(b: Backend, rowsN: number, cols: number, rowRot: RotationSpec | null, colRot: RotationSpec | null, mse: boolean): Promise<void> {
  const shape = `${rowsN}×${cols}`;
  const n = rowsN * cols;
  const f32 = n * 4;
  const src = randomBf16(n, rowsN + cols);
  const m = (await timeOp(b, 'upload BF16', shape, n * 6, () => b.upload(src, 'BF16', rowsN, cols))) as Mat;
  const gamma = Float32Array.from({ length: cols }, (_, i) => 1 + (i % 7) * 0.01);
  await timeOp(b, 'scaleColumns', shape, 2 * f32, () => b.scaleColumns(m, gamma));
  if (rowRot) await timeOp(b, `rotateRows seg ${rowRot.segment}`, shape, 2 * f32, () => b.rotateRows(m, rowRot));
  if (colRot) await timeOp(b, `rotateColumns seg ${colRot.segment}`, shape, 2 * f32, () => b.rotateColumns(m, colRot));
  const rowMax = (await timeOp(b, 'rowAbsMax', shape, f32, () => b.rowAbsMax(m))) as Float32Array;
  const qmax = 7;
  const base = rowMax.map((v) => v / qmax);
  const inv = rowMax.map((v) => (v > 0 ? qmax / v : 0));
  if (mse) {
    await timeOp(b, `mseRowErrors ×${MSE_ALPHAS.length}`, shape, f32, () => b.mseRowErrors(m, base, inv, MSE_ALPHAS, MSE_INV_ALPHAS, -8, 7));
  }
  const q = (await timeOp(b, 'quantize (f16)', shape, 2 * f32, () => b.quantize(m, base, inv, -8, 7, true))) as { mat: Mat };
  await timeOp(b, 'histogram 128', shape, f32, () => b.histogram(m, 1, 128));
  await timeOp(b, 'rowSquaredErrors', shape, 2 * f32, () => b.rowSquaredErrors(m, q.mat));
  await timeOp(b, 'read F16', shape, n * 6, () => b.read(q.mat, 'F16'));
  b.release(q.mat);
  b.release(m);
}

async function main(): Promise<void> {
  const r = await requestNodeAdapter();
  const backends: Backend[] = [];
  if (r.adapter) {
    const gpu = await createWebGpuBackend({ adapter: r.adapter, profile: true });
    console.log(`GPU: ${gpu.description}; timestamps: ${gpu.hasTimestamps ? 'yes' : 'no (submit→onSubmittedWorkDone wall time)'}; tile limit ${(gpu.limits.maxTileBytes / 2 ** 20).toFixed(0)} MiB`);
    backends.push(gpu);
  } else {
    console.log(`no WebGPU adapter: ${r.reason}`);
  }
  if (withCpu) backends.push(new CpuBackend());
  const full896 = residualRotation(896, 'full', 0, 0);
  const block16 = residualRotation(896, 'block', 16, 0);
  const heads = headRotation(64, 14, 0);
  for (const b of backends) {
    console.log(`-- ${b.description}`);
    // gate/up-like: rows rotated (K = 28 · 32); down_proj-like: columns rotated
    await benchShape(b, 4864, 896, full896, null, true);
    await benchShape(b, 896, 4864, null, full896, true);
    await benchShape(b, 896, 896, heads, null, false);
    if (embedRows > 0) {
      await benchShape(b, embedRows, 896, full896, null, mseEmbed);
      const m = await b.upload(randomBf16(embedRows * 896, 5), 'BF16', embedRows, 896);
      await timeOp(b, `rotateRows seg ${block16.segment}`, `${embedRows}×896`, embedRows * 896 * 8, () => b.rotateRows(m, block16));
      b.release(m);
    }
    await b.dispose();
  }
  const pad = (s: string, n: number): string => s.padEnd(n);
  console.log(`\n${pad('shape', 14)}${pad('op', 26)}${pad('backend', 9)}${pad('ms', 11)}${pad('GB/s', 9)}kernels (ms)`);
  for (const row of rows) {
    console.log(`${pad(row.shape, 14)}${pad(row.op, 26)}${pad(row.backend, 9)}${pad(row.ms.toFixed(2), 11)}${pad(row.gbs.toFixed(2), 9)}${row.kernels ?? ''}`);
  }
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
