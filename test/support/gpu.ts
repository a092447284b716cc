// Shared setup for the WebGPU tests: a Dawn adapter (QUAROT_WEBGPU_BACKEND=opengl|vulkan) or a
// reason to skip. Env vars (EGL_PLATFORM, VK_ICD_FILENAMES) must come from the command line.
import { requestNodeAdapter } from '../../src/gpu/node';
import { GpuRuntime } from '../../src/gpu/runtime';
import { createWebGpuBackend, type WebGpuBackend, type WebGpuBackendOptions } from '../../src/backends/webgpu/webgpu-backend';

export interface GpuEnv {
  adapter: GPUAdapter | null;
  reason: string;
}

export async function gpuEnv(): Promise<GpuEnv> {
  try {
    const r = await requestNodeAdapter();
    if (!r.adapter) return { adapter: null, reason: r.reason };
    return { adapter: r.adapter, reason: '' };
  } catch (e) {
    return { adapter: null, reason: `no WebGPU adapter: ${(e as Error).message}` };
  }
}

/** A backend on a fresh adapter (an adapter can create only one device). */
export async function gpuBackend(env: GpuEnv, opts: Omit<WebGpuBackendOptions, 'adapter'> = {}): Promise<WebGpuBackend> {
  if (!env.adapter) throw new Error(env.reason);
  const r = await requestNodeAdapter();
  if (!r.adapter) throw new Error(r.reason);
  return createWebGpuBackend({ ...opts, adapter: r.adapter });
}

/**
 * Lose the device under a GPU stage now, as a driver reset would: the real Dawn device is
 * destroyed behind the runtime's back, so the stage sees a lost device on its next call.
 */
export function loseDevice(stage: { runtime: GpuRuntime } | GpuRuntime): void {
  const rt = stage instanceof GpuRuntime ? stage : stage.runtime;
  rt.device.destroy();
}

/** Deterministic PRNG, uniform in [0, 1): the generator's mulberry32. */
export { mulberry32 as rng } from '../../src/demo/tiny-qwen2';
import { mulberry32 as rng } from '../../src/demo/tiny-qwen2';

/** Roughly normal values (sum of uniforms), with a few outliers. */
export function randomMatrix(rows: number, cols: number, seed: number, scale = 0.05): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) {
    let v = (r() + r() + r() + r() - 2) * scale;
    if (r() < 0.002) v *= 20;
    out[i] = v;
  }
  return out;
}

export function f32Bytes(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

/** Index and values of the first differing u32 word, or null when bit-identical. */
export function firstBitDiff(a: ArrayBufferView, b: ArrayBufferView): string | null {
  if (a.byteLength !== b.byteLength) return `lengths differ: ${a.byteLength} vs ${b.byteLength} bytes`;
  const ua = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const ub = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  let count = 0;
  let first = -1;
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) { if (first < 0) first = i; count++; }
  if (first < 0) return null;
  const w = first >> 2;
  const dv = (u: Uint8Array): string => {
    if (u.length < (w + 1) * 4) return `byte ${u[first]}`;
    const x = new DataView(u.buffer, u.byteOffset + w * 4, 4);
    return `0x${x.getUint32(0, true).toString(16)} (${x.getFloat32(0, true)})`;
  };
  return `${count} bytes differ; first at byte ${first} (word ${w}): ${dv(ua)} vs ${dv(ub)}`;
}
