/**
 * Node CLI entry: a WebGPU backend on Dawn (npm `webgpu`, adapter per QUAROT_WEBGPU_BACKEND),
 * falling back to the CPU with a notice when no adapter exists or the device fails mid-run.
 */
import type { Backend } from '../../core/ports';
import { CpuBackend } from '../cpu/cpu-backend';
import { createBackend } from './select';
import { requestNodeAdapter } from '../../gpu/node';

export async function createNodeWebGpuBackend(notice: (msg: string) => void = () => undefined): Promise<Backend> {
  const r = await requestNodeAdapter();
  if (!r.adapter) {
    notice(`WebGPU unavailable (${r.reason}); using the CPU backend`);
    return new CpuBackend();
  }
  return createBackend('webgpu', { adapter: r.adapter, onNotice: notice });
}
