/** Where the worker's math runs: WebGPU when asked and available, else the CPU backend (with a notice). */
import type { Backend } from '../core/ports';
import { createBackend } from '../backends/webgpu/select';
import type { BackendChoice } from './protocol';

export async function openBackend(kind: BackendChoice, notice: (message: string) => void): Promise<Backend> {
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (kind !== 'cpu' && !gpu) {
    notice('WebGPU is not available in this browser’s workers; running on the CPU backend (slower, same bytes).');
    return createBackend('cpu');
  }
  return createBackend(kind, { onNotice: notice });
}
