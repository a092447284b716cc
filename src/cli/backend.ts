import { CpuBackend } from '../backends/cpu/cpu-backend';
import type { Backend } from '../core/ports';
import { InputError } from '../core/errors';

/** `--backend cpu|webgpu`; WebGPU in Node is Dawn (npm `webgpu`). */
export async function openCliBackend(kind: string, notice: (msg: string) => void): Promise<Backend> {
  if (kind === 'cpu') return new CpuBackend();
  if (kind === 'webgpu') {
    const { createNodeWebGpuBackend } = await import('../backends/webgpu/node-backend-node');
    return createNodeWebGpuBackend(notice);
  }
  throw new InputError(`--backend ${kind}: expected cpu or webgpu`);
}
