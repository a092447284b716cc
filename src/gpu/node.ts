/**
 * Node only: the WebGPU `GPU` object from npm `webgpu` (Dawn), a file-system loader for the WGSL
 * kernels (tsx cannot import `?raw`), and a GpuRuntime on it. Adapter choice by env
 * QUAROT_WEBGPU_BACKEND:
 *  - `opengl` (default): Dawn's GL backend in compatibility mode. Needs EGL_PLATFORM=surfaceless
 *    on a headless machine — set it on the command line / npm script, not via process.env in a
 *    Vitest worker (it is read when the native module loads).
 *  - `vulkan`: e.g. SwiftShader with VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
 *    (same caveat).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GpuUnavailableError } from './errors';
import { createGpuRuntime, type GpuRuntime, type GpuRuntimeOptions } from './runtime';
import { hasBundledShaders, setShaderSourceLoader, type ShaderName } from './shaders';

export type NodeGpuBackend = 'opengl' | 'vulkan';

export interface NodeGpu {
  gpu: GPU;
  backend: NodeGpuBackend;
  /** Pass to requestAdapter / createGpuRuntime({ requestAdapterOptions }). */
  adapterOptions: GPURequestAdapterOptions;
}

const SHADER_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../shaders');

/** Install a loader reading shaders/<name>.wgsl from disk (no-op when Vite bundled them). */
export function installNodeShaderLoader(dir = SHADER_DIR): void {
  if (hasBundledShaders()) return;
  setShaderSourceLoader((name: ShaderName) => readFileSync(resolve(dir, `${name}.wgsl`), 'utf8'));
}

export function nodeGpuBackendFromEnv(): NodeGpuBackend {
  const v = (process.env.QUAROT_WEBGPU_BACKEND ?? 'opengl').toLowerCase();
  if (v !== 'opengl' && v !== 'vulkan') throw new Error(`QUAROT_WEBGPU_BACKEND=${v}: expected opengl or vulkan`);
  return v;
}

// The Dawn instance must outlive its devices: if it is garbage-collected, Dawn crashes
// ("futex facility returned an unexpected error code"), so one per backend is kept for good.
let cached: Map<NodeGpuBackend, NodeGpu> | undefined;

/** Create (once per process and backend) Dawn's GPU object; null if the module cannot load. */
export async function createNodeGpu(backend: NodeGpuBackend = nodeGpuBackendFromEnv()): Promise<NodeGpu | null> {
  installNodeShaderLoader();
  cached ??= new Map();
  const hit = cached.get(backend);
  if (hit) return hit;
  let mod: { create: (o: string[]) => GPU; globals: object };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch {
    return null;
  }
  // The GPU* constants (GPUBufferUsage…) are globals in browsers; Dawn's module exports them.
  Object.assign(globalThis, mod.globals);
  const gpu = mod.create([`backend=${backend}`]);
  const adapterOptions: GPURequestAdapterOptions =
    backend === 'opengl' ? ({ featureLevel: 'compatibility' } as GPURequestAdapterOptions) : {};
  const out = { gpu, backend, adapterOptions };
  cached.set(backend, out);
  return out;
}

/** An adapter from Dawn, or null (with the reason) when none can be had here. */
export async function requestNodeAdapter(backend?: NodeGpuBackend): Promise<{ adapter: GPUAdapter; node: NodeGpu } | { adapter: null; reason: string }> {
  const node = await createNodeGpu(backend);
  if (!node) return { adapter: null, reason: 'npm package "webgpu" (Dawn) could not be loaded' };
  try {
    const adapter = await node.gpu.requestAdapter(node.adapterOptions);
    if (!adapter) return { adapter: null, reason: `Dawn found no ${node.backend} adapter (for opengl set EGL_PLATFORM=surfaceless; for vulkan VK_ICD_FILENAMES)` };
    return { adapter, node };
  } catch (e) {
    return { adapter: null, reason: `Dawn ${node.backend} adapter request failed: ${(e as Error).message}` };
  }
}

/**
 * A GpuRuntime on a fresh Dawn adapter (an adapter gives one device). Throws
 * GpuUnavailableError('no-adapter') with the reason when there is none.
 */
export async function createNodeGpuRuntime(opts: Omit<GpuRuntimeOptions, 'adapter' | 'gpu'> & { backend?: NodeGpuBackend } = {}): Promise<GpuRuntime> {
  const { backend, ...rest } = opts;
  const r = await requestNodeAdapter(backend);
  if (!r.adapter) throw new GpuUnavailableError('no-adapter', `WebGPU unavailable: ${r.reason}`);
  return createGpuRuntime({ ...rest, adapter: r.adapter, adapterPrefix: rest.adapterPrefix ?? `Dawn ${r.node.backend}` });
}
