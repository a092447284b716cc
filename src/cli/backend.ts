import { CpuBackend } from '../backends/cpu/cpu-backend';
import type { Backend } from '../core/ports';
import { InputError } from '../core/errors';

/**
 * `--backend cpu|webgpu`; WebGPU in Node is Dawn (npm `webgpu`). QUAROT_CPU_SIMD=0 runs the CPU
 * backend's plain TypeScript kernels instead of WebAssembly SIMD (same bytes; for benchmarks).
 */
export async function openCliBackend(kind: string, notice: (msg: string) => void): Promise<Backend> {
  if (kind === 'cpu') return new CpuBackend({ simd: process.env.QUAROT_CPU_SIMD === '0' ? false : undefined });
  if (kind === 'webgpu') {
    const { createNodeWebGpuBackend } = await import('../backends/webgpu/node-backend-node');
    return createNodeWebGpuBackend(notice);
  }
  throw new InputError(`--backend ${kind}: expected cpu or webgpu`);
}
