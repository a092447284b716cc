/**
 * A WebGPU device in Node through npm `webgpu` (Dawn). Needs EGL_PLATFORM=surfaceless in the
 * process environment for the OpenGL backend on GPU-less machines (set it on the command line:
 * Vitest worker threads do not see process.env changes).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setForwardShaderLoader, type ForwardShaderName } from './forward-shaders';
import { describeAdapter, requestEvalDevice, type EvalGpu } from './gpu-device';

const SHADER_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../shaders');

const instances: GPU[] = [];

export async function createNodeGpuDevice(opts: { backend?: 'opengl' | 'vulkan' } = {}): Promise<EvalGpu> {
  setForwardShaderLoader((name: ForwardShaderName) => readFileSync(join(SHADER_DIR, `${name}.wgsl`), 'utf8'));
  const { create, globals } = await import('webgpu');
  // The GPU* constants (GPUBufferUsage…) are globals in browsers; Dawn's module exports them.
  Object.assign(globalThis, globals);
  const gpu = create([`backend=${opts.backend ?? 'opengl'}`]) as GPU;
  // The Dawn instance must outlive its devices: if it is garbage-collected, Dawn crashes
  // ("futex facility returned an unexpected error code"), so keep every one made.
  instances.push(gpu);
  const adapter = await gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions);
  if (!adapter) throw new Error('no WebGPU adapter (Dawn); is EGL_PLATFORM=surfaceless set?');
  return requestEvalDevice(adapter, describeAdapter(adapter, `Dawn ${opts.backend ?? 'opengl'}`));
}
