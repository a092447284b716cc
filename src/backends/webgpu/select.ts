import type { Backend } from '../../core/ports';
import { CpuBackend } from '../cpu/cpu-backend';
import { GpuUnavailableError, isGpuUnavailable } from './errors';
import { createFallbackBackend } from './fallback';
import type { GpuRuntime } from '../../gpu/runtime';
import { createWebGpuBackend, WebGpuBackend, type WebGpuBackendOptions } from './webgpu-backend';

export type BackendKind = 'cpu' | 'webgpu' | 'auto';

export interface CreateBackendOptions extends Omit<WebGpuBackendOptions, 'onFallbackNotice'> {
  /** Told when the work runs (or moves) on the CPU instead of the GPU. */
  onNotice?: (message: string) => void;
  /** 'webgpu' only: throw GpuUnavailableError instead of falling back when there is no adapter. */
  strict?: boolean;
}

/**
 * 'cpu': the TypeScript backend. 'webgpu' / 'auto': the WebGPU backend wrapped so that a lost
 * device or out-of-memory moves the run to the CPU (createFallbackBackend); with no adapter at
 * all, the CPU backend with a notice (or, for 'webgpu' with `strict`, a GpuUnavailableError).
 */
export async function createBackend(kind: BackendKind, opts: CreateBackendOptions = {}): Promise<Backend> {
  if (kind === 'cpu') return new CpuBackend();
  if (kind !== 'webgpu' && kind !== 'auto') throw new Error(`unknown backend ${String(kind)}; expected cpu, webgpu or auto`);
  const notice = opts.onNotice ?? (() => undefined);
  let gpu: Backend;
  try {
    gpu = await createWebGpuBackend({ ...opts });
  } catch (e) {
    if (!isGpuUnavailable(e)) throw e;
    if (kind === 'webgpu' && opts.strict) throw e;
    notice(`WebGPU unavailable (${(e as GpuUnavailableError).message}); using the CPU backend`);
    return new CpuBackend();
  }
  return createFallbackBackend(gpu, new CpuBackend(), notice);
}

/**
 * The GPU runtime `backend` works on now (a WebGPU backend, or a fallback wrapper still on its
 * GPU), or null: stages that should share its device (GPTQ's calibration forward) use it.
 */
export function gpuRuntimeOf(backend: Backend): GpuRuntime | null {
  const active = 'active' in backend ? (backend as { active: Backend }).active : backend;
  return active instanceof WebGpuBackend ? active.runtime : null;
}
