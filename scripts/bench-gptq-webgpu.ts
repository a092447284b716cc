/**
 * EGL_PLATFORM=surfaceless npx tsx scripts/bench-gptq-webgpu.ts [--tokens 2048] [--sample 512]
 *     [--shapes 896x896,896x4864,4864x896] [--no-cpu]
 *
 * GPTQ's heavy parts on Dawn (src/backends/webgpu/gptq-engine.ts) against the CPU path
 * (src/core/quant/gptq.ts) on Qwen2.5-0.5B linear shapes [rows, cols] = [outputs, inputs]:
 *  - the Hessian Σ xxᵀ of --tokens calibration tokens fed in samples of --sample rows from device
 *    buffers (as the forward pass's hooks give them), GFLOP/s counting the upper triangle only
 *    (d(d+1)/2 multiply-adds per token, 2 flops each);
 *  - GPTQ W4 (act-order, 1 % damp, block 128): the host's f64 Cholesky factor of H⁻¹, the
 *    device part (in-block columns + trailing updates, incl. uploads of U and readback), and the
 *    trailing-update FLOPs Σ_blocks 2·rows·B·(cols − end of block) over the device time.
 * GPU times are wall times to completion (onSubmittedWorkDone / readback). Measured, never asserted.
 */
import { parseArgs } from 'node:util';
import { WebGpuGptqEngine } from '../src/backends/webgpu/gptq-engine';
import { gptqQuantize, HessianAccumulator, upperCholeskyOfInverse } from '../src/core/quant/gptq';
import { roundToF16 } from '../src/core/safetensors/dtype';
import { createNodeGpuRuntime } from '../src/gpu/node';
import { Transients } from '../src/gpu/runtime';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '2048' },
    sample: { type: 'string', default: '512' },
    shapes: { type: 'string', default: '896x896,896x4864,4864x896' },
    'no-cpu': { type: 'boolean', default: false },
  },
});
const tokens = Number(values.tokens);
const sampleRows = Number(values.sample);
const shapes = String(values.shapes).split(',').map((s) => s.split('x').map(Number) as [number, number]);
const withCpu = !values['no-cpu'];

function gaussian(seed: number): () => number {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u() || 1e-12)) * Math.cos(2 * Math.PI * u());
}
const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const gf = (flops: number, ms: number): string => `${(flops / ms / 1e6).toFixed(2)} GFLOP/s`;

const rt = await createNodeGpuRuntime();
const engine = new WebGpuGptqEngine(rt);
console.log(`device: ${rt.adapterName}; tokens ${tokens} in samples of ${sampleRows}`);

for (const [rows, cols] of shapes) {
  const g = gaussian(rows * 7 + cols);
  const w = Float32Array.from({ length: rows * cols }, () => g() * 0.02);
  const F = 32;
  const load = Float64Array.from({ length: F * cols }, () => g());
  const chan = Float64Array.from({ length: cols }, () => Math.exp(0.7 * g()));
  const x = new Float32Array(tokens * cols);
  for (let t = 0; t < tokens; t++) {
    const f = Array.from({ length: F }, () => g());
    for (let j = 0; j < cols; j++) {
      let v = g();
      for (let k = 0; k < F; k++) v += f[k] * load[k * cols + j] * 0.3;
      x[t * cols + j] = v * chan[j];
    }
  }
  const hFlops = cols * (cols + 1) * tokens; // upper triangle, 2 flops per multiply-add

  // Hessian on the device, from device buffers (uploaded before timing, as the forward pass holds them).
  const temps = new Transients(rt);
  const bufs: { buffer: GPUBuffer; rows: number }[] = [];
  for (let t0 = 0; t0 < tokens; t0 += sampleRows) {
    const n = Math.min(sampleRows, tokens - t0);
    bufs.push({ buffer: temps.filled('x', x.subarray(t0 * cols, (t0 + n) * cols)), rows: n });
  }
  await rt.device.queue.onSubmittedWorkDone();
  const acc = engine.hessian(cols);
  // warm-up (pipeline compile) on a 1-row add into a throwaway accumulator
  const warm = engine.hessian(cols);
  await warm.add({ runtime: rt, buffer: bufs[0].buffer, rows: 1, cols, read: async () => x.slice(0, cols) } as never);
  await rt.device.queue.onSubmittedWorkDone();
  warm.dispose();
  let t0 = performance.now();
  for (const b of bufs) await acc.add({ runtime: rt, buffer: b.buffer, rows: b.rows, cols, read: async () => new Float32Array(0) } as never);
  await rt.device.queue.onSubmittedWorkDone();
  const hGpuMs = performance.now() - t0;
  t0 = performance.now();
  const hGpu = await acc.hessian();
  const hReadMs = performance.now() - t0;
  acc.dispose();
  temps.destroyAll();
  let line = `[${rows}×${cols}] Hessian ${cols}² × ${tokens} tok: Dawn ${sec(hGpuMs)} (${gf(hFlops, hGpuMs)}) + readback ${sec(hReadMs)}`;
  let hCpu: Float64Array | null = null;
  if (withCpu) {
    const cacc = new HessianAccumulator(cols);
    t0 = performance.now();
    cacc.addRows(x, tokens);
    const hCpuMs = performance.now() - t0;
    hCpu = cacc.hessian();
    let diag = 0, maxd = 0;
    for (let i = 0; i < cols; i++) diag = Math.max(diag, hCpu[i * cols + i]);
    for (let i = 0; i < hCpu.length; i++) maxd = Math.max(maxd, Math.abs(hCpu[i] - hGpu[i]));
    line += `; CPU f64 ${sec(hCpuMs)} (${gf(hFlops, hCpuMs)}); max |ΔH|/max diag ${(maxd / diag).toExponential(2)}`;
  }
  console.log(line);

  // GPTQ W4 on SP absmax steps.
  const rowStep = new Float32Array(rows);
  const rowInv = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let j = 0; j < cols; j++) m = Math.max(m, Math.abs(w[r * cols + j]));
    rowStep[r] = roundToF16(m / 7);
    rowInv[r] = 1 / rowStep[r];
  }
  const opts = { rowStep, rowInv, qmin: -8, qmax: 7, damp: 0.01, actOrder: true, blockSize: 128 };
  t0 = performance.now();
  upperCholeskyOfInverse(hGpu, cols, 0.01);
  const cholMs = performance.now() - t0;
  const B = 128;
  let updFlops = 0;
  for (let i1 = 0; i1 < cols; i1 += B) updFlops += 2 * rows * Math.min(B, cols - i1) * Math.max(0, cols - i1 - B);
  t0 = performance.now();
  const got = await engine.quantize(w, rows, cols, hGpu, opts);
  const qGpuMs = performance.now() - t0;
  const { planMs, deviceMs } = engine.lastTimings;
  line = `[${rows}×${cols}] GPTQ W4: host Cholesky of H⁻¹ (f64, ${cols}²) ${sec(cholMs)}; Dawn total ${sec(qGpuMs)} = plan ${sec(planMs)} + device ${sec(deviceMs)} (trailing updates ${(updFlops / 1e9).toFixed(2)} GFLOP → ${gf(updFlops, deviceMs)} incl. U uploads/readback)`;
  if (withCpu && hCpu) {
    t0 = performance.now();
    const want = gptqQuantize(w, rows, cols, hCpu, opts);
    const qCpuMs = performance.now() - t0;
    let same = 0;
    for (let i = 0; i < want.codes.length; i++) if (want.codes[i] === got.codes[i]) same++;
    line += `; CPU f64 total ${sec(qCpuMs)} (updates ≈ ${gf(updFlops, qCpuMs - cholMs)}); codes equal ${((100 * same) / want.codes.length).toFixed(3)} %`;
  }
  console.log(line);
}
rt.destroy();
